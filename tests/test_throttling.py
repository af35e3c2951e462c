"""Throttling while waiting is "not yet": a waiting step backs off and goes on, and its checks
never spend the retry budget that calls which change something rely on."""

import dataclasses
import json
import time

import pytest
from django.utils import timezone
from werkzeug import Response

from provisioning import stepkit
from provisioning.aws import base, ecs
from provisioning.aws.base import AwsError
from provisioning.errors import StepTimedOut
from tests.factories import make_operation, make_staging, step_context

pytestmark = pytest.mark.django_db

THROTTLED = {"__type": "ThrottlingException", "message": "Rate exceeded"}
NO_SERVICE = {"services": [], "failures": []}


def throttled_then(answers: list[tuple[int, dict]]):
    """An ECS endpoint answering each request with the next of ``answers`` (the last repeats)."""
    seen: list[str] = []

    def handler(request):
        seen.append(request.headers.get("X-Amz-Target", ""))
        status, body = answers[min(len(seen), len(answers)) - 1]
        return Response(json.dumps(body), status=status,
                        content_type="application/x-amz-json-1.1")

    return handler, seen


@pytest.fixture
def ecs_endpoint(httpserver, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", httpserver.url_for("/"))
    for key, value in {"AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
                       "AWS_ACCESS_KEY_ID": "testing",
                       "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(key, value)
    base.reset_clients()
    yield httpserver
    base.reset_clients()


def test_a_polling_check_is_made_once_and_throttling_comes_back(ecs_endpoint):
    handler, seen = throttled_then([(400, THROTTLED), (200, NO_SERVICE)])
    ecs_endpoint.expect_request("/").respond_with_handler(handler)
    with base.while_polling(), pytest.raises(AwsError) as caught:
        ecs.describe_service(cluster="c", service="s")
    assert caught.value.code == "ThrottlingException"
    assert len(seen) == 1
    assert base.is_throttling(caught.value)


def test_a_call_that_changes_something_still_retries_throttling(ecs_endpoint):
    handler, seen = throttled_then([(400, THROTTLED), (200, NO_SERVICE)])
    ecs_endpoint.expect_request("/").respond_with_handler(handler)
    assert ecs.describe_service(cluster="c", service="s") is None
    assert len(seen) == 2


def test_polling_and_other_clients_are_separate(ecs_endpoint):
    with base.while_polling():
        polling = base.client("ecs")
    assert base.client("ecs") is not polling
    assert polling.meta.config.retries["total_max_attempts"] == 1


@pytest.fixture
def context(alice, settings):
    settings.DS_POLL_SECONDS = 0.01
    return step_context(make_operation(make_staging(alice)), "web_healthy")


def keep_waiting(context, what, check, timeout) -> list[float]:
    """Run the wait again each time it parks, as the runner does; the pauses it asked for."""
    pauses = []
    while True:
        try:
            context.wait_until(what, check, timeout)
            return pauses
        except stepkit.Parked as parked:
            pauses.append((parked.until - timezone.now()).total_seconds())


def test_wait_until_treats_throttling_as_not_yet(context, monkeypatch):
    monkeypatch.setattr(stepkit, "MAX_THROTTLED_PAUSE", 0.05)
    answers = iter([AwsError("ecs:DescribeServices", "ThrottlingException", "Rate exceeded"),
                    AwsError("ecs:DescribeServices", "Throttling", "Rate exceeded"),
                    (True, "1/1 tasks running")])
    seen_details = []

    def check():
        answer = next(answers)
        seen_details.append(context.step.detail)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert len(keep_waiting(context, "ecs:DescribeServices web", check, timeout=30)) == 2
    assert "throttling" in seen_details[-1]
    assert context.step.detail == "1/1 tasks running"


def test_wait_until_backs_off_while_throttled(context):
    calls = iter(range(4))

    def check():
        if next(calls) < 3:
            raise AwsError("rds:DescribeDBInstances", "Throttling", "Rate exceeded")
        return True, "available"

    pauses = keep_waiting(context, "rds", check, timeout=30)
    assert len(pauses) == 3 and pauses == sorted(pauses) and pauses[0] < pauses[-1]


def test_a_check_that_is_not_done_parks_the_step_until_the_next_look(context):
    with pytest.raises(stepkit.Parked) as parked:
        context.wait_until("rds", lambda: (False, "creating"), timeout=30)
    assert 0 < (parked.value.until - timezone.now()).total_seconds() <= 0.01
    assert context.step.detail == "creating"


def test_other_errors_while_waiting_still_fail_the_step(context):
    def check():
        raise AwsError("ecs:DescribeServices", "AccessDeniedException", "not allowed")

    with pytest.raises(AwsError):
        context.wait_until("ecs", check, timeout=30)


def test_throttled_until_the_deadline_times_out_with_what_was_seen(context, monkeypatch):
    monkeypatch.setattr(stepkit, "MAX_THROTTLED_PAUSE", 0.01)

    def check():
        raise AwsError("ecs:DescribeServices", "ThrottlingException", "Rate exceeded")

    with pytest.raises(StepTimedOut) as caught:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            keep_waiting(context, "ecs", check, timeout=0.05)
    assert "throttling" in str(caught.value)


def test_aws_region_alone_chooses_the_region(monkeypatch):
    """boto3 reads only AWS_DEFAULT_REGION; a shell (and the README) may set AWS_REGION."""
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    base.reset_clients()
    try:
        assert base.client("ecs").meta.region_name == "eu-west-1"
        assert base.current_region() == "eu-west-1"
    finally:
        base.reset_clients()


def test_a_long_wait_is_looked_at_less_often(context, monkeypatch):
    """After a while the pause is a twentieth of the time waited, at most six polls."""
    from datetime import timedelta

    context.config = dataclasses.replace(context.config, poll_seconds=10.0)
    began = timezone.now()
    assert context._pause_after(began) == 10.0
    assert context._pause_after(began - timedelta(seconds=600)) == pytest.approx(30.0, abs=0.01)
    assert context._pause_after(began - timedelta(seconds=3000)) == 60.0
