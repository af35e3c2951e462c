"""What of a dynamic staging is really in the sandbox: GetResources lists much that is already
gone (stopped tasks, deleted rules, task definitions being deleted, ...), so each listed ARN is
asked of its own service here, independently of the engine's own check (provisioning/gone.py).
"""

from botocore.exceptions import ClientError

from tests.stack import SandboxStack


def _error(call) -> str:
    try:
        call()
    except ClientError as exc:
        return exc.response["Error"]["Code"]
    return ""


def _present(stack, arn: str) -> bool:
    service, resource = arn.split(":")[2], arn.split(":", 5)[5]
    if service == "ecs" and resource.startswith("task/"):
        found = stack.client("ecs").describe_tasks(cluster=resource.split("/")[1], tasks=[arn])
        return any(t["lastStatus"] != "STOPPED" for t in found["tasks"])
    if service == "ecs" and resource.startswith("service/"):
        found = stack.client("ecs").describe_services(cluster=resource.split("/")[1],
                                                      services=[arn])["services"]
        return any(s["status"] == "ACTIVE" for s in found)
    if service == "ecs" and resource.startswith("task-definition/"):
        try:
            status = stack.client("ecs").describe_task_definition(taskDefinition=arn)[
                "taskDefinition"]["status"]
        except ClientError:
            return False
        return status in {"ACTIVE", "INACTIVE"}
    if service == "elasticloadbalancing" and resource.startswith("listener-rule/"):
        return not _error(lambda: stack.client("elbv2").describe_rules(RuleArns=[arn]))
    if service == "elasticloadbalancing" and resource.startswith("targetgroup/"):
        return not _error(
            lambda: stack.client("elbv2").describe_target_groups(TargetGroupArns=[arn]))
    if service == "rds":
        try:
            found = stack.client("rds").describe_db_instances(
                DBInstanceIdentifier=resource.split(":", 1)[1])["DBInstances"]
        except ClientError:
            return False
        return any(d["DBInstanceStatus"] != "deleting" for d in found)
    if service == "secretsmanager":
        try:
            return "DeletedDate" not in stack.client("secretsmanager").describe_secret(
                SecretId=arn)
        except ClientError:
            return False
    return True


def tagged_and_present(stack, key: str, value: str) -> list[str]:
    """ARNs tagged ``key=value`` that their own service still shows as there."""
    listed = stack.client("resourcegroupstaggingapi").get_resources(
        TagFilters=[{"Key": key, "Values": [value]}])["ResourceTagMappingList"]
    return [m["ResourceARN"] for m in listed if _present(stack, m["ResourceARN"])]


def staging_resources(stack: SandboxStack, name: str) -> dict[str, list[str]]:
    """What AWS holds for the staging, asked per service rather than from our records."""
    listener = stack.aws_env["DS_LISTENER_ARN"]
    domain = stack.aws_env["DS_DOMAIN"]
    cluster = stack.aws_env["DS_CLUSTER"]
    ecs, rds, elbv2 = stack.client("ecs"), stack.client("rds"), stack.client("elbv2")
    services = ecs.describe_services(cluster=cluster, services=[f"ds-{name}-web",
                                                                f"ds-{name}-worker"])
    families = [
        arn
        for family in (f"ds-{name}-web", f"ds-{name}-worker")
        for status in ("ACTIVE", "INACTIVE")
        for arn in ecs.list_task_definitions(familyPrefix=family, status=status)[
            "taskDefinitionArns"]
    ]
    groups = [g["TargetGroupName"] for g in elbv2.describe_target_groups()["TargetGroups"]
              if g["TargetGroupName"] == f"ds-{name}"]
    rules = [r["RuleArn"] for r in elbv2.describe_rules(ListenerArn=listener)["Rules"]
             for c in r["Conditions"] if f"{name}.{domain}" in c.get("Values", [])
             + c.get("HostHeaderConfig", {}).get("Values", [])]
    databases = [d["DBInstanceIdentifier"] for d in rds.describe_db_instances()["DBInstances"]
                 if d["DBInstanceIdentifier"] == f"ds-{name}"]
    # The tagging API keeps listing what is gone (INACTIVE services, stopped tasks, deleted
    # rules, task definitions being deleted): each ARN is asked of its own service.
    tagged = [arn for arn in tagged_and_present(stack, "dynamic-staging", name)
              if ":service/" not in arn]
    return {
        "services": [s["serviceName"] for s in services["services"] if s["status"] == "ACTIVE"],
        "task_definitions": families,
        "target_groups": groups,
        "rules": rules,
        "databases": databases,
        "tagged": tagged,
    }
