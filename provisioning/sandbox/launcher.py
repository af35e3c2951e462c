"""Start the sandbox: the AWS part (moto server, seed, account API) and, for ``run``, the app.

The moto server runs in this process (a thread) because the lifecycle patches and the seed's
backdating reach moto's in-process backend objects. Other processes find it through
``<state dir>/env.json`` (see environment.py), written once the host environment is seeded (or
restored) and removed on the way out. What the sandbox AWS holds is saved in the state
directory and restored at the next start (persistence.py): stagings survive a restart.
"""

import fcntl
import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .environment import ENV_FILE_NAME, LOCK_FILE_NAME, STATIC_ENVIRONMENT
from .latency import scale_from_environment

REGION = STATIC_ENVIRONMENT["AWS_REGION"]
POLL_SECONDS = "0.5"
# Only these may differ from the sandbox's own values in the app processes ``run`` starts:
# everything else (endpoint, ARNs, account API port and token) belongs to this very sandbox.
OPERATOR_TUNABLE = {"DS_POLL_SECONDS", "DS_SANDBOX_DELAY_SCALE", "DS_LOCAL_LOGIN",
                    "DS_OIDC_RECHECK_MINUTES"}
# Present in a developer's shell, these would send the app to a real account or break boto3.
FOREIGN_AWS_VARIABLES = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")
QCLUSTER_STOP_SECONDS = 30.0
WEB_STOP_SECONDS = 10.0


class SandboxError(Exception):
    """The sandbox cannot start (port taken, ...); the message says why."""


def default_state_dir(base_dir: Path) -> Path:
    configured = os.environ.get("DS_SANDBOX_STATE_DIR", "").strip()
    return Path(configured) if configured else Path(base_dir) / "var" / "sandbox"


class StateDirClaim:
    """This process runs the sandbox of ``state_dir``: an exclusive lock on its lock file,
    held until ``release`` or this process's end. A second sandbox from the same directory
    is refused before it touches anything (ports, database, demo login, env.json)."""

    def __init__(self, state_dir: Path):
        state_dir.mkdir(parents=True, exist_ok=True)
        self.path = state_dir / LOCK_FILE_NAME
        self._descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(self._descriptor, 32, 0).decode(errors="replace").strip()
            os.close(self._descriptor)
            raise SandboxError(
                f"A sandbox is already running from {state_dir}"
                f"{f' (process {holder})' if holder else ''}: use it, or stop it first "
                "(Ctrl-C in its terminal). A second one needs its own DS_SANDBOX_STATE_DIR "
                "and ports.") from None
        os.ftruncate(self._descriptor, 0)
        os.pwrite(self._descriptor, f"{os.getpid()}\n".encode(), 0)

    def release(self) -> None:
        if self._descriptor is not None:
            os.close(self._descriptor)  # closing lets go of the lock
            self._descriptor = None


@dataclass
class SandboxAws:
    endpoint_url: str
    environment: dict[str, str]
    env_file: Path
    moto_server: object
    account_server: object
    slack_server: object
    saver: object  # persistence.Saver
    origin: str  # where its AWS state came from, for the operator
    identity_provider: object = None

    def stop(self) -> None:
        self.env_file.unlink(missing_ok=True)
        if self.identity_provider is not None:
            self.identity_provider.stop()
        self.account_server.shutdown()
        self.slack_server.shutdown()
        self.moto_server.stop()
        # Once nothing answers any more: the last save misses nothing.
        self.saver.stop()


def start_sandbox_aws(*, state_dir: Path, port: int = 0, scale: float | None = None,
                      sign_in_for: str = "", fresh: bool = False) -> SandboxAws:
    """Run moto with AWS-like delays on loopback with the state the last run saved (or, with
    none, ``fresh``, or one that cannot be used, a newly seeded host), write env.json. With
    ``sign_in_for`` (the dashboard's URL), also the identity provider, the dashboard registered
    with it and configured for it (identity.py)."""
    scale = scale_from_environment() if scale is None else scale
    if port:
        ensure_port_free(port)
    _prepare_moto(scale)
    from . import delays, persistence
    from .account_api import AccountStore, start_account_api
    from .seed import seed_host_environment
    from .slack_api import start_slack_api

    if fresh:
        aside = persistence.set_aside(state_dir)
        restored, why = None, "asked for a fresh one" + (
            f"; the saved state was moved to {aside}" if aside else "")
    else:
        restored, why = persistence.load(state_dir)
    gate = persistence.RequestGate()
    moto_server, endpoint_url = _serve_moto(port, gate)
    if restored is not None:
        seeded = restored.environment
        origin = (f"restored from {persistence.state_file(state_dir)} (saved "
                  f"{restored.saved_at:%Y-%m-%d %H:%M:%S} UTC)")
    else:
        with delays.paused():
            seeded = seed_host_environment(endpoint_url, REGION)
        origin = f"newly seeded: {why}"
    token = secrets.token_urlsafe(24)
    store = AccountStore(token, restored.accounts if restored else None,
                         on_change=gate.called.set)
    account_url, account_server = start_account_api(token, store)
    saver = persistence.Saver(state_dir, gate, lambda: (seeded, store.copy()))
    saver.save()  # a sandbox killed right away comes back as it started
    saver.start()
    # stagingbot's Slack: a fake Web API that records what the bot posts (slack_api.py).
    bot_token = f"xoxb-sandbox-{secrets.token_hex(12)}"
    slack_url, slack_server = start_slack_api(bot_token, Path(state_dir))
    environment = {
        **STATIC_ENVIRONMENT,
        "AWS_ENDPOINT_URL": endpoint_url,
        **seeded,
        "DS_ACCOUNT_API_URL": account_url,
        "DS_ACCOUNT_API_TOKEN": token,
        "DS_SLACK_API_URL": f"{slack_url}/api/",
        "DS_SLACK_BOT_TOKEN": bot_token,
        "DS_SLACK_SIGNING_SECRET": secrets.token_hex(16),
        "DS_POLL_SECONDS": POLL_SECONDS,
        "DS_SANDBOX_DELAY_SCALE": str(scale),
    }
    identity_provider = None
    if sign_in_for:
        from .identity import start_identity_provider

        identity_provider = start_identity_provider(dashboard_url=sign_in_for)
        environment.update(identity_provider.environment)
    env_file = write_env_file(Path(state_dir), environment)
    return SandboxAws(endpoint_url, environment, env_file, moto_server, account_server,
                      slack_server, saver, origin, identity_provider)


def _prepare_moto(scale: float) -> None:
    # Read by moto per ECS service it creates; set before anything of moto's is imported.
    os.environ["MOTO_ECS_SERVICE_RUNNING"] = "1"
    from . import delays

    delays.install(scale)


def _serve_moto(port: int, gate) -> tuple[object, str]:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one log line per AWS call
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    # Every request through the gate, so that a snapshot is taken between requests. Nobody
    # knows the port before this returns, so no request has come in yet.
    wsgi = server._server
    wsgi.app = gate.wrap(wsgi.app)
    host, bound_port = server.get_host_and_port()
    return server, f"http://{host}:{bound_port}"


def ensure_port_free(port: int) -> None:
    # Moto's server thread would die on a taken port and leave start() waiting forever.
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            raise SandboxError(f"Port {port} on 127.0.0.1 is not free: {exc}") from exc


def write_env_file(state_dir: Path, environment: dict[str, str]) -> Path:
    """Write env.json atomically (readers never see half a file), readable by the owner only."""
    state_dir.mkdir(parents=True, exist_ok=True)
    target = state_dir / ENV_FILE_NAME
    temporary = state_dir / f".{ENV_FILE_NAME}.{os.getpid()}.tmp"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(environment, handle, indent=2, sort_keys=True)
    os.replace(temporary, target)
    return target


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def stop_requested() -> threading.Event:
    """An event set by the first SIGTERM, SIGINT (Ctrl-C) or SIGHUP (its terminal closed):
    the sandbox then stops in order and saves its AWS state. A second one ends us at once."""
    event = threading.Event()

    def handler(signum, frame):
        event.set()
        for stop_signal in STOP_SIGNALS:
            signal.signal(stop_signal, signal.SIG_DFL)

    for stop_signal in STOP_SIGNALS:
        signal.signal(stop_signal, handler)
    return event


def wait_until(event: threading.Event) -> None:
    # Short waits keep the main thread responsive to signals.
    while not event.wait(0.5):
        pass


# --- `sandbox run`: the dashboard and its workers on top of the AWS part ------------------------


def app_environment(sandbox: SandboxAws, state_dir: Path) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if k not in FOREIGN_AWS_VARIABLES}
    for key, value in sandbox.environment.items():
        if key not in OPERATOR_TUNABLE or key not in environment:
            environment[key] = value
    environment.update(DS_SANDBOX="1", DS_SANDBOX_STATE_DIR=str(state_dir),
                       PYTHONUNBUFFERED="1")
    return environment


RECONCILE_TIMEOUT_SECONDS = 300.0


def reconcile_records(base_dir: Path, environment: dict[str, str]) -> None:
    """Compare the dashboard's records with the sandbox AWS (``sandbox reconcile``, in its own
    process: this one's settings were read before the sandbox AWS existed); its lines go to
    our standard output. A failure is told, and the dashboard starts anyway."""
    command = [sys.executable, str(Path(base_dir) / "manage.py"), "sandbox", "reconcile"]
    try:
        done = subprocess.run(command, cwd=base_dir, env=environment, text=True,
                              capture_output=True, timeout=RECONCILE_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        print(f"reconcile: no answer after {RECONCILE_TIMEOUT_SECONDS:.0f} s; `ds sweep` "
              "does it again", flush=True)
        return
    print(done.stdout, end="", flush=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        print(f"reconcile: failed ({last}); `ds sweep` does it again", flush=True)


def start_app(
    base_dir: Path, port: int, environment: dict[str, str]
) -> dict[str, subprocess.Popen]:
    """qcluster and runserver, each in its own session: Ctrl-C reaches only us, and we stop
    them one by one (qcluster can hang when its whole process group gets the signal)."""
    manage = [sys.executable, str(Path(base_dir) / "manage.py")]
    commands = {
        "qcluster": [*manage, "qcluster"],
        "runserver": [*manage, "runserver", f"127.0.0.1:{port}", "--noreload"],
    }
    return {
        name: subprocess.Popen(command, cwd=base_dir, env=environment, start_new_session=True)
        for name, command in commands.items()
    }


def wait_for_port(port: int, children: dict[str, subprocess.Popen], timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(child.poll() is not None for child in children.values()):
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            time.sleep(0.2)
    return False


def first_exited(children: dict[str, subprocess.Popen]) -> tuple[str, int] | None:
    for name, child in children.items():
        code = child.poll()
        if code is not None:
            return name, code
    return None


def supervise(children: dict[str, subprocess.Popen], stop: threading.Event) -> tuple | None:
    """Wait for a stop signal or a child's death; returns (name, exit code) of a dead child."""
    while True:
        exited = first_exited(children)
        if exited or stop.wait(0.5):
            return exited


def stop_app(children: dict[str, subprocess.Popen]) -> None:
    """Stop the web server first (no new work), then qcluster, each by its own pid only."""
    for name, grace in (("runserver", WEB_STOP_SECONDS), ("qcluster", QCLUSTER_STOP_SECONDS)):
        child = children.get(name)
        if child is None or child.poll() is not None:
            continue
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
