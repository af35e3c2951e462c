"""Slack as a notification channel: what a Slack command started is told, once, in the
conversation it came from (with buttons), and under the command on its response URL."""

import pytest
from django.utils import timezone

from provisioning import lifecycle, notifications
from provisioning.models import (
    Notification,
    NotificationStatus,
    OperationKind,
    OperationStatus,
    SlackRequest,
    Staging,
    StagingStatus,
)
from provisioning.runner import run_operation
from provisioning.slack import bot, messages
from provisioning.stepkit import StepSpec
from tests.factories import make_operation, make_staging
from tests.slack_helpers import CHANNEL

pytest_plugins = ["tests.slack_fixtures"]
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def queued(monkeypatch) -> list[int]:
    calls: list[int] = []
    monkeypatch.setattr("provisioning.tasks.enqueue_notification", calls.append)
    return calls


@pytest.fixture
def dashboard(settings):
    settings.DS_DASHBOARD_URL = "https://stagings.example.com"


def slack_rows() -> list[Notification]:
    return list(Notification.objects.filter(channel="slack"))


def buttons(message: dict) -> dict[str, dict]:
    return {element["action_id"]: element for block in message["blocks"]
            for element in block.get("elements", [])}


def test_a_staging_created_from_slack_is_announced_ready_in_its_channel_once(
        host_env, run, slack, queued, dashboard, monkeypatch):
    def report(ctx):
        Staging.objects.filter(pk=ctx.staging.pk).update(
            url=f"https://{ctx.staging.name}.dynamic.test", login_username="admin@x.example",
            login_url=f"https://{ctx.staging.name}.dynamic.test/login")

    monkeypatch.setitem(lifecycle.KINDS, OperationKind.CREATE, lifecycle.KindRules(
        kind=OperationKind.CREATE, plan=lambda op: [StepSpec("report", "Report", report)],
        working_status=StagingStatus.PROVISIONING, success_status=StagingStatus.READY,
        failure_status=StagingStatus.FAILED, starts_from=frozenset({StagingStatus.PENDING}),
        success_stamp="ready_at"))
    run("create feature/Login_Page --shared-db")
    staging = Staging.objects.get()
    assert run_operation(staging.latest_operation().pk)

    [row] = slack_rows()
    assert queued == [row.pk] and row.target["channel"] == CHANNEL
    assert notifications.deliver(row.pk) == "sent"
    assert notifications.deliver(row.pk) != "sent"
    [message] = slack.messages
    url = f"https://{staging.name}.dynamic.test"
    assert message["channel"] == CHANNEL
    assert message["text"] == (f"{staging.name} is ready: {url}. Log in at {url}/login as "
                               "admin@x.example; the password is on its page in the dashboard.")
    offered = buttons(message)
    assert offered[messages.DESTROY]["value"] == staging.name
    assert offered["open_staging"]["url"] == url
    assert offered["open_dashboard"]["url"] == (
        f"https://stagings.example.com/stagings/{staging.pk}/")
    # No Extend button: stagings have nothing to extend yet.
    assert set(offered) == {messages.DESTROY, "open_staging", "open_dashboard"}
    # ... and under the command, where only its author sees it.
    assert slack.responses[-1]["text"] == message["text"]
    assert slack.responses[-1]["response_type"] == "ephemeral"


def test_a_failure_is_told_in_the_channel_with_the_step_and_a_destroy_button(
        host_env, run, slack, queued, monkeypatch):
    def broken(ctx):
        from provisioning.errors import ExternalCallFailed

        raise ExternalCallFailed("ecs:CreateService", "InvalidParameterException",
                                 "No Fargate capacity.")

    monkeypatch.setitem(lifecycle.KINDS, OperationKind.CREATE, lifecycle.KindRules(
        kind=OperationKind.CREATE, plan=lambda op: [StepSpec("web", "Web service", broken)],
        working_status=StagingStatus.PROVISIONING, success_status=StagingStatus.READY,
        failure_status=StagingStatus.FAILED, starts_from=frozenset({StagingStatus.PENDING})))
    run("create feature/Login_Page --shared-db")
    staging = Staging.objects.get()
    run_operation(staging.latest_operation().pk)
    [row] = slack_rows()
    notifications.deliver(row.pk)
    [message] = slack.messages
    assert message["text"] == (f"The create of {staging.name} failed: the step \"Web service\" "
                               "failed (ecs:CreateService): InvalidParameterException: No "
                               "Fargate capacity.")
    assert set(buttons(message)) == {messages.DESTROY}


def test_a_destroy_from_slack_is_told_without_buttons(run, slack, queued, alice):
    shop = make_staging(alice, name="shop", status=StagingStatus.READY)
    run("destroy shop")
    operation = shop.latest_operation()
    operation.status = OperationStatus.SUCCEEDED
    operation.save()
    Staging.objects.filter(pk=shop.pk).update(status=StagingStatus.DESTROYED)
    notifications.on_operation_finished(None, operation_id=operation.pk, succeeded=True)
    [row] = slack_rows()
    notifications.deliver(row.pk)
    [message] = slack.messages
    assert message["text"] == "shop is destroyed: nothing of it is left in AWS."
    assert "elements" not in str(message["blocks"])


def test_an_end_that_came_before_the_link_is_still_told_once(slack, queued, alice):
    shop = make_staging(alice, name="shop", status=StagingStatus.DESTROYED)
    operation = make_operation(shop, kind=OperationKind.DESTROY,
                               status=OperationStatus.SUCCEEDED, finished_at=timezone.now())
    request = SlackRequest.objects.create(kind="command", text="destroy shop",
                                          slack_user_id="U0ALICE", channel_id=CHANNEL,
                                          response_url=slack.response_url())
    # The runner's receiver ran first: nobody in Slack was linked to the operation yet.
    notifications.on_operation_finished(None, operation_id=operation.pk, succeeded=True)
    assert slack_rows() == []
    bot._link(request, shop, operation)
    bot._link(request, shop, operation)
    [row] = slack_rows()
    assert queued.count(row.pk) == 1
    assert Notification.objects.filter(channel="dashboard").count() == 1


def test_what_the_dashboard_started_is_not_told_in_slack(slack, queued, alice):
    shop = make_staging(alice, name="shop")
    # A Slack conversation knows "shop"; the operation that ends is another staging's.
    operation = make_operation(make_staging(alice, name="other"),
                               status=OperationStatus.SUCCEEDED)
    SlackRequest.objects.create(kind="command", text="show shop", slack_user_id="U0ALICE",
                                channel_id=CHANNEL, staging=shop)
    notifications.on_operation_finished(None, operation_id=operation.pk, succeeded=True)
    assert slack_rows() == []


def test_without_a_bot_token_slack_is_not_a_channel(slack, queued, alice, settings):
    settings.DS_SLACK_BOT_TOKEN = ""
    shop = make_staging(alice, name="shop")
    operation = make_operation(shop, status=OperationStatus.SUCCEEDED)
    SlackRequest.objects.create(kind="command", text="create x", slack_user_id="U0ALICE",
                                channel_id=CHANNEL, staging=shop, operation=operation)
    notifications.on_operation_finished(None, operation_id=operation.pk, succeeded=True)
    assert slack_rows() == []


def linked_end(alice, slack):
    shop = make_staging(alice, name="shop", status=StagingStatus.READY, url="https://s.test")
    operation = make_operation(shop, status=OperationStatus.SUCCEEDED)
    SlackRequest.objects.create(kind="command", text="create x", slack_user_id="U0ALICE",
                                channel_id=CHANNEL, staging=shop, operation=operation,
                                response_url=slack.response_url("cmd"))
    notifications.on_operation_finished(None, operation_id=operation.pk, succeeded=True)
    [row] = slack_rows()
    return row


def test_a_channel_the_bot_is_not_in_is_answered_through_the_response_url(
        slack, queued, alice):
    row = linked_end(alice, slack)
    slack.refuse = "not_in_channel"
    assert notifications.deliver(row.pk) == "sent"
    assert slack.messages == []
    [said] = slack.responses
    assert said["response_type"] == "in_channel" and said["text"].startswith("shop is ready")
    assert messages.DESTROY in buttons(said)


def test_slack_refusing_is_tried_again_and_told_once(slack, queued, alice):
    row = linked_end(alice, slack)
    slack.refuse = "ratelimited"
    assert notifications.deliver(row.pk) == "failed"
    failed = Notification.objects.get(pk=row.pk)
    assert failed.status == NotificationStatus.PENDING
    assert "chat.postMessage: ratelimited" in failed.error
    slack.refuse = ""
    Notification.objects.filter(pk=row.pk).update(next_attempt_at=timezone.now())
    assert notifications.deliver_due() == [row.pk]
    assert notifications.deliver_due() == []
    assert len(slack.messages) == 1


def test_a_notification_without_an_operation_goes_to_the_stagings_conversation(
        slack, queued, alice):
    shop = make_staging(alice, name="shop", status=StagingStatus.READY)
    SlackRequest.objects.create(kind="command", text="create x", slack_user_id="U0ALICE",
                                channel_id="C0OTHER", staging=shop,
                                response_url=slack.response_url("old"))
    made = notifications.notify(alice, shop, "expiry-warning", "shop expires in 1 hour.",
                                key="expiry-shop-1h")
    [row] = [note for note in made if note.channel == "slack"]
    notifications.deliver(row.pk)
    assert [m["channel"] for m in slack.messages] == ["C0OTHER"]
