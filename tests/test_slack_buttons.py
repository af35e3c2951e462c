"""The buttons under stagingbot's messages: Destroy asks first, then destroys with the
presser's rights; Cancel leaves everything as it was; link buttons need nothing."""

import json
from urllib.parse import urlencode

import pytest
from django.test import Client

from provisioning.models import AuditEvent, OperationKind, SlackRequest, StagingStatus
from provisioning.slack import messages
from tests.factories import make_staging
from tests.slack_helpers import BOB, sign

pytest_plugins = ["tests.slack_fixtures"]
pytestmark = pytest.mark.django_db


@pytest.fixture
def shop(alice):
    return make_staging(alice, name="shop", status=StagingStatus.READY,
                        url="https://shop.dynamic.test")


def action_ids(body: dict) -> list[str]:
    return [element["action_id"] for block in body.get("blocks", [])
            for element in block.get("elements", [])]


def test_destroy_asks_for_confirmation_and_changes_nothing(press, shop, enqueued):
    status, [asked] = press(messages.DESTROY, "shop")
    assert status == 200
    assert asked["text"] == "Destroy shop?" and asked["response_type"] == "ephemeral"
    assert "cannot be undone" in asked["blocks"][0]["text"]["text"]
    assert action_ids(asked) == [messages.DESTROY_CONFIRMED, messages.DESTROY_CANCELLED]
    assert shop.operations.count() == 0 and enqueued == []


def test_the_confirmation_destroys(press, shop, enqueued):
    _, [done] = press(messages.DESTROY_CONFIRMED, "shop")
    operation = shop.latest_operation()
    assert operation.kind == OperationKind.DESTROY and enqueued == [operation.pk]
    assert done["replace_original"] is True
    assert done["text"].startswith("Destroying *shop*")
    assert AuditEvent.objects.get(action="destroy").channel == "slack"
    assert SlackRequest.objects.get().operation == operation


def test_cancel_leaves_it_as_it_was(press, shop, enqueued, slack):
    _, [said] = press(messages.DESTROY_CANCELLED, "shop")
    assert said["text"] == "Nothing was destroyed: shop stays."
    assert said["replace_original"] is True
    assert shop.operations.count() == 0 and slack.lookups == []


def test_bob_cannot_destroy_alices_staging_with_the_buttons(press, shop, enqueued):
    for action in (messages.DESTROY, messages.DESTROY_CONFIRMED):
        _, [said] = press(action, "shop", user=BOB)
        assert said["text"] == "Only shop's owner (alice) or an admin may destroy it."
    assert shop.operations.count() == 0 and enqueued == []
    assert not AuditEvent.objects.exists()


def test_a_staging_already_gone(press, alice, enqueued):
    make_staging(alice, name="old", status=StagingStatus.DESTROYED)
    _, [said] = press(messages.DESTROY_CONFIRMED, "old")
    assert said["text"] == "No live staging is called old."


def test_link_buttons_and_unknown_actions_are_acknowledged_and_ignored(
        press, shop, slack, queued_slack):
    for action in ("open_staging", "open_dashboard", "something_else"):
        status, said = press(action, "shop")
        assert status == 200 and said == []
    assert not SlackRequest.objects.exists()


def test_a_payload_that_is_not_json_is_a_bad_request(slack, queued_slack):
    body = urlencode({"payload": "{not json"})
    response = Client().post("/slack/interactions", data=body,
                             content_type="application/x-www-form-urlencoded", **sign(body))
    assert response.status_code == 400 and queued_slack == []
    body = urlencode({"payload": json.dumps(["a list"])})
    response = Client().post("/slack/interactions", data=body,
                             content_type="application/x-www-form-urlencoded", **sign(body))
    assert response.status_code == 200 and queued_slack == []
