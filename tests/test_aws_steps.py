"""Each step against moto: it makes its resource, finds it again when run twice, and the destroy
step removes it (a second destroy is a Skip)."""

from unittest import mock

import boto3
import pytest
from botocore.awsrequest import AWSResponse

from provisioning.aws import base, ecs, elbv2, rds
from provisioning.aws.base import AwsError
from provisioning.errors import ExternalCallFailed, OperationCancelled, StepTimedOut, UserError
from provisioning.models import DbMode, OperationKind
from provisioning.names import MANAGED_BY_KEY, MANAGED_BY_VALUE, STAGING_TAG_KEY
from provisioning.stepkit import Skip
from provisioning.steps import (
    account,
    database,
    handover,
    image,
    report,
    routing,
    services,
    task_definitions,
)
from tests.conftest import (
    CLUSTER,
    DOMAIN,
    QA_DB,
    RELEASE_TAG,
    SNAPSHOT_SOURCES,
    WEB_FAMILY,
    WEB_PORT,
)
from tests.factories import make_operation, make_staging, run_step, step_context

pytestmark = pytest.mark.django_db

NAME = "login-page"
HOST = f"{NAME}.{DOMAIN}"
TAGS = {STAGING_TAG_KEY: NAME, MANAGED_BY_KEY: MANAGED_BY_VALUE}


# --- asking moto directly -----------------------------------------------------------------------

def target_groups(name: str) -> list[dict]:
    groups = boto3.client("elbv2").describe_target_groups()["TargetGroups"]
    return [g for g in groups if g["TargetGroupName"] == name]


def rules_for_host(listener_arn: str, host: str) -> list[dict]:
    rules = boto3.client("elbv2").describe_rules(ListenerArn=listener_arn)["Rules"]
    return [
        r for r in rules
        if any(host in (c.get("HostHeaderConfig", {}).get("Values") or c.get("Values") or [])
               for c in r["Conditions"])
    ]


def live_services(name: str) -> list[dict]:
    client = boto3.client("ecs")
    arns = client.list_services(cluster=CLUSTER)["serviceArns"]
    found = client.describe_services(cluster=CLUSTER, services=arns)["services"] if arns else []
    return [s for s in found if s["serviceName"] == name and s["status"] != "INACTIVE"]


def revisions(family: str, status: str = "ACTIVE") -> list[str]:
    return boto3.client("ecs").list_task_definitions(familyPrefix=family,
                                                     status=status)["taskDefinitionArns"]


def db_instances(identifier: str) -> list[dict]:
    instances = boto3.client("rds").describe_db_instances()["DBInstances"]
    return [i for i in instances if i["DBInstanceIdentifier"] == identifier]


def tags_of(arn: str) -> dict[str, str]:
    client = boto3.client("resourcegroupstaggingapi")
    mappings = client.get_resources(ResourceARNList=[arn])["ResourceTagMappingList"]
    return {t["Key"]: t["Value"] for m in mappings for t in m["Tags"]}


# --- fixtures -----------------------------------------------------------------------------------

@pytest.fixture
def staging(host_env, alice):
    return make_staging(alice, name=NAME, snapshot_id=host_env.host_snapshot)


@pytest.fixture
def create_op(staging):
    return make_operation(staging, OperationKind.CREATE)


@pytest.fixture
def destroy_op(staging):
    return make_operation(staging, OperationKind.DESTROY, status="succeeded")




def destroy_twice(operation, key, run):
    """The destroy step removes the resource; run again, it finds nothing and skips."""
    result = run_step(operation, key, run)
    with pytest.raises(Skip):
        run_step(operation, key, run)
    return result


# --- errors -------------------------------------------------------------------------------------

def test_aws_errors_name_the_call_the_code_and_the_message(host_env):
    with pytest.raises(AwsError) as raised:
        ecs.update_service(cluster=CLUSTER, service="no-such-service", desired_count=1)
    assert (raised.value.call, raised.value.code) == ("ecs:UpdateService",
                                                      "ServiceNotFoundException")
    assert raised.value.message
    # A wrapper that makes two calls names the one that failed.
    missing = host_env.listener_arn.rsplit("/", 1)[0] + "/0000000000000000"
    with pytest.raises(AwsError) as raised:
        elbv2.listener_vpc(listener_arn=missing)
    assert raised.value.call == "elasticloadbalancing:DescribeListeners"
    assert raised.value.code == "ListenerNotFound"


def test_invalid_parameters_keep_the_call_name(host_env):
    with pytest.raises(AwsError) as raised:
        elbv2.create_rule(listener_arn=host_env.listener_arn, priority=1, host="x",
                          target_group_arn="arn:tg", tags={})
    assert (raised.value.call, raised.value.code) == ("elasticloadbalancing:CreateRule",
                                                      "ParamValidationError")


# --- image --------------------------------------------------------------------------------------

def test_image_is_resolved_and_pinned_by_digest(create_op, host_env):
    outputs = run_step(create_op, "image", image.resolve_image_step)
    digest = boto3.client("ecr").describe_images(
        repositoryName="app", imageIds=[{"imageTag": "feature-Login_Page"}]
    )["imageDetails"][0]["imageDigest"]
    assert outputs == {"image": f"{host_env.registry}/app@{digest}", "tag": "feature-Login_Page"}
    create_op.staging.refresh_from_db()
    assert (create_op.staging.image, create_op.staging.image_tag) == (outputs["image"],
                                                                      "feature-Login_Page")
    assert run_step(create_op, "image", image.resolve_image_step) == outputs


def test_image_step_uses_the_requested_tag(staging, host_env):
    operation = make_operation(staging, OperationKind.REDEPLOY, params={"tag": RELEASE_TAG})
    assert run_step(operation, "image", image.resolve_image_step)["tag"] == RELEASE_TAG


def test_a_branch_without_image_is_a_user_error(host_env, alice):
    operation = make_operation(make_staging(alice, branch="feature/never-pushed"))
    with pytest.raises(UserError) as raised:
        run_step(operation, "image", image.resolve_image_step)
    assert raised.value.field == "branch"
    assert "feature-never-pushed" in raised.value.message


def test_a_missing_host_service_is_a_clear_error(create_op, settings):
    settings.DS_WEB_SERVICE = "no-such-service"
    with pytest.raises(UserError, match="no-such-service"):
        run_step(create_op, "image", image.resolve_image_step)


# --- database -----------------------------------------------------------------------------------

def test_database_restored_found_again_and_removed(create_op, destroy_op, host_env):
    outputs = run_step(create_op, "database", database.restore_database)
    assert outputs["db_instance"] == "ds-login-page" and outputs["address"]
    (instance,) = db_instances("ds-login-page")
    assert instance["DBInstanceClass"] == "db.t3.micro"
    assert instance["DBSubnetGroup"]["DBSubnetGroupName"] == "host-staging"
    assert [g["VpcSecurityGroupId"] for g in instance["VpcSecurityGroups"]] == [
        host_env.db_security_group_id]
    assert tags_of(instance["DBInstanceArn"]) == TAGS

    with mock.patch("provisioning.aws.rds.restore_from_snapshot") as restore:
        assert run_step(create_op, "database", database.restore_database) == outputs
    restore.assert_not_called()
    assert len(db_instances("ds-login-page")) == 1

    assert destroy_twice(destroy_op, "database", database.remove_database) == {
        "deleted": "ds-login-page"}
    assert db_instances("ds-login-page") == []


def test_restore_uses_the_snapshot_chosen_at_request_time(staging, host_env):
    staging.source, staging.snapshot_id = QA_DB, host_env.qa_snapshot
    staging.save()
    with mock.patch("provisioning.aws.rds.restore_from_snapshot",
                    wraps=database.rds.restore_from_snapshot) as restore:
        run_step(make_operation(staging), "database", database.restore_database)
    assert restore.call_args.kwargs["snapshot_id"] == host_env.qa_snapshot
    assert restore.call_args.kwargs["instance_class"] == "db.t3.micro"


def test_credentials_of_another_source_are_set_to_the_hosts(staging, host_env):
    staging.source, staging.snapshot_id = QA_DB, host_env.qa_snapshot
    staging.save()
    operation = make_operation(staging)
    run_step(operation, "database", database.restore_database)
    with mock.patch("provisioning.aws.rds.set_master_password",
                    wraps=database.rds.set_master_password) as set_password:
        assert run_step(operation, "db_credentials", database.align_credentials) == {
            "master_password": "set to the host's"}
    set_password.assert_called_once_with(instance_id="ds-login-page",
                                         password=host_env.host_db_password)


def test_credentials_already_being_changed_are_not_changed_again(staging, host_env):
    staging.source, staging.snapshot_id = QA_DB, host_env.qa_snapshot
    staging.save()
    operation = make_operation(staging)
    run_step(operation, "database", database.restore_database)
    real = database.rds.describe_instance
    calls = []

    def pending_then_applied(*, instance_id):
        found = real(instance_id=instance_id)
        calls.append(instance_id)
        pending = {"MasterUserPassword": "****"} if len(calls) == 1 else {}
        return database.rds.DbInstance(**{**found.__dict__, "pending_modifications": pending})

    with mock.patch("provisioning.aws.rds.describe_instance", side_effect=pending_then_applied), \
            mock.patch("provisioning.aws.rds.set_master_password") as set_password:
        run_step(operation, "db_credentials", database.align_credentials)
    set_password.assert_not_called()


def test_credentials_step_skips_for_the_hosts_own_database(create_op):
    with pytest.raises(Skip):
        run_step(create_op, "db_credentials", database.align_credentials)


def test_instance_quota_counts_the_account_s_db_instances(create_op, monkeypatch):
    seeded = len(SNAPSHOT_SOURCES)  # the host's database and the other sources
    assert rds.instance_quota() == rds.Quota(used=seeded, maximum=40)
    run_step(create_op, "database", database.restore_database)
    monkeypatch.setenv("DS_SANDBOX_RDS_INSTANCE_QUOTA", str(seeded + 1))
    quota = rds.instance_quota()
    assert quota == rds.Quota(used=seeded + 1, maximum=seeded + 1) and quota.left == 0


def test_instance_quota_without_a_db_instances_quota_is_an_error(host_env):
    other_quotas = {"AccountQuotas": [
        {"AccountQuotaName": "AllocatedStorage", "Used": 40, "Max": 100000}]}
    base.client("rds").meta.events.register(
        "before-call.rds.DescribeAccountAttributes",
        lambda **kwargs: (AWSResponse("", 200, {}, None), other_quotas))
    with pytest.raises(ExternalCallFailed) as raised:
        rds.instance_quota()
    assert (raised.value.call, raised.value.code) == ("rds:DescribeAccountAttributes",
                                                      "MissingQuota")


def test_restore_waits_for_a_namesake_still_being_deleted(create_op):
    deleting = database.rds.DbInstance(
        identifier="ds-login-page", status="deleting", instance_class="db.t3.micro",
        engine="postgres", address="", port=0, master_username="app", allocated_gb=20,
        subnet_group="", security_group_ids=(),
    )
    real = database.rds.describe_instance
    answers = iter([deleting, deleting, None])

    def describe(*, instance_id):
        if instance_id == "ds-login-page":
            return next(answers, None) or real(instance_id=instance_id)
        return real(instance_id=instance_id)

    with mock.patch("provisioning.aws.rds.describe_instance", side_effect=describe):
        outputs = run_step(create_op, "database", database.restore_database)
    assert outputs["db_instance"] == "ds-login-page"
    assert len(db_instances("ds-login-page")) == 1


# --- task definitions ---------------------------------------------------------------------------

def image_outputs(host_env, digest: str = "sha256:" + "1" * 64) -> dict:
    return {"image": {"image": f"{host_env.registry}/app@{digest}", "tag": "feature-Login_Page"}}


def app_environment(task_definition_arn: str) -> dict[str, str]:
    task = boto3.client("ecs").describe_task_definition(
        taskDefinition=task_definition_arn)["taskDefinition"]
    return {e["name"]: e["value"] for e in task["containerDefinitions"][0]["environment"]}


def test_task_definitions_registered_reused_and_removed(create_op, destroy_op, host_env):
    outputs = image_outputs(host_env)
    web = run_step(create_op, "web_task_definition",
                   task_definitions.register_web_task_definition, outputs)
    worker = run_step(create_op, "worker_task_definition",
                      task_definitions.register_worker_task_definition, outputs)
    assert web["arn"].endswith(":task-definition/ds-login-page-web:1")
    assert worker["arn"].endswith(":task-definition/ds-login-page-worker:1")

    definition = boto3.client("ecs").describe_task_definition(
        taskDefinition=web["arn"], include=["TAGS"])
    assert {t["key"]: t["value"] for t in definition["tags"]} == TAGS
    task = definition["taskDefinition"]
    assert (task["cpu"], task["memory"]) == ("256", "512")
    app, sidecar = task["containerDefinitions"]
    assert app["image"] == outputs["image"]["image"]
    # The host's variables as they are, and the staging's own.
    assert app_environment(web["arn"]) == app_environment(host_env.web_task_definition_arn) | {
        "DYNAMIC_STAGING_NAME": NAME, "REDIS_NAMESPACE": NAME, "DB_INSTANCE_ID": "ds-login-page",
    }
    assert sidecar["image"].startswith("public.ecr.aws/")

    # Run again with the same inputs: the same revision, no new one.
    again = run_step(create_op, "web_task_definition",
                     task_definitions.register_web_task_definition, outputs)
    assert again == web
    assert len(revisions("ds-login-page-web")) == 1

    # A new image makes a new revision.
    newer = run_step(create_op, "web_task_definition",
                     task_definitions.register_web_task_definition,
                     image_outputs(host_env, "sha256:" + "2" * 64))
    assert newer["arn"].endswith(":2")

    result = destroy_twice(destroy_op, "task_definitions",
                           task_definitions.remove_task_definitions)
    assert sorted(result["deleted"]) == [
        "ds-login-page-web:1", "ds-login-page-web:2", "ds-login-page-worker:1"]
    for family in ("ds-login-page-web", "ds-login-page-worker"):
        assert revisions(family, "ACTIVE") == revisions(family, "INACTIVE") == []
    # The host's own definitions are not touched.
    assert revisions(WEB_FAMILY) == [host_env.web_task_definition_arn]


def test_shared_database_keeps_the_hosts_database_settings(host_env, alice):
    staging = make_staging(alice, db_mode=DbMode.SHARED)
    arn = run_step(make_operation(staging), "web_task_definition",
                   task_definitions.register_web_task_definition, image_outputs(host_env))["arn"]
    # No database variable of the staging's own: the app connects where the host's does.
    assert app_environment(arn) == app_environment(host_env.web_task_definition_arn) | {
        "DYNAMIC_STAGING_NAME": NAME, "REDIS_NAMESPACE": NAME}


# --- target group and listener rule --------------------------------------------------------------

def test_target_group_made_found_again_and_removed(create_op, destroy_op, host_env):
    outputs = run_step(create_op, "target_group", routing.create_target_group)
    (group,) = target_groups("ds-login-page")
    assert outputs == {"arn": group["TargetGroupArn"]}
    assert group["VpcId"] == host_env.vpc_id
    assert (group["Port"], group["TargetType"]) == (WEB_PORT, "ip")
    assert group["HealthCheckPath"] == "/healthz"  # the host's
    assert tags_of(group["TargetGroupArn"]) == TAGS

    assert run_step(create_op, "target_group", routing.create_target_group) == outputs
    assert len(target_groups("ds-login-page")) == 1

    destroy_twice(destroy_op, "target_group", routing.remove_target_group)
    assert target_groups("ds-login-page") == []
    assert target_groups("host-web")  # the host's own group stays


def test_listener_rule_made_found_again_and_removed(create_op, destroy_op, host_env):
    group = run_step(create_op, "target_group", routing.create_target_group)
    outputs = run_step(create_op, "listener_rule", routing.create_listener_rule,
                       {"target_group": group})
    (rule,) = rules_for_host(host_env.listener_arn, HOST)
    assert outputs == {"arn": rule["RuleArn"], "priority": int(rule["Priority"])}
    assert outputs["priority"] == routing.choose_priority(set(), NAME)
    assert rule["Actions"][0]["TargetGroupArn"] == group["arn"]

    assert run_step(create_op, "listener_rule", routing.create_listener_rule,
                    {"target_group": group}) == outputs
    assert len(rules_for_host(host_env.listener_arn, HOST)) == 1

    destroy_twice(destroy_op, "listener_rule", routing.remove_listener_rules)
    assert rules_for_host(host_env.listener_arn, HOST) == []
    # Only the listener's default rule is left.
    remaining = boto3.client("elbv2").describe_rules(ListenerArn=host_env.listener_arn)["Rules"]
    assert [r["IsDefault"] for r in remaining] == [True]


def test_rule_removal_also_finds_a_rule_forwarding_to_the_staging_group(
        create_op, destroy_op, host_env):
    group = run_step(create_op, "target_group", routing.create_target_group)
    elbv2.create_rule(listener_arn=host_env.listener_arn, priority=77,
                      host="renamed.example.com", target_group_arn=group["arn"], tags=TAGS)
    assert run_step(destroy_op, "listener_rule", routing.remove_listener_rules)["deleted"]
    rules = boto3.client("elbv2").describe_rules(ListenerArn=host_env.listener_arn)["Rules"]
    assert [r for r in rules if not r["IsDefault"]] == []


# --- services -----------------------------------------------------------------------------------

@pytest.fixture
def service_outputs(create_op, host_env):
    outputs = image_outputs(host_env)
    return {
        "target_group": run_step(create_op, "target_group", routing.create_target_group),
        "web_task_definition": run_step(create_op, "web_task_definition",
                                        task_definitions.register_web_task_definition, outputs),
        "worker_task_definition": run_step(
            create_op, "worker_task_definition",
            task_definitions.register_worker_task_definition, outputs),
    }


def test_web_service_made_found_again_and_removed(create_op, destroy_op, host_env,
                                                  service_outputs):
    outputs = run_step(create_op, "web_service", services.create_web_service, service_outputs)
    (service,) = live_services("ds-login-page-web")
    assert outputs == {"arn": service["serviceArn"]}
    assert service["desiredCount"] == 1
    assert service["launchType"] == "FARGATE"
    assert service["taskDefinition"] == service_outputs["web_task_definition"]["arn"]
    assert service["loadBalancers"] == [{
        "targetGroupArn": service_outputs["target_group"]["arn"],
        "containerName": "web", "containerPort": WEB_PORT,
    }]
    network = service["networkConfiguration"]["awsvpcConfiguration"]
    assert sorted(network["subnets"]) == sorted(host_env.subnet_ids)
    assert network["securityGroups"] == [host_env.security_group_id]
    assert tags_of(service["serviceArn"]) == TAGS

    with mock.patch("provisioning.aws.ecs.create_service") as create:
        assert run_step(create_op, "web_service", services.create_web_service,
                        service_outputs) == outputs
    create.assert_not_called()
    assert len(live_services("ds-login-page-web")) == 1

    destroy_twice(destroy_op, "web_service", services.remove_web_service)
    assert live_services("ds-login-page-web") == []
    assert live_services("host-web")  # the host keeps its service


def test_worker_service_made_found_again_and_removed(create_op, destroy_op, service_outputs):
    outputs = run_step(create_op, "worker_service", services.create_worker_service,
                       service_outputs)
    (service,) = live_services("ds-login-page-worker")
    assert outputs == {"arn": service["serviceArn"]}
    assert service["loadBalancers"] == []
    assert run_step(create_op, "worker_service", services.create_worker_service,
                    service_outputs) == outputs
    assert len(live_services("ds-login-page-worker")) == 1
    destroy_twice(destroy_op, "worker_service", services.remove_worker_service)
    assert live_services("ds-login-page-worker") == []


def test_create_points_an_existing_service_at_the_new_definition(create_op, host_env,
                                                                 service_outputs):
    run_step(create_op, "worker_service", services.create_worker_service, service_outputs)
    newer = run_step(create_op, "worker_task_definition",
                     task_definitions.register_worker_task_definition,
                     image_outputs(host_env, "sha256:" + "3" * 64))
    run_step(create_op, "worker_service", services.create_worker_service,
             service_outputs | {"worker_task_definition": newer})
    (service,) = live_services("ds-login-page-worker")
    assert service["taskDefinition"] == newer["arn"]


def test_redeploy_updates_the_service_and_skips_a_missing_one(staging, create_op, host_env,
                                                              service_outputs):
    run_step(create_op, "web_service", services.create_web_service, service_outputs)
    redeploy = make_operation(staging, OperationKind.REDEPLOY, status="succeeded")
    newer = run_step(redeploy, "web_task_definition",
                     task_definitions.register_web_task_definition,
                     image_outputs(host_env, "sha256:" + "4" * 64))
    outputs = run_step(redeploy, "web_service", services.update_web_service,
                       {"web_task_definition": newer})
    assert outputs["task_definition"] == newer["arn"]
    assert live_services("ds-login-page-web")[0]["taskDefinition"] == newer["arn"]
    with pytest.raises(Skip, match="destroy and create"):
        run_step(redeploy, "worker_service", services.update_worker_service,
                 {"worker_task_definition": newer})


# --- waiting until healthy -----------------------------------------------------------------------

def fake_service(*, running: int, deployments: int = 1, rollout: str = "COMPLETED",
                 status: str = "ACTIVE") -> ecs.Service:
    deployment = ecs.Deployment(status="PRIMARY", rollout_state=rollout, task_definition="td",
                                desired=1, running=running)
    return ecs.Service(
        name="ds-login-page-web", arn="arn:service", status=status, task_definition="td",
        desired=1, running=running, pending=1 - running,
        deployments=(deployment,) * deployments, load_balancers=(), network_configuration={},
    )


def test_wait_web_healthy_on_a_running_service(create_op, service_outputs):
    run_step(create_op, "web_service", services.create_web_service, service_outputs)
    assert run_step(create_op, "web_healthy", services.wait_web_healthy) == {}
    assert "1/1 tasks running" in create_op.steps.get(key="web_healthy").detail


def test_wait_web_healthy_waits_for_tasks_and_healthy_targets(create_op, service_outputs):
    run_step(create_op, "web_service", services.create_web_service, service_outputs)
    answers = iter([
        fake_service(running=0, rollout="IN_PROGRESS"),
        fake_service(running=1, deployments=2),
        fake_service(running=1),
        fake_service(running=1),
    ])
    target_answers = iter([["initial"], ["healthy"]])
    with mock.patch("provisioning.aws.ecs.describe_service",
                    side_effect=lambda **_: next(answers)) as describe, \
            mock.patch("provisioning.aws.elbv2.target_states",
                       side_effect=lambda **_: next(target_answers)):
        run_step(create_op, "web_healthy", services.wait_web_healthy)
    assert describe.call_count == 4


def test_wait_times_out_with_what_it_saw_last(create_op, settings):
    settings.DS_SERVICE_WAIT_SECONDS = 0.05
    with mock.patch("provisioning.aws.ecs.describe_service",
                    return_value=fake_service(running=0, rollout="IN_PROGRESS")), \
            pytest.raises(StepTimedOut) as raised:
        run_step(create_op, "worker_steady", services.wait_worker_steady)
    assert raised.value.code == "Timeout"
    assert "0/1 tasks running" in raised.value.message
    assert "ds-login-page-worker" in raised.value.call


def test_wait_times_out_on_unhealthy_targets(create_op, service_outputs, settings):
    settings.DS_SERVICE_WAIT_SECONDS = 0.05
    run_step(create_op, "web_service", services.create_web_service, service_outputs)
    with mock.patch("provisioning.aws.elbv2.target_states", return_value=["unhealthy"]), \
            pytest.raises(StepTimedOut, match="targets unhealthy"):
        run_step(create_op, "web_healthy", services.wait_web_healthy)


def test_waiting_stops_when_the_operation_is_cancelled(create_op):
    context = step_context(create_op, "worker_steady")
    context.cancelled.set()
    with pytest.raises(OperationCancelled):
        services.wait_worker_steady(context)


# --- account, report, verify, handover -----------------------------------------------------------

def test_account_steps_skip_without_an_account_api(create_op, destroy_op):
    with pytest.raises(Skip, match="DS_ACCOUNT_API_URL"):
        run_step(create_op, "account", account.create_account)
    with pytest.raises(Skip, match="no account"):
        run_step(destroy_op, "account", account.remove_account)


def test_report_sets_the_url(create_op):
    assert run_step(create_op, "report", report.report_ready) == {
        "url": f"http://{HOST}"}
    create_op.staging.refresh_from_db()
    assert create_op.staging.url == f"http://{HOST}"


def test_verify_finds_leftovers_and_passes_when_nothing_is_left(create_op, destroy_op):
    group = run_step(create_op, "target_group", routing.create_target_group)
    run_step(create_op, "listener_rule", routing.create_listener_rule, {"target_group": group})
    with pytest.raises(ExternalCallFailed) as raised:
        run_step(destroy_op, "verify", report.verify_nothing_left)
    assert raised.value.code == "ResourcesLeft"
    assert group["arn"] in raised.value.message
    assert ":listener-rule/" in raised.value.message

    run_step(destroy_op, "listener_rule", routing.remove_listener_rules)
    run_step(destroy_op, "target_group", routing.remove_target_group)
    assert run_step(destroy_op, "verify", report.verify_nothing_left) == {"left": []}


def test_verify_counts_deleted_services_as_gone(create_op, destroy_op, service_outputs):
    run_step(create_op, "web_service", services.create_web_service, service_outputs)
    run_step(create_op, "worker_service", services.create_worker_service, service_outputs)
    with pytest.raises(ExternalCallFailed) as raised:
        run_step(destroy_op, "verify", report.verify_nothing_left)
    assert ":service/host-staging/ds-login-page-web" in raised.value.message
    for key, step in [("web_service", services.remove_web_service),
                      ("worker_service", services.remove_worker_service),
                      ("target_group", routing.remove_target_group),
                      ("task_definitions", task_definitions.remove_task_definitions)]:
        run_step(destroy_op, key, step)
    assert run_step(destroy_op, "verify", report.verify_nothing_left) == {"left": []}


def test_handover_skips_when_no_other_runner_holds_the_staging(destroy_op):
    with pytest.raises(Skip):
        run_step(destroy_op, "handover", handover.wait_for_superseded_runner)


def test_task_status_is_none_for_tasks_and_clusters_ecs_does_not_know(host_env):
    unknown = f"arn:aws:ecs:us-east-1:123456789012:task/{CLUSTER}/0123456789abcdef"
    assert ecs.task_last_status(cluster=CLUSTER, arn=unknown) is None
    assert ecs.task_last_status(cluster="no-such-cluster", arn=unknown) is None


def test_delete_task_definitions_returns_what_aws_refused(host_env):
    failures = ecs.delete_task_definitions(arns=[host_env.web_task_definition_arn])
    assert [f.arn for f in failures] == [host_env.web_task_definition_arn]
    assert "ACTIVE" in failures[0].reason
    assert revisions(WEB_FAMILY) == [host_env.web_task_definition_arn]
