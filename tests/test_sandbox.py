"""The sandbox AWS: a seeded moto server, in its own process, with AWS-like lifecycles."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from provisioning.sandbox.environment import STATIC_ENVIRONMENT, apply_sandbox_environment
from provisioning.sandbox.latency import DEFAULT_SCALE, PROFILE, profile_seconds, scaled
from provisioning.sandbox.launcher import StateDirClaim

BASE_DIR = Path(__file__).resolve().parent.parent
SCALE = 0.02
SLACK = 3.0  # seconds of polling and request overhead allowed beyond a scaled delay


class Sandbox:
    def __init__(self, environment: dict[str, str]):
        self.env = environment

    def client(self, service: str):
        return boto3.session.Session().client(
            service,
            endpoint_url=self.env["AWS_ENDPOINT_URL"],
            region_name=self.env["AWS_REGION"],
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )


def _wait_for_file(path: Path, process: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None:
            pytest.fail(f"sandbox exited early with code {process.returncode}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {path} after {timeout} s")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    state_dir = tmp_path_factory.mktemp("sandbox")
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    environment.update(DS_SANDBOX="1", DS_SANDBOX_STATE_DIR=str(state_dir), PYTHONUNBUFFERED="1")
    command = [sys.executable, "manage.py", "sandbox", "aws", "--delay-scale", str(SCALE),
               "--state-dir", str(state_dir)]
    with open(state_dir / "sandbox.log", "wb") as log:
        process = subprocess.Popen(command, cwd=BASE_DIR, env=environment, stdout=log,
                                   stderr=subprocess.STDOUT)
    env_file = state_dir / "env.json"
    try:
        _wait_for_file(env_file, process, timeout=60)
        yield Sandbox(json.loads(env_file.read_text()))
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=15)
    assert not env_file.exists(), "env.json must go with the sandbox"


def wait_for(predicate, timeout: float, interval: float = 0.1) -> float:
    """Seconds until predicate() is true; fails the test after ``timeout``."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            pytest.fail(f"condition not reached within {timeout:.1f} s")
        time.sleep(interval)
    return time.monotonic() - start


def db_status(rds, identifier: str) -> str:
    try:
        return rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0][
            "DBInstanceStatus"]
    except ClientError as exc:
        return exc.response["Error"]["Code"]


def newest_host_snapshot(rds) -> str:
    snapshots = rds.describe_db_snapshots(DBInstanceIdentifier="host-db")["DBSnapshots"]
    available = [s for s in snapshots if s["Status"] == "available"]
    return max(available, key=lambda s: s["SnapshotCreateTime"])["DBSnapshotIdentifier"]


def restore(rds, identifier: str) -> dict:
    return rds.restore_db_instance_from_db_snapshot(
        DBInstanceIdentifier=identifier, DBSnapshotIdentifier=newest_host_snapshot(rds),
        DBInstanceClass="db.t3.micro", BackupRetentionPeriod=0,
    )["DBInstance"]


# --- the seeded host environment ---------------------------------------------------------------


def test_env_file_names_the_seeded_host(sandbox):
    env = sandbox.env
    assert env["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
    assert env["DS_DOMAIN"] == "stagings.localhost"
    assert env["DS_SNAPSHOT_SOURCES"].split(",") == [
        "host-db", "staging-marketing-db", "staging-support-db"]
    assert env["DS_SANDBOX_DELAY_SCALE"] == str(SCALE)
    # As RDS keeps a master password it manages: JSON.
    secret = json.loads(sandbox.client("secretsmanager").get_secret_value(
        SecretId=env["DS_HOST_DB_PASSWORD_SECRET"])["SecretString"])
    assert secret["username"] == "app"
    web = sandbox.client("ecs").describe_task_definition(taskDefinition="host-staging-web")
    environment = {e["name"]: e["value"]
                   for e in web["taskDefinition"]["containerDefinitions"][0]["environment"]}
    assert f"app:{secret['password']}@host-db." in environment["DATABASE_URL"]


def test_the_sources_use_the_hosts_parameter_group(sandbox):
    rds = sandbox.client("rds")
    for source in sandbox.env["DS_SNAPSHOT_SOURCES"].split(","):
        instance = rds.describe_db_instances(DBInstanceIdentifier=source)["DBInstances"][0]
        assert [g["DBParameterGroupName"] for g in instance["DBParameterGroups"]] == [
            "host-staging-pg16"]
    parameters = {p["ParameterName"]: p.get("ParameterValue") for p in rds.describe_db_parameters(
        DBParameterGroupName="host-staging-pg16")["Parameters"]}
    assert parameters["rds.force_ssl"] == "1"
    assert parameters["shared_preload_libraries"] == "pg_stat_statements"


def test_listener_exists_with_a_404_default(sandbox):
    elbv2 = sandbox.client("elbv2")
    listener = elbv2.describe_listeners(ListenerArns=[sandbox.env["DS_LISTENER_ARN"]])[
        "Listeners"][0]
    assert listener["Port"] == 80
    action = listener["DefaultActions"][0]
    assert action["Type"] == "fixed-response"
    assert action["FixedResponseConfig"]["StatusCode"] == "404"


def test_host_task_definitions_are_sized_like_real_ones(sandbox):
    ecs = sandbox.client("ecs")
    for role in ("web", "worker"):
        task = ecs.describe_task_definition(taskDefinition=f"host-staging-{role}")[
            "taskDefinition"]
        assert (task["cpu"], task["memory"]) == ("1024", "2048")
        app, router = task["containerDefinitions"]
        assert (app["name"], app["cpu"], app["memory"], app["memoryReservation"]) == (
            role, 768, 1536, 1024)
        assert app["logConfiguration"]["logDriver"] == "awsfirelens"
        assert router["image"].startswith("public.ecr.aws/aws-observability/aws-for-fluent-bit")
        assert (router["essential"], router["cpu"], router["memory"]) == (False, 64, 128)
        assert router["firelensConfiguration"]["type"] == "fluentbit"


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d.update(cpu="512", memory="512"),
     "No Fargate configuration exists for given values: 512 CPU, 512 memory."),
    (lambda d: d.update(cpu="512", memory="1024"),
     "The 'memory' setting for container 'worker' is greater than for the task."),
    (lambda d: d["containerDefinitions"][0].update(cpu=256, memory=1024) or d.update(
        cpu="512", memory="1024"),
     "The sum of all container 'memoryReservation' values cannot be greater than"),
    (lambda d: d["containerDefinitions"][0].update(cpu=1000),
     "The sum of all container 'cpu' values cannot be greater than the value of the task"),
    (lambda d: d["containerDefinitions"][0].update(memoryReservation=2000),
     "'memoryReservation' must be less than or equal to 'memory'"),
])
def test_task_definitions_ecs_refuses_are_refused(sandbox, change, message):
    ecs = sandbox.client("ecs")
    worker = ecs.describe_task_definition(taskDefinition="host-staging-worker")["taskDefinition"]
    keep = ("containerDefinitions", "networkMode", "requiresCompatibilities", "cpu", "memory")
    definition = {k: worker[k] for k in keep} | {"family": "ds-refused-worker"}
    change(definition)
    with pytest.raises(ClientError) as refused:
        ecs.register_task_definition(**definition)
    assert refused.value.response["Error"]["Code"] == "ClientException"
    assert message in refused.value.response["Error"]["Message"]


def test_branch_images_are_in_ecr(sandbox):
    details = sandbox.client("ecr").describe_images(repositoryName="app")["imageDetails"]
    tags = {tag for d in details for tag in d.get("imageTags", [])}
    assert {"main", "develop", "feature-Login_Page", "feature-search", "release-2026.11"} <= tags
    assert len({d["imageDigest"] for d in details}) == len(details)
    assert len({d["imagePushedAt"] for d in details}) == len(details)


def test_host_services_are_running(sandbox):
    services = sandbox.client("ecs").describe_services(
        cluster=sandbox.env["DS_CLUSTER"],
        services=[sandbox.env["DS_WEB_SERVICE"], sandbox.env["DS_WORKER_SERVICE"]],
    )["services"]
    assert [(s["status"], s["runningCount"], s["desiredCount"]) for s in services] == [
        ("ACTIVE", 1, 1), ("ACTIVE", 1, 1)]
    assert services[0]["loadBalancers"] and not services[1]["loadBalancers"]


def test_snapshots_have_different_ages_and_one_is_not_ready(sandbox):
    rds = sandbox.client("rds")
    now = datetime.now(UTC)
    hours = {}
    for source in sandbox.env["DS_SNAPSHOT_SOURCES"].split(","):
        snapshots = rds.describe_db_snapshots(DBInstanceIdentifier=source)["DBSnapshots"]
        ready = [s for s in snapshots if s["Status"] == "available"]
        hours[source] = min((now - s["SnapshotCreateTime"]).total_seconds() / 3600 for s in ready)
        if source == "host-db":
            assert len(ready) >= 3
        if source == "staging-marketing-db":
            taking = [s for s in snapshots if s["Status"] != "available"]
            assert [s["Status"] for s in taking] == ["creating"]
            assert "SnapshotCreateTime" not in taking[0]
    assert 0.5 < hours["host-db"] < 2
    assert 4 < hours["staging-marketing-db"] < 6
    assert 20 < hours["staging-support-db"] < 30
    for instance in rds.describe_db_instances()["DBInstances"]:
        assert instance["DBInstanceStatus"] == "available"


# --- lifecycles --------------------------------------------------------------------------------


def test_restore_then_password_change_then_delete(sandbox):
    rds = sandbox.client("rds")
    restore_seconds = scaled("rds_restore", SCALE)
    started = time.monotonic()
    created = restore(rds, "ds-sandbox-restore")
    assert created["DBInstanceStatus"] == "creating"
    assert created["Endpoint"]["Address"].startswith("ds-sandbox-restore.")

    with pytest.raises(ClientError) as refused:
        rds.modify_db_instance(DBInstanceIdentifier="ds-sandbox-restore",
                               MasterUserPassword="another-password", ApplyImmediately=True)
    assert refused.value.response["Error"]["Code"] == "InvalidDBInstanceState"
    assert refused.value.response["Error"]["Message"] == (
        "Database instance is not in available state.")

    wait_for(lambda: db_status(rds, "ds-sandbox-restore") == "available",
             timeout=restore_seconds + SLACK)
    assert time.monotonic() - started >= restore_seconds * 0.9

    modified = rds.modify_db_instance(DBInstanceIdentifier="ds-sandbox-restore",
                                      MasterUserPassword="another-password",
                                      ApplyImmediately=True)["DBInstance"]
    assert modified["DBInstanceStatus"] == "resetting-master-credentials"
    assert modified["PendingModifiedValues"] == {"MasterUserPassword": "****"}
    wait_for(lambda: db_status(rds, "ds-sandbox-restore") == "available",
             timeout=scaled("rds_modify_password", SCALE) + SLACK)
    described = rds.describe_db_instances(DBInstanceIdentifier="ds-sandbox-restore")
    assert not described["DBInstances"][0].get("PendingModifiedValues")

    rds.delete_db_instance(DBInstanceIdentifier="ds-sandbox-restore", SkipFinalSnapshot=True)
    assert db_status(rds, "ds-sandbox-restore") == "deleting"
    wait_for(lambda: db_status(rds, "ds-sandbox-restore") == "DBInstanceNotFound",
             timeout=scaled("rds_delete", SCALE) + SLACK)


def test_a_creating_instance_can_be_deleted(sandbox):
    rds = sandbox.client("rds")
    restore(rds, "ds-sandbox-abandoned")
    rds.delete_db_instance(DBInstanceIdentifier="ds-sandbox-abandoned", SkipFinalSnapshot=True)
    assert db_status(rds, "ds-sandbox-abandoned") == "deleting"
    with pytest.raises(ClientError) as again:
        rds.delete_db_instance(DBInstanceIdentifier="ds-sandbox-abandoned", SkipFinalSnapshot=True)
    assert again.value.response["Error"]["Code"] == "InvalidDBInstanceState"
    wait_for(lambda: db_status(rds, "ds-sandbox-abandoned") == "DBInstanceNotFound",
             timeout=scaled("rds_delete", SCALE) + SLACK)


def test_a_restore_takes_the_default_parameter_group_and_what_it_is_told(sandbox):
    rds = sandbox.client("rds")
    host = rds.describe_db_instances(DBInstanceIdentifier="host-db")["DBInstances"][0]
    assert (host["DeletionProtection"], host["BackupRetentionPeriod"]) == (True, 7)
    plain = restore(rds, "ds-sandbox-plain")
    assert [g["DBParameterGroupName"] for g in plain["DBParameterGroups"]] == [
        "default.postgres16"]
    assert (plain["DeletionProtection"], plain["BackupRetentionPeriod"]) == (False, 0)
    told = rds.restore_db_instance_from_db_snapshot(
        DBInstanceIdentifier="ds-sandbox-told", DBSnapshotIdentifier=newest_host_snapshot(rds),
        DBInstanceClass="db.t3.micro", DBParameterGroupName="host-staging-pg16",
        MultiAZ=False, PubliclyAccessible=False, BackupRetentionPeriod=0,
    )["DBInstance"]
    assert [g["DBParameterGroupName"] for g in told["DBParameterGroups"]] == [
        "host-staging-pg16"]
    for identifier in ("ds-sandbox-plain", "ds-sandbox-told"):
        rds.delete_db_instance(DBInstanceIdentifier=identifier, SkipFinalSnapshot=True)


def test_master_passwords_rds_refuses_are_refused(sandbox):
    rds = sandbox.client("rds")
    for password in ('with"quote', "with/slash", "with@at", "with space"):
        with pytest.raises(ClientError) as refused:
            rds.modify_db_instance(DBInstanceIdentifier="staging-support-db",
                                   MasterUserPassword=password, ApplyImmediately=True)
        assert refused.value.response["Error"]["Code"] == "InvalidParameterValue"
        assert "MasterUserPassword is not a valid password" in refused.value.response[
            "Error"]["Message"]
    assert db_status(rds, "staging-support-db") == "available"


def test_the_db_instance_quota_is_answered(sandbox):
    rds = sandbox.client("rds")
    quotas = {q["AccountQuotaName"]: q
              for q in rds.describe_account_attributes()["AccountQuotas"]}
    existing = rds.describe_db_instances()["DBInstances"]
    assert quotas["DBInstances"]["Max"] == 40
    assert quotas["DBInstances"]["Used"] == len(existing) >= 3


def test_the_not_ready_snapshot_cannot_be_restored(sandbox):
    rds = sandbox.client("rds")
    snapshots = rds.describe_db_snapshots(DBInstanceIdentifier="staging-marketing-db")
    taking = next(s for s in snapshots["DBSnapshots"] if s["Status"] == "creating")
    with pytest.raises(ClientError) as refused:
        rds.restore_db_instance_from_db_snapshot(
            DBInstanceIdentifier="ds-sandbox-too-early",
            DBSnapshotIdentifier=taking["DBSnapshotIdentifier"], DBInstanceClass="db.t3.micro")
    assert refused.value.response["Error"]["Code"] == "InvalidDBSnapshotState"


def _service(ecs, cluster: str, name: str) -> dict:
    return ecs.describe_services(cluster=cluster, services=[name])["services"][0]


def _target_states(elbv2, arn: str) -> list[str]:
    found = elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
    return [d["TargetHealth"]["State"] for d in found]


def test_service_starts_then_drains(sandbox):
    ecs, elbv2 = sandbox.client("ecs"), sandbox.client("elbv2")
    cluster = sandbox.env["DS_CLUSTER"]
    host = _service(ecs, cluster, sandbox.env["DS_WEB_SERVICE"])
    group = elbv2.create_target_group(
        Name="ds-sandbox-web", Protocol="HTTP", Port=3000, TargetType="ip",
        VpcId=elbv2.describe_target_groups(Names=["host-web"])["TargetGroups"][0]["VpcId"],
        HealthCheckPath="/healthz",
    )["TargetGroups"][0]["TargetGroupArn"]
    created = ecs.create_service(
        cluster=cluster, serviceName="ds-sandbox-web", taskDefinition=host["taskDefinition"],
        desiredCount=1, launchType="FARGATE",
        networkConfiguration=host["networkConfiguration"],
        loadBalancers=[{"targetGroupArn": group, "containerName": "web", "containerPort": 3000}],
    )["service"]
    assert created["runningCount"] == 0
    assert [d["rolloutState"] for d in created["deployments"]] == ["IN_PROGRESS"]
    assert _target_states(elbv2, group) == []

    def steady() -> bool:
        service = _service(ecs, cluster, "ds-sandbox-web")
        deployments = service["deployments"]
        return (service["runningCount"] == 1 and len(deployments) == 1
                and deployments[0]["rolloutState"] == "COMPLETED")

    wait_for(steady, timeout=scaled("ecs_service_start_to_healthy", SCALE) + SLACK)
    assert _target_states(elbv2, group) == ["healthy"]

    ecs.update_service(cluster=cluster, service="ds-sandbox-web", desiredCount=0)
    deleted = ecs.delete_service(cluster=cluster, service="ds-sandbox-web", force=True)["service"]
    assert deleted["status"] == "DRAINING"
    wait_for(lambda: _service(ecs, cluster, "ds-sandbox-web")["status"] == "INACTIVE",
             timeout=scaled("ecs_service_delete", SCALE) + SLACK)
    with pytest.raises(ClientError) as refused:
        ecs.delete_service(cluster=cluster, service="ds-sandbox-web", force=True)
    assert refused.value.response["Error"]["Code"] == "ServiceNotActiveException"


def test_rolling_update_keeps_the_old_deployment_until_done(sandbox):
    ecs = sandbox.client("ecs")
    cluster = sandbox.env["DS_CLUSTER"]
    worker = ecs.describe_task_definition(taskDefinition="host-staging-worker")["taskDefinition"]
    keep = ("containerDefinitions", "networkMode", "requiresCompatibilities", "cpu", "memory")
    definition = {k: worker[k] for k in keep} | {"family": "ds-sandbox-worker"}
    first = ecs.register_task_definition(**definition)["taskDefinition"]["taskDefinitionArn"]
    second = ecs.register_task_definition(**definition)["taskDefinition"]["taskDefinitionArn"]
    host = _service(ecs, cluster, sandbox.env["DS_WORKER_SERVICE"])
    ecs.create_service(cluster=cluster, serviceName="ds-sandbox-worker", taskDefinition=first,
                       desiredCount=1, launchType="FARGATE",
                       networkConfiguration=host["networkConfiguration"])
    wait_for(lambda: _service(ecs, cluster, "ds-sandbox-worker")["runningCount"] == 1,
             timeout=scaled("ecs_task_to_running", SCALE) + SLACK)

    ecs.update_service(cluster=cluster, service="ds-sandbox-worker",
                       taskDefinition="ds-sandbox-worker:2")
    during = _service(ecs, cluster, "ds-sandbox-worker")
    assert during["taskDefinition"] == second
    assert [(d["status"], d["rolloutState"], d["taskDefinition"])
            for d in during["deployments"]] == [
        ("PRIMARY", "IN_PROGRESS", second), ("ACTIVE", "COMPLETED", first)]
    wait_for(lambda: len(_service(ecs, cluster, "ds-sandbox-worker")["deployments"]) == 1,
             timeout=scaled("ecs_rolling_update", SCALE) + SLACK)
    after = _service(ecs, cluster, "ds-sandbox-worker")["deployments"][0]
    assert (after["taskDefinition"], after["rolloutState"]) == (second, "COMPLETED")


# --- health checks against the app, failing deployments, the circuit breaker -----------------

BREAKER = {"deploymentCircuitBreaker": {"enable": True, "rollback": False}}
ELB_TASK_CYCLE = scaled("ecs_service_start_to_healthy", SCALE) + scaled("ecs_service_delete",
                                                                        SCALE)


def test_host_web_group_checks_the_apps_health_endpoint(sandbox):
    ecs, elbv2 = sandbox.client("ecs"), sandbox.client("elbv2")
    host = _service(ecs, sandbox.env["DS_CLUSTER"], sandbox.env["DS_WEB_SERVICE"])
    (group_arn,) = [lb["targetGroupArn"] for lb in host["loadBalancers"]]
    group = elbv2.describe_target_groups(TargetGroupArns=[group_arn])["TargetGroups"][0]
    assert group["TargetGroupName"] == "host-web"
    assert (group["HealthCheckPath"], group["Matcher"]["HttpCode"]) == ("/healthz", "200")
    assert (group["HealthCheckIntervalSeconds"], group["HealthCheckTimeoutSeconds"]) == (15, 5)
    assert (group["HealthyThresholdCount"], group["UnhealthyThresholdCount"]) == (2, 3)
    assert (group["HealthCheckPort"], group["HealthCheckProtocol"]) == ("traffic-port", "HTTP")
    assert _target_states(elbv2, group_arn) == ["healthy"]


def _web_service(sandbox, name: str, *, breaker: bool = True, image_tag: str | None = None,
                 **health_check) -> tuple[str, str]:
    """A service like a staging's web service behind a new group; (group arn, service name)."""
    ecs, elbv2 = sandbox.client("ecs"), sandbox.client("elbv2")
    cluster = sandbox.env["DS_CLUSTER"]
    host = _service(ecs, cluster, sandbox.env["DS_WEB_SERVICE"])
    vpc = elbv2.describe_target_groups(Names=["host-web"])["TargetGroups"][0]["VpcId"]
    group = elbv2.create_target_group(Name=name, Protocol="HTTP", Port=3000, TargetType="ip",
                                      VpcId=vpc, **health_check)["TargetGroups"][0]
    definition = host["taskDefinition"]
    if image_tag:
        definition = _definition_with_tag(sandbox, definition, name, image_tag)
    ecs.create_service(
        cluster=cluster, serviceName=name, taskDefinition=definition, desiredCount=1,
        launchType="FARGATE", networkConfiguration=host["networkConfiguration"],
        loadBalancers=[{"targetGroupArn": group["TargetGroupArn"], "containerName": "web",
                        "containerPort": 3000}],
        **({"deploymentConfiguration": BREAKER} if breaker else {}),
    )
    return group["TargetGroupArn"], name


def _definition_with_tag(sandbox, base: str, family: str, tag: str) -> str:
    """``base`` with its image pinned by digest to ``tag``'s, as the engine registers it."""
    ecs = sandbox.client("ecs")
    digest = sandbox.client("ecr").describe_images(
        repositoryName="app", imageIds=[{"imageTag": tag}])["imageDetails"][0]["imageDigest"]
    task = ecs.describe_task_definition(taskDefinition=base)["taskDefinition"]
    keep = ("containerDefinitions", "networkMode", "requiresCompatibilities", "cpu", "memory")
    definition = {k: task[k] for k in keep} | {"family": family}
    repository = task["containerDefinitions"][0]["image"].rsplit(":", 1)[0]
    return ecs.register_task_definition(**definition | {"containerDefinitions": [
        c | {"image": f"{repository}@{digest}"} for c in definition["containerDefinitions"]
    ]})["taskDefinition"]["taskDefinitionArn"]


def _target_health(elbv2, arn: str) -> list[dict]:
    return [d["TargetHealth"] for d in
            elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]]


def _stopped(ecs, cluster: str, service: str) -> list[dict]:
    arns = ecs.list_tasks(cluster=cluster, serviceName=service,
                          desiredStatus="STOPPED")["taskArns"]
    return ecs.describe_tasks(cluster=cluster, tasks=arns)["tasks"] if arns else []


def test_root_path_redirect_fails_health_checks_and_the_breaker_stops_it(sandbox):
    ecs, elbv2 = sandbox.client("ecs"), sandbox.client("elbv2")
    cluster = sandbox.env["DS_CLUSTER"]
    group, name = _web_service(sandbox, "ds-redirect-web")  # ELB's default check: "/" -> 200
    wait_for(lambda: [h["State"] for h in _target_health(elbv2, group)] == ["initial"],
             timeout=scaled("ecs_task_to_running", SCALE) + SLACK)
    wait_for(lambda: [h["State"] for h in _target_health(elbv2, group)] == ["unhealthy"],
             timeout=ELB_TASK_CYCLE + SLACK)
    (health,) = _target_health(elbv2, group)
    assert health["Reason"] == "Target.ResponseCodeMismatch"
    assert health["Description"] == "Health checks failed with these codes: [302]"

    def failed() -> bool:
        return _service(ecs, cluster, name)["deployments"][0]["rolloutState"] == "FAILED"

    waited = wait_for(failed, timeout=3 * ELB_TASK_CYCLE + SLACK)
    assert waited >= 2 * ELB_TASK_CYCLE  # not before three tasks failed
    service = _service(ecs, cluster, name)
    (deployment,) = service["deployments"]
    assert deployment["failedTasks"] == 3
    assert deployment["rolloutStateReason"] == (
        "ECS deployment circuit breaker: tasks failed to start.")
    assert service["deploymentConfiguration"]["deploymentCircuitBreaker"] == BREAKER[
        "deploymentCircuitBreaker"]
    messages = [e["message"] for e in service["events"]]
    assert messages[0] == (f"(service {name}) (deployment {deployment['id']}) deployment "
                           "failed: tasks failed to start.")
    assert f"(service {name}) (port 3000) is unhealthy in (target-group {group}) due to " \
           "(reason Health checks failed with these codes: [302])." in messages
    stopped = _stopped(ecs, cluster, name)
    assert len(stopped) == 3
    assert {t["stoppedReason"] for t in stopped} == {
        f"Task failed ELB health checks in (target-group {group})"}
    assert {t["startedBy"] for t in stopped} == {deployment["id"]}
    assert _target_health(elbv2, group) == []  # the breaker launches no more tasks


def test_a_matcher_that_accepts_the_redirect_makes_root_healthy(sandbox):
    elbv2 = sandbox.client("elbv2")
    for name, matcher in (("ds-range-web", "200-399"), ("ds-list-web", "200,302")):
        group, _ = _web_service(sandbox, name, HealthCheckPath="/", Matcher={"HttpCode": matcher})
        wait_for(lambda group=group: [h["State"] for h in _target_health(elbv2, group)]
                 == ["healthy"], timeout=scaled("ecs_service_start_to_healthy", SCALE) + SLACK)


def test_a_health_check_on_another_port_times_out(sandbox):
    elbv2 = sandbox.client("elbv2")
    group, _ = _web_service(sandbox, "ds-port-web", HealthCheckPath="/healthz",
                            HealthCheckPort="8080")
    wait_for(lambda: [h["State"] for h in _target_health(elbv2, group)] == ["unhealthy"],
             timeout=ELB_TASK_CYCLE + SLACK)
    assert _target_health(elbv2, group)[0]["Reason"] == "Target.Timeout"


def test_a_crashing_image_fails_the_deployment_with_the_containers_exit(sandbox):
    ecs = sandbox.client("ecs")
    cluster = sandbox.env["DS_CLUSTER"]
    worker = _service(ecs, cluster, sandbox.env["DS_WORKER_SERVICE"])
    definition = _definition_with_tag(sandbox, worker["taskDefinition"], "ds-broken-worker",
                                      "feature-broken")
    ecs.create_service(cluster=cluster, serviceName="ds-broken-worker",
                       taskDefinition=definition, desiredCount=1, launchType="FARGATE",
                       networkConfiguration=worker["networkConfiguration"],
                       deploymentConfiguration=BREAKER)
    cycle = scaled("ecs_task_to_running", SCALE)
    wait_for(lambda: _service(ecs, cluster, "ds-broken-worker")["deployments"][0][
        "rolloutState"] == "FAILED", timeout=3 * cycle + SLACK)
    service = _service(ecs, cluster, "ds-broken-worker")
    assert (service["runningCount"], service["deployments"][0]["failedTasks"]) == (0, 3)
    (task, *_) = _stopped(ecs, cluster, "ds-broken-worker")
    assert task["stoppedReason"] == "Essential container in task exited"
    assert task["stopCode"] == "EssentialContainerExited"
    assert task["containers"][0]["exitCode"] == 1
    assert task["lastStatus"] == "STOPPED"


def test_without_the_breaker_ecs_replaces_failing_tasks_for_ever(sandbox):
    ecs = sandbox.client("ecs")
    cluster = sandbox.env["DS_CLUSTER"]
    _web_service(sandbox, "ds-nobreaker-web", breaker=False, image_tag="feature-broken",
                 HealthCheckPath="/healthz")
    cycle = scaled("ecs_task_to_running", SCALE)
    wait_for(lambda: _service(ecs, cluster, "ds-nobreaker-web")["deployments"][0][
        "failedTasks"] >= 4, timeout=4 * cycle + SLACK)
    deployment = _service(ecs, cluster, "ds-nobreaker-web")["deployments"][0]
    assert deployment["rolloutState"] == "IN_PROGRESS"


def test_a_service_scaled_above_zero_is_deleted_only_with_force(sandbox):
    ecs = sandbox.client("ecs")
    cluster = sandbox.env["DS_CLUSTER"]
    _web_service(sandbox, "ds-scaled-web", HealthCheckPath="/healthz")
    with pytest.raises(ClientError) as refused:
        ecs.delete_service(cluster=cluster, service="ds-scaled-web")
    assert refused.value.response["Error"]["Code"] == "InvalidParameterException"
    assert "cannot be stopped while it is scaled above 0" in str(refused.value)
    assert _service(ecs, cluster, "ds-scaled-web")["status"] == "ACTIVE"
    ecs.update_service(cluster=cluster, service="ds-scaled-web", desiredCount=0)
    assert ecs.delete_service(cluster=cluster, service="ds-scaled-web")["service"][
        "status"] == "DRAINING"


# --- the account API ---------------------------------------------------------------------------


def _call(url: str, method: str, token: str | None, body: bytes | None = None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_account_api_contract(sandbox):
    url, token = sandbox.env["DS_ACCOUNT_API_URL"], sandbox.env["DS_ACCOUNT_API_TOKEN"]
    body = json.dumps({"staging": "login-page", "host": "login-page.stagings.localhost"}).encode()

    status, payload = _call(url, "POST", token, body)
    assert status == 201
    account = json.loads(payload)
    assert account["username"] == "admin@login-page.example"
    assert account["login_url"] == "http://login-page.stagings.localhost/login"
    assert account["password"]

    assert _call(url, "POST", None, body)[0] == 401
    assert _call(url, "POST", "wrong-token", body)[0] == 401
    assert _call(url, "POST", token, b"{not json")[0] == 400
    assert _call(url, "POST", token, b'{"staging": "x"}')[0] == 400
    assert _call(f"{url}/{account['account_id']}", "DELETE", token)[0] == 204
    assert _call(f"{url}/{account['account_id']}", "DELETE", token)[0] == 404
    assert _call(f"{url}/unknown", "DELETE", None)[0] == 401


# --- pieces that need no server ----------------------------------------------------------------


def test_environment_without_a_running_sandbox_sets_only_the_static_values(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "environ", {})
    apply_sandbox_environment(tmp_path)
    assert os.environ == STATIC_ENVIRONMENT


def test_environment_file_does_not_override_the_operator(tmp_path, monkeypatch):
    (tmp_path / "env.json").write_text(json.dumps(
        {"AWS_ENDPOINT_URL": "http://127.0.0.1:1", "DS_CLUSTER": "sandboxed"}))
    monkeypatch.setattr(os, "environ", {"DS_CLUSTER": "chosen-by-operator"})
    running = StateDirClaim(tmp_path)  # env.json counts only while its sandbox runs
    try:
        apply_sandbox_environment(tmp_path)
    finally:
        running.release()
    assert os.environ["AWS_ENDPOINT_URL"] == "http://127.0.0.1:1"
    assert os.environ["DS_CLUSTER"] == "chosen-by-operator"


def test_latency_profile_cites_a_source_for_every_figure():
    assert all(latency.source and latency.seconds > 0 for latency in PROFILE.values())
    default = profile_seconds(DEFAULT_SCALE)
    assert default["rds_restore"] == pytest.approx(42.0)
    assert default["rds_restore"] > default["ecs_service_start_to_healthy"]


# --- what AWS keeps listing after a delete (tagging_rules, secrets_rules) ----------------------

TAGS = [{"key": "dynamic-staging", "value": "gone-check"},
        {"key": "managed-by", "value": "dynamic-stagings"}]


def _tagged(sandbox, kind: str) -> list[dict]:
    found = sandbox.client("resourcegroupstaggingapi").get_resources(
        TagFilters=[{"Key": "dynamic-staging", "Values": ["gone-check"]}],
        ResourceTypeFilters=[kind],
    )["ResourceTagMappingList"]
    return found


def _task(ecs, cluster: str, arn: str) -> dict:
    return ecs.describe_tasks(cluster=cluster, tasks=[arn])["tasks"][0]


def test_service_tasks_run_then_stay_listed_stopped_after_the_delete(sandbox):
    ecs = sandbox.client("ecs")
    cluster = sandbox.env["DS_CLUSTER"]
    host = _service(ecs, cluster, sandbox.env["DS_WORKER_SERVICE"])
    ecs.create_service(
        cluster=cluster, serviceName="ds-gone-worker", taskDefinition=host["taskDefinition"],
        desiredCount=1, launchType="FARGATE", networkConfiguration=host["networkConfiguration"],
        propagateTags="SERVICE", tags=TAGS,
    )
    [arn] = ecs.list_tasks(cluster=cluster, serviceName="ds-gone-worker")["taskArns"]
    assert arn.split(":")[5].startswith(f"task/{cluster}/")
    assert _task(ecs, cluster, arn)["lastStatus"] == "PENDING"
    listed = _tagged(sandbox, "ecs:task")
    assert [m["ResourceARN"] for m in listed] == [arn]
    assert {t["Key"]: t["Value"] for t in listed[0]["Tags"]}["managed-by"] == "dynamic-stagings"
    wait_for(lambda: _task(ecs, cluster, arn)["lastStatus"] == "RUNNING",
             timeout=scaled("ecs_task_to_running", SCALE) + SLACK)

    ecs.update_service(cluster=cluster, service="ds-gone-worker", desiredCount=0)
    ecs.delete_service(cluster=cluster, service="ds-gone-worker", force=True)
    assert _task(ecs, cluster, arn)["desiredStatus"] == "STOPPED"
    wait_for(lambda: _task(ecs, cluster, arn)["lastStatus"] == "STOPPED",
             timeout=scaled("ecs_service_delete", SCALE) + SLACK)
    stopped = _task(ecs, cluster, arn)
    assert stopped["stoppedAt"] >= stopped["startedAt"]
    # Gone from the service's point of view, still listed by both APIs for about an hour.
    assert ecs.list_tasks(cluster=cluster, serviceName="ds-gone-worker")["taskArns"] == []
    assert arn in ecs.list_tasks(cluster=cluster, desiredStatus="STOPPED")["taskArns"]
    assert [m["ResourceARN"] for m in _tagged(sandbox, "ecs:task")] == [arn]
    assert scaled("ecs_stopped_task_listed", SCALE) > 60


def test_a_deleted_task_definition_is_listed_while_its_deletion_is_in_progress(sandbox):
    ecs = sandbox.client("ecs")
    host = ecs.describe_task_definition(
        taskDefinition=_service(ecs, sandbox.env["DS_CLUSTER"], sandbox.env["DS_WORKER_SERVICE"])[
            "taskDefinition"])["taskDefinition"]
    definition = {key: host[key] for key in ("containerDefinitions", "requiresCompatibilities",
                                             "networkMode", "cpu", "memory")}
    arn = ecs.register_task_definition(family="ds-gone-check-worker", tags=TAGS, **definition)[
        "taskDefinition"]["taskDefinitionArn"]
    ecs.deregister_task_definition(taskDefinition=arn)
    answer = ecs.delete_task_definitions(taskDefinitions=[arn])
    assert answer["failures"] == []
    started = time.monotonic()

    described = ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
    assert described["status"] == "DELETE_IN_PROGRESS"
    assert described["deleteRequestedAt"]
    assert [m["ResourceARN"] for m in _tagged(sandbox, "ecs:task-definition")] == [arn]
    # AWS never hands out a revision number again, even with no revision of the family left.
    again = ecs.register_task_definition(family="ds-gone-check-worker", **definition)[
        "taskDefinition"]["taskDefinitionArn"]
    assert again.endswith(":2")

    wait_for(lambda: _tagged(sandbox, "ecs:task-definition") == [],
             timeout=scaled("ecs_task_definition_delete", SCALE) + SLACK)
    assert time.monotonic() - started >= scaled("ecs_task_definition_delete", SCALE) - 0.5
    with pytest.raises(ClientError) as unknown:
        ecs.describe_task_definition(taskDefinition=arn)
    assert unknown.value.response["Error"]["Code"] == "ClientException"


def test_listener_rules_are_listed_with_their_tags_and_for_a_while_once_deleted(sandbox):
    elbv2 = sandbox.client("elbv2")
    listener = sandbox.env["DS_LISTENER_ARN"]
    group = elbv2.describe_target_groups(Names=["host-web"])["TargetGroups"][0]["TargetGroupArn"]
    rule = elbv2.create_rule(
        ListenerArn=listener, Priority=4321,
        Conditions=[{"Field": "host-header", "HostHeaderConfig": {"Values": ["gone.example"]}}],
        Actions=[{"Type": "forward", "TargetGroupArn": group}],
        Tags=[{"Key": t["key"], "Value": t["value"]} for t in TAGS],
    )["Rules"][0]["RuleArn"]
    listed = _tagged(sandbox, "elasticloadbalancing:listener-rule")
    assert [m["ResourceARN"] for m in listed] == [rule]
    assert {"Key": "managed-by", "Value": "dynamic-stagings"} in listed[0]["Tags"]

    elbv2.delete_rule(RuleArn=rule)
    with pytest.raises(ClientError) as gone:
        elbv2.describe_rules(RuleArns=[rule])
    assert gone.value.response["Error"]["Code"] == "RuleNotFound"
    assert [m["ResourceARN"] for m in _tagged(sandbox, "elasticloadbalancing:listener-rule")] == [
        rule]
    wait_for(lambda: _tagged(sandbox, "elasticloadbalancing:listener-rule") == [],
             timeout=scaled("elbv2_deleted_rule_listed", SCALE) + SLACK)


def _create_error(secrets, name: str) -> dict:
    with pytest.raises(ClientError) as refused:
        secrets.create_secret(Name=name, SecretString="again")
    return refused.value.response["Error"]


def test_a_secret_name_scheduled_for_deletion_cannot_be_taken(sandbox):
    secrets = sandbox.client("secretsmanager")
    arn = secrets.create_secret(Name="dynamic-stagings/kept/login", SecretString="one")["ARN"]
    secrets.delete_secret(SecretId=arn, RecoveryWindowInDays=7)
    error = _create_error(secrets, "dynamic-stagings/kept/login")
    assert error["Code"] == "InvalidRequestException"
    assert "already scheduled for deletion" in error["Message"]
    with pytest.raises(ClientError) as no_value:
        secrets.put_secret_value(SecretId=arn, SecretString="two")
    assert no_value.value.response["Error"]["Code"] == "InvalidRequestException"
    # A recovery window keeps the name until the secret is restored.
    time.sleep(scaled("secretsmanager_force_delete", SCALE) + 0.5)
    assert secrets.describe_secret(SecretId="dynamic-stagings/kept/login")["DeletedDate"]
    secrets.restore_secret(SecretId=arn)
    secrets.put_secret_value(SecretId=arn, SecretString="two")
    assert secrets.get_secret_value(SecretId=arn)["SecretString"] == "two"


def test_a_force_deleted_secret_frees_its_name_after_a_short_while(sandbox):
    secrets = sandbox.client("secretsmanager")
    arn = secrets.create_secret(Name="dynamic-stagings/forced/login", SecretString="one")["ARN"]
    secrets.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)
    deleted_at = time.monotonic()
    assert _create_error(secrets, "dynamic-stagings/forced/login")["Code"] == (
        "InvalidRequestException")
    assert secrets.describe_secret(SecretId=arn)["DeletedDate"]
    with pytest.raises(ClientError) as not_restorable:
        secrets.restore_secret(SecretId=arn)
    assert not_restorable.value.response["Error"]["Code"] == "InvalidRequestException"

    def created() -> bool:
        try:
            secrets.create_secret(Name="dynamic-stagings/forced/login", SecretString="two")
        except ClientError:
            return False
        return True

    wait_for(created, timeout=scaled("secretsmanager_force_delete", SCALE) + SLACK)
    assert time.monotonic() - deleted_at >= scaled("secretsmanager_force_delete", SCALE) - 0.2
