"""ECS: the host's services and task definitions, and the staging's own.

IAM: ecs:DescribeServices, ecs:DescribeTaskDefinition, ecs:ListTaskDefinitions,
ecs:RegisterTaskDefinition, ecs:DeregisterTaskDefinition, ecs:DeleteTaskDefinitions,
ecs:CreateService, ecs:UpdateService, ecs:DeleteService, ecs:ListTasks, ecs:DescribeTasks,
ecs:TagResource, iam:PassRole (the cloned roles), ecs:ListAccountSettings, ecs:DescribeClusters.
"""

import functools
from dataclasses import dataclass

import botocore.session
from botocore.exceptions import ClientError

from .base import client, error_code, translated_errors


@functools.cache
def _registrable_members() -> frozenset[str]:
    """What RegisterTaskDefinition takes, from the service model of the botocore in use: the
    same model parses DescribeTaskDefinition's answer, so every read-only member it adds
    (registeredAt, deleteRequestedAt, ...) is left out, however new. Tags are our own."""
    model = botocore.session.get_session().get_service_model("ecs")
    members = model.operation_model("RegisterTaskDefinition").input_shape.members
    return frozenset(members) - {"tags"}


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


def why_absent(*, cluster: str, service: str) -> str:
    """Why DescribeServices has no live ``service``: its failure reason (``MISSING``: never
    made, or forgotten since) or ``INACTIVE`` (deleted); empty when it is there after all."""
    with translated_errors("ecs:DescribeServices"):
        raw = client("ecs").describe_services(cluster=cluster, services=[service])
    for failure in raw.get("failures", []):
        return failure.get("reason") or "MISSING"
    statuses = [found.get("status", "") for found in raw.get("services", [])]
    return "INACTIVE" if statuses and all(s == "INACTIVE" for s in statuses) else ""


def describe_task_definition(*, task_definition: str) -> dict:
    """The registrable part of a task definition, plus its ARN."""
    with translated_errors("ecs:DescribeTaskDefinition"):
        raw = client("ecs").describe_task_definition(taskDefinition=task_definition)
    definition = raw["taskDefinition"]
    return registrable(definition) | {"taskDefinitionArn": definition["taskDefinitionArn"]}


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
    """Only the members RegisterTaskDefinition accepts (tags aside)."""
    members = _registrable_members()
    return {k: v for k, v in definition.items() if k in members}


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


@dataclass(frozen=True)
class DeleteFailure:
    """A revision DeleteTaskDefinitions did not delete (the call itself answers 200)."""

    arn: str
    reason: str
    detail: str


def delete_task_definitions(*, arns: list[str]) -> list[DeleteFailure]:
    """Delete deregistered (INACTIVE) revisions for good, ten per call as the API allows;
    the revisions AWS refused, with its reason."""
    failures: list[DeleteFailure] = []
    for start in range(0, len(arns), 10):
        with translated_errors("ecs:DeleteTaskDefinitions"):
            raw = client("ecs").delete_task_definitions(taskDefinitions=arns[start : start + 10])
        failures.extend(
            DeleteFailure(arn=f.get("arn", ""), reason=f.get("reason", ""),
                          detail=f.get("detail", ""))
            for f in raw.get("failures", [])
        )
    return failures


def task_last_status(*, cluster: str, arn: str) -> str | None:
    """PROVISIONING ... RUNNING ... STOPPED; None once ECS no longer knows the task."""
    with translated_errors("ecs:DescribeTasks"):
        try:
            raw = client("ecs").describe_tasks(cluster=cluster, tasks=[arn])
        except ClientError as exc:
            if error_code(exc) == "ClusterNotFoundException":
                return None
            raise
    for task in raw.get("tasks", []):
        if task.get("taskArn") == arn:
            return task.get("lastStatus", "")
    return None


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


@dataclass(frozen=True)
class Cluster:
    name: str
    arn: str
    status: str  # ACTIVE, PROVISIONING, DEPROVISIONING, FAILED or INACTIVE


def describe_cluster(*, cluster: str) -> Cluster | None:
    """The cluster, or None if ECS does not know it (a deleted one stays INACTIVE a while)."""
    with translated_errors("ecs:DescribeClusters"):
        raw = client("ecs").describe_clusters(clusters=[cluster])
    for found in raw.get("clusters", []):
        return Cluster(name=found["clusterName"], arn=found["clusterArn"],
                       status=found.get("status", ""))
    return None


def effective_account_settings() -> dict[str, str]:
    """Each account setting as it applies to the caller: its own, else the account's, else
    ECS's default (``effectiveSettings``), by name."""
    settings: dict[str, str] = {}
    with translated_errors("ecs:ListAccountSettings"):
        pages = client("ecs").get_paginator("list_account_settings").paginate(
            effectiveSettings=True
        )
        for page in pages:
            settings.update({s["name"]: s["value"] for s in page.get("settings", [])})
    return settings
