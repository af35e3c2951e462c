"""The staging's target group checks health like the host's, and a service deployment that
ECS gives up on fails the wait at once with ECS's own reason."""

import dataclasses
import json
import time
from unittest import mock

import boto3
import pytest

from provisioning.aws import ecs, elbv2
from provisioning.aws.base import client
from provisioning.errors import ExternalCallFailed, UserError
from provisioning.sandbox.ecs_health import app_status, matcher_accepts
from provisioning.steps import routing, services
from tests.conftest import CLUSTER, WEB_PORT
from tests.factories import make_operation, make_staging, run_step
from tests.stack import running_stack

pytestmark = pytest.mark.django_db

NAME = "login-page"
GROUP = f"ds-{NAME}"


@pytest.fixture
def create_op(host_env, alice):
    return make_operation(make_staging(alice, name=NAME, snapshot_id=host_env.host_snapshot))


@pytest.fixture
def host_checks_healthz(host_env):
    """The host web group as real hosts have it: not ELB's defaults."""
    boto3.client("elbv2").modify_target_group(
        TargetGroupArn=host_env.host_target_group_arn, HealthCheckPath="/healthz",
        Matcher={"HttpCode": "200,204"}, HealthCheckIntervalSeconds=15,
        HealthCheckTimeoutSeconds=6, HealthyThresholdCount=2, UnhealthyThresholdCount=4,
        HealthCheckPort="traffic-port", HealthCheckProtocol="HTTP",
    )
    return host_env


def staging_group() -> dict:
    (group,) = [g for g in boto3.client("elbv2").describe_target_groups()["TargetGroups"]
                if g["TargetGroupName"] == GROUP]
    return group


def deregistration_delay(arn: str) -> str:
    attributes = boto3.client("elbv2").describe_target_group_attributes(
        TargetGroupArn=arn)["Attributes"]
    return {a["Key"]: a["Value"] for a in attributes}["deregistration_delay.timeout_seconds"]


# --- the target group's health check -------------------------------------------------------------

def test_target_group_copies_the_hosts_health_check(create_op, host_checks_healthz):
    run_step(create_op, "target_group", routing.create_target_group)
    group = staging_group()
    assert group["HealthCheckPath"] == "/healthz"
    assert group["Matcher"] == {"HttpCode": "200,204"}
    assert (group["HealthCheckPort"], group["HealthCheckProtocol"]) == ("traffic-port", "HTTP")
    assert (group["HealthCheckIntervalSeconds"], group["HealthCheckTimeoutSeconds"]) == (15, 6)
    assert (group["HealthyThresholdCount"], group["UnhealthyThresholdCount"]) == (2, 4)
    assert "/healthz" in create_op.steps.get(key="target_group").detail


def test_health_check_path_setting_overrides_only_the_path(create_op, host_checks_healthz,
                                                           settings):
    settings.DS_HEALTH_CHECK_PATH = "/up"
    run_step(create_op, "target_group", routing.create_target_group)
    group = staging_group()
    assert group["HealthCheckPath"] == "/up"
    assert group["Matcher"] == {"HttpCode": "200,204"}
    assert group["UnhealthyThresholdCount"] == 4


def test_the_default_path_setting_is_the_hosts():
    from django.conf import settings

    assert settings.DS_HEALTH_CHECK_PATH == ""


def test_deregistration_delay_is_set_on_every_run(create_op, host_env):
    outputs = run_step(create_op, "target_group", routing.create_target_group)
    assert deregistration_delay(outputs["arn"]) == "5"
    boto3.client("elbv2").modify_target_group_attributes(
        TargetGroupArn=outputs["arn"],
        Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": "300"}])
    assert run_step(create_op, "target_group", routing.create_target_group) == outputs
    assert deregistration_delay(outputs["arn"]) == "5"


def test_a_group_left_by_a_crashed_attempt_gets_the_short_delay(create_op, host_env):
    made = boto3.client("elbv2").create_target_group(
        Name=GROUP, Protocol="HTTP", Port=8000, VpcId=host_env.vpc_id, TargetType="ip",
    )["TargetGroups"][0]["TargetGroupArn"]
    assert deregistration_delay(made) == "300"
    assert run_step(create_op, "target_group", routing.create_target_group) == {"arn": made}
    assert deregistration_delay(made) == "5"


def test_a_host_web_service_without_target_group_is_a_clear_error(create_op, host_env):
    real = routing.read_host_environment

    def without_group(config):
        return dataclasses.replace(real(config), web_target_group_arn=None)

    with mock.patch("provisioning.steps.routing.read_host_environment", without_group), \
            pytest.raises(UserError, match="no target group to copy the health check from"):
        run_step(create_op, "target_group", routing.create_target_group)
    assert [g for g in boto3.client("elbv2").describe_target_groups()["TargetGroups"]
            if g["TargetGroupName"] == GROUP] == []


def test_an_omitted_host_path_is_elbs_default(host_env):
    made = boto3.client("elbv2").create_target_group(
        Name="no-health-check", Protocol="HTTP", Port=WEB_PORT, VpcId=host_env.vpc_id,
        TargetType="ip")["TargetGroups"][0]["TargetGroupArn"]
    check = elbv2.health_check(arn=made)
    assert (check.path, check.matcher, check.port) == ("/", "200", "traffic-port")


# --- the sandbox's app and matcher (what the e2e tests rely on) ----------------------------------

@pytest.mark.parametrize(("matcher", "code", "accepted"), [
    ("200", 200, True), ("200", 302, False), ("200-399", 302, True), ("200-299", 302, False),
    ("200,302", 302, True), ("200, 204", 204, True), ("200-204,302", 301, False),
])
def test_matcher_codes_ranges_and_lists(matcher, code, accepted):
    assert matcher_accepts(matcher, code) is accepted


def test_the_app_redirects_root_and_answers_its_health_endpoint():
    assert (app_status("/"), app_status("/healthz"), app_status("/health")) == (302, 200, 404)


# --- the circuit breaker on the services we make -------------------------------------------------

def captured_calls(operation: str) -> list[dict]:
    """The parameters of every ``operation`` call our ECS client makes from now on."""
    calls: list[dict] = []
    client("ecs").meta.events.register(f"provide-client-params.ecs.{operation}",
                                       lambda params, **_: calls.append(dict(params)))
    return calls


def test_services_are_created_with_the_circuit_breaker_and_no_rollback(host_env):
    calls = captured_calls("CreateService")
    ecs.create_service(cluster=CLUSTER, name="ds-x-worker",
                       task_definition=host_env.worker_task_definition_arn,
                       network_configuration={"awsvpcConfiguration": {
                           "subnets": list(host_env.subnet_ids),
                           "securityGroups": [host_env.security_group_id]}},
                       load_balancers=[], tags={})
    assert calls[0]["deploymentConfiguration"] == {
        "deploymentCircuitBreaker": {"enable": True, "rollback": False}}


def test_a_new_revision_turns_the_breaker_on_for_older_services(host_env):
    calls = captured_calls("UpdateService")
    ecs.update_service(cluster=CLUSTER, service="host-worker",
                       task_definition=host_env.worker_task_definition_arn)
    ecs.update_service(cluster=CLUSTER, service="host-worker", desired_count=1)
    assert calls[0]["deploymentConfiguration"]["deploymentCircuitBreaker"]["enable"] is True
    assert "deploymentConfiguration" not in calls[1]


# --- the wait fails at once with ECS's reason ----------------------------------------------------

def failing_service(*, rollout: str = "FAILED", failed_tasks: int = 3,
                    events: tuple[str, ...] = ()) -> ecs.Service:
    old = ecs.Deployment(status="ACTIVE", rollout_state="COMPLETED", task_definition="td:1",
                         desired=1, running=1, id="ecs-svc/1")
    new = ecs.Deployment(
        status="PRIMARY", rollout_state=rollout, task_definition="td:2", desired=1, running=0,
        id="ecs-svc/2", failed_tasks=failed_tasks,
        rollout_state_reason=("ECS deployment circuit breaker: tasks failed to start."
                              if rollout == "FAILED" else "ECS deployment ecs-svc/2 in progress."),
    )
    return ecs.Service(
        name=f"{GROUP}-web", arn="arn:service", status="ACTIVE", task_definition="td:2",
        desired=1, running=1, pending=0, deployments=(new, old), load_balancers=(),
        network_configuration={}, events=events,
    )


STOPPED = [
    ecs.StoppedTask(arn="arn:task/new", started_by="ecs-svc/2",
                    stopped_reason="Essential container in task exited",
                    container_reasons=("web: exit code 1",)),
    ecs.StoppedTask(arn="arn:task/old", started_by="ecs-svc/1",
                    stopped_reason="Scaling activity initiated by (deployment ecs-svc/1)",
                    container_reasons=()),
]


def test_a_failed_deployment_fails_the_wait_at_once_with_ecs_reason(create_op, settings):
    settings.DS_SERVICE_WAIT_SECONDS = 600
    events = (
        f"(service {GROUP}-web) (deployment ecs-svc/2) deployment failed: tasks failed to start.",
        f"(service {GROUP}-web) has started 1 tasks: (task abc).",
    )
    with mock.patch("provisioning.aws.ecs.describe_service",
                    return_value=failing_service(events=events)) as describe, \
            mock.patch("provisioning.aws.ecs.stopped_tasks", return_value=STOPPED), \
            mock.patch("provisioning.aws.elbv2.target_states", return_value=[]), \
            pytest.raises(ExternalCallFailed) as raised:
        run_step(create_op, "web_healthy", services.wait_web_healthy)
    assert describe.call_count == 1
    assert raised.value.code == "ServiceDeploymentFailed"
    assert f"{GROUP}-web" in raised.value.call
    message = raised.value.message
    assert "ECS deployment circuit breaker: tasks failed to start." in message
    assert "deployment failed: tasks failed to start." in message
    assert "Essential container in task exited (web: exit code 1)" in message
    assert "Scaling activity" not in message  # the older deployment's task is not the reason


def test_the_event_with_the_cause_is_shown_rather_than_a_newer_summary(create_op):
    events = (
        f"(service {GROUP}-web) (deployment ecs-svc/2) deployment failed: tasks failed to start.",
        f"(service {GROUP}-web) has stopped 1 running tasks: (task abc).",
        f"(service {GROUP}-web) (port 8000) is unhealthy in (target-group arn:tg) due to "
        "(reason Health checks failed with these codes: [302]).",
    )
    with mock.patch("provisioning.aws.ecs.describe_service",
                    return_value=failing_service(events=events)), \
            mock.patch("provisioning.aws.ecs.stopped_tasks", return_value=[]), \
            pytest.raises(ExternalCallFailed) as raised:
        run_step(create_op, "web_healthy", services.wait_web_healthy)
    assert "Service event: " + events[2] in raised.value.message


def test_repeatedly_stopped_tasks_fail_the_wait_without_a_breaker(create_op, settings):
    settings.DS_SERVICE_WAIT_SECONDS = 600
    events = ("(service ds-login-page-web) (port 8000) is unhealthy in (target-group arn:tg) "
              "due to (reason Health checks failed with these codes: [302]).",)
    with mock.patch("provisioning.aws.ecs.describe_service",
                    return_value=failing_service(rollout="IN_PROGRESS", failed_tasks=3,
                                                 events=events)), \
            mock.patch("provisioning.aws.ecs.stopped_tasks", return_value=[]), \
            pytest.raises(ExternalCallFailed) as raised:
        run_step(create_op, "worker_steady", services.wait_worker_steady)
    assert raised.value.code == "ServiceDeploymentFailed"
    assert "3 tasks failed." in raised.value.message
    assert "Health checks failed with these codes: [302]" in raised.value.message


def test_one_failed_task_is_waited_through(create_op):
    done = ecs.Deployment(status="PRIMARY", rollout_state="COMPLETED", task_definition="td:2",
                          desired=1, running=1, id="ecs-svc/2", failed_tasks=1)
    answers = iter([failing_service(rollout="IN_PROGRESS", failed_tasks=1),
                    dataclasses.replace(failing_service(), deployments=(done,))])
    with mock.patch("provisioning.aws.ecs.describe_service",
                    side_effect=lambda **_: next(answers)):
        assert run_step(create_op, "worker_steady", services.wait_worker_steady) == {}



# --- end to end on the sandbox: a crashing image fails a create and a redeploy at once -----------

@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with running_stack(tmp_path_factory.mktemp("health"), 0.01) as stack:
        yield stack


def failed_steps(result) -> dict[str, dict]:
    return {s["key"]: s for s in json.loads(result.stdout)["steps"] if s["state"] == "failed"}


@pytest.mark.e2e
def test_broken_image_fails_create_and_redeploy_at_once_with_ecs_reason(stack):
    # The services' wait limit is 20 minutes: only failing at once ends this so soon.
    started = time.monotonic()
    created = stack.manage("ds", "create", "feature/broken", "--shared-db", "--wait", "--json")
    assert created.returncode == 1, created.stderr
    assert time.monotonic() - started < 120
    failed = failed_steps(created)
    assert set(failed) & {"web_healthy", "worker_steady"}, created.stdout
    for step in failed.values():
        assert step["error_code"] == "ServiceDeploymentFailed"
        assert "ECS deployment circuit breaker: tasks failed to start." in step["error_message"]
        assert "Stopped task: Essential container in task exited" in step["error_message"]

    ready = stack.manage("ds", "create", "develop", "--shared-db", "--wait", "--json")
    assert ready.returncode == 0, ready.stderr
    staging = json.loads(ready.stdout)["name"]
    redeployed = stack.manage("ds", "redeploy", staging, "--tag", "feature-broken", "--wait",
                              "--json")
    assert redeployed.returncode == 1, redeployed.stderr
    failed = failed_steps(redeployed)
    assert set(failed) & {"web_healthy", "worker_steady"}, redeployed.stdout
    for step in failed.values():
        assert step["error_code"] == "ServiceDeploymentFailed"
        assert "Essential container in task exited" in step["error_message"]

    for name in (json.loads(created.stdout)["name"], staging):
        destroyed = stack.manage("ds", "destroy", name, "--wait")
        assert destroyed.returncode == 0, destroyed.stderr
