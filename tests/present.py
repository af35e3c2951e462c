"""What of a dynamic staging is really in the sandbox: GetResources lists much that is already
gone (stopped tasks, deleted rules, task definitions being deleted, ...), so each listed ARN is
asked of its own service here, independently of the engine's own check (provisioning/gone.py).
"""

from botocore.exceptions import ClientError


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
