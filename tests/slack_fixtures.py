"""Fixtures for stagingbot's tests (``pytest_plugins = ["tests.slack_fixtures"]``)."""

import pytest
from django.test import Client

from provisioning.slack.bot import answer
from tests.slack_helpers import (
    ADMIN,
    ALICE,
    BOB,
    SECRET,
    TOKEN,
    FakeSlack,
    action_form,
    command_form,
    post_signed,
)


@pytest.fixture
def slack(httpserver, settings, alice, bob, admin) -> FakeSlack:
    """stagingbot configured against a FakeSlack that knows alice, bob and admin."""
    fake = FakeSlack(httpserver)
    fake.users.update({ALICE: alice.email, BOB: bob.email, ADMIN: admin.email.upper()})
    settings.DS_SLACK_SIGNING_SECRET = SECRET
    settings.DS_SLACK_BOT_TOKEN = TOKEN
    settings.DS_SLACK_API_URL = fake.api_url
    return fake


@pytest.fixture
def queued_slack(monkeypatch) -> list[int]:
    """Slack requests handed to the queue (tests answer them with bot.answer)."""
    calls: list[int] = []
    monkeypatch.setattr("provisioning.tasks.enqueue_slack_request", calls.append)
    return calls


@pytest.fixture
def run(slack, queued_slack, enqueued, django_capture_on_commit_callbacks):
    """Type ``text`` in Slack as ``user``: (the immediate answer, the answers on the response
    URL once the queue has run the request). Operations are only queued (``enqueued``)."""

    def typed(text: str, user: str = ALICE) -> tuple[str, list[str]]:
        before = len(slack.responses)
        with django_capture_on_commit_callbacks(execute=True):
            response = post_signed(Client(), "/slack/commands",
                                   command_form(text, user=user,
                                                response_url=slack.response_url(str(before))))
        assert response.status_code == 200
        body = response.json()
        assert body["response_type"] == "ephemeral"
        with django_capture_on_commit_callbacks(execute=True):
            for request_id in list(queued_slack):
                queued_slack.remove(request_id)
                assert answer(request_id) == "answered"
        return body["text"], slack.texts()[before:]

    return typed


@pytest.fixture
def press(slack, queued_slack, enqueued, django_capture_on_commit_callbacks):
    """Press a button (``action_id``, ``value``) in Slack as ``user``: (the HTTP status, the
    bodies posted to the response URL once the queue has run the press)."""

    def pressed(action_id: str, value: str, user: str = ALICE) -> tuple[int, list[dict]]:
        before = len(slack.responses)
        with django_capture_on_commit_callbacks(execute=True):
            response = post_signed(Client(), "/slack/interactions", action_form(
                action_id, value, user=user, response_url=slack.response_url(f"b{before}")))
        with django_capture_on_commit_callbacks(execute=True):
            for request_id in list(queued_slack):
                queued_slack.remove(request_id)
                assert answer(request_id) == "answered"
        return response.status_code, slack.responses[before:]

    return pressed
