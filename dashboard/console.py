"""Links into the AWS console for the resources a staging made, built from their ARNs.

Console URLs are not an API and AWS moves them now and then; they live here, in one place, so a
broken link is a one-line fix. Nothing here calls AWS.
"""

from dataclasses import dataclass
from urllib.parse import quote

from provisioning.costs import current_region


@dataclass(frozen=True)
class Arn:
    service: str
    region: str
    account: str
    resource: str  # everything after the fifth colon, e.g. "service/cluster/name"

    @classmethod
    def parse(cls, arn: str) -> "Arn | None":
        parts = arn.split(":", 5)
        if len(parts) != 6 or parts[0] != "arn":
            return None
        return cls(service=parts[2], region=parts[3], account=parts[4], resource=parts[5])


@dataclass(frozen=True)
class ResourceLink:
    kind: str  # what it is, in words
    name: str
    identifier: str  # the ARN or, for RDS, the instance identifier
    url: str


def default_region() -> str:
    return current_region()


def console_root(region: str) -> str:
    return f"https://{region}.console.aws.amazon.com"


def _region(arn: Arn | None) -> str:
    return (arn.region if arn and arn.region else "") or default_region()


def ecs_service_parts(arn: str, cluster: str) -> tuple[str, str]:
    """(cluster, service) from a service ARN; old-style ARNs ("service/name") lack the
    cluster, which is then the configured one."""
    parsed = Arn.parse(arn)
    resource = parsed.resource if parsed else arn
    pieces = resource.split("/")
    if len(pieces) >= 3:
        return pieces[1], pieces[2]
    return cluster, pieces[-1]


def ecs_service_url(arn: str, *, cluster: str, tab: str = "health") -> str:
    region = _region(Arn.parse(arn))
    cluster_name, service = ecs_service_parts(arn, cluster)
    return (f"{console_root(region)}/ecs/v2/clusters/{quote(cluster_name)}/services/"
            f"{quote(service)}/{tab}?region={region}")


def service_logs_url(arn: str, *, cluster: str) -> str:
    """The ECS service's "Logs" tab: it reads the awslogs group of the task definition, so
    the link works whatever the host environment names its log groups."""
    return ecs_service_url(arn, cluster=cluster, tab="logs")


def task_definition_url(arn: str) -> str:
    parsed = Arn.parse(arn)
    region = _region(parsed)
    family_revision = (parsed.resource if parsed else arn).split("/", 1)[-1]
    family, _, revision = family_revision.partition(":")
    return (f"{console_root(region)}/ecs/v2/task-definitions/{quote(family)}/"
            f"{quote(revision or '1')}/containers?region={region}")


def target_group_url(arn: str) -> str:
    region = _region(Arn.parse(arn))
    return f"{console_root(region)}/ec2/home?region={region}#TargetGroup:targetGroupArn={arn}"


def listener_rule_url(arn: str) -> str:
    region = _region(Arn.parse(arn))
    return f"{console_root(region)}/ec2/home?region={region}#ListenerRuleDetails:ruleArn={arn}"


def db_instance_url(identifier: str, region: str | None = None) -> str:
    region = region or default_region()
    return (f"{console_root(region)}/rds/home?region={region}"
            f"#database:id={quote(identifier)};is-cluster=false")


def _name_after_slash(arn: str, index: int) -> str:
    parsed = Arn.parse(arn)
    pieces = (parsed.resource if parsed else arn).split("/")
    return pieces[index] if len(pieces) > abs(index) else pieces[-1]


def resource_links(outputs: dict[str, dict], *, cluster: str) -> list[ResourceLink]:
    """One link per resource recorded in the step outputs of a staging's create/redeploy."""
    links: list[ResourceLink] = []
    for key, kind in (("web_service", "Web service"), ("worker_service", "Worker service")):
        arn = outputs.get(key, {}).get("arn")
        if arn:
            service = ecs_service_parts(arn, cluster)[1]
            links.append(ResourceLink(kind, service, arn, ecs_service_url(arn, cluster=cluster)))
    for key, kind in (("web_task_definition", "Web task definition"),
                      ("worker_task_definition", "Worker task definition")):
        arn = outputs.get(key, {}).get("arn")
        if arn:
            links.append(ResourceLink(kind, _name_after_slash(arn, 1), arn,
                                      task_definition_url(arn)))
    arn = outputs.get("target_group", {}).get("arn")
    if arn:
        links.append(ResourceLink("Target group", _name_after_slash(arn, 1), arn,
                                  target_group_url(arn)))
    rule = outputs.get("listener_rule", {})
    if rule.get("arn"):
        name = f"priority {rule['priority']}" if rule.get("priority") else "host rule"
        links.append(ResourceLink("Listener rule", name, rule["arn"],
                                  listener_rule_url(rule["arn"])))
    database = outputs.get("database", {}).get("db_instance")
    if database:
        region = _region(Arn.parse(outputs.get("target_group", {}).get("arn", "")))
        links.append(ResourceLink("Database", database, database,
                                  db_instance_url(database, region)))
    return links
