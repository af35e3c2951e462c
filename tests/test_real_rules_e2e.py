"""A create -> destroy -> create again on the sandbox with AWS's real rules on and a host shaped
like real ones (containers with their own sizes and a log-router sidecar, the web service behind
a target group that checks /healthz, a custom DB parameter group, an RDS-managed JSON secret).

What moto alone would let through, and AWS does not: the clone must fit the smaller task, the
staging must be checked the way the host is (the app answers / with a redirect), the database
must keep its source's parameter group, the destroy must not be fooled by what the tagging API
still lists after a delete, and the login secret's name must be usable again at once."""

import json

import pytest

from tests.conftest import BRANCH
from tests.stack import SandboxStack, running_stack

pytestmark = pytest.mark.e2e

SOURCE = "staging-marketing-db"
HEALTH_CHECK_KEYS = ("HealthCheckPath", "Matcher", "HealthCheckPort", "HealthCheckProtocol",
                     "HealthCheckIntervalSeconds", "HealthCheckTimeoutSeconds",
                     "HealthyThresholdCount", "UnhealthyThresholdCount")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with running_stack(tmp_path_factory.mktemp("real-rules"), 0.01) as stack:
        yield stack


def ds_json(stack: SandboxStack, *args: str) -> dict | list:
    result = stack.manage("ds", *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def host_target_group(stack: SandboxStack) -> dict:
    service = stack.client("ecs").describe_services(
        cluster=stack.aws_env["DS_CLUSTER"], services=[stack.aws_env["DS_WEB_SERVICE"]],
    )["services"][0]
    arn = service["loadBalancers"][0]["targetGroupArn"]
    return stack.client("elbv2").describe_target_groups(TargetGroupArns=[arn])["TargetGroups"][0]


def tagged_after_destroy(stack: SandboxStack, name: str) -> list[str]:
    return [m["ResourceARN"] for m in stack.client("resourcegroupstaggingapi").get_resources(
        TagFilters=[{"Key": "dynamic-staging", "Values": [name]}])["ResourceTagMappingList"]]


def really_left(stack: SandboxStack, name: str) -> dict[str, list[str]]:
    """What of the staging each service says still exists (not what the tagging API lists)."""
    ecs, rds, elbv2 = stack.client("ecs"), stack.client("rds"), stack.client("elbv2")
    services = ecs.describe_services(cluster=stack.aws_env["DS_CLUSTER"],
                                     services=[f"ds-{name}-web", f"ds-{name}-worker"])
    definitions = [arn for family in (f"ds-{name}-web", f"ds-{name}-worker")
                   for status in ("ACTIVE", "INACTIVE")
                   for arn in ecs.list_task_definitions(familyPrefix=family, status=status)[
                       "taskDefinitionArns"]]
    host = f"{name}.{stack.aws_env['DS_DOMAIN']}"
    rules = [r["RuleArn"] for r in elbv2.describe_rules(
        ListenerArn=stack.aws_env["DS_LISTENER_ARN"])["Rules"]
        for c in r["Conditions"] if host in c.get("HostHeaderConfig", {}).get("Values", [])]
    groups = [g["TargetGroupName"] for g in elbv2.describe_target_groups()["TargetGroups"]
              if g["TargetGroupName"] == f"ds-{name}"]
    databases = [d["DBInstanceIdentifier"] for d in rds.describe_db_instances()["DBInstances"]
                 if d["DBInstanceIdentifier"] == f"ds-{name}"
                 and d["DBInstanceStatus"] != "deleting"]
    secrets = [s["Name"] for s in stack.client("secretsmanager").list_secrets()["SecretList"]
               if s["Name"].startswith(f"dynamic-stagings/{name}/") and not s.get("DeletedDate")]
    return {
        "services": [s["serviceName"] for s in services["services"] if s["status"] == "ACTIVE"],
        "task_definitions": definitions, "rules": rules, "target_groups": groups,
        "databases": databases, "secrets": secrets,
    }


NOTHING = {"services": [], "task_definitions": [], "rules": [], "target_groups": [],
           "databases": [], "secrets": []}


def test_create_destroy_and_create_again_on_a_real_like_host(stack):
    created = ds_json(stack, "create", BRANCH, "--source", SOURCE, "--wait")
    name = created["name"]
    assert created["status"] == "ready", created

    host_group = host_target_group(stack)
    group = stack.client("elbv2").describe_target_groups(Names=[f"ds-{name}"])["TargetGroups"][0]
    assert {k: group[k] for k in HEALTH_CHECK_KEYS} == {k: host_group[k] for k in HEALTH_CHECK_KEYS}

    rds = stack.client("rds")
    source = rds.describe_db_instances(DBInstanceIdentifier=SOURCE)["DBInstances"][0]
    restored = rds.describe_db_instances(DBInstanceIdentifier=f"ds-{name}")["DBInstances"][0]
    groups = [g["DBParameterGroupName"] for g in restored["DBParameterGroups"]]
    assert groups == [g["DBParameterGroupName"] for g in source["DBParameterGroups"]]
    assert not groups[0].startswith("default.")

    destroyed = ds_json(stack, "destroy", name, "--wait")
    assert destroyed["status"] == "destroyed"
    # The tagging API still lists what was deleted (stopped tasks, the deleted rule)...
    lingering = tagged_after_destroy(stack, name)
    assert any(":task/" in arn or ":listener-rule/" in arn for arn in lingering), lingering
    # ...while each service says it is gone, and the sweep agrees.
    assert really_left(stack, name) == NOTHING
    assert ds_json(stack, "sweep")["orphans"] == []

    again = ds_json(stack, "create", BRANCH, "--source", SOURCE, "--wait")
    assert (again["name"], again["status"]) == (name, "ready"), again
    assert ds_json(stack, "destroy", name, "--wait")["status"] == "destroyed"
    assert really_left(stack, name) == NOTHING
    assert ds_json(stack, "sweep")["orphans"] == []
