"""Only Slack gets in: a request to /slack/* must carry a good signature of its exact body,
made within five minutes and never seen before; anything else is 401 and changes nothing."""

import time
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.test import Client
from django.utils import timezone

from provisioning.models import SlackRequest, SlackSignature
from tests.slack_helpers import SECRET, action_form, command_form, post_signed, sign

pytest_plugins = ["tests.slack_fixtures"]
pytestmark = pytest.mark.django_db
COMMANDS, INTERACTIONS = "/slack/commands", "/slack/interactions"


@pytest.fixture
def client() -> Client:
    # Slack sends no cookie and no CSRF token: the check must not want one.
    return Client(enforce_csrf_checks=True)


def nothing_changed(queued: list[int]) -> bool:
    return not SlackRequest.objects.exists() and queued == []


def test_a_well_signed_command_is_answered_at_once_and_queued(
        client, slack, queued_slack, django_capture_on_commit_callbacks):
    form = command_form("list mine", response_url=slack.response_url())
    started = time.monotonic()
    with django_capture_on_commit_callbacks(execute=True):
        response = post_signed(client, COMMANDS, form)
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert response.json() == {"response_type": "ephemeral", "text": "Working on `list mine`..."}
    # Slack gives up after 3 s: the request calls neither Slack nor AWS.
    assert elapsed < 1.0 and slack.lookups == []
    [request] = SlackRequest.objects.all()
    assert queued_slack == [request.pk]
    assert (request.text, request.slack_user_id, request.channel_id) == (
        "list mine", "U0ALICE", "C0TESTCHAN")


def test_a_wrong_secret_is_refused(client, slack, queued_slack):
    response = post_signed(client, COMMANDS, command_form("list"),
                           secret="not-the-signing-secret")
    assert response.status_code == 401
    assert nothing_changed(queued_slack)


def test_a_body_changed_after_signing_is_refused(client, slack, queued_slack):
    signed = urlencode(command_form("list"))
    sent = urlencode(command_form("destroy login-page"))
    response = client.post(COMMANDS, data=sent, content_type="application/x-www-form-urlencoded",
                           **sign(signed))
    assert response.status_code == 401
    assert nothing_changed(queued_slack)


@pytest.mark.parametrize("headers", [
    {},
    {"HTTP_X_SLACK_REQUEST_TIMESTAMP": "1700000000"},
    {"HTTP_X_SLACK_REQUEST_TIMESTAMP": "soon", "HTTP_X_SLACK_SIGNATURE": "v0=00"},
    {"HTTP_X_SLACK_REQUEST_TIMESTAMP": str(int(time.time())), "HTTP_X_SLACK_SIGNATURE": ""},
])
def test_missing_or_malformed_headers_are_refused(client, slack, queued_slack, headers):
    response = client.post(COMMANDS, data=urlencode(command_form("list")),
                           content_type="application/x-www-form-urlencoded", **headers)
    assert response.status_code == 401
    assert nothing_changed(queued_slack)


@pytest.mark.parametrize("age", [301, -301, 3600])
def test_a_stale_or_future_timestamp_is_refused_though_well_signed(
        client, slack, queued_slack, age):
    response = post_signed(client, COMMANDS, command_form("list"),
                           timestamp=int(time.time()) - age)
    assert response.status_code == 401
    assert nothing_changed(queued_slack)


def test_a_replayed_request_is_refused(client, slack, queued_slack,
                                       django_capture_on_commit_callbacks):
    body = urlencode(command_form("list", response_url=slack.response_url()))
    headers = sign(body)
    with django_capture_on_commit_callbacks(execute=True):
        first = client.post(COMMANDS, data=body,
                            content_type="application/x-www-form-urlencoded", **headers)
        again = client.post(COMMANDS, data=body,
                            content_type="application/x-www-form-urlencoded", **headers)
    assert (first.status_code, again.status_code) == (200, 401)
    assert SlackRequest.objects.count() == 1 and len(queued_slack) == 1


def test_signatures_outside_the_window_are_forgotten(client, slack, queued_slack):
    SlackSignature.objects.create(signature="v0=old", timestamp=1,
                                  seen_at=timezone.now() - timedelta(minutes=11))
    SlackSignature.objects.create(signature="v0=recent", timestamp=2,
                                  seen_at=timezone.now() - timedelta(minutes=9))
    assert post_signed(client, COMMANDS, command_form("help")).status_code == 200
    assert set(SlackSignature.objects.values_list("signature", flat=True)) >= {"v0=recent"}
    assert not SlackSignature.objects.filter(signature="v0=old").exists()


def test_the_buttons_endpoint_checks_the_same_way(client, slack, queued_slack,
                                                  django_capture_on_commit_callbacks):
    form = action_form("destroy", "login-page", response_url=slack.response_url())
    assert post_signed(client, INTERACTIONS, form, secret="wrong").status_code == 401
    assert post_signed(client, INTERACTIONS, form,
                       timestamp=int(time.time()) - 600).status_code == 401
    assert nothing_changed(queued_slack)
    body = urlencode(form)
    headers = sign(body)
    with django_capture_on_commit_callbacks(execute=True):
        first = client.post(INTERACTIONS, data=body,
                            content_type="application/x-www-form-urlencoded", **headers)
        again = client.post(INTERACTIONS, data=body,
                            content_type="application/x-www-form-urlencoded", **headers)
    assert (first.status_code, again.status_code) == (200, 401)
    assert len(queued_slack) == 1


def test_without_a_signing_secret_nothing_gets_in(client, settings, queued_slack):
    settings.DS_SLACK_SIGNING_SECRET = ""
    body = urlencode(command_form("list"))
    for path in (COMMANDS, INTERACTIONS):
        response = client.post(path, data=body, content_type="application/x-www-form-urlencoded",
                               **sign(body, secret=SECRET))
        assert response.status_code == 503
    assert nothing_changed(queued_slack)


def test_only_post_is_answered(client, slack):
    assert client.get(COMMANDS).status_code == 405
