"""AWS-like lifecycles for moto, installed inside the sandbox's moto server process.

Moto answers every call at once: a restored RDS instance is ``available`` immediately, an ECS
service is steady as soon as it is created, a deleted one is ``INACTIVE`` at once. An engine
tested against that would never wait for anything. These patches make the states depend on the
time elapsed since the call, with the durations of ``latency.PROFILE`` times the scale:

* RDS: ``creating`` after a create or restore, ``resetting-master-credentials`` (with the
  pending password) after a password change, ``deleting`` before an instance disappears.
  Modifying an instance that is not ``available``, deleting one twice or restoring from a
  snapshot still being taken fails as on AWS.
* ECS deployments and ELB target health: see ecs_health.py.
* Creating a target group or listener rule and registering a task definition take a moment.

Nothing runs in the background: each state is computed from recorded timestamps when AWS is
asked. ``install`` must run before the moto server starts; ``paused`` turns everything off while
the sandbox seeds its host environment, which must be usable at once.
"""

import functools
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from . import account_limits, clock, ecs_rules, elbv2_rules, rds_rules
from .latency import DEFAULT_SCALE, scaled

_settings = {"scale": DEFAULT_SCALE, "paused": False, "installed": False}
# Moto's threaded server answers calls concurrently; the lifecycle bookkeeping is serialised.
_lock = threading.RLock()


def seconds(operation: str) -> float:
    return 0.0 if _settings["paused"] else scaled(operation, _settings["scale"])


@contextmanager
def paused() -> Iterator[None]:
    """Everything made inside the block is ready at once (used to seed the host environment)."""
    _settings["paused"] = True
    try:
        yield
    finally:
        _settings["paused"] = False


def _patch(cls: type, name: str, make_wrapper) -> None:
    original = getattr(cls, name)
    setattr(cls, name, functools.wraps(original)(make_wrapper(original)))


# --- RDS ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Phase:
    """A transient instance state that lasts until ``ends_at`` (clock.now())."""

    status: str
    ends_at: float
    pending: dict = field(default_factory=dict)


def _current_phase(instance) -> Phase | None:
    now = clock.now()
    return next((p for p in instance.__dict__.get("_sandbox_phases", ()) if p.ends_at > now), None)


def _start_phase(instance, status: str, operation: str, pending: dict | None = None) -> float:
    ends_at = clock.now() + seconds(operation)
    instance.__dict__["_sandbox_phases"] = (Phase(status, ends_at, pending or {}),)
    return ends_at


def _instance_status(instance) -> str:
    phase = _current_phase(instance)
    return phase.status if phase else instance.__dict__.get("_sandbox_status", "available")


def _set_instance_status(instance, value: str) -> None:
    instance.__dict__["_sandbox_status"] = value


def _pending_modified_values(instance) -> dict:
    phase = _current_phase(instance)
    return dict(phase.pending) if phase else {}


def _purge_deleted(backend) -> None:
    """Forget instances whose ``deleting`` phase is over: AWS then answers DBInstanceNotFound."""
    now = clock.now()
    for identifier, instance in list(backend.databases.items()):
        gone_at = instance.__dict__.get("_sandbox_gone_at")
        if gone_at is not None and gone_at <= now:
            backend.databases.pop(identifier, None)


def _rds_error(code: str, message: str) -> Exception:
    from moto.rds.exceptions import RDSClientError

    return RDSClientError(code, message)


def _rds_purging(original):
    def wrapper(self, *args, **kwargs):
        with _lock:
            _purge_deleted(self)
        return original(self, *args, **kwargs)

    return wrapper


def _rds_tagged_resources(original):
    def wrapper(self):
        with _lock:
            _purge_deleted(self)
        yield from original(self)

    return wrapper


def _rds_create(original):
    def wrapper(self, db_kwargs):
        with _lock:
            _purge_deleted(self)
            instance = original(self, db_kwargs)
            _start_phase(instance, "creating", "rds_create")
            return instance

    return wrapper


def _rds_restore(original):
    def wrapper(self, from_snapshot_id, overrides):
        with _lock:
            _purge_deleted(self)
            snapshot_id = from_snapshot_id.rsplit(":", 1)[-1]
            snapshot = self.database_snapshots.get(snapshot_id.lower())
            if snapshot is not None and snapshot.status != "available":
                raise _rds_error(
                    "InvalidDBSnapshotState", f"Snapshot {snapshot_id} is not in available state."
                )
            instance = original(self, from_snapshot_id, overrides)
            _start_phase(instance, "creating", "rds_restore")
            return instance

    return wrapper


def _rds_modify(original):
    def wrapper(self, db_instance_identifier, db_kwargs):
        with _lock:
            _purge_deleted(self)
            instance = self.describe_db_instances(db_instance_identifier)[0]
            # The article's pain point: the password can only change once the restore is done.
            if instance.status != "available":
                raise _rds_error(
                    "InvalidDBInstanceState", "Database instance is not in available state."
                )
            instance = original(self, db_instance_identifier, db_kwargs)
            if db_kwargs.get("master_user_password"):
                _start_phase(
                    instance,
                    "resetting-master-credentials",
                    "rds_modify_password",
                    {"MasterUserPassword": "****"},
                )
            return instance

    return wrapper


def _rds_delete(original):
    def wrapper(self, db_instance_identifier, *args, **kwargs):
        with _lock:
            _purge_deleted(self)
            existing = self.databases.get(db_instance_identifier)
            if existing is not None and existing.status == "deleting":
                raise _rds_error(
                    "InvalidDBInstanceState",
                    f"Instance {db_instance_identifier} is already being deleted.",
                )
            instance = original(self, db_instance_identifier, *args, **kwargs)
            if not _settings["paused"]:
                # Moto forgets the instance at once; AWS shows it "deleting" for minutes.
                instance.__dict__["_sandbox_gone_at"] = _start_phase(
                    instance, "deleting", "rds_delete"
                )
                self.databases[db_instance_identifier] = instance
            return instance

    return wrapper


def _snapshot_create_time(snapshot):
    # AWS only stamps a snapshot once it has been taken.
    return None if snapshot.status == "creating" else snapshot.created


def _install_rds() -> None:
    from moto.rds.models import DBInstance, DBSnapshot, RDSBackend

    # A property on the class: moto's own "self.status = ..." lands in the setter, and every
    # reader (responses, moto's own state checks) sees the time-dependent value.
    DBInstance.status = property(_instance_status, _set_instance_status)
    DBInstance.pending_modified_values = property(_pending_modified_values)
    DBSnapshot.snapshot_create_time = property(_snapshot_create_time)
    _patch(RDSBackend, "create_db_instance", _rds_create)
    _patch(RDSBackend, "restore_db_instance_from_db_snapshot", _rds_restore)
    _patch(RDSBackend, "modify_db_instance", _rds_modify)
    _patch(RDSBackend, "delete_db_instance", _rds_delete)
    _patch(RDSBackend, "describe_db_instances", _rds_purging)
    _patch(RDSBackend, "iter_tagged_resources", _rds_tagged_resources)


# --- fixed call latencies ----------------------------------------------------------------------


def _slowed(operation: str):
    def make_wrapper(original):
        def wrapper(self, *args, **kwargs):
            time.sleep(seconds(operation))
            return original(self, *args, **kwargs)

        return wrapper

    return make_wrapper


def _install_call_latencies() -> None:
    from moto.ecs.models import EC2ContainerServiceBackend
    from moto.elbv2.models import ELBv2Backend

    _patch(ELBv2Backend, "create_target_group", _slowed("elbv2_create_target_group"))
    _patch(ELBv2Backend, "create_rule", _slowed("elbv2_create_rule"))
    _patch(
        EC2ContainerServiceBackend,
        "register_task_definition",
        _slowed("ecs_register_task_definition"),
    )


def install(scale: float) -> None:
    """Patch moto in this process (once); later calls only change the scale."""
    from . import ecs_health

    _settings["scale"] = float(scale)
    if _settings["installed"]:
        return
    # Moto reads this per service it creates: with it, services made while paused (the seeded
    # host services) run their task at once; the deployments above override it otherwise.
    os.environ["MOTO_ECS_SERVICE_RUNNING"] = "1"
    _install_rds()
    ecs_health.install()
    _install_call_latencies()
    ecs_rules.install()
    rds_rules.install()
    elbv2_rules.install()
    account_limits.install()
    from . import tagging_rules  # imports delays: only once this module is loaded
    tagging_rules.install()
    _settings["installed"] = True
