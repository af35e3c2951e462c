"""AWS-like lifecycles for moto, installed inside the sandbox's moto server process.

Moto answers every call at once: a restored RDS instance is ``available`` immediately, an ECS
service is steady as soon as it is created, a deleted one is ``INACTIVE`` at once. An engine
tested against that would never wait for anything. These patches make the states depend on the
time elapsed since the call, with the durations of ``latency.PROFILE`` times the scale:

* RDS: ``creating`` after a create or restore, ``resetting-master-credentials`` (with the
  pending password) after a password change, ``deleting`` before an instance disappears.
  Modifying an instance that is not ``available``, deleting one twice or restoring from a
  snapshot still being taken fails as on AWS.
* ECS: a new deployment runs no task until the Fargate start time, completes when its target
  would be healthy; a rolling update keeps the old deployment ACTIVE until it has drained; a
  deleted service is ``DRAINING`` before it turns ``INACTIVE``. As on AWS (not moto), a service
  cannot be created over a live namesake, nor updated or deleted once it is not ACTIVE.
* ELBv2: the targets of a service's tasks, ``initial`` until healthy, ``draining`` on the way
  out (moto never registers ECS tasks in target groups).
* Creating a target group or listener rule and registering a task definition take a moment.

Nothing runs in the background: each state is computed from recorded timestamps when AWS is
asked. ``install`` must run before the moto server starts; ``paused`` turns everything off while
the sandbox seeds its host environment, which must be usable at once.
"""

import functools
import hashlib
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

from . import account_limits, ecs_rules, rds_rules
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
    """A transient instance state that lasts until ``ends_at`` (time.monotonic())."""

    status: str
    ends_at: float
    pending: dict = field(default_factory=dict)


def _current_phase(instance) -> Phase | None:
    now = time.monotonic()
    return next((p for p in instance.__dict__.get("_sandbox_phases", ()) if p.ends_at > now), None)


def _start_phase(instance, status: str, operation: str, pending: dict | None = None) -> float:
    ends_at = time.monotonic() + seconds(operation)
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
    now = time.monotonic()
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


# --- ECS ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Deployment:
    """One ECS deployment's timeline (times from time.monotonic())."""

    id: str
    task_definition: str
    desired: int
    running_before: int  # tasks counted as running until the new ones are up
    running_at: float
    healthy_at: float
    completed_at: float


def _new_deployment(service, running_before: int, rolling: bool) -> Deployment:
    from moto.moto_api._internal import mock_random

    now = time.monotonic()
    running_at = now + seconds("ecs_task_to_running")
    healthy_at = running_at
    completed_at = running_at
    if service.load_balancers:
        healthy_at = now + seconds("ecs_service_start_to_healthy")
        completed_at = max(healthy_at, now + seconds("ecs_rolling_update") if rolling else 0)
    return Deployment(
        id=f"ecs-svc/{mock_random.randint(0, 32**12)}",
        task_definition=service.task_definition,
        desired=service.desired_count,
        running_before=running_before,
        running_at=running_at,
        healthy_at=healthy_at,
        completed_at=completed_at,
    )


def _deployments(service) -> list[Deployment]:
    return service.__dict__.get("_sandbox_deployments", [])


def _deployment_view(service, deployment: Deployment, status: str, running: int, state: str):
    view = dict(service.deployments[0]) if service.deployments else {}
    view.update(
        id=deployment.id,
        status=status,
        taskDefinition=deployment.task_definition,
        desiredCount=deployment.desired,
        runningCount=running,
        pendingCount=max(deployment.desired - running, 0),
        rolloutState=state,
        rolloutStateReason=(
            f"ECS deployment {deployment.id} completed."
            if state == "COMPLETED"
            else f"ECS deployment {deployment.id} in progress."
        ),
    )
    return view


def _refresh_service(service) -> None:
    """Write the moment's counts, deployments and status onto moto's service object."""
    tracked = _deployments(service)
    if not tracked:
        return
    now = time.monotonic()
    drained_at = service.__dict__.get("_sandbox_drained_at")
    if drained_at is not None:
        service.status = "DRAINING" if now < drained_at else "INACTIVE"
        service.running_count = service.pending_count = 0
        service.deployments = [_deployment_view(service, tracked[0], "PRIMARY", 0, "COMPLETED")]
        return
    primary, older = tracked[0], [d for d in tracked[1:] if now < tracked[0].completed_at]
    service.__dict__["_sandbox_deployments"] = [primary, *older]
    running = primary.desired if now >= primary.running_at else primary.running_before
    state = "COMPLETED" if now >= primary.completed_at else "IN_PROGRESS"
    views = [_deployment_view(service, primary, "PRIMARY", running, state)]
    views += [_deployment_view(service, d, "ACTIVE", d.desired, "COMPLETED") for d in older]
    service.deployments = views
    service.running_count = running + sum(d.desired for d in older)
    service.pending_count = max(primary.desired - running, 0)


def _ecs_error(code: str, message: str) -> Exception:
    from moto.ecs.exceptions import ECSException

    return ECSException(code, message)


def _ecs_create(original):
    def wrapper(self, cluster_str, service_name, *args, **kwargs):
        with _lock:
            existing = self.services.get(f"{self._get_cluster(cluster_str).name}:{service_name}")
            if existing is not None:
                _refresh_service(existing)
                if existing.status == "DRAINING":
                    raise _ecs_error("InvalidParameterException",
                                     "Unable to Start a service that is still Draining.")
                if existing.status == "ACTIVE":
                    raise _ecs_error(
                        "InvalidParameterException", "Creation of service was not idempotent."
                    )
            service = original(self, cluster_str, service_name, *args, **kwargs)
            service.__dict__["_sandbox_deployments"] = [_new_deployment(service, 0, rolling=False)]
            _refresh_service(service)
            return service

    return wrapper


def _ecs_update(original):
    def wrapper(self, service_properties):
        with _lock:
            service = self._get_service(
                service_properties.get("cluster", "default"), service_properties["service"]
            )
            _refresh_service(service)
            if service.status != "ACTIVE":
                raise _ecs_error("ServiceNotActiveException", "Service was not ACTIVE.")
            before_definition, before_running = service.task_definition, service.running_count
            force = service_properties.get("force_new_deployment")
            requested_definition = service_properties.get("task_definition")
            service = original(self, service_properties)
            if requested_definition:
                # Moto keeps the string as given; AWS answers with the full ARN.
                service.task_definition = self.describe_task_definition(requested_definition).arn
            _track_update(service, before_definition, before_running, force)
            _refresh_service(service)
            return service

    return wrapper


def _track_update(service, before_definition: str, before_running: int, force: bool) -> None:
    tracked = _deployments(service)
    if service.task_definition != before_definition or force:
        new = _new_deployment(service, 0, rolling=True)
        old = [replace(d, desired=before_running) for d in tracked[:1]]
        service.__dict__["_sandbox_deployments"] = [new, *old]
    elif tracked and service.desired_count > before_running:
        restarted = _new_deployment(service, before_running, rolling=False)
        service.__dict__["_sandbox_deployments"] = [replace(restarted, id=tracked[0].id)]
    elif tracked:
        primary = replace(tracked[0], desired=service.desired_count,
                          running_before=min(tracked[0].running_before, service.desired_count))
        service.__dict__["_sandbox_deployments"] = [primary, *tracked[1:]]


def _ecs_delete(original):
    def wrapper(self, cluster_name, service_name, force):
        with _lock:
            service = self._get_service(cluster_name, service_name)
            _refresh_service(service)
            if service.status != "ACTIVE":
                raise _ecs_error("ServiceNotActiveException", "Service was not ACTIVE.")
            service = original(self, cluster_name, service_name, force)
            if _deployments(service):
                drained_at = time.monotonic() + seconds("ecs_service_delete")
                service.__dict__["_sandbox_drained_at"] = drained_at
                _refresh_service(service)
            return service

    return wrapper


def _ecs_describe(original):
    def wrapper(self, *args, **kwargs):
        with _lock:
            services, failures = original(self, *args, **kwargs)
            for service in services:
                _refresh_service(service)
            return services, failures

    return wrapper


def _install_ecs() -> None:
    from moto.ecs.models import EC2ContainerServiceBackend

    _patch(EC2ContainerServiceBackend, "create_service", _ecs_create)
    _patch(EC2ContainerServiceBackend, "update_service", _ecs_update)
    _patch(EC2ContainerServiceBackend, "delete_service", _ecs_delete)
    _patch(EC2ContainerServiceBackend, "describe_services", _ecs_describe)


# --- ELBv2 target health -----------------------------------------------------------------------


def _task_ip(deployment: Deployment) -> str:
    digest = int(hashlib.sha256(deployment.id.encode()).hexdigest(), 16)
    return f"10.0.{1 + digest % 2}.{10 + digest % 240}"


INITIAL = ("initial", "Elb.InitialHealthChecking", "Initial health checks in progress")
HEALTHY = ("healthy", None, None)
DRAINING = ("draining", "Target.DeregistrationInProgress", "Target deregistration is in progress")


def _target_state(service, deployment: Deployment, is_primary: bool) -> tuple | None:
    """(state, reason, description) of the deployment's task in the target group, or None."""
    now = time.monotonic()
    drained_at = service.__dict__.get("_sandbox_drained_at")
    if drained_at is not None:
        if now >= drained_at or now < deployment.running_at:
            return None
        return DRAINING
    if is_primary:
        if now < deployment.running_at:
            return None
        if now < deployment.healthy_at:
            return INITIAL
        return HEALTHY
    # An old deployment's task serves until the new one is healthy, then drains.
    return HEALTHY if now < _deployments(service)[0].healthy_at else DRAINING


def _service_targets(service, target_group_arn: str) -> list:
    from moto.elbv2.models import FakeHealthStatus

    ports = [lb.get("containerPort") for lb in service.load_balancers
             if lb.get("targetGroupArn") == target_group_arn]
    if not ports:
        return []
    _refresh_service(service)
    statuses = []
    for index, deployment in enumerate(_deployments(service)):
        found = _target_state(service, deployment, is_primary=index == 0)
        if found is not None and deployment.desired > 0:
            state, reason, description = found
            statuses.append(FakeHealthStatus(
                _task_ip(deployment), str(ports[0]), str(ports[0]), state, reason, description
            ))
    return statuses


def _elbv2_target_health(original):
    def wrapper(self, target_group_arn, targets):
        from moto.ecs.models import ecs_backends

        found = original(self, target_group_arn, targets)  # raises for an unknown group
        with _lock:
            services = ecs_backends[self.account_id][self.region_name].services.values()
            attached = [s for s in services if _deployments(s) and any(
                lb.get("targetGroupArn") == target_group_arn for lb in s.load_balancers
            )]
            if not attached:
                return found
            return [status for s in attached for status in _service_targets(s, target_group_arn)]

    return wrapper


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

    _patch(ELBv2Backend, "describe_target_health", _elbv2_target_health)
    _patch(ELBv2Backend, "create_target_group", _slowed("elbv2_create_target_group"))
    _patch(ELBv2Backend, "create_rule", _slowed("elbv2_create_rule"))
    _patch(
        EC2ContainerServiceBackend,
        "register_task_definition",
        _slowed("ecs_register_task_definition"),
    )


def install(scale: float) -> None:
    """Patch moto in this process (once); later calls only change the scale."""
    _settings["scale"] = float(scale)
    if _settings["installed"]:
        return
    # Moto reads this per service it creates: with it, services made while paused (the seeded
    # host services) run their task at once; the deployments above override it otherwise.
    os.environ["MOTO_ECS_SERVICE_RUNNING"] = "1"
    _install_rds()
    _install_ecs()
    _install_call_latencies()
    ecs_rules.install()
    rds_rules.install()
    account_limits.install()
    from . import tagging_rules  # imports delays: only once this module is loaded
    tagging_rules.install()
    _settings["installed"] = True
