"""Notifications: an operation's end is told to whoever asked, on each channel once (two
signals, two deliveries, a retry, two workers at the same time), and listed on the dashboard."""

import threading
import time
from datetime import timedelta

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from provisioning import lifecycle, notifications
from provisioning.models import (
    Notification,
    NotificationStatus,
    Operation,
    OperationKind,
    OperationStatus,
    StagingStatus,
    Step,
    StepState,
)
from provisioning.runner import run_operation
from provisioning.stepkit import StepSpec
from tests.factories import make_operation, make_staging
from tests.pages import client_for

# Deliveries are enqueued once the transaction commits: these tests commit as production does.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def queued(monkeypatch) -> list[int]:
    """Notifications handed to the queue for delivery (no queue runs here)."""
    calls: list[int] = []
    monkeypatch.setattr("provisioning.tasks.enqueue_notification", calls.append)
    return calls


@pytest.fixture
def email_on(settings):
    settings.DS_EMAIL_ENABLED = True
    settings.DS_DASHBOARD_URL = "https://stagings.example.com"


class RecordingChannel(notifications.Channel):
    """A channel registered from outside the core, as Slack is; ``fail`` sends that raise."""

    name = "recording"

    def __init__(self, fail: int = 0, pause: float = 0.0):
        self.sent: list[int] = []
        self.fail = fail
        self.pause = pause
        self.lock = threading.Lock()

    def address(self, user, staging, operation):
        return {"who": user.get_username()}

    def send(self, notification):
        time.sleep(self.pause)
        with self.lock:
            if self.fail:
                self.fail -= 1
                raise ConnectionError("the far end hung up")
            self.sent.append(notification.pk)


@pytest.fixture
def recording():
    channel = RecordingChannel()
    notifications.register(channel)
    yield channel
    notifications.unregister(channel.name)


def finished_create(owner, *, succeeded=True, **staging_fields):
    staging = make_staging(owner, status=StagingStatus.READY, url="https://login-page.dynamic.test",
                           login_username="admin@login-page.example",
                           login_url="https://login-page.dynamic.test/login", **staging_fields)
    operation = make_operation(staging, status=OperationStatus.SUCCEEDED if succeeded
                               else OperationStatus.FAILED)
    return staging, operation


def test_a_create_that_ends_is_told_to_its_requester_once_per_channel(
        alice, admin, email_on, queued, monkeypatch):
    """Through the runner: the real signal, after commit, reaches the receiver."""

    def plan(operation):
        return [StepSpec("nothing", "Do nothing", lambda ctx: None)]

    monkeypatch.setitem(lifecycle.KINDS, OperationKind.CREATE, lifecycle.KindRules(
        kind=OperationKind.CREATE, plan=plan, working_status=StagingStatus.PROVISIONING,
        success_status=StagingStatus.READY, failure_status=StagingStatus.FAILED,
        starts_from=frozenset({StagingStatus.PENDING}), success_stamp="ready_at"))
    staging = make_staging(alice, url="https://login-page.dynamic.test",
                           login_username="admin@login-page.example")
    # An admin asked for alice's staging: the one who asked hears it.
    operation = Operation.objects.create(staging=staging, kind=OperationKind.CREATE,
                                         requested_by=admin)
    assert run_operation(operation.pk)
    assert run_operation(operation.pk) is False  # finished: nothing is told again
    rows = {row.channel: row for row in Notification.objects.all()}
    assert set(rows) == {"dashboard", "email"}
    assert {row.user for row in rows.values()} == {admin}
    assert rows["dashboard"].status == NotificationStatus.SENT
    assert rows["email"].status == NotificationStatus.PENDING and rows["email"].target == {
        "to": "admin@example.com"}
    assert queued == [rows["email"].pk]
    assert rows["dashboard"].event == "ready"
    assert rows["dashboard"].text == (
        "login-page is ready: https://login-page.dynamic.test. Log in as "
        "admin@login-page.example; the password is on its page in the dashboard.")


def test_the_same_end_told_twice_makes_no_second_notification(alice, email_on, queued):
    _, operation = finished_create(alice)
    for _ in range(2):
        notifications.on_operation_finished(None, operation_id=operation.pk, succeeded=True)
    assert Notification.objects.count() == 2
    assert len(queued) == 1


def test_a_failure_names_the_step_and_what_aws_said(alice, queued):
    staging, operation = finished_create(alice, succeeded=False)
    Step.objects.create(operation=operation, key="web_service", label="Create the web service",
                        state=StepState.FAILED, error_call="ecs:CreateService",
                        error_code="InvalidParameterException",
                        error_message="The target group does not have an associated load "
                                      "balancer.")
    notifications.on_operation_finished(None, operation_id=operation.pk, succeeded=False)
    row = Notification.objects.get()
    assert row.event == "failed" and row.channel == "dashboard"
    assert row.text == (
        'The create of login-page failed: the step "Create the web service" failed '
        "(ecs:CreateService): InvalidParameterException: The target group does not have an "
        "associated load balancer.")


def test_a_destroy_and_a_redeploy_say_what_they_did(alice, queued):
    staging, _ = finished_create(alice)
    redeploy = make_operation(staging, kind=OperationKind.REDEPLOY,
                              status=OperationStatus.SUCCEEDED, params={"tag": "release-1.2"})
    destroy = make_operation(staging, kind=OperationKind.DESTROY,
                             status=OperationStatus.SUCCEEDED)
    notifications.on_operation_finished(None, operation_id=redeploy.pk, succeeded=True)
    notifications.on_operation_finished(None, operation_id=destroy.pk, succeeded=True)
    texts = {row.event: row.text for row in Notification.objects.all()}
    assert texts["destroyed"] == "login-page is destroyed: nothing of it is left in AWS."
    assert texts["ready"].startswith("login-page is redeployed with release-1.2 and ready")


def test_no_email_unless_configured_and_known(alice, bob, settings, queued):
    _, operation = finished_create(alice)
    notifications.on_operation_finished(None, operation_id=operation.pk, succeeded=True)
    assert list(Notification.objects.values_list("channel", flat=True)) == ["dashboard"]
    settings.DS_EMAIL_ENABLED = True
    bob.email = ""
    bob.save()
    staging = make_staging(bob, name="bobs")
    destroy = make_operation(staging, kind=OperationKind.DESTROY,
                             status=OperationStatus.SUCCEEDED)
    notifications.on_operation_finished(None, operation_id=destroy.pk, succeeded=True)
    assert not Notification.objects.filter(channel="email").exists()
    assert queued == []


def test_an_email_is_sent_once_however_often_it_is_delivered(alice, email_on, queued):
    staging, operation = finished_create(alice)
    notifications.on_operation_finished(None, operation_id=operation.pk, succeeded=True)
    [pk] = queued
    assert notifications.deliver(pk) == "sent"
    assert notifications.deliver(pk) != "sent"  # the queue's retry, a second node
    assert notifications.deliver_due() == []
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["alice@example.com"]
    assert message.subject == "[dynamic stagings] login-page is ready"
    assert f"https://stagings.example.com/stagings/{staging.pk}/" in message.body
    assert Notification.objects.get(pk=pk).status == NotificationStatus.SENT


def test_two_deliveries_at_the_same_moment_send_one(alice, queued):
    channel = RecordingChannel(pause=0.3)
    notifications.register(channel)
    try:
        _, operation = finished_create(alice)
        notifications.on_operation_finished(None, operation_id=operation.pk, succeeded=True)
        [pk] = queued
        outcomes = []

        def deliver():
            outcomes.append(notifications.deliver(pk))

        workers = [threading.Thread(target=deliver) for _ in range(2)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    finally:
        notifications.unregister(channel.name)
    assert channel.sent == [pk]
    assert sorted(outcomes) == ["sent", "taken by another delivery, or already sent"]


def test_a_failed_send_is_tried_again_later_and_then_given_up(alice, recording, queued):
    recording.fail = 1
    _, operation = finished_create(alice)
    notifications.on_operation_finished(None, operation_id=operation.pk, succeeded=True)
    [pk] = queued
    assert notifications.deliver(pk) == "failed"
    row = Notification.objects.get(pk=pk)
    assert row.status == NotificationStatus.PENDING and "hung up" in row.error
    assert row.next_attempt_at > timezone.now()
    assert notifications.deliver_due() == []  # not yet due
    Notification.objects.filter(pk=pk).update(next_attempt_at=timezone.now())
    assert notifications.deliver_due() == [pk]
    assert notifications.deliver_due() == []
    assert recording.sent == [pk]

    recording.fail = notifications.MAX_ATTEMPTS
    other = make_operation(operation.staging, kind=OperationKind.DESTROY,
                           status=OperationStatus.SUCCEEDED)
    notifications.on_operation_finished(None, operation_id=other.pk, succeeded=True)
    last = queued[-1]
    for _ in range(notifications.MAX_ATTEMPTS):
        Notification.objects.filter(pk=last).update(next_attempt_at=timezone.now())
        notifications.deliver_due()
    assert Notification.objects.get(pk=last).status == NotificationStatus.FAILED
    assert recording.sent == [pk]


def test_a_lost_enqueue_is_delivered_by_the_schedule(alice, recording, queued):
    _, operation = finished_create(alice)
    notifications.on_operation_finished(None, operation_id=operation.pk, succeeded=True)
    [pk] = queued  # ... and the queue lost it
    Notification.objects.filter(pk=pk).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1))
    assert notifications.deliver_due() == [pk]
    assert recording.sent == [pk]


def test_notify_with_a_key_of_its_own_tells_once(alice, recording, queued):
    """The door for other events (an expiry warning): keyed by the caller."""
    staging = make_staging(alice)
    for _ in range(2):
        notifications.notify(alice, staging, "expiry-warning", "login-page expires in 1 hour.",
                             key=f"expiry-{staging.pk}-1h")
    assert Notification.objects.filter(channel="recording").count() == 1
    assert Notification.objects.filter(channel="dashboard").count() == 1
    with pytest.raises(ValueError):
        notifications.notify(alice, staging, "expiry-warning", "no key")


def test_the_dashboard_lists_a_persons_notifications_and_marks_them_read(alice, bob, queued):
    _, operation = finished_create(alice)
    notifications.on_operation_finished(None, operation_id=operation.pk, succeeded=True)
    bobs = make_staging(bob, name="bobs")
    notifications.notify(bob, bobs, "destroyed", "bobs is destroyed.", key="bobs-gone")
    alices = client_for(alice)
    fleet = alices.get(reverse("home")).content.decode()
    assert 'aria-label="1 unread"' in fleet and reverse("notifications") in fleet
    page = alices.get(reverse("notifications")).content.decode()
    assert "login-page is ready" in page and "bobs is destroyed" not in page
    assert "Mark all as read" in page

    # Nobody marks another person's notification.
    theirs = Notification.objects.get(user=bob)
    alices.post(reverse("notifications_read"), {"id": theirs.pk})
    assert Notification.objects.get(pk=theirs.pk).read_at is None

    mine = Notification.objects.get(user=alice)
    response = alices.post(reverse("notifications_read"), {"id": mine.pk})
    assert response.status_code == 302 and response["Location"] == reverse("notifications")
    assert Notification.objects.get(pk=mine.pk).read_at is not None
    assert "unread" not in alices.get(reverse("home")).content.decode().split("</nav>")[0]

    bobs_client = client_for(bob)
    bobs_client.post(reverse("notifications_read"))
    assert Notification.objects.get(pk=theirs.pk).read_at is not None


def test_the_notifications_page_needs_a_login_and_marking_a_post(alice):
    assert Client().get(reverse("notifications")).status_code == 302
    assert client_for(alice).get(reverse("notifications_read")).status_code == 405
