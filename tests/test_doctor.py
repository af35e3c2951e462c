"""``ds doctor``: each check against a host broken in that one way (moto's ``host_env``), the
whole report on the healthy host, the command's output and exit codes, and the report on the
sandbox (e2e)."""

import json
import socket
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from django.core.management import call_command

from provisioning import doctor, permissions
from provisioning.aws import ecs as ecs_wrapper
from provisioning.aws import iam, rds
from provisioning.aws.base import AwsError
from provisioning.config import load_config
from tests.conftest import (
    CLUSTER,
    HOST_DB,
    QA_DB,
    REGION,
    SNAPSHOT_SOURCES,
    WEB_PORT,
    WEB_SERVICE,
)
from tests.stack import running_stack

pytestmark = pytest.mark.django_db
ACCOUNT = "123456789012"


@pytest.fixture
def healthy(host_env, monkeypatch):
    """host_env as real AWS would answer for it: ECS reports its default (enabled) long ARN
    settings, which moto only does once they are put; RDS's account quota, which moto does not
    implement, is answered at our wrapper."""
    for name in doctor.LONG_ARN_SETTINGS:
        boto3.client("ecs").put_account_setting(name=name, value="enabled")
    monkeypatch.setattr(rds, "instance_quota", lambda: rds.Quota(used=3, maximum=40))
    return host_env


def report() -> doctor.Report:
    return doctor.run_checks(load_config())


def lines(name: str, found: doctor.Report | None = None) -> list[doctor.Check]:
    found = found or report()
    matching = [c for c in found.checks if c.check == name]
    assert matching, f"no {name!r} line in {[c.check for c in found.checks]}"
    return matching


def line(name: str, found: doctor.Report | None = None) -> doctor.Check:
    (only,) = lines(name, found)
    return only


def failing(found: doctor.Report) -> set[str]:
    return {c.check for c in found.checks if c.status == doctor.FAIL}


# --- the whole report --------------------------------------------------------------------------

def test_the_healthy_host_passes(healthy):
    found = report()
    assert found.passed, [c for c in found.checks if c.status == doctor.FAIL]
    statuses = {c.check: c.status for c in found.checks}
    for name in ("credentials", "cluster", "web service", "worker service", "web container",
                 "listener", "listener rules", "target groups", "health check",
                 f"snapshot source {HOST_DB}", f"snapshot source {QA_DB}",
                 "host DB password secret", "account API", "ECS long ARNs",
                 "DB instance quota"):
        assert statuses[name] == doctor.OK, (name, statuses)
    assert f"account {ACCOUNT}" in line("credentials", found).found
    assert REGION in line("credentials", found).found
    assert line("web container", found).found.startswith(f"web:{WEB_PORT}")
    # moto has no policy simulator: the check says it could not tell, and fails nothing.
    assert line("IAM permissions", found).status == doctor.WARN


def test_one_failing_call_fails_only_its_check(healthy, monkeypatch):
    def refused(**_):
        raise AwsError("ecs:DescribeClusters", "AccessDeniedException", "not authorized")

    monkeypatch.setattr("provisioning.aws.ecs.describe_cluster", refused)
    found = report()
    assert failing(found) == {"cluster"}
    assert line("cluster", found).found == (
        "ecs:DescribeClusters: AccessDeniedException: not authorized")
    assert line("web service", found).status == doctor.OK


def test_an_unexpected_error_is_a_line_not_a_traceback(healthy, monkeypatch):
    def broken(**_):
        raise KeyError("LoadBalancers")

    monkeypatch.setattr("provisioning.aws.elbv2.describe_load_balancer", broken)
    found = report()
    assert failing(found) == {"listener"}
    assert "KeyError" in line("listener", found).found


# --- ECS ---------------------------------------------------------------------------------------

def test_no_region(healthy, monkeypatch, tmp_path):
    for variable in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(variable)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    credentials = line("credentials")
    assert credentials.status == doctor.FAIL and credentials.found == "no region configured"
    assert "AWS_REGION" in credentials.fix


def test_a_host_service_being_deleted(healthy, monkeypatch):
    described = ecs_wrapper.describe_service

    def draining(*, cluster, service):
        found = described(cluster=cluster, service=service)
        return replace(found, status="DRAINING") if service == "host-worker" else found

    monkeypatch.setattr(ecs_wrapper, "describe_service", draining)
    worker = line("worker service")
    assert worker.status == doctor.FAIL and "DRAINING" in worker.found


def test_a_cluster_that_does_not_exist(healthy, settings):
    settings.DS_CLUSTER = "no-such-cluster"
    found = report()
    assert line("cluster", found).status == doctor.FAIL
    assert "DS_CLUSTER" in line("cluster", found).fix
    assert {"web service", "worker service"} <= failing(found)


def test_a_missing_web_service(healthy):
    ecs = boto3.client("ecs")
    ecs.update_service(cluster=CLUSTER, service=WEB_SERVICE, desiredCount=0)
    ecs.delete_service(cluster=CLUSTER, service=WEB_SERVICE)
    found = report()
    web = line("web service", found)
    assert web.status == doctor.FAIL and "not found" in web.found
    assert "DS_WEB_SERVICE" in web.fix
    assert line("health check", found).status == doctor.FAIL
    assert line("worker service", found).status == doctor.OK


def test_a_worker_on_ec2_with_bridge_networking(healthy, settings):
    ecs = boto3.client("ecs")
    definition = ecs.register_task_definition(
        family="ec2-worker", requiresCompatibilities=["EC2"], networkMode="bridge",
        containerDefinitions=[{"name": "worker", "image": "app:main", "memory": 256}],
    )["taskDefinition"]["taskDefinitionArn"]
    ecs.create_service(cluster=CLUSTER, serviceName="ec2-worker", taskDefinition=definition,
                       desiredCount=1, launchType="EC2")
    settings.DS_WORKER_SERVICE = "ec2-worker"
    worker = line("worker service")
    assert worker.status == doctor.FAIL
    assert "awsvpc" in worker.found


def test_a_task_definition_that_fargate_cannot_run(healthy):
    ecs = boto3.client("ecs")
    definition = ecs.register_task_definition(
        family="host-worker", requiresCompatibilities=["EC2"], networkMode="bridge",
        containerDefinitions=[{"name": "worker", "image": "app:main", "memory": 256}],
    )["taskDefinition"]["taskDefinitionArn"]
    ecs.update_service(cluster=CLUSTER, service="host-worker", taskDefinition=definition)
    found = line("worker task definition")
    assert found.status == doctor.FAIL
    assert "not FARGATE" in found.found and "network mode bridge" in found.found


def test_containers_bigger_than_a_staging_warn(healthy, settings):
    settings.DS_WEB_CPU, settings.DS_WEB_MEMORY = "256", "512"
    web = line("web task definition")
    assert web.status == doctor.WARN
    assert "832 CPU units and 1664 MiB" in web.found and "scales" in web.found
    assert "DS_WEB_MEMORY" in web.fix
    settings.DS_WEB_CPU, settings.DS_WEB_MEMORY = "1024", "4096"
    assert line("web task definition").status == doctor.OK


def test_a_load_balancer_naming_a_container_the_task_lacks(healthy, settings):
    ecs = boto3.client("ecs")
    ecs.create_service(
        cluster=CLUSTER, serviceName="renamed-web", taskDefinition=healthy.web_task_definition_arn,
        desiredCount=1, launchType="FARGATE",
        networkConfiguration={"awsvpcConfiguration": {
            "subnets": list(healthy.subnet_ids), "securityGroups": [healthy.security_group_id]}},
        loadBalancers=[{"targetGroupArn": healthy.host_target_group_arn,
                        "containerName": "app", "containerPort": WEB_PORT}],
    )
    settings.DS_WEB_SERVICE = "renamed-web"
    container = line("web container")
    assert container.status == doctor.FAIL and "'app'" in container.found


# --- load balancer -----------------------------------------------------------------------------

def test_a_listener_that_does_not_exist(healthy, settings):
    settings.DS_LISTENER_ARN = healthy.listener_arn[:-4] + "0000"
    found = report()
    assert line("listener", found).status == doctor.FAIL
    assert "DS_LISTENER_ARN" in line("listener", found).fix
    assert not [c for c in found.checks if c.check == "listener rules"]


def _forwarding_rules(healthy, count: int, *, start: int = 0) -> None:
    """``count`` rules, each forwarding to a target group of its own, spread over the stagings'
    listener and a second listener of the same load balancer."""
    elbv2 = boto3.client("elbv2")
    other = elbv2.create_listener(
        LoadBalancerArn=healthy.load_balancer_arn, Protocol="HTTP", Port=8080,
        DefaultActions=[{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404"}}],
    )["Listeners"][0]["ListenerArn"]
    for number in range(start, start + count):
        group = elbv2.create_target_group(
            Name=f"tg-{number}", Protocol="HTTP", Port=80, VpcId=healthy.vpc_id, TargetType="ip",
        )["TargetGroups"][0]["TargetGroupArn"]
        elbv2.create_rule(
            ListenerArn=healthy.listener_arn if number % 2 else other, Priority=number + 1,
            Conditions=[{"Field": "host-header", "Values": [f"s{number}.dynamic.test"]}],
            Actions=[{"Type": "forward", "TargetGroupArn": group}],
        )


def test_a_load_balancer_full_of_rules_and_target_groups(healthy):
    _forwarding_rules(healthy, 100)
    found = report()
    rules, groups = line("listener rules", found), line("target groups", found)
    assert rules.status == doctor.FAIL
    assert rules.found.startswith("100 of 100 rules on all listeners")
    assert groups.status == doctor.FAIL and groups.found.startswith("100 of 100")


def test_a_load_balancer_nearly_full_warns(healthy):
    _forwarding_rules(healthy, 85)
    found = report()
    assert line("listener rules", found).status == doctor.WARN
    assert "room for 15 more" in line("listener rules", found).found
    assert line("target groups", found).status == doctor.WARN


def test_the_host_health_check_is_reported(healthy):
    boto3.client("elbv2").modify_target_group(
        TargetGroupArn=healthy.host_target_group_arn, HealthCheckPath="/healthz",
        Matcher={"HttpCode": "200-299"},
    )
    check = line("health check")
    assert check.status == doctor.OK
    assert "/healthz" in check.found and "200-299" in check.found


def test_a_host_target_group_that_is_gone(healthy, settings):
    ecs = boto3.client("ecs")
    gone = healthy.host_target_group_arn.rsplit("/", 1)[0] + "/0000000000000000"
    ecs.create_service(
        cluster=CLUSTER, serviceName="orphan-web", taskDefinition=healthy.web_task_definition_arn,
        desiredCount=1, launchType="FARGATE",
        networkConfiguration={"awsvpcConfiguration": {
            "subnets": list(healthy.subnet_ids), "securityGroups": [healthy.security_group_id]}},
        loadBalancers=[{"targetGroupArn": gone, "containerName": "web",
                        "containerPort": WEB_PORT}],
    )
    settings.DS_WEB_SERVICE = "orphan-web"
    check = line("health check")
    assert check.status == doctor.FAIL and "gone" in check.found


# --- RDS ---------------------------------------------------------------------------------------

def test_a_source_without_an_available_snapshot(healthy, monkeypatch):
    """Its only snapshot still being taken (moto makes every snapshot available at once)."""
    listed = rds.list_snapshots

    def qa_still_snapshotting(*, instance_id):
        snapshots = listed(instance_id=instance_id)
        if instance_id == QA_DB:
            return [replace(s, status="creating") for s in snapshots]
        return snapshots

    monkeypatch.setattr(rds, "list_snapshots", qa_still_snapshotting)
    found = report()
    qa = line(f"snapshot source {QA_DB}", found)
    assert qa.status == doctor.FAIL and "no available snapshot" in qa.found
    assert line(f"snapshot source {HOST_DB}", found).status == doctor.OK


def test_a_source_that_does_not_exist(healthy, settings):
    settings.DS_SNAPSHOT_SOURCES = [HOST_DB, "gone-db"]
    settings.DS_SOURCE_DB_SECRETS = {"gone-db": healthy.secret_arn}
    gone = line("snapshot source gone-db")
    assert gone.status == doctor.FAIL and "no such DB instance" in gone.found


def test_an_old_snapshot_warns(healthy, monkeypatch):
    later = datetime.now(UTC) + timedelta(days=8)

    class EightDaysLater(datetime):
        @classmethod
        def now(cls, tz=None):
            return later

    monkeypatch.setattr(doctor, "datetime", EightDaysLater)
    host = line(f"snapshot source {HOST_DB}")
    assert host.status == doctor.WARN and "8 days old" in host.found


@pytest.mark.parametrize(("used", "status"), [(40, doctor.FAIL), (36, doctor.WARN),
                                               (35, doctor.OK)])
def test_db_instance_quota(healthy, monkeypatch, used, status):
    monkeypatch.setattr(rds, "instance_quota", lambda: rds.Quota(used=used, maximum=40))
    quota = line("DB instance quota")
    assert quota.status == status
    assert quota.found.startswith(f"{used} of 40 DB instances")


def test_db_instance_quota_unanswered_fails_with_the_reason(host_env, monkeypatch):
    def refused():
        raise AwsError("rds:DescribeAccountAttributes", "AccessDenied", "not allowed")

    monkeypatch.setattr(rds, "instance_quota", refused)
    quota = line("DB instance quota")
    assert quota.status == doctor.FAIL and "AccessDenied" in quota.found


# --- secrets -----------------------------------------------------------------------------------

def test_an_unreadable_secret(healthy, settings):
    settings.DS_HOST_DB_PASSWORD_SECRET = "no/such-secret"
    secret = line("host DB password secret")
    assert secret.status == doctor.FAIL
    assert "ResourceNotFoundException" in secret.found
    assert "Set DS_HOST_DB_PASSWORD_SECRET to an existing secret" in secret.fix


def test_a_secret_the_dashboard_may_not_read(healthy, monkeypatch):
    def refused(*, secret_id):
        raise AwsError("secretsmanager:GetSecretValue", "AccessDeniedException", "no")

    monkeypatch.setattr("provisioning.aws.secretsmanager.read_secret", refused)
    secret = line("host DB password secret")
    assert secret.status == doctor.FAIL and "AccessDeniedException" in secret.found
    assert "secretsmanager:GetSecretValue" in secret.fix


@pytest.mark.parametrize(("value", "problem"), [
    ('{"username": "app"}', 'without a "password"'),
    ('{"username": "app", "password": null}', 'without a "password"'),
    ('{"username": "app", "password": "sp ace-in-it"}', "' '"),
    ("pass@word-long", "'@'"),
    ('quote"password', "'\"'"),
    ("slash/password", "'/'"),
    ("Sh0rt", "shorter than the 8"),
])
def test_a_secret_of_the_wrong_shape(healthy, settings, value, problem):
    arn = boto3.client("secretsmanager").create_secret(
        Name="bad/db-password", SecretString=value)["ARN"]
    settings.DS_HOST_DB_PASSWORD_SECRET = arn
    found = report()
    secret = line("host DB password secret", found)
    assert secret.status == doctor.FAIL
    assert problem in secret.found
    password = json.loads(value).get("password") if value.startswith("{") else value
    if password:
        assert password not in json.dumps(found.as_list())


@pytest.mark.parametrize(
    "value", ["a-plain-password", '{"username": "app", "password": "x-9yZ_w!"}'])
def test_plain_and_rds_managed_secrets_pass(healthy, settings, value):
    arn = boto3.client("secretsmanager").create_secret(Name="good", SecretString=value)["ARN"]
    settings.DS_HOST_DB_PASSWORD_SECRET = arn
    assert line("host DB password secret").status == doctor.OK


def test_a_source_needing_the_host_password_without_one(healthy, settings):
    settings.DS_HOST_DB_PASSWORD_SECRET = ""
    secret = line("host DB password secret")
    assert secret.status == doctor.FAIL
    assert "DS_HOST_DB_PASSWORD_SECRET" in secret.found and QA_DB in secret.found
    assert "DS_SOURCE_DB_SECRETS" in secret.fix


def test_sources_with_their_own_secrets_need_no_host_password(healthy, settings):
    arn = boto3.client("secretsmanager").create_secret(
        Name="qa/db", SecretString='{"username": "app", "password": "qa-db-password"}')["ARN"]
    settings.DS_HOST_DB_PASSWORD_SECRET = ""
    settings.DS_SOURCE_DB_SECRETS = {source: arn for source in SNAPSHOT_SOURCES
                                     if source != HOST_DB}
    found = report()
    assert line("host DB password secret", found).status == doctor.OK
    assert line(f"source secret {QA_DB}", found).status == doctor.OK
    settings.DS_SOURCE_DB_SECRETS = {QA_DB: "qa/missing"}
    assert line(f"source secret {QA_DB}").status == doctor.FAIL


# --- account API -------------------------------------------------------------------------------

def test_an_account_api_that_answers(healthy, settings, httpserver):
    httpserver.expect_request("/accounts", method="HEAD").respond_with_data("", status=405)
    settings.DS_ACCOUNT_API_URL = httpserver.url_for("/accounts")
    settings.DS_ACCOUNT_API_TOKEN = "token"
    api = line("account API")
    assert api.status == doctor.OK and "HTTP 405" in api.found
    settings.DS_ACCOUNT_API_TOKEN = ""
    api = line("account API")
    assert api.status == doctor.WARN and "DS_ACCOUNT_API_TOKEN is not set" in api.found


def test_an_account_api_that_is_down(healthy, settings):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.DS_ACCOUNT_API_URL = f"http://127.0.0.1:{port}/accounts"
    api = line("account API")
    assert api.status == doctor.FAIL and "no answer" in api.found


def test_an_account_api_per_staging_cannot_be_checked_yet(healthy, settings):
    settings.DS_ACCOUNT_API_URL = "https://{host}/internal/accounts"
    api = line("account API")
    assert api.status == doctor.OK and "cannot be checked" in api.found
    settings.DS_ACCOUNT_API_URL = "ftp://{host}/accounts"
    assert line("account API").status == doctor.FAIL


# --- ECS long ARNs -----------------------------------------------------------------------------

def test_long_arn_format_disabled(healthy):
    boto3.client("ecs").put_account_setting(name="taskLongArnFormat", value="disabled")
    arns = line("ECS long ARNs")
    assert arns.status == doctor.FAIL and "taskLongArnFormat disabled" in arns.found


def test_long_arn_format_not_reported_warns(host_env, monkeypatch):
    monkeypatch.setattr(rds, "instance_quota", lambda: rds.Quota(used=3, maximum=40))
    assert line("ECS long ARNs").status == doctor.WARN


# --- IAM ---------------------------------------------------------------------------------------

def _simulator(denied: set[str]):
    """A policy allowing every engine action but ``denied``, with its conditions honoured as
    IAM does: a statement whose condition key is missing from the context does not allow."""
    statements = {a: s for s in permissions.STATEMENTS for a in s.actions}
    calls = []

    def simulate(*, principal_arn, actions, resource_arns=None, context=None):
        calls.append((principal_arn, tuple(actions), tuple(resource_arns or ["*"])))
        results = []
        for action in actions:
            needed = doctor._context_for(statements[action].condition)
            allowed = action not in denied and all(
                (context or {}).get(k) == v for k, v in needed.items())
            results.append(iam.Evaluation(action, (resource_arns or ["*"])[0],
                                          "allowed" if allowed else "implicitDeny"))
        return results

    return simulate, calls


def test_denied_actions_fail(healthy, monkeypatch):
    simulate, calls = _simulator({"ecs:CreateService", "rds:RestoreDBInstanceFromDBSnapshot"})
    monkeypatch.setattr(iam, "simulate_principal_policy", simulate)
    check = line("IAM permissions")
    assert check.status == doctor.FAIL
    assert "2 actions: ecs:CreateService, rds:RestoreDBInstanceFromDBSnapshot" in check.found
    assert {principal for principal, _, _ in calls} == {f"arn:aws:iam::{ACCOUNT}:user/moto"}


def test_resource_scoped_statements_are_simulated_on_their_resources(healthy, monkeypatch,
                                                                    settings):
    simulate, calls = _simulator(set())
    monkeypatch.setattr(iam, "simulate_principal_policy", simulate)
    line("IAM permissions")
    resources = {actions: arns for _, actions, arns in calls}
    # A secret named gets the suffix Secrets Manager appends to a name; an ARN is taken as is.
    assert resources[("secretsmanager:GetSecretValue",)] == (
        f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:"
        f"{settings.DS_HOST_DB_PASSWORD_SECRET}-doctor",)
    settings.DS_HOST_DB_PASSWORD_SECRET = healthy.secret_arn
    calls.clear()
    line("IAM permissions")
    resources = {actions: arns for _, actions, arns in calls}
    assert resources[("secretsmanager:GetSecretValue",)] == (healthy.secret_arn,)
    login = next(arns for actions, arns in resources.items()
                 if "secretsmanager:PutSecretValue" in actions)
    assert login == (f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:"
                     "dynamic-stagings/doctor-check",)


def test_all_actions_allowed_pass(healthy, monkeypatch):
    simulate, _ = _simulator(set())
    monkeypatch.setattr(iam, "simulate_principal_policy", simulate)
    check = line("IAM permissions")
    assert check.status == doctor.OK
    assert f"all {len(permissions.engine_actions())} engine actions" in check.found


def test_a_refused_simulation_warns(healthy, monkeypatch):
    def refused(**_):
        raise AwsError("iam:SimulatePrincipalPolicy", "AccessDenied", "not authorized")

    monkeypatch.setattr(iam, "simulate_principal_policy", refused)
    check = line("IAM permissions")
    assert check.status == doctor.WARN and "AccessDenied" in check.found
    assert "iam:SimulatePrincipalPolicy" in check.fix


def test_a_principal_iam_does_not_know_warns(healthy, monkeypatch):
    def unknown(**_):
        raise AwsError("iam:SimulatePrincipalPolicy", "NoSuchEntity", "no user moto")

    monkeypatch.setattr(iam, "simulate_principal_policy", unknown)
    check = line("IAM permissions")
    assert check.status == doctor.WARN and "NoSuchEntity" in check.found
    assert "own role" in check.fix


def test_an_assumed_role_is_simulated_as_its_role_with_its_path(aws):
    arn = boto3.client("iam").create_role(
        RoleName="dashboard", Path="/aws-reserved/sso/", AssumeRolePolicyDocument="{}",
    )["Role"]["Arn"]
    assumed = f"arn:aws:sts::{ACCOUNT}:assumed-role/dashboard/alice@example.com"
    assert doctor._policy_source(assumed) == arn
    assert doctor._policy_source(f"arn:aws:sts::{ACCOUNT}:assumed-role/other/s") == (
        f"arn:aws:iam::{ACCOUNT}:role/other")
    assert doctor._policy_source(f"arn:aws:iam::{ACCOUNT}:root") is None


def test_resource_scoped_statements_are_simulated_on_a_resource_they_cover():
    pattern = f"arn:aws:secretsmanager:*:*:secret:{permissions.LOGIN_SECRET_PREFIX}*"
    assert doctor._resource_for(pattern, REGION, ACCOUNT) == (
        f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:dynamic-stagings/doctor-check")
    assert doctor._resource_for("*", REGION, ACCOUNT) == "*"


# --- the command -------------------------------------------------------------------------------

def test_the_command_prints_json_and_exits_0_on_the_healthy_host(healthy, capsys):
    call_command("ds", "doctor", "--json")
    printed = json.loads(capsys.readouterr().out)
    assert printed and all(set(item) == {"check", "status", "found", "fix"} for item in printed)
    assert not [item for item in printed if item["status"] == "fail"]


def test_the_command_exits_1_when_a_check_fails(healthy, settings, capsys):
    settings.DS_WEB_SERVICE = "no-such-service"
    with pytest.raises(SystemExit) as exited:
        call_command("ds", "doctor")
    assert exited.value.code == 1
    out, err = capsys.readouterr()
    assert "fail  web service: no-such-service: not found" in out
    assert "fix: Set DS_WEB_SERVICE" in out
    assert "check(s) failed" in err


# --- the sandbox -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with running_stack(tmp_path_factory.mktemp("doctor"), 0.01) as stack:
        yield stack


@pytest.mark.e2e
def test_doctor_passes_on_the_sandbox(stack):
    checked = stack.manage("ds", "doctor", "--json")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    found = {item["check"]: item for item in json.loads(checked.stdout)}
    assert not [item for item in found.values() if item["status"] == "fail"]
    for name in ("credentials", "cluster", "web service", "listener", "listener rules",
                 "ECS long ARNs", "DB instance quota", "account API",
                 "host DB password secret"):
        assert found[name]["status"] == "ok", found[name]
    # The sandbox's caller is no IAM user or role: IAM cannot simulate it.
    assert found["IAM permissions"]["status"] == "warn"
    assert "NoSuchEntity" in found["IAM permissions"]["found"]


@pytest.mark.e2e
def test_the_sandbox_answers_effective_ecs_settings_like_aws(stack):
    ecs = stack.client("ecs")
    effective = {s["name"]: s["value"] for s in ecs.list_account_settings(
        effectiveSettings=True)["settings"]}
    assert effective["serviceLongArnFormat"] == effective["taskLongArnFormat"] == "enabled"
    assert ecs.list_account_settings()["settings"] == []  # only what was put, as on AWS
    ecs.put_account_setting(name="taskLongArnFormat", value="disabled")
    try:
        only = ecs.list_account_settings(effectiveSettings=True, name="taskLongArnFormat")
        assert [(s["name"], s["value"]) for s in only["settings"]] == [
            ("taskLongArnFormat", "disabled")]
    finally:
        ecs.put_account_setting(name="taskLongArnFormat", value="enabled")


@pytest.mark.e2e
def test_the_sandbox_answers_the_rds_quota(stack):
    quotas = {q["AccountQuotaName"]: q for q in
              stack.client("rds").describe_account_attributes()["AccountQuotas"]}
    instances = stack.client("rds").describe_db_instances()["DBInstances"]
    assert quotas["DBInstances"]["Used"] == len(instances) > 0
    assert quotas["DBInstances"]["Max"] == 40


@pytest.mark.e2e
def test_the_sandbox_simulates_identity_policies(stack):
    client = stack.client("iam")
    with pytest.raises(client.exceptions.NoSuchEntityException):
        client.simulate_principal_policy(
            PolicySourceArn=f"arn:aws:iam::{ACCOUNT}:role/nobody", ActionNames=["ecs:ListTasks"])
    role = client.create_role(RoleName="doctor-dashboard", Path="/team/",
                              AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    client.put_role_policy(RoleName="doctor-dashboard", PolicyName="engine",
                           PolicyDocument=permissions.policy_json())
    client.put_role_policy(RoleName="doctor-dashboard", PolicyName="no-deletes",
                           PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
                               {"Effect": "Deny", "Action": "rds:Delete*", "Resource": "*"}]}))

    def decisions(actions, context=None, resources=None):
        kwargs = {"PolicySourceArn": role, "ActionNames": actions}
        if context:
            kwargs["ContextEntries"] = [{"ContextKeyName": k, "ContextKeyValues": [v],
                                         "ContextKeyType": "string"} for k, v in context.items()]
        if resources:
            kwargs["ResourceArns"] = resources
        return {r["EvalActionName"]: r["EvalDecision"] for r in
                client.simulate_principal_policy(**kwargs)["EvaluationResults"]}

    assert decisions(["ecs:ListTasks", "s3:GetObject"]) == {
        "ecs:ListTasks": "allowed", "s3:GetObject": "implicitDeny"}
    # A condition key missing from the context does not match, as in IAM's simulator.
    assert decisions(["ecs:CreateService"]) == {"ecs:CreateService": "implicitDeny"}
    assert decisions(["ecs:CreateService"], {"aws:RequestTag/managed-by": "dynamic-stagings"}) \
        == {"ecs:CreateService": "allowed"}
    assert decisions(["rds:DeleteDBInstance"], {
        "aws:ResourceTag/managed-by": "dynamic-stagings"}) == {
        "rds:DeleteDBInstance": "explicitDeny"}
    secret = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:"
    assert decisions(["secretsmanager:PutSecretValue"],
                     resources=[secret + "dynamic-stagings/x"]) == {
        "secretsmanager:PutSecretValue": "allowed"}
    assert decisions(["secretsmanager:PutSecretValue"], resources=[secret + "other"]) == {
        "secretsmanager:PutSecretValue": "implicitDeny"}
