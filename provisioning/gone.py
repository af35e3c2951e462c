"""Whether a resource is really gone, asked of the service that owns it.

The Resource Groups Tagging API is no witness: for minutes to an hour after a delete it still
lists stopped ECS tasks, task definitions whose deletion is in progress, deleted listener
rules, databases being deleted and secrets scheduled for deletion. So both the destroy's last
check and the sweep take its list as candidates only, and ask each resource's own service:

* ECS task: gone once STOPPED (or unknown to DescribeTasks);
* ECS service: gone once DRAINING or INACTIVE (its tasks are stopping; nothing new starts);
* ECS task definition: gone when DELETE_IN_PROGRESS or unknown (INACTIVE still exists);
* listener rule: gone when DescribeRules on its listener no longer has it (or the listener is
  gone); target group: gone when DescribeTargetGroups answers TargetGroupNotFound;
* RDS instance: gone when ``deleting`` or unknown;
* secret: gone when it has a DeletedDate or is unknown.

A resource of any other type is never called gone: it is reported, so that a type the engine
does not know about (something new tagged for a staging) is seen by a person.

Describe calls are eventually consistent, so what still looks present is asked again with
backoff for a while (``SETTLE_POLLS`` poll intervals: a minute at the default
``DS_POLL_SECONDS`` of 10 s, a few seconds in the sandbox) before anyone calls it left.
"""

import time
from collections.abc import Callable, Iterable

from .aws import ecs, elbv2, rds, secretsmanager
from .config import EngineConfig
from .errors import ExternalCallFailed

RULE = "elasticloadbalancing:listener-rule"
SERVICE = "ecs:service"
TASK = "ecs:task"
TARGET_GROUP = "elasticloadbalancing:targetgroup"
TASK_DEFINITION = "ecs:task-definition"
SECRET = "secretsmanager:secret"
DATABASE = "rds:db"

# How many poll intervals to keep asking about what still looks present.
SETTLE_POLLS = 6


def kind_of(arn: str) -> str:
    """``service:resource-type`` of an ARN, e.g. ``rds:db`` or ``ecs:task-definition``."""
    parts = arn.split(":", 5)
    if len(parts) < 6:
        return "unknown"
    resource = parts[5]
    if parts[2] == "elasticloadbalancing" and resource.startswith("listener-rule/"):
        return RULE
    return f"{parts[2]}:{resource.split('/', 1)[0].split(':', 1)[0]}"


def _resource_id(arn: str) -> str:
    return arn.split(":", 5)[5]


def db_instance_id(arn: str) -> str:
    return _resource_id(arn).split(":", 1)[1]


def ecs_cluster(arn: str, config: EngineConfig) -> str:
    """The cluster in a service or task ARN: ``service/<cluster>/<name>`` (the long format)
    or ``service/<name>`` (the old one, which names no cluster)."""
    parts = _resource_id(arn).split("/")
    return parts[1] if len(parts) == 3 else config.cluster


def _listener_of(rule_arn: str) -> str:
    # ...:listener-rule/app/<lb>/<lb id>/<listener id>/<rule id> belongs to
    # ...:listener/app/<lb>/<lb id>/<listener id>
    head, resource = rule_arn.rsplit(":", 1)
    path = resource.split("/")
    return f"{head}:{'/'.join(['listener', *path[1:-1]])}"


def _rule_there(arn: str) -> bool:
    try:
        rules = elbv2.list_rules(listener_arn=_listener_of(arn))
    except ExternalCallFailed as exc:
        if exc.code == "ListenerNotFound":
            return False
        raise
    return any(rule.arn == arn for rule in rules)


def _service_there(arn: str, config: EngineConfig) -> bool:
    service = ecs.describe_service(cluster=ecs_cluster(arn, config), service=arn)
    return service is not None and service.status == "ACTIVE"


def _task_there(arn: str, config: EngineConfig) -> bool:
    status = ecs.task_last_status(cluster=ecs_cluster(arn, config), arn=arn)
    return status is not None and status != "STOPPED"


def _database_there(arn: str) -> bool:
    instance = rds.describe_instance(instance_id=db_instance_id(arn))
    return instance is not None and instance.status != "deleting"


CHECKS: dict[str, Callable[[str, EngineConfig], bool]] = {
    TASK: _task_there,
    SERVICE: _service_there,
    TASK_DEFINITION: lambda arn, config: ecs.task_definition_status(arn=arn) in {
        "ACTIVE", "INACTIVE"},
    RULE: lambda arn, config: _rule_there(arn),
    TARGET_GROUP: lambda arn, config: elbv2.target_group_exists(arn=arn),
    DATABASE: lambda arn, config: _database_there(arn),
    SECRET: lambda arn, config: secretsmanager.find_secret_arn(name=arn) is not None,
}


def still_there(arn: str, config: EngineConfig) -> bool:
    """One look: exists and is not on its way out. A type with no check counts as there."""
    check = CHECKS.get(kind_of(arn))
    return True if check is None else check(arn, config)


def left_after_settling(arns: Iterable[str], config: EngineConfig,
                        sleep: Callable[[float], object] = time.sleep) -> list[str]:
    """The ARNs still there after asking again with backoff for SETTLE_POLLS poll intervals;
    a type with no check is not waited for (no answer would change)."""
    left = [arn for arn in dict.fromkeys(arns) if still_there(arn, config)]
    budget = SETTLE_POLLS * config.poll_seconds
    waited, interval = 0.0, config.poll_seconds
    while any(kind_of(arn) in CHECKS for arn in left) and waited < budget:
        pause = min(interval, budget - waited)
        sleep(pause)
        waited += pause
        interval *= 2
        left = [arn for arn in left if kind_of(arn) not in CHECKS or still_there(arn, config)]
    return left


def raise_refused_deletions(failures: Iterable[ecs.DeleteFailure], config: EngineConfig) -> None:
    """DeleteTaskDefinitions answers 200 and lists the revisions it did not delete. A revision
    already being deleted, or unknown, is where we want it; any other refusal fails, with
    AWS's reason and the revision's ARN."""
    for failure in failures:
        if failure.arn and not still_there(failure.arn, config):
            continue
        detail = f": {failure.detail}" if failure.detail else ""
        raise ExternalCallFailed("ecs:DeleteTaskDefinitions", "Failure",
                                 f"{failure.arn or '(no ARN)'}: {failure.reason}{detail}")
