"""ECS: the host's services and task definitions, and the staging's own.

IAM: ecs:DescribeServices, ecs:DescribeTaskDefinition, ecs:ListTaskDefinitions,
ecs:RegisterTaskDefinition, ecs:DeregisterTaskDefinition, ecs:DeleteTaskDefinitions,
ecs:CreateService, ecs:UpdateService, ecs:DeleteService, ecs:ListTasks, ecs:DescribeTasks,
ecs:TagResource, iam:PassRole (the cloned roles).
"""

from dataclasses import dataclass

from botocore.exceptions import ClientError

from .base import client, error_code, translated_errors

# Keys describe_task_definition returns that register_task_definition does not accept.
_READ_ONLY_TASK_DEFINITION_KEYS = {
    "taskDefinitionArn",
    "revision",
    "status",
    "requiresAttributes",
    "compatibilities",
    "registeredAt",
    "registeredBy",
    "deregisteredAt",
}


# Fail a deployment after a few failed tasks instead of replacing them for ever; no rollback,
# so the staging keeps the failed revision for its owner to look at.
CIRCUIT_BREAKER = {"deploymentCircuitBreaker": {"enable": True, "rollback": False}}


@dataclass(frozen=True)
class Deployment:
    status: str  # PRIMARY (the newest) or ACTIVE (an older one still running)
    rollout_state: str  # IN_PROGRESS, COMPLETED or FAILED
    task_definition: str
    desired: int
    running: int
    id: str = ""
    rollout_state_reason: str = ""
    failed_tasks: int = 0


@dataclass(frozen=True)
class StoppedTask:
    arn: str
    started_by: str  # the deployment id for a service's task
    stopped_reason: str  # e.g. "Essential container in task exited"
    container_reasons: tuple[str, ...]  # e.g. "web: exit code 1", "web: CannotPullContainerError"


@dataclass(frozen=True)
class Service:
    name: str
    arn: str
    status: str  # ACTIVE, DRAINING or INACTIVE
    task_definition: str
    desired: int
    running: int
    pending: int
    deployments: tuple[Deployment, ...]
    load_balancers: tuple[dict, ...]
    network_configuration: dict
    events: tuple[str, ...] = ()  # ECS's service event messages, newest first

    @property
    def primary(self) -> Deployment | None:
        return next((d for d in self.deployments if d.status == "PRIMARY"), None)

    @property
    def is_live(self) -> bool:
        return self.status in {"ACTIVE", "DRAINING"}

    @property
    def is_steady(self) -> bool:
        """Running as many tasks as desired, with one deployment that has completed."""
        if self.status != "ACTIVE" or self.running != self.desired or len(self.deployments) != 1:
            return False
        only = self.deployments[0]
        return only.rollout_state in {"", "COMPLETED"} and only.running == only.desired


def _service_from(raw: dict) -> Service:
    return Service(
        name=raw["serviceName"],
        arn=raw["serviceArn"],
        status=raw.get("status", ""),
        task_definition=raw.get("taskDefinition", ""),
        desired=int(raw.get("desiredCount", 0)),
        running=int(raw.get("runningCount", 0)),
        pending=int(raw.get("pendingCount", 0)),
        deployments=tuple(
            Deployment(
                status=d.get("status", ""),
                rollout_state=d.get("rolloutState", ""),
                task_definition=d.get("taskDefinition", ""),
                desired=int(d.get("desiredCount", 0)),
                running=int(d.get("runningCount", 0)),
                id=d.get("id", ""),
                rollout_state_reason=d.get("rolloutStateReason", ""),
                failed_tasks=int(d.get("failedTasks", 0)),
            )
            for d in raw.get("deployments", [])
        ),
        load_balancers=tuple(raw.get("loadBalancers", [])),
        network_configuration=raw.get("networkConfiguration") or {},
        events=tuple(e.get("message", "") for e in raw.get("events", [])),
    )


def describe_service(*, cluster: str, service: str) -> Service | None:
    """The service, or None if it was never made or is gone (INACTIVE counts as gone)."""
    with translated_errors("ecs:DescribeServices"):
        raw = client("ecs").describe_services(cluster=cluster, services=[service])
    for found in raw.get("services", []):
        parsed = _service_from(found)
        if parsed.status != "INACTIVE":
            return parsed
    return None


def describe_task_definition(*, task_definition: str) -> dict:
    """The registrable part of a task definition (read-only keys dropped), plus its ARN."""
    with translated_errors("ecs:DescribeTaskDefinition"):
        raw = client("ecs").describe_task_definition(taskDefinition=task_definition)
    definition = raw["taskDefinition"]
    return {k: v for k, v in definition.items() if k not in _READ_ONLY_TASK_DEFINITION_KEYS} | {
        "taskDefinitionArn": definition["taskDefinitionArn"]
    }


def task_definition_status(*, arn: str) -> str | None:
    """ACTIVE, INACTIVE (deregistered) or DELETE_IN_PROGRESS; None if AWS knows it no more."""
    with translated_errors("ecs:DescribeTaskDefinition"):
        try:
            raw = client("ecs").describe_task_definition(taskDefinition=arn)
        except ClientError as exc:
            if error_code(exc) in {"ClientException", "InvalidParameterException"}:
                return None
            raise
    return raw["taskDefinition"].get("status", "")


def registrable(definition: dict) -> dict:
    return {k: v for k, v in definition.items() if k not in _READ_ONLY_TASK_DEFINITION_KEYS}


def list_task_definition_arns(*, family: str, status: str = "ACTIVE") -> list[str]:
    """Revisions of exactly ``family`` (the API matches by prefix), oldest first."""
    arns: list[str] = []
    with translated_errors("ecs:ListTaskDefinitions"):
        pages = client("ecs").get_paginator("list_task_definitions").paginate(
            familyPrefix=family, status=status, sort="ASC"
        )
        for page in pages:
            arns.extend(page["taskDefinitionArns"])
    return [arn for arn in arns if arn.rsplit("/", 1)[-1].rsplit(":", 1)[0] == family]


def register_task_definition(*, definition: dict, tags: dict[str, str]) -> str:
    with translated_errors("ecs:RegisterTaskDefinition"):
        raw = client("ecs").register_task_definition(
            **registrable(definition), tags=[{"key": k, "value": v} for k, v in tags.items()]
        )
    return raw["taskDefinition"]["taskDefinitionArn"]


def deregister_task_definition(*, arn: str) -> None:
    with translated_errors("ecs:DeregisterTaskDefinition"):
        try:
            client("ecs").deregister_task_definition(taskDefinition=arn)
        except ClientError as exc:
            # Already deregistered (or never there): the goal is reached.
            if error_code(exc) not in {"ClientException", "InvalidParameterException"}:
                raise


def delete_task_definitions(*, arns: list[str]) -> None:
    """Delete deregistered (INACTIVE) revisions for good, ten per call as the API allows."""
    for start in range(0, len(arns), 10):
        with translated_errors("ecs:DeleteTaskDefinitions"):
            client("ecs").delete_task_definitions(taskDefinitions=arns[start : start + 10])


def create_service(
    *,
    cluster: str,
    name: str,
    task_definition: str,
    network_configuration: dict,
    load_balancers: list[dict],
    tags: dict[str, str],
    health_check_grace_seconds: int = 0,
) -> Service:
    kwargs = {
        "cluster": cluster,
        "serviceName": name,
        "taskDefinition": task_definition,
        "desiredCount": 1,
        "launchType": "FARGATE",
        "networkConfiguration": network_configuration,
        "loadBalancers": load_balancers,
        "deploymentConfiguration": CIRCUIT_BREAKER,
        "enableECSManagedTags": True,
        "propagateTags": "SERVICE",
        "tags": [{"key": k, "value": v} for k, v in tags.items()],
    }
    if load_balancers and health_check_grace_seconds:
        kwargs["healthCheckGracePeriodSeconds"] = health_check_grace_seconds
    with translated_errors("ecs:CreateService"):
        raw = client("ecs").create_service(**kwargs)
    return _service_from(raw["service"])


def update_service(
    *, cluster: str, service: str, task_definition: str | None = None,
    desired_count: int | None = None,
) -> None:
    kwargs: dict = {"cluster": cluster, "service": service}
    if task_definition is not None:
        kwargs["taskDefinition"] = task_definition
        # A service made before the circuit breaker was used gets it with its next deployment.
        kwargs["deploymentConfiguration"] = CIRCUIT_BREAKER
    if desired_count is not None:
        kwargs["desiredCount"] = desired_count
    with translated_errors("ecs:UpdateService"):
        client("ecs").update_service(**kwargs)


def stopped_tasks(*, cluster: str, service: str) -> list[StoppedTask]:
    """The service's recently stopped tasks (ECS keeps them listed for about an hour)."""
    with translated_errors("ecs:ListTasks"):
        arns = client("ecs").list_tasks(
            cluster=cluster, serviceName=service, desiredStatus="STOPPED", maxResults=100
        )["taskArns"]
    if not arns:
        return []
    with translated_errors("ecs:DescribeTasks"):
        raw = client("ecs").describe_tasks(cluster=cluster, tasks=arns)["tasks"]
    raw.sort(key=lambda t: str(t.get("stoppedAt") or t.get("createdAt") or ""), reverse=True)
    return [
        StoppedTask(
            arn=task["taskArn"],
            started_by=task.get("startedBy", ""),
            stopped_reason=task.get("stoppedReason", ""),
            container_reasons=tuple(_container_reason(c) for c in task.get("containers", [])
                                    if c.get("reason") or c.get("exitCode")),
        )
        for task in raw
    ]


def _container_reason(container: dict) -> str:
    if container.get("reason"):
        return f"{container.get('name', '?')}: {container['reason']}"
    return f"{container.get('name', '?')}: exit code {container['exitCode']}"


def delete_service(*, cluster: str, service: str) -> bool:
    """Scale to zero and delete; False if there was no such live service. ECS refuses to
    delete a service scaled above 0 unless forced: the scale-down comes first, and force
    covers a desired count that something else raised in between."""
    with translated_errors("ecs:DeleteService"):
        try:
            client("ecs").update_service(cluster=cluster, service=service, desiredCount=0)
            client("ecs").delete_service(cluster=cluster, service=service, force=True)
        except ClientError as exc:
            if error_code(exc) in {"ServiceNotFoundException", "ServiceNotActiveException"}:
                return False
            raise
    return True
