"""What AWS keeps showing after a delete, installed inside the sandbox's moto server process.

The Resource Groups Tagging API (GetResources) is not a list of what exists: for minutes to an
hour after a destroy it still lists what is already gone. Moto lists only what exists (and
never listener rules), so an engine tested against it would take GetResources' word for it.
These patches make the sandbox answer like AWS:

* ECS tasks: a service's deployments (see delays.py) run real-looking Fargate tasks, tagged
  with the service's tags when the service propagates them (``propagateTags=SERVICE``), that
  DescribeTasks and ListTasks know: PENDING until the Fargate start time, RUNNING, then
  DEPROVISIONING and STOPPED once the service is deleted, scaled down or replaced. A stopped task
  stays in DescribeTasks, ListTasks (desiredStatus STOPPED) and GetResources for
  ``ecs_stopped_task_listed`` (about an hour), then is forgotten.
* Task definitions: a deleted revision is DELETE_IN_PROGRESS (with ``deleteRequestedAt``) in
  DescribeTaskDefinition and still listed by GetResources for ``ecs_task_definition_delete``;
  revision numbers are never reused, even once a family has no revision left.
* Listener rules: GetResources lists them with their tags, and a deleted rule for
  ``elbv2_deleted_rule_listed``, while DescribeRules answers RuleNotFound at once.

Like delays.py, nothing runs in the background: states are computed from recorded times when
AWS is asked. Everything is on whenever the sandbox runs (``install``).
"""

import copy
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from . import clock, delays, ecs_health

# The tasks follow delays' service bookkeeping, so they share its lock.
_lock = ecs_health._lock


def _now() -> float:
    return clock.now()


def _wall(monotonic_at: float) -> datetime:
    """The wall-clock time of a clock.now() instant (AWS answers with timestamps)."""
    return datetime.now(UTC) + timedelta(seconds=monotonic_at - _now())


# --- ECS tasks ---------------------------------------------------------------------------------


def _task_class():
    """A moto Task whose status follows recorded times instead of moto's state manager."""
    from moto.ecs.models import Task

    class SandboxTask(Task):
        def __init__(self, *args, deployment_id: str, index: int, running_at: float, **kwargs):
            super().__init__(*args, **kwargs)
            self.deployment_id = deployment_id
            self.index = index
            self.running_at = running_at
            self.created_mono = _now()
            self.stop_requested_at: float | None = None
            self.stop_at: float | None = None

        @property
        def last_status(self) -> str:
            now = _now()
            if self.stop_at is not None and now >= self.stop_at:
                return "STOPPED"
            if self.stop_requested_at is not None and now >= self.stop_requested_at:
                return "DEPROVISIONING"
            return "RUNNING" if now >= self.running_at else "PENDING"

        @last_status.setter
        def last_status(self, value: str) -> None:
            pass  # the recorded times decide

        @property
        def status(self) -> str:
            return self.last_status

        @status.setter
        def status(self, value: str) -> None:
            pass

        @property
        def desired_status(self) -> str:
            requested = self.__dict__.get("stop_requested_at")
            return "STOPPED" if requested is not None and _now() >= requested else "RUNNING"

        @desired_status.setter
        def desired_status(self, value: str) -> None:
            pass

        @property
        def created_at(self) -> datetime:
            return _wall(self.created_mono)

        @property
        def started_at(self) -> datetime | None:
            return _wall(self.running_at) if _now() >= self.running_at else None

        @property
        def stopping_at(self) -> datetime | None:
            requested = self.stop_requested_at
            return _wall(requested) if requested is not None and _now() >= requested else None

        @property
        def stopped_at(self) -> datetime | None:
            return _wall(self.stop_at) if self.last_status == "STOPPED" else None

        @property
        def stop_code(self) -> str | None:
            return "ServiceSchedulerInitiated" if self.stop_requested_at is not None else None

        def forget_at(self) -> float | None:
            if self.stop_at is None:
                return None
            return self.stop_at + delays.seconds("ecs_stopped_task_listed")

        def stop(self, requested_at: float, stopped_at: float) -> None:
            if self.stop_at is None:
                self.stop_requested_at, self.stop_at = requested_at, max(stopped_at, requested_at)
                self.stopped_reason = "Task stopped by the service scheduler"

    # Saved with the sandbox's state (persistence.py): pickle names it by this module's
    # attribute, which the module's __getattr__ answers.
    SandboxTask.__qualname__ = SandboxTask.__name__
    SandboxTask.__module__ = __name__
    return SandboxTask


_classes: dict[str, type] = {}


def _sandbox_task_class() -> type:
    if "task" not in _classes:
        _classes["task"] = _task_class()
    return _classes["task"]


def __getattr__(name: str):
    # Made on first use: moto's ECS models load only in the sandbox's moto process.
    if name == "SandboxTask":
        return _sandbox_task_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _service_tasks(service) -> list:
    return service.__dict__.setdefault("_sandbox_tasks", [])


def _start_task(backend, service, deployment, index: int):
    cluster = backend.clusters.get(service.cluster_name)
    definition = backend.task_definitions.get(
        deployment.task_definition.rsplit("/", 1)[-1].split(":")[0], {}
    ).get(int(deployment.task_definition.rsplit(":", 1)[-1]))
    if cluster is None or definition is None:
        return None
    tags = list(service.tags or []) if service.propagate_tags == "SERVICE" else []
    # Moto's Task makes an EC2 network interface for awsvpc and fails on its DNS name; the
    # sandbox's tasks need none, so they are built from a copy without the network mode.
    shown = copy.copy(definition)
    shown.network_mode = None
    task = _sandbox_task_class()(
        cluster=cluster,
        task_definition=shown,
        container_instance_arn=None,
        resource_requirements={},
        backend=backend,
        group=f"service:{service.name}",
        launch_type=service.launch_type or "FARGATE",
        started_by=f"ecs-svc/{deployment.id.rsplit('/', 1)[-1]}",
        tags=tags,
        networking_configuration=None,
        deployment_id=deployment.id,
        index=index,
        running_at=deployment.running_at,
    )
    task.network_configuration = service.network_configuration
    backend.tasks.setdefault(cluster.name, {})[task.task_arn] = task
    _service_tasks(service).append(task)
    return task


def _sync_service(backend, service) -> None:
    """Start the tasks the service's deployments run, stop those it no longer runs."""
    ecs_health._refresh_service(service)
    deployments = ecs_health._deployments(service)
    if not deployments:
        return
    now = _now()
    drained_at = service.__dict__.get("_sandbox_drained_at")
    deleted_at = service.__dict__.get("_sandbox_deleted_at", now)
    by_id = {d.id: d for d in deployments}
    tasks = _service_tasks(service)
    for task in tasks:
        if task.stop_at is not None:
            continue
        deployment = by_id.get(task.deployment_id)
        if drained_at is not None:
            task.stop(deleted_at, drained_at)
        elif deployment is None:
            # Replaced: the old deployment's task stops once the new one has taken over.
            task.stop(now, now)
        elif task.index >= deployment.desired:
            task.stop(now, now + delays.seconds("ecs_service_delete"))
    if drained_at is not None:
        return
    for deployment in deployments:
        if deployment.failure is not None:
            continue  # its tasks fail to start: ecs_health lists them, stopped
        for index in range(deployment.desired):
            live = [t for t in tasks if t.deployment_id == deployment.id and t.index == index
                    and t.stop_at is None]
            if not live:
                _start_task(backend, service, deployment, index)


def _forget_old_tasks(backend) -> None:
    now = _now()
    for service in backend.services.values():
        kept = []
        for task in _service_tasks(service):
            forget_at = task.forget_at()
            if forget_at is not None and now >= forget_at:
                backend.tasks.get(task.cluster_name, {}).pop(task.task_arn, None)
            else:
                kept.append(task)
        service.__dict__["_sandbox_tasks"] = kept


def sync_tasks(backend) -> None:
    with _lock:
        if delays._settings["paused"]:
            return
        for service in list(backend.services.values()):
            _sync_service(backend, service)
        _forget_old_tasks(backend)


def _synced_first(original):
    def wrapper(self, *args, **kwargs):
        sync_tasks(self)
        return original(self, *args, **kwargs)

    return wrapper


def _synced_after(original):
    def wrapper(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        sync_tasks(self)
        return result

    return wrapper


def _ecs_delete_service(original):
    def wrapper(self, cluster_name, service_name, force):
        sync_tasks(self)
        service = original(self, cluster_name, service_name, force)
        with _lock:
            service.__dict__["_sandbox_deleted_at"] = _now()
        sync_tasks(self)
        return service

    return wrapper


def _ecs_list_tasks(original):
    def wrapper(self, cluster_str=None, container_instance=None, family=None, started_by=None,
                service_name=None, desiredStatus=None):
        sync_tasks(self)
        found = original(self, cluster_str, container_instance, family, started_by, None, None)
        # AWS lists RUNNING-desired tasks unless asked for STOPPED ones.
        wanted = desiredStatus or "RUNNING"
        found = [t for t in found if t.desired_status == wanted]
        if service_name:
            found = [t for t in found if t.group == f"service:{service_name.rsplit('/', 1)[-1]}"]
        return found

    return wrapper


# --- ECS task definitions ----------------------------------------------------------------------


def _deleting(backend) -> dict:
    """ARN -> (task definition, clock.now() when AWS stops showing it)."""
    return backend.__dict__.setdefault("_sandbox_deleting_task_definitions", {})


def _highest_revisions(backend) -> dict:
    return backend.__dict__.setdefault("_sandbox_highest_revisions", {})


def _forget_deleted_definitions(backend) -> None:
    now = _now()
    for arn, (_, gone_at) in list(_deleting(backend).items()):
        if now >= gone_at:
            _deleting(backend).pop(arn, None)


def _ecs_delete_task_definitions(original):
    def wrapper(self, task_definitions):
        deleted, failures = original(self, task_definitions)
        with _lock:
            _forget_deleted_definitions(self)
            gone_at = _now() + delays.seconds("ecs_task_definition_delete")
            for definition in deleted:
                definition.delete_requested_at = datetime.now(UTC)
                highest = _highest_revisions(self)
                highest[definition.family] = max(highest.get(definition.family, 0),
                                                 definition.revision)
                if gone_at > _now():
                    _deleting(self)[definition.arn] = (definition, gone_at)
        return deleted, failures

    return wrapper


def _ecs_describe_task_definition(original):
    def wrapper(self, task_definition_str):
        from moto.ecs.exceptions import TaskDefinitionNotFoundException

        try:
            return original(self, task_definition_str)
        except TaskDefinitionNotFoundException:
            with _lock:
                _forget_deleted_definitions(self)
                wanted = task_definition_str.rsplit("/", 1)[-1]
                for arn, (definition, _) in _deleting(self).items():
                    if wanted in (arn, arn.rsplit("/", 1)[-1]):
                        return definition
            raise

    return wrapper


def _ecs_last_revision(original):
    def wrapper(self, family):
        last = original(self, family)
        highest = _highest_revisions(self).get(family)
        if highest is None:
            return last
        return max(last or 0, highest)

    return wrapper


def _ecs_tagged_resources(original):
    def wrapper(self) -> Iterator:
        from moto.core.resource_tagging import TaggedResource

        sync_tasks(self)
        yield from original(self)
        with _lock:
            _forget_deleted_definitions(self)
            deleting = list(_deleting(self).values())
        for definition, _ in deleting:
            yield TaggedResource(
                arn=definition.arn,
                tags={t["key"]: t["value"] for t in (definition.tags or [])},
                resource_type="ecs:task-definition",
            )

    return wrapper


# --- ELBv2 listener rules ----------------------------------------------------------------------


def _deleted_rules(backend) -> dict:
    """Rule ARN -> clock.now() when GetResources stops listing it."""
    return backend.__dict__.setdefault("_sandbox_deleted_rules", {})


def _elbv2_delete_rule(original):
    def wrapper(self, arn):
        existed = any(arn in listener.rules for lb in self.load_balancers.values()
                      for listener in lb.listeners.values())
        result = original(self, arn)
        if existed:
            with _lock:
                _deleted_rules(self)[arn] = _now() + delays.seconds("elbv2_deleted_rule_listed")
        return result

    return wrapper


def _elbv2_tagged_resources(original):
    def wrapper(self) -> Iterator:
        from moto.core.resource_tagging import TaggedResource

        yield from original(self)
        for lb in list(self.load_balancers.values()):
            for listener in list(lb.listeners.values()):
                for rule in list(listener.rules.values()):
                    if getattr(rule, "is_default", False):
                        continue
                    yield TaggedResource(
                        arn=rule.arn,
                        tags=self.tagging_service.get_tag_dict_for_resource(rule.arn),
                        resource_type="elasticloadbalancing:listener-rule",
                    )
        with _lock:
            now = _now()
            deleted = _deleted_rules(self)
            for arn, gone_at in list(deleted.items()):
                if now >= gone_at:
                    deleted.pop(arn)
            listed = list(deleted)
        for arn in listed:
            yield TaggedResource(
                arn=arn, tags=self.tagging_service.get_tag_dict_for_resource(arn),
                resource_type="elasticloadbalancing:listener-rule",
            )

    return wrapper


def install() -> None:
    """Install these rules and Secrets Manager's (secrets_rules) into moto, once."""
    from moto.ecs.models import EC2ContainerServiceBackend
    from moto.elbv2.models import ELBv2Backend

    from . import secrets_rules

    secrets_rules.install()

    patch = delays._patch
    patch(EC2ContainerServiceBackend, "create_service", _synced_after)
    patch(EC2ContainerServiceBackend, "update_service", _synced_after)
    patch(EC2ContainerServiceBackend, "delete_service", _ecs_delete_service)
    patch(EC2ContainerServiceBackend, "describe_services", _synced_after)
    patch(EC2ContainerServiceBackend, "describe_tasks", _synced_first)
    patch(EC2ContainerServiceBackend, "list_tasks", _ecs_list_tasks)
    patch(EC2ContainerServiceBackend, "iter_tagged_resources", _ecs_tagged_resources)
    patch(EC2ContainerServiceBackend, "delete_task_definitions", _ecs_delete_task_definitions)
    patch(EC2ContainerServiceBackend, "describe_task_definition", _ecs_describe_task_definition)
    patch(EC2ContainerServiceBackend, "_get_last_task_definition_revision_id",
          _ecs_last_revision)
    patch(ELBv2Backend, "delete_rule", _elbv2_delete_rule)
    patch(ELBv2Backend, "iter_tagged_resources", _elbv2_tagged_resources)
