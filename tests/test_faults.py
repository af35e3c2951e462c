"""AWS faults, in-process against moto.

* Throttling and 5xx answers are retried by botocore's standard retry mode on our clients.
* Every AWS wrapper function a create calls is made to fail in turn (AccessDenied on its first
  call): each time the staging ends failed at the step that made the call, with the call, code
  and message shown; a destroy then leaves nothing. The same for every call of a destroy, which
  a second destroy then finishes.
The list of calls is found by watching a create (and a destroy), so a wrapper added to the
engine later is covered without touching this file.
"""

import re

import boto3
import pytest
from botocore.awsrequest import AWSResponse

from provisioning.aws import base, ecs
from provisioning.aws.base import AwsError
from provisioning.errors import ExternalCallFailed
from provisioning.models import Operation, OperationStatus, Staging, StagingStatus, StepState
from provisioning.operations import request_create, request_destroy
from provisioning.runner import run_operation
from tests.conftest import BRANCH, CLUSTER, QA_DB, WEB_SERVICE
from tests.faults import Watch
from tests.footprint import assert_clean

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("enqueued")]


# --- throttling and 5xx: botocore's retries on our clients --------------------------------------

class _Raw:
    def __init__(self, body: bytes):
        self._body = body

    def stream(self, **_):
        yield self._body


def _answer(status: int, code: str, message: str) -> AWSResponse:
    body = f'{{"__type": "{code}", "message": "{message}"}}'.encode()
    return AWSResponse("https://ecs.test", status,
                       {"Content-Type": "application/x-amz-json-1.1"}, _Raw(body))


def test_clients_retry_with_standard_backoff(host_env):
    config = base.client("ecs").meta.config
    # botocore counts "max_attempts" as retries: the first try plus eight more.
    assert config.retries == {"mode": "standard", "total_max_attempts": 9}


def test_throttling_and_server_errors_are_retried(host_env):
    faults = [(400, "ThrottlingException", "Rate exceeded"),
              (500, "ServerException", "Internal failure"),
              (503, "ServiceUnavailableException", "Service unavailable")]
    sent: list[str] = []

    def flaky(request, **_):
        sent.append(request.url)
        if len(sent) <= len(faults):
            return _answer(*faults[len(sent) - 1])
        return None  # from now on moto answers

    client = base.client("ecs")
    client.meta.events.register_first("before-send.ecs.DescribeServices", flaky)
    try:
        service = ecs.describe_service(cluster=CLUSTER, service=WEB_SERVICE)
    finally:
        client.meta.events.unregister("before-send.ecs.DescribeServices", flaky)
    assert service is not None and service.name == WEB_SERVICE
    assert len(sent) == len(faults) + 1


def test_a_hard_error_is_not_retried_and_says_what_failed(host_env):
    sent: list[str] = []

    def refuse(request, **_):
        sent.append(request.url)
        return _answer(400, "AccessDeniedException", "not authorized to DescribeServices")

    client = base.client("ecs")
    client.meta.events.register_first("before-send.ecs.DescribeServices", refuse)
    try:
        with pytest.raises(AwsError) as failed:
            ecs.describe_service(cluster=CLUSTER, service=WEB_SERVICE)
    finally:
        client.meta.events.unregister("before-send.ecs.DescribeServices", refuse)
    assert len(sent) == 1
    assert (failed.value.call, failed.value.code) == ("ecs:DescribeServices",
                                                      "AccessDeniedException")


# --- one fault per wrapper call ----------------------------------------------------------------

@pytest.fixture
def account_api(settings, httpserver):
    """The app's account API, answering every create and delete."""
    settings.DS_ACCOUNT_API_URL = httpserver.url_for("/api/accounts")
    settings.DS_ACCOUNT_API_TOKEN = "token"
    httpserver.expect_request("/api/accounts", method="POST").respond_with_json(
        {"account_id": "7", "username": "qa@example.com", "password": "pw",
         "login_url": "https://x/login"}, status=201)
    httpserver.expect_request(re.compile(r"^/api/accounts/\w+$"), method="DELETE"
                              ).respond_with_data("", status=204)
    return httpserver


def run(operation_id: int) -> Operation:
    assert run_operation(operation_id)
    return Operation.objects.get(pk=operation_id)


def fresh_create(owner) -> Staging:
    # From another source than the host's, with an account API: the create with most calls.
    return request_create(branch=BRANCH, owner=owner, source=QA_DB)


def assert_failed_at_the_call(operation: Operation, watch: Watch) -> None:
    staging = Staging.objects.get(pk=operation.staging_id)
    assert operation.status == OperationStatus.FAILED
    assert staging.status == StagingStatus.FAILED
    assert watch.injected_in and watch.injected_in != "(outside a step)", watch.calls
    step = operation.steps.get(key=watch.injected_in)
    assert step.state == StepState.FAILED
    assert (step.error_call, step.error_code, step.error_message) == (
        watch.fail, "AccessDenied", "injected")
    assert f"({watch.fail}): AccessDenied: injected" in staging.error
    assert list(operation.steps.filter(state=StepState.FAILED)) == [step]


def watched_operation(monkeypatch, operation_id: int, **watch) -> tuple[Operation, Watch]:
    with monkeypatch.context() as patch:
        spy = Watch(patch, **watch)
        operation = run(operation_id)
    return operation, spy


def test_each_call_of_a_create_failing_fails_its_step_and_destroy_cleans_up(
        host_env, alice, account_api, monkeypatch, subtests, record_property):
    staging = fresh_create(alice)
    operation, spy = watched_operation(monkeypatch, staging.latest_operation().pk)
    assert operation.status == OperationStatus.SUCCEEDED, operation.error
    calls = spy.functions()
    # What a create from another source with an account must ask AWS, at the least.
    assert {"rds.restore_from_snapshot", "rds.set_master_password", "secretsmanager.read_secret",
            "secretsmanager.store_secret", "ecs.register_task_definition", "ecs.create_service",
            "elbv2.create_target_group", "elbv2.create_rule", "ecr.find_image"} <= set(calls)
    assert run(request_destroy(staging, user=alice).pk).status == OperationStatus.SUCCEEDED

    for call in calls:
        with subtests.test(call=call):
            staging = fresh_create(alice)
            operation, spy = watched_operation(monkeypatch, staging.latest_operation().pk,
                                               fail=call)
            assert_failed_at_the_call(operation, spy)
            destroy = run(request_destroy(staging, user=alice).pk)
            assert destroy.status == OperationStatus.SUCCEEDED, destroy.error
            assert_clean(staging.name, host_env.listener_arn)
    record_property("create_faults_injected", len(calls))
    print(f"\n{len(calls)} create faults injected: {', '.join(calls)}")


def test_each_call_of_a_destroy_failing_fails_its_step_and_a_second_destroy_finishes(
        host_env, alice, account_api, monkeypatch, subtests, record_property):
    staging = fresh_create(alice)
    assert run(staging.latest_operation().pk).status == OperationStatus.SUCCEEDED
    destroy, spy = watched_operation(monkeypatch, request_destroy(staging, user=alice).pk)
    assert destroy.status == OperationStatus.SUCCEEDED, destroy.error
    calls = spy.functions()
    assert {"elbv2.delete_rule", "ecs.delete_service", "elbv2.delete_target_group",
            "ecs.delete_task_definitions", "rds.delete_instance", "secretsmanager.delete_secret",
            "tagging.tagged_resource_arns"} <= set(calls)

    for call in calls:
        with subtests.test(call=call):
            staging = fresh_create(alice)
            assert run(staging.latest_operation().pk).status == OperationStatus.SUCCEEDED
            destroy, spy = watched_operation(
                monkeypatch, request_destroy(staging, user=alice).pk, fail=call)
            assert_failed_at_the_call(destroy, spy)
            again = run(request_destroy(Staging.objects.get(pk=staging.pk), user=alice).pk)
            assert again.status == OperationStatus.SUCCEEDED, again.error
            assert_clean(staging.name, host_env.listener_arn)
    record_property("destroy_faults_injected", len(calls))
    print(f"\n{len(calls)} destroy faults injected: {', '.join(calls)}")


def test_aws_refusing_while_a_create_is_requested_makes_nothing(host_env, alice, monkeypatch):
    """The checks before anything is made call AWS too: a refusal there is the request's
    error, and no staging row is left to clean up."""
    for qualified in ("ecr.find_image", "rds.list_snapshots", "elbv2.list_rules"):
        with monkeypatch.context() as patch:
            Watch(patch, fail=qualified)
            with pytest.raises(ExternalCallFailed) as refused:
                fresh_create(alice)
        assert refused.value.call == qualified
        assert not Staging.objects.exists()
    assert boto3.client("elbv2").describe_target_groups()["TargetGroups"][0][
        "TargetGroupName"] == "host-web"
