"""What "gone" means: the tagging API lists much that is already gone, so the destroy's last
check and the sweep ask each resource's own service (provisioning/gone.py). Against moto in
process, plus the sandbox's Secrets Manager rules applied for one test at a time."""

import boto3
import pytest

from provisioning import gone
from provisioning.aws import ecs, secretsmanager
from provisioning.config import load_config
from provisioning.errors import ExternalCallFailed
from provisioning.models import OperationKind
from provisioning.names import MANAGED_BY_KEY, MANAGED_BY_VALUE, STAGING_TAG_KEY
from provisioning.steps import account, report, task_definitions
from tests.conftest import CLUSTER, DOMAIN, QA_DB
from tests.factories import make_operation, make_staging, run_tagged_task, step_context

pytestmark = pytest.mark.django_db

NAME = "login-page"
TAGS = {STAGING_TAG_KEY: NAME, MANAGED_BY_KEY: MANAGED_BY_VALUE}
SECRET = f"dynamic-stagings/{NAME}/login"


@pytest.fixture
def destroy_op(host_env, alice):
    staging = make_staging(alice, name=NAME, snapshot_id=host_env.host_snapshot)
    return make_operation(staging, OperationKind.DESTROY, status="succeeded")


def verify(operation) -> dict:
    return report.verify_nothing_left(step_context(operation, "verify"))


def forget_definition(arn: str) -> None:
    client = boto3.client("ecs")
    client.deregister_task_definition(taskDefinition=arn)
    client.delete_task_definitions(taskDefinitions=[arn])


# --- the destroy's last check ---------------------------------------------------------------------


def test_a_stopped_task_still_listed_by_the_tagging_api_is_gone(destroy_op, tasks_keep_running):
    task = run_tagged_task()
    forget_definition(boto3.client("ecs").describe_tasks(
        cluster=CLUSTER, tasks=[task])["tasks"][0]["taskDefinitionArn"])
    with pytest.raises(ExternalCallFailed) as running:
        verify(destroy_op)
    assert running.value.code == "ResourcesLeft"
    assert task in running.value.message

    boto3.client("ecs").stop_task(cluster=CLUSTER, task=task, reason="service deleted")
    listed = boto3.client("resourcegroupstaggingapi").get_resources(
        TagFilters=[{"Key": STAGING_TAG_KEY, "Values": [NAME]}])["ResourceTagMappingList"]
    assert [m["ResourceARN"] for m in listed] == [task]
    assert verify(destroy_op) == {"left": []}


def test_a_secret_scheduled_for_deletion_is_gone_and_a_live_one_is_left(destroy_op):
    arn = secretsmanager.store_secret(name=SECRET, value="pw", tags=TAGS)
    with pytest.raises(ExternalCallFailed) as live:
        verify(destroy_op)
    assert arn in live.value.message

    boto3.client("secretsmanager").delete_secret(SecretId=arn, RecoveryWindowInDays=7)
    assert verify(destroy_op) == {"left": []}


def test_a_type_the_check_cannot_ask_about_is_reported(destroy_op):
    queue = boto3.client("sqs").create_queue(QueueName=f"ds-{NAME}", tags=TAGS)["QueueUrl"]
    arn = boto3.client("sqs").get_queue_attributes(
        QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    with pytest.raises(ExternalCallFailed) as unknown:
        verify(destroy_op)
    assert f"{arn} (a sqs:ds-{NAME}: a type this check cannot ask about" in unknown.value.message


# --- one look per resource type -------------------------------------------------------------------


def test_task_definitions_inactive_are_there_deleted_are_gone(host_env):
    config = load_config()
    client = boto3.client("ecs")
    definition = client.describe_task_definition(
        taskDefinition=host_env.worker_task_definition_arn)["taskDefinition"]
    arn = client.register_task_definition(
        **ecs.registrable(definition) | {"family": f"ds-{NAME}-worker"})[
        "taskDefinition"]["taskDefinitionArn"]
    client.deregister_task_definition(taskDefinition=arn)
    assert gone.still_there(arn, config)
    client.delete_task_definitions(taskDefinitions=[arn])
    assert not gone.still_there(arn, config)


def test_rules_are_gone_once_deleted_or_once_their_listener_is(host_env):
    config = load_config()
    elbv2 = boto3.client("elbv2")

    def rule(priority: int) -> str:
        return elbv2.create_rule(
            ListenerArn=host_env.listener_arn, Priority=priority,
            Conditions=[{"Field": "host-header",
                         "HostHeaderConfig": {"Values": [f"r{priority}.{DOMAIN}"]}}],
            Actions=[{"Type": "forward", "TargetGroupArn": host_env.host_target_group_arn}],
        )["Rules"][0]["RuleArn"]

    first, second = rule(10), rule(11)
    assert gone.still_there(first, config) and gone.still_there(second, config)
    elbv2.delete_rule(RuleArn=first)
    assert not gone.still_there(first, config)
    assert gone.still_there(second, config)
    elbv2.delete_listener(ListenerArn=host_env.listener_arn)
    assert not gone.still_there(second, config)


def test_services_draining_or_inactive_and_databases_deleting_are_gone(host_env):
    config = load_config()
    service = boto3.client("ecs").describe_services(
        cluster=CLUSTER, services=["host-worker"])["services"][0]["serviceArn"]
    database = boto3.client("rds").describe_db_instances(
        DBInstanceIdentifier=QA_DB)["DBInstances"][0]["DBInstanceArn"]
    assert gone.still_there(service, config) and gone.still_there(database, config)
    boto3.client("ecs").update_service(cluster=CLUSTER, service="host-worker", desiredCount=0)
    boto3.client("ecs").delete_service(cluster=CLUSTER, service="host-worker")
    boto3.client("rds").delete_db_instance(DBInstanceIdentifier=QA_DB, SkipFinalSnapshot=True)
    assert not gone.still_there(service, config)
    assert not gone.still_there(database, config)


def test_what_still_looks_present_is_asked_again_with_backoff(host_env, settings):
    settings.DS_POLL_SECONDS = 1.0
    config = load_config()
    group = boto3.client("elbv2").create_target_group(
        Name=f"ds-{NAME}", Protocol="HTTP", Port=80, VpcId=host_env.vpc_id, TargetType="ip",
    )["TargetGroups"][0]["TargetGroupArn"]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 3:  # gone on the fourth look, as an eventually consistent API may
            boto3.client("elbv2").delete_target_group(TargetGroupArn=group)

    assert gone.left_after_settling([group], config, sleep=sleep) == []
    # Doubling, the last cut to what is left of the budget of SETTLE_POLLS intervals.
    assert slept[:2] == [1.0, 2.0] and slept[2] == pytest.approx(3.0, abs=0.1)

    kept = boto3.client("elbv2").create_target_group(
        Name=f"ds-{NAME}-2", Protocol="HTTP", Port=80, VpcId=host_env.vpc_id, TargetType="ip",
    )["TargetGroups"][0]["TargetGroupArn"]
    slept.clear()
    assert gone.left_after_settling([kept], config, sleep=slept.append) == [kept]
    assert sum(slept) == pytest.approx(gone.SETTLE_POLLS * config.poll_seconds, abs=0.05)


def test_a_type_without_a_check_is_not_waited_for(host_env):
    arn = "arn:aws:sqs:us-east-1:123456789012:ds-login-page"
    slept: list[float] = []
    assert gone.left_after_settling([arn], load_config(), sleep=slept.append) == [arn]
    assert slept == []


# --- DeleteTaskDefinitions answers 200 with failures ----------------------------------------------


def test_refusals_other_than_already_gone_fail_the_step(destroy_op, host_env, monkeypatch):
    client = boto3.client("ecs")
    definition = client.describe_task_definition(
        taskDefinition=host_env.web_task_definition_arn)["taskDefinition"]
    ours = client.register_task_definition(
        **ecs.registrable(definition) | {"family": f"ds-{NAME}-web"})[
        "taskDefinition"]["taskDefinitionArn"]
    # Another writer registers a revision between our listing and our delete: it is ACTIVE.
    late = client.register_task_definition(
        **ecs.registrable(definition) | {"family": f"ds-{NAME}-worker"})[
        "taskDefinition"]["taskDefinitionArn"]
    listed = task_definitions._revisions
    monkeypatch.setattr(task_definitions, "_revisions", lambda ctx, status: (
        listed(ctx, status) + [late] if status == "INACTIVE" else [ours]))

    with pytest.raises(ExternalCallFailed) as refused:
        task_definitions.remove_task_definitions(step_context(destroy_op, "task_definitions"))
    assert refused.value.call == "ecs:DeleteTaskDefinitions"
    assert late in refused.value.message
    assert "ACTIVE" in refused.value.message
    assert ecs.task_definition_status(arn=ours) is None


def test_refusals_for_revisions_already_gone_are_fine(host_env):
    config = load_config()
    failures = ecs.delete_task_definitions(
        arns=[f"{host_env.web_task_definition_arn.rsplit(':', 1)[0]}:99"])
    assert [f.reason for f in failures] and "does not exist" in failures[0].reason
    gone.raise_refused_deletions(failures, config)


# --- the login secret's name after a destroy ------------------------------------------------------


def test_a_secret_scheduled_for_deletion_is_restored_with_the_new_value(destroy_op,
                                                                         aws_secret_rules):
    arn = secretsmanager.store_secret(name=SECRET, value="first", tags={"old": "tag"})
    boto3.client("secretsmanager").delete_secret(SecretId=arn, RecoveryWindowInDays=7)

    assert secretsmanager.store_secret(name=SECRET, value="second", tags=TAGS) == arn
    described = boto3.client("secretsmanager").describe_secret(SecretId=arn)
    assert "DeletedDate" not in described
    assert {t["Key"]: t["Value"] for t in described["Tags"]}.items() >= TAGS.items()
    assert secretsmanager.read_secret(secret_id=arn) == "second"


def test_a_force_deleted_name_is_waited_for_with_a_bound(destroy_op, aws_secret_rules, settings):
    secretsmanager.store_secret(name=SECRET, value="first", tags=TAGS)
    secretsmanager.delete_secret(name=SECRET)
    with pytest.raises(secretsmanager.NameNotFree) as not_free:
        secretsmanager.store_secret(name=SECRET, value="second", tags=TAGS)
    assert not_free.value.code == "InvalidRequestException"

    # 12 polls of 0.01 s are too short for the 0.3 s AWS takes here: the step says why.
    settings.DS_POLL_SECONDS = 0.01
    with pytest.raises(secretsmanager.NameNotFree):
        account._store_login_secret(step_context(destroy_op, "account"), "second")

    settings.DS_POLL_SECONDS = 0.1
    arn = account._store_login_secret(step_context(destroy_op, "account"), "second")
    assert secretsmanager.read_secret(secret_id=arn) == "second"
    assert secretsmanager.find_secret_arn(name=SECRET) == arn
