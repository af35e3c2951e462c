"""ECS deployments and ELB target health in the sandbox, as AWS runs them (not as moto does).

Moto's ECS services are steady the moment they are made and never register a target. Here:

* A deployment runs no task until the Fargate start time and completes when its target is
  healthy; a rolling update keeps the old deployment ACTIVE until the new one is healthy and
  the old task has drained; a deleted service is ``DRAINING`` before it turns ``INACTIVE``. A
  service cannot be created over a live namesake, nor updated or deleted once it is not ACTIVE,
  nor deleted while scaled above 0 without ``force`` (moto refuses that one itself).
* Behind every target group answers the same small app: ``/`` redirects to the login page
  (302), ``/healthz`` answers 200, anything else 404. A target turns healthy only when the
  group's matcher ("200", "200-399", "200,302") accepts what its health check path gets, and
  only when the group checks the port the container listens on; otherwise it turns
  ``unhealthy`` (``Target.ResponseCodeMismatch`` / ``Target.Timeout``) after the health check
  time, and ECS stops the task ("Task failed ELB health checks in (target-group ...)") and
  starts another.
* An image tagged one of ``CRASHING_TAGS`` starts and exits at once: its tasks stop with
  "Essential container in task exited" (exit code 1).
* Each failed task is listed (ListTasks ``desiredStatus=STOPPED``, DescribeTasks) with its
  ``stoppedReason``, counted in the deployment's ``failedTasks`` and told in the service events.
  With the deployment circuit breaker on, the deployment turns ``FAILED`` after max(3, half the
  desired count) failed tasks and launches no more; without it, ECS goes on replacing them.

Nothing runs in the background: each state is computed from recorded timestamps when AWS is
asked. The durations are ``latency.PROFILE``'s, scaled (see delays.seconds).
"""

import contextvars
import functools
import hashlib
import math
import threading
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from . import clock, delays

# Branch images that crash on start (the seed pushes one of them).
CRASHING_TAGS = frozenset({"feature-broken"})
# What the app answers, by path; anything else is 404.
APP_ROUTES = {"/": 302, "/healthz": 200}
CIRCUIT_BREAKER_MIN_THRESHOLD = 3
CIRCUIT_BREAKER_MAX_THRESHOLD = 200

# Moto's threaded server answers calls concurrently; the lifecycle bookkeeping is serialised.
_lock = threading.RLock()
# CreateService's deploymentConfiguration, which moto's backend is not given.
_requested_configuration: contextvars.ContextVar[dict | None] = contextvars.ContextVar(
    "requested_deployment_configuration", default=None
)


def _patch(cls: type, name: str, make_wrapper) -> None:
    original = getattr(cls, name)
    setattr(cls, name, functools.wraps(original)(make_wrapper(original)))


# --- the app behind the target groups ----------------------------------------------------------


def app_status(path: str) -> int:
    return APP_ROUTES.get(path.split("?", 1)[0] or "/", 404)


def matcher_accepts(matcher: str, code: int) -> bool:
    """ELB's HttpCode matcher: single codes, ranges and comma-separated lists of either."""
    for part in matcher.replace(" ", "").split(","):
        low, _, high = part.partition("-")
        if low.isdigit() and int(low) <= code <= int(high or low):
            return True
    return False


# --- deployments -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Failure:
    """Why each task of a deployment stops, and when (seconds after the task was started)."""

    stopped_reason: str
    stop_code: str
    exit_code: int | None
    cycle: float  # from a task's start to its stop; the next task starts then
    unhealthy_after: float | None = None  # ELB's verdict, for a task failing health checks
    target_reason: tuple[str, str] = ("", "")  # (reason, description) of the unhealthy target
    event: str = ""  # the service event ECS writes for each failed health check
    threshold: int | None = None  # failed tasks before the circuit breaker stops the deployment


@dataclass(frozen=True)
class Deployment:
    """One ECS deployment's timeline (times from clock.now(), the sandbox's clock)."""

    id: str
    task_definition: str
    desired: int
    running_before: int  # tasks counted as running until the new ones are up
    started_at: float
    running_at: float
    healthy_at: float
    completed_at: float
    failure: Failure | None = None
    created_wall: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass(frozen=True)
class FailedRun:
    """Where a failing deployment stands: failed tasks so far, and whether ECS gave up."""

    failed: int
    gave_up_at: float | None
    cycle_start: float


def _threshold(service, desired: int) -> int | None:
    breaker = (service.__dict__.get("_sandbox_deployment_configuration") or {}).get(
        "deploymentCircuitBreaker") or {}
    if not breaker.get("enable"):
        return None
    return min(max(math.ceil(desired * 0.5), CIRCUIT_BREAKER_MIN_THRESHOLD),
               CIRCUIT_BREAKER_MAX_THRESHOLD)


def _image_tags(service, image: str) -> set[str]:
    """The tags of ``image`` (``repo:tag`` or ``repo@sha256:...``) in the sandbox's ECR."""
    if "@" not in image:
        return {image.rsplit(":", 1)[-1]} if ":" in image.rsplit("/", 1)[-1] else {"latest"}
    from moto.ecr.models import ecr_backends

    name, digest = image.split("@", 1)
    repository_name = name.split("/", 1)[-1]
    repositories = ecr_backends[service._account_id][service.region_name].repositories
    repository = repositories.get(repository_name)
    if repository is None:
        return set()
    return {tag for i in repository.images if i.image_digest == digest for tag in i.image_tags}


def _crash(service, backend) -> Failure | None:
    definition = backend.describe_task_definition(service.task_definition)
    for container in definition.container_definitions:
        if container.get("essential", True) and _image_tags(
                service, container.get("image", "")) & CRASHING_TAGS:
            return Failure(
                stopped_reason="Essential container in task exited",
                stop_code="EssentialContainerExited", exit_code=1,
                cycle=max(delays.seconds("ecs_task_to_running"), 1e-3),
            )
    return None


def _unhealthy(service) -> Failure | None:
    from moto.elbv2.models import elbv2_backends

    groups = elbv2_backends[service._account_id][service.region_name].target_groups
    for lb in service.load_balancers:
        group = groups.get(lb.get("targetGroupArn", ""))
        if group is None:
            continue
        container_port = str(lb.get("containerPort"))
        port = str(group.health_check_port or "traffic-port")
        path = group.health_check_path or "/"
        matcher = (group.matcher or {}).get("HttpCode", "200")
        code = app_status(path)
        if port not in {"traffic-port", container_port}:
            reason = ("Target.Timeout", "Request timed out")
        elif not matcher_accepts(matcher, code):
            reason = ("Target.ResponseCodeMismatch", f"Health checks failed with these codes: "
                      f"[{code}]")
        else:
            continue
        verdict = delays.seconds("ecs_service_start_to_healthy")
        return Failure(
            stopped_reason=f"Task failed ELB health checks in (target-group {group.arn})",
            stop_code="ServiceSchedulerInitiated", exit_code=None,
            cycle=max(verdict + delays.seconds("ecs_service_delete"), 1e-3),
            unhealthy_after=verdict, target_reason=reason,
            event=(f"(service {service.name}) (port {container_port}) is unhealthy in "
                   f"(target-group {group.arn}) due to (reason {reason[1]})."),
        )
    return None


def _new_deployment(service, running_before: int, rolling: bool) -> Deployment:
    from moto.moto_api._internal import mock_random

    now = clock.now()
    running_at = now + delays.seconds("ecs_task_to_running")
    healthy_at = running_at
    completed_at = running_at
    if service.load_balancers:
        healthy_at = now + delays.seconds("ecs_service_start_to_healthy")
        completed_at = max(healthy_at,
                           now + delays.seconds("ecs_rolling_update") if rolling else 0)
    failure = None
    if service.task_definition and service.desired_count > 0:
        failure = _crash(service, service._backend) or _unhealthy(service)
    if failure is not None:
        failure = replace(failure, threshold=_threshold(service, service.desired_count))
        healthy_at = completed_at = math.inf
    return Deployment(
        id=f"ecs-svc/{mock_random.randint(0, 32**12)}",
        task_definition=service.task_definition,
        desired=service.desired_count,
        running_before=running_before,
        started_at=now,
        running_at=running_at,
        healthy_at=healthy_at,
        completed_at=completed_at,
        failure=failure,
    )


def _failed_run(deployment: Deployment, now: float) -> FailedRun:
    failure = deployment.failure
    cycles = int((now - deployment.started_at) // failure.cycle)
    if failure.threshold is not None:
        cycles_to_give_up = math.ceil(failure.threshold / max(deployment.desired, 1))
        if cycles >= cycles_to_give_up:
            gave_up_at = deployment.started_at + cycles_to_give_up * failure.cycle
            return FailedRun(cycles_to_give_up * deployment.desired, gave_up_at, gave_up_at)
    return FailedRun(cycles * deployment.desired, None,
                     deployment.started_at + cycles * failure.cycle)


def _failing_running(deployment: Deployment, run: FailedRun, now: float) -> int:
    """Tasks of a failing deployment that are up: a crashing one never is."""
    failure = deployment.failure
    if run.gave_up_at is not None or failure.unhealthy_after is None:
        return 0
    up_at = run.cycle_start + (deployment.running_at - deployment.started_at)
    return deployment.desired if now >= up_at else 0


def _deployments(service) -> list[Deployment]:
    return service.__dict__.get("_sandbox_deployments", [])


def _wall(deployment: Deployment, moment: float) -> datetime:
    return deployment.created_wall + timedelta(seconds=moment - deployment.started_at)


def _deployment_view(service, deployment: Deployment, status: str, running: int, state: str,
                     failed: int = 0):
    view = dict(service.deployments[0]) if service.deployments else {}
    reasons = {
        "COMPLETED": f"ECS deployment {deployment.id} completed.",
        "FAILED": "ECS deployment circuit breaker: tasks failed to start.",
    }
    view.update(
        id=deployment.id,
        status=status,
        taskDefinition=deployment.task_definition,
        desiredCount=deployment.desired,
        runningCount=running,
        pendingCount=0 if state == "FAILED" else max(deployment.desired - running, 0),
        failedTasks=failed,
        rolloutState=state,
        rolloutStateReason=reasons.get(state, f"ECS deployment {deployment.id} in progress."),
        createdAt=deployment.created_wall,
    )
    return view


def _task_id(deployment: Deployment, cycle: int, index: int) -> str:
    return hashlib.sha256(f"{deployment.id}/{cycle}/{index}".encode()).hexdigest()[:32]


def _events(service, deployment: Deployment, now: float) -> list[dict]:
    """The primary deployment's story as ECS tells it in the service events, newest first."""
    events: list[tuple[float, str]] = []
    name = service.name
    failure = deployment.failure
    if failure is None:
        if deployment.desired:
            events.append((deployment.started_at, f"(service {name}) has started "
                           f"{deployment.desired} tasks: (task {_task_id(deployment, 0, 0)})."))
        if now >= deployment.completed_at:
            events.append((deployment.completed_at,
                           f"(service {name}) (deployment {deployment.id}) deployment completed."))
            events.append((deployment.completed_at, f"(service {name}) has reached a steady "
                           "state."))
    else:
        run = _failed_run(deployment, now)
        cycles = run.failed // max(deployment.desired, 1)
        started = cycles if run.gave_up_at is not None else cycles + 1
        for cycle in range(started):
            start = deployment.started_at + cycle * failure.cycle
            tasks = [_task_id(deployment, cycle, i) for i in range(deployment.desired)]
            events.append((start, f"(service {name}) has started {len(tasks)} tasks: "
                           + " ".join(f"(task {t})" for t in tasks) + "."))
            if failure.unhealthy_after is not None and (
                    now >= start + failure.unhealthy_after):
                events.append((start + failure.unhealthy_after, failure.event))
            if cycle < cycles:
                events.append((start + failure.cycle, f"(service {name}) has stopped "
                               f"{len(tasks)} running tasks: "
                               + " ".join(f"(task {t})" for t in tasks) + "."))
        if run.gave_up_at is not None:
            # Right after the last task stopped (sums of floats may differ in the last bit).
            gave_up = max([run.gave_up_at, *(moment for moment, _ in events)])
            events.append((gave_up, f"(service {name}) (deployment {deployment.id}) "
                           "deployment failed: tasks failed to start."))
    # Newest first; of two at the same moment, the one told later.
    order = sorted(range(len(events)), key=lambda i: (events[i][0], i), reverse=True)
    events = [events[i] for i in order]
    return [
        {"id": hashlib.sha256(f"{deployment.id}/{moment}/{message}".encode()).hexdigest()[:36],
         "createdAt": _wall(deployment, moment), "message": message}
        for moment, message in events
    ]


@dataclass
class StoppedTask:
    """A stopped task as DescribeTasks shows it (moto's serializer reads these attributes)."""

    task_arn: str
    cluster_arn: str
    task_definition_arn: str
    started_by: str
    group: str
    stopped_reason: str
    stop_code: str
    containers: list
    created_at: datetime
    started_at: datetime | None
    stopping_at: datetime
    stopped_at: datetime
    last_status: str = "STOPPED"
    desired_status: str = "STOPPED"
    launch_type: str = "FARGATE"
    tags: list = field(default_factory=list)
    service_name: str = ""


def _stopped_tasks(service) -> list[StoppedTask]:
    now = clock.now()
    found = []
    for deployment in _deployments(service):
        failure = deployment.failure
        if failure is None:
            continue
        run = _failed_run(deployment, now)
        try:
            containers_defined = service._backend.describe_task_definition(
                deployment.task_definition).container_definitions
        except Exception:  # deleted since: the task keeps its containers' names only in AWS
            containers_defined = []
        for cycle in range(run.failed // max(deployment.desired, 1)):
            start = deployment.started_at + cycle * failure.cycle
            stop = start + failure.cycle
            for index in range(deployment.desired):
                task_id = _task_id(deployment, cycle, index)
                containers = [{
                    "name": c["name"], "image": c.get("image", ""), "lastStatus": "STOPPED",
                    **({"exitCode": failure.exit_code} if failure.exit_code is not None
                       and c.get("essential", True) else {}),
                } for c in containers_defined]
                found.append(StoppedTask(
                    task_arn=(f"arn:aws:ecs:{service.region_name}:{service._account_id}:task/"
                              f"{service.cluster_name}/{task_id}"),
                    cluster_arn=service.cluster_arn,
                    task_definition_arn=deployment.task_definition,
                    started_by=deployment.id,
                    group=f"service:{service.name}",
                    stopped_reason=failure.stopped_reason,
                    stop_code=failure.stop_code,
                    containers=containers,
                    created_at=_wall(deployment, start),
                    started_at=(_wall(deployment, start + deployment.running_at
                                      - deployment.started_at)
                                if failure.unhealthy_after is not None else None),
                    stopping_at=_wall(deployment, stop),
                    stopped_at=_wall(deployment, stop),
                    service_name=service.name,
                ))
    return found


def _refresh_service(service) -> None:
    """Write the moment's counts, deployments, events and status onto moto's service object."""
    tracked = _deployments(service)
    if not tracked:
        return
    now = clock.now()
    drained_at = service.__dict__.get("_sandbox_drained_at")
    if drained_at is not None:
        service.status = "DRAINING" if now < drained_at else "INACTIVE"
        service.running_count = service.pending_count = 0
        service.deployments = [_deployment_view(service, tracked[0], "PRIMARY", 0, "COMPLETED")]
        return
    primary, older = tracked[0], [d for d in tracked[1:] if now < tracked[0].completed_at]
    service.__dict__["_sandbox_deployments"] = [primary, *older]
    failed = 0
    if primary.failure is not None:
        run = _failed_run(primary, now)
        failed = run.failed
        running = _failing_running(primary, run, now)
        state = "FAILED" if run.gave_up_at is not None else "IN_PROGRESS"
    else:
        running = primary.desired if now >= primary.running_at else primary.running_before
        state = "COMPLETED" if now >= primary.completed_at else "IN_PROGRESS"
    views = [_deployment_view(service, primary, "PRIMARY", running, state, failed)]
    views += [_deployment_view(service, d, "ACTIVE", d.desired, "COMPLETED") for d in older]
    service.deployments = views
    service.running_count = running + sum(d.desired for d in older)
    service.pending_count = 0 if state == "FAILED" else max(primary.desired - running, 0)
    service.events = _events(service, primary, now)


def _ecs_error(code: str, message: str) -> Exception:
    from moto.ecs.exceptions import ECSException

    return ECSException(code, message)


def _remember_configuration(service, configuration: dict | None) -> None:
    if configuration:
        # Moto's serializer shows it in DescribeServices, as AWS does.
        service.__dict__["_sandbox_deployment_configuration"] = configuration
        service.deployment_configuration = configuration


def _ecs_create_request(original):
    def wrapper(self):
        token = _requested_configuration.set(self._get_param("deploymentConfiguration"))
        try:
            return original(self)
        finally:
            _requested_configuration.reset(token)

    return wrapper


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
            _remember_configuration(service, _requested_configuration.get())
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
            _remember_configuration(service, service_properties.get("deployment_configuration"))
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
        if service.desired_count == 0:
            primary = replace(primary, failure=None)  # nothing left to fail
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
                drained_at = clock.now() + delays.seconds("ecs_service_delete")
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


def _cluster_stopped_tasks(backend, cluster_str: str | None) -> list[StoppedTask]:
    cluster = backend._get_cluster(cluster_str or "default")
    with _lock:
        return [task for service in list(backend.services.values())
                if service.cluster_name == cluster.name and service.status != "INACTIVE"
                for task in _stopped_tasks(service)]


def _ecs_list_tasks(original):
    def wrapper(self, cluster_str=None, container_instance=None, family=None, started_by=None,
                service_name=None, desiredStatus=None):  # noqa: N803 (moto's name)
        found = original(self, cluster_str, container_instance, family, started_by, None,
                         desiredStatus)
        if service_name:
            found = [t for t in found if t.group == f"service:{service_name.rsplit('/', 1)[-1]}"]
        if desiredStatus not in (None, "STOPPED") or container_instance:
            return found
        stopped = _cluster_stopped_tasks(self, cluster_str)
        if service_name:
            stopped = [t for t in stopped if t.service_name == service_name.rsplit("/", 1)[-1]]
        if started_by:
            stopped = [t for t in stopped if t.started_by == started_by]
        if family:
            stopped = [t for t in stopped
                       if t.task_definition_arn.rsplit("/", 1)[-1].rsplit(":", 1)[0] == family]
        return found + stopped

    return wrapper


def _ecs_describe_tasks(original):
    def wrapper(self, cluster_str, tasks):
        ours = {t.task_arn.rsplit("/", 1)[-1]: t
                for t in _cluster_stopped_tasks(self, cluster_str)}
        others = [t for t in tasks if t.rsplit("/", 1)[-1] not in ours]
        found = original(self, cluster_str, others) if others else []
        return found + [ours[t.rsplit("/", 1)[-1]] for t in tasks
                        if t.rsplit("/", 1)[-1] in ours]

    return wrapper


def _install_ecs() -> None:
    from moto.ecs.models import EC2ContainerServiceBackend
    from moto.ecs.responses import EC2ContainerServiceResponse

    _patch(EC2ContainerServiceResponse, "create_service", _ecs_create_request)
    _patch(EC2ContainerServiceBackend, "create_service", _ecs_create)
    _patch(EC2ContainerServiceBackend, "update_service", _ecs_update)
    _patch(EC2ContainerServiceBackend, "delete_service", _ecs_delete)
    _patch(EC2ContainerServiceBackend, "describe_services", _ecs_describe)
    _patch(EC2ContainerServiceBackend, "list_tasks", _ecs_list_tasks)
    _patch(EC2ContainerServiceBackend, "describe_tasks", _ecs_describe_tasks)


# --- ELBv2 target health -----------------------------------------------------------------------


def _task_ip(deployment: Deployment, cycle: int = 0) -> str:
    digest = int(hashlib.sha256(f"{deployment.id}/{cycle}".encode()).hexdigest(), 16)
    return f"10.0.{1 + digest % 2}.{10 + digest % 240}"


INITIAL = ("initial", "Elb.InitialHealthChecking", "Initial health checks in progress")
HEALTHY = ("healthy", None, None)
DRAINING = ("draining", "Target.DeregistrationInProgress", "Target deregistration is in progress")


def _target_state(service, deployment: Deployment, is_primary: bool) -> tuple | None:
    """(ip, state, reason, description) of the deployment's task in the target group, or None."""
    now = clock.now()
    drained_at = service.__dict__.get("_sandbox_drained_at")
    if drained_at is not None:
        if now >= drained_at or now < deployment.running_at or deployment.failure:
            return None
        return (_task_ip(deployment), *DRAINING)
    failure = deployment.failure
    if failure is not None:
        if not is_primary or failure.unhealthy_after is None:
            return None  # a crashing task never gets as far as the target group
        run = _failed_run(deployment, now)
        if run.gave_up_at is not None:
            return None
        cycle = int((run.cycle_start - deployment.started_at) // failure.cycle)
        since = now - run.cycle_start
        if since < deployment.running_at - deployment.started_at:
            return None
        if since < failure.unhealthy_after:
            return (_task_ip(deployment, cycle), *INITIAL)
        return (_task_ip(deployment, cycle), "unhealthy", *failure.target_reason)
    if is_primary:
        if now < deployment.running_at:
            return None
        if now < deployment.healthy_at:
            return (_task_ip(deployment), *INITIAL)
        return (_task_ip(deployment), *HEALTHY)
    # An old deployment's task serves until the new one is healthy, then drains.
    primary = _deployments(service)[0]
    return (_task_ip(deployment), *(HEALTHY if now < primary.healthy_at else DRAINING))


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
            ip, state, reason, description = found
            statuses.append(FakeHealthStatus(
                ip, str(ports[0]), str(ports[0]), state, reason, description
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


def install() -> None:
    """Patch moto's ECS and ELBv2 in this process (delays.install calls this once)."""
    from moto.elbv2.models import ELBv2Backend

    _install_ecs()
    _patch(ELBv2Backend, "describe_target_health", _elbv2_target_health)
