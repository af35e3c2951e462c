"""The sandbox AWS survives a restart: moto's in-memory state is kept in the state directory.

What is kept (``<state dir>/aws-state.pickle``, readable by the owner only): every moto
service's backend as it is (ECS services and task definitions, target groups and listener
rules, RDS instances and snapshots, secrets, ECR images, the network, ...), with the sandbox's
own bookkeeping on those objects (a restore under way, a service draining, a deleted rule
still listed), the sandbox clock (clock.py), the seeded host's variables and the account
API's accounts. Pickled in one go, so objects shared between services stay shared.

* Saved when the sandbox stops (Ctrl-C, SIGTERM, a closed terminal) and, while it runs,
  SAVE_AFTER_SECONDS after AWS was called, so a sandbox that is killed loses at most the
  last moments. A snapshot is taken between requests (RequestGate): it waits for the calls
  being answered and holds the next ones back for the milliseconds pickling takes, so it
  never sees half a change.
* Loaded as the sandbox starts, before its server answers anything; the host is then not
  seeded again. A state saved by another moto version (or another format of this file) is
  not trusted: it is set aside (``aws-state.pickle.old``) and the sandbox starts newly seeded,
  saying why; the dashboard's reconcile then marks the stagings it had lost.
"""

import importlib
import io
import logging
import os
import pickle
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from . import clock

log = logging.getLogger(__name__)

STATE_FILE_NAME = "aws-state.pickle"
SET_ASIDE_SUFFIX = ".old"
# Bumped whenever what is saved changes shape: an older file is then set aside.
FORMAT = 1
SAVE_AFTER_SECONDS = 2.0
_LOCK_TYPE = type(threading.Lock())
_RLOCK_TYPE = type(threading.RLock())


def state_file(state_dir: Path) -> Path:
    return Path(state_dir) / STATE_FILE_NAME


class _StatePickler(pickle.Pickler):
    """Locks (moto keeps a few on its backends) are saved as new, unheld locks."""

    def reducer_override(self, obj):
        if type(obj) is _LOCK_TYPE:
            return threading.Lock, ()
        if type(obj) is _RLOCK_TYPE:
            return threading.RLock, ()
        return NotImplemented


def _moto_version() -> str:
    import moto

    return moto.__version__


def _backends_in_use() -> list:
    from moto.core.base_backend import BackendDict

    return list(BackendDict._instances)


def _backend_dict(module_name: str, service_name: str):
    """The module-level BackendDict of ``service_name`` in ``module_name`` (moto's services
    keep theirs as a module attribute, e.g. ``moto.ecs.models.ecs_backends``)."""
    from moto.core.base_backend import BackendDict

    module = importlib.import_module(module_name)
    for value in vars(module).values():
        if isinstance(value, BackendDict) and value.service_name == service_name:
            return value
    raise LookupError(f"no {service_name} backends in {module_name}")


def snapshot(environment: dict[str, str], accounts: dict) -> bytes:
    """Everything the sandbox AWS holds, pickled (call it between requests: RequestGate)."""
    backends = {
        (backend_dict.backend.__module__, backend_dict.service_name): {
            account: dict(regions) for account, regions in backend_dict.items()
        }
        for backend_dict in _backends_in_use()
    }
    state = {
        "format": FORMAT, "moto": _moto_version(), "saved_at": datetime.now(UTC),
        "clock": clock.reading(), "environment": dict(environment), "accounts": dict(accounts),
        "backends": backends,
    }
    buffer = io.BytesIO()
    _StatePickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(state)
    return buffer.getvalue()


def write(state_dir: Path, data: bytes) -> Path:
    """Replace the saved state atomically: a reader (the next start) never sees half a file."""
    target = state_file(state_dir)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, target)
    return target


@dataclass(frozen=True)
class Restored:
    environment: dict[str, str]  # the seeded host's DS_* variables
    accounts: dict
    saved_at: datetime


def set_aside(state_dir: Path) -> Path | None:
    """Move the saved state out of the way (kept once, as ``.old``); its new place, if any."""
    path = state_file(state_dir)
    if not path.exists():
        return None
    aside = path.with_name(path.name + SET_ASIDE_SUFFIX)
    os.replace(path, aside)
    return aside


def load(state_dir: Path) -> tuple[Restored | None, str]:
    """Put the saved state into moto (before its server answers anything): (what was
    restored, "") or (None, why nothing was). Must run after delays.install, whose patched
    classes the saved objects are instances of."""
    path = state_file(state_dir)
    if not path.exists():
        return None, "no saved state"
    try:
        state = pickle.loads(path.read_bytes())
        if not isinstance(state, dict) or state.get("format") != FORMAT:
            raise ValueError(f"saved in another format ({state.get('format')!r}, this sandbox "
                             f"reads {FORMAT})" if isinstance(state, dict) else "not a state")
        if state["moto"] != _moto_version():
            raise ValueError(f"saved by moto {state['moto']}, this is moto {_moto_version()}")
        _install(state["backends"])
    except Exception as exc:  # whatever is wrong with the file, start afresh and say why
        _forget_everything()
        aside = set_aside(state_dir)
        log.warning("sandbox: saved AWS state not used: %s", exc)
        return None, f"the saved state could not be used ({exc}); it was moved to {aside}"
    clock.resume(state["clock"])
    return Restored(state["environment"], state["accounts"], state["saved_at"]), ""


def _install(backends: dict) -> None:
    for (module_name, service_name), accounts in backends.items():
        backend_dict = _backend_dict(module_name, service_name)
        backend_dict.clear()
        for account, regions in accounts.items():
            per_region = backend_dict[account]  # made (and registered) by moto itself
            for region, backend in regions.items():
                dict.__setitem__(per_region, region, backend)


def _forget_everything() -> None:
    """Leave moto empty again (for the seed) after a state that failed half-way in."""
    for backend_dict in _backends_in_use():
        backend_dict.clear()


class RequestGate:
    """The moto server's requests share it; a snapshot has it alone, between requests. A
    snapshot waiting for it holds new requests back, so a busy server never starves it."""

    def __init__(self):
        self._condition = threading.Condition()
        self._answering = 0
        self._held = False
        self.called = threading.Event()  # AWS was called since the last snapshot

    @contextmanager
    def request(self) -> Iterator[None]:
        with self._condition:
            self._condition.wait_for(lambda: not self._held)
            self._answering += 1
        try:
            yield
        finally:
            with self._condition:
                self._answering -= 1
                self._condition.notify_all()
            self.called.set()

    @contextmanager
    def alone(self) -> Iterator[None]:
        with self._condition:
            self._condition.wait_for(lambda: not self._held)
            self._held = True
            self._condition.wait_for(lambda: self._answering == 0)
        try:
            yield
        finally:
            with self._condition:
                self._held = False
                self._condition.notify_all()

    def wrap(self, app):
        """The WSGI app, answering through the gate (moto builds the whole response inside)."""

        def gated(environ, start_response):
            with self.request():
                return app(environ, start_response)

        return gated


class Saver:
    """Saves the state SAVE_AFTER_SECONDS after AWS was called, and once more at the end."""

    def __init__(self, state_dir: Path, gate: RequestGate,
                 contents: Callable[[], tuple[dict[str, str], dict]]):
        self.state_dir = Path(state_dir)
        self.gate = gate
        self.contents = contents  # (the seeded host's variables, the accounts) at save time
        self._stopping = threading.Event()
        self._saving = threading.Lock()
        self._thread: threading.Thread | None = None
        self.saves = 0

    def save(self) -> Path:
        with self._saving:
            with self.gate.alone():
                environment, accounts = self.contents()
                data = snapshot(environment, accounts)
                self.gate.called.clear()
            path = write(self.state_dir, data)
            self.saves += 1
            return path

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="sandbox-state-saver",
                                        daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stopping.is_set():
            if not self.gate.called.wait(0.5):
                continue
            # A create calls AWS dozens of times in a row: one save after the burst.
            if self._stopping.wait(SAVE_AFTER_SECONDS):
                return
            try:
                self.save()
            except Exception:  # the next change tries again; stopping saves once more
                log.exception("sandbox: could not save the AWS state")

    def stop(self) -> Path:
        """Stop saving in the background and save a last time (call once nothing answers)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
        return self.save()
