"""What the in-process AWS (moto) holds for a staging, asked per service rather than from our
records: the lookups, and the checks that a create made everything and a destroy left nothing.
(tests/present.py asks the same of a sandbox stack in another process.)"""

import boto3

from provisioning.aws import secretsmanager
from tests.conftest import CLUSTER, DOMAIN, HOST_DB, QA_DB, WEB_SERVICE, WORKER_SERVICE


def tagged(name: str) -> list[str]:
    client = boto3.client("resourcegroupstaggingapi")
    mappings = client.get_resources(
        TagFilters=[{"Key": "dynamic-staging", "Values": [name]}])["ResourceTagMappingList"]
    return [m["ResourceARN"] for m in mappings]


def service_status(name: str) -> str | None:
    found = boto3.client("ecs").describe_services(cluster=CLUSTER, services=[name])["services"]
    return found[0]["status"] if found else None


def rules_for(listener_arn: str, host: str) -> list[dict]:
    rules = boto3.client("elbv2").describe_rules(ListenerArn=listener_arn)["Rules"]
    return [r for r in rules for c in r["Conditions"]
            if host in c.get("HostHeaderConfig", {}).get("Values", [])]


def task_definitions(name: str) -> list[str]:
    client = boto3.client("ecs")
    return [arn for status in ("ACTIVE", "INACTIVE")
            for family in (f"ds-{name}-web", f"ds-{name}-worker")
            for arn in client.list_task_definitions(familyPrefix=family,
                                                    status=status)["taskDefinitionArns"]]


def db_instance_ids() -> list[str]:
    return [i["DBInstanceIdentifier"]
            for i in boto3.client("rds").describe_db_instances()["DBInstances"]]


def assert_everything_made(name: str, listener_arn: str, *, dedicated: bool = True) -> None:
    arns = tagged(name)
    kinds = sorted(arn.split(":")[2] + ":" + arn.split(":")[5].split("/")[0] for arn in arns)
    expected = ["ecs:service", "ecs:service", "ecs:task-definition", "ecs:task-definition",
                "elasticloadbalancing:targetgroup"]
    if dedicated:
        expected.append("rds:db")
    assert kinds == sorted(expected), arns
    assert len(rules_for(listener_arn, f"{name}.{DOMAIN}")) == 1
    assert service_status(f"ds-{name}-web") == service_status(f"ds-{name}-worker") == "ACTIVE"
    assert (f"ds-{name}" in db_instance_ids()) is dedicated


def assert_nothing_left(name: str, listener_arn: str) -> None:
    # Deleted ECS services stay listed as INACTIVE (AWS forgets them later); nothing else may.
    left = [arn for arn in tagged(name) if ":service/" not in arn]
    assert left == []
    for service in (f"ds-{name}-web", f"ds-{name}-worker"):
        assert service_status(service) in {None, "INACTIVE"}
    assert rules_for(listener_arn, f"{name}.{DOMAIN}") == []
    assert task_definitions(name) == []
    assert f"ds-{name}" not in db_instance_ids()
    groups = boto3.client("elbv2").describe_target_groups()["TargetGroups"]
    assert [g for g in groups if g["TargetGroupName"] == f"ds-{name}"] == []


def assert_clean(name: str, listener_arn: str) -> None:
    """Nothing left, the login secret included (a destroy after a failure must find it too)."""
    assert_nothing_left(name, listener_arn)
    assert secretsmanager.find_secret_arn(name=f"dynamic-stagings/{name}/login") is None


def assert_host_untouched() -> None:
    assert service_status(WEB_SERVICE) == service_status(WORKER_SERVICE) == "ACTIVE"
    assert {HOST_DB, QA_DB} <= set(db_instance_ids())
