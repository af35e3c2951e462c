"""Telling people what happened to their stagings, each thing once per channel.

The runner's ``operation_finished`` signal (after commit, ids only) becomes a notification for
whoever asked for the operation: ready, failed (the step and AWS's reason) or destroyed.
``notify`` is the one door: other events (expiry warnings) call it with a key of their own.

Each channel is an object in a registry: the dashboard (the row itself is the message, listed
on the person's notifications page), e-mail (when Django's e-mail settings are configured),
and whatever registers itself (Slack, see provisioning/slack/channel.py) without this module
knowing it. A channel says where a notification goes for a person (or that it does not), and
sends one.

Once, even with two qcluster nodes or a retry: the row is unique per (key, channel), made with
get_or_create; a delivery first takes the row with a conditional update (pending -> sending),
so of two deliveries of one row only one sends, and a delivery run again finds it taken or sent.
A failed send is tried again later (a few times, further apart); a worker that dies between
taking the row and marking it sent leaves it "sending": told at most once, never twice.
"""

import logging
from datetime import timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import F
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from . import tasks
from .config import load_config
from .models import (
    Notification,
    NotificationStatus,
    Operation,
    OperationKind,
    OperationStatus,
    Staging,
    StepState,
)

log = logging.getLogger(__name__)

READY, FAILED, DESTROYED = "ready", "failed", "destroyed"
# A pending notification whose queued delivery got lost is delivered by the schedule after this.
REDELIVER_AFTER = timedelta(minutes=1)
MAX_ATTEMPTS = 5
DUE_PER_RUN = 100


class Channel:
    """A way to reach people. ``address`` returns where a notification for ``user`` goes on
    this channel (a small JSON-able dict), or None when it does not go there at all; ``send``
    delivers one (raising when it could not)."""

    name = ""
    # Told by being stored: nothing to send, the row is marked sent as it is made.
    stored_only = False

    def address(self, user: AbstractBaseUser, staging: Staging | None,
                operation: Operation | None) -> dict | None:
        raise NotImplementedError

    def send(self, notification: Notification) -> None:
        raise NotImplementedError


class DashboardChannel(Channel):
    """Listed on the person's notifications page, read or unread."""

    name = "dashboard"
    stored_only = True

    def address(self, user, staging, operation):
        return {}


class EmailChannel(Channel):
    name = "email"

    def address(self, user, staging, operation):
        if not load_config().email_enabled or not getattr(user, "email", ""):
            return None
        return {"to": user.email}

    def send(self, notification: Notification) -> None:
        link = staging_link(notification.staging)
        body = notification.text + (f"\n\n{link}\n" if link else "\n")
        send_mail(subject=f"[dynamic stagings] {subject_of(notification)}", message=body,
                  from_email=None, recipient_list=[notification.target["to"]])


_channels: dict[str, Channel] = {}


def register(channel: Channel) -> None:
    """Add a channel (by its name; registering it again replaces it)."""
    _channels[channel.name] = channel


def unregister(name: str) -> None:
    _channels.pop(name, None)


def channel_named(name: str) -> Channel | None:
    return _channels.get(name)


def channels() -> list[Channel]:
    return list(_channels.values())


register(DashboardChannel())
register(EmailChannel())


def staging_link(staging: Staging | None) -> str:
    """The staging's page on the dashboard, absolute, or "" when DS_DASHBOARD_URL is unset."""
    base = load_config().dashboard_url
    if not base or staging is None:
        return ""
    try:
        return base + reverse("staging", args=[staging.pk])
    except NoReverseMatch:
        return ""


def subject_of(notification: Notification) -> str:
    name = notification.staging_name
    return {READY: f"{name} is ready", FAILED: f"{name} failed",
            DESTROYED: f"{name} is destroyed"}.get(notification.event, notification.text[:80])


def notify(user: AbstractBaseUser, staging: Staging | None, event: str, text: str, *,
           key: str = "", operation: Operation | None = None) -> list[Notification]:
    """Tell ``user`` on every channel that reaches them, once per ``key`` (by default the
    operation and the event): the notifications made now, none for a key told before."""
    if not key:
        if operation is None:
            raise ValueError("a notification without an operation needs a key")
        key = f"operation-{operation.pk}-{event}"
    made = []
    for channel in channels():
        target = channel.address(user, staging, operation)
        if target is None:
            continue
        now = timezone.now()
        sent = {"status": NotificationStatus.SENT, "sent_at": now} if channel.stored_only else {
            "next_attempt_at": now + REDELIVER_AFTER}
        with transaction.atomic():
            notification, created = Notification.objects.get_or_create(
                key=key, channel=channel.name, defaults={
                    "event": event, "user": user, "staging": staging,
                    "staging_name": staging.name if staging else "", "operation": operation,
                    "text": text, "target": target, **sent})
            if created and not channel.stored_only:
                transaction.on_commit(
                    lambda pk=notification.pk: tasks.enqueue_notification(pk))
        if created:
            made.append(notification)
    return made


def _failure_reason(operation: Operation) -> str:
    step = operation.steps.filter(state=StepState.FAILED).order_by("position", "pk").first()
    if step is None:
        return operation.error or "it stopped before all its steps finished."
    call = f" ({step.error_call})" if step.error_call else ""
    code = f"{step.error_code}: " if step.error_code else ""
    return f"the step \"{step.label}\" failed{call}: {code}{step.error_message}"


def describe_outcome(operation: Operation, succeeded: bool) -> tuple[str, str]:
    """(event, text) for a finished operation, in one or two plain sentences."""
    staging = operation.staging
    if not succeeded:
        reason = _failure_reason(operation)
        return FAILED, f"The {operation.kind} of {staging.name} failed: {reason}"
    if operation.kind == OperationKind.DESTROY:
        return DESTROYED, f"{staging.name} is destroyed: nothing of it is left in AWS."
    login = ""
    if staging.login_username:
        where = f" at {staging.login_url}" if staging.login_url else ""
        login = (f" Log in{where} as {staging.login_username}; the password is on its page in "
                 "the dashboard.")
    if operation.kind == OperationKind.REDEPLOY:
        tag = operation.params.get("tag") or staging.image_tag
        return READY, f"{staging.name} is redeployed with {tag} and ready: {staging.url}.{login}"
    return READY, f"{staging.name} is ready: {staging.url}.{login}"


def on_operation_finished(sender, *, operation_id: int, succeeded: bool, **_ids) -> None:
    """Receives ``signals.operation_finished``: the requester hears how it ended."""
    operation = (Operation.objects.select_related("staging__owner", "requested_by")
                 .filter(pk=operation_id).first())
    if operation is None:
        return
    event, text = describe_outcome(operation, succeeded)
    recipient = operation.requested_by or operation.staging.owner
    notify(recipient, operation.staging, event, text, operation=operation)


def tell_if_finished(operation_id: int) -> None:
    """For an entry point that links itself to an operation after starting it (a Slack
    conversation): the operation may have ended before the link existed, so its end is told
    again now. Nothing is told twice (``notify`` is keyed); a channel that had no address then
    and has one now gets its notification."""
    operation = Operation.objects.filter(pk=operation_id).only("status").first()
    if operation is not None and operation.is_finished:
        on_operation_finished(None, operation_id=operation_id,
                              succeeded=operation.status == OperationStatus.SUCCEEDED)


def deliver(notification_id: int) -> str:
    """Send one notification if nobody has taken it yet: what became of it."""
    now = timezone.now()
    if not Notification.objects.filter(pk=notification_id, status=NotificationStatus.PENDING,
                                       ).update(status=NotificationStatus.SENDING,
                                                attempts=F("attempts") + 1, next_attempt_at=None):
        return "taken by another delivery, or already sent"
    notification = Notification.objects.select_related("staging", "user").get(pk=notification_id)
    channel = channel_named(notification.channel)
    try:
        if channel is None:
            raise LookupError(f"no channel {notification.channel!r} is registered")
        channel.send(notification)
    except Exception as exc:
        log.warning("notification %s on %s failed: %s", notification_id, notification.channel,
                    exc)
        _after_failure(notification, f"{type(exc).__name__}: {exc}", now)
        return "failed"
    Notification.objects.filter(pk=notification_id, status=NotificationStatus.SENDING).update(
        status=NotificationStatus.SENT, sent_at=timezone.now(), error="")
    return "sent"


def _after_failure(notification: Notification, error: str, now) -> None:
    """Try again later, further apart (1, 2, 4, 8 minutes), then give up and keep the error."""
    retry = notification.attempts < MAX_ATTEMPTS
    Notification.objects.filter(pk=notification.pk, status=NotificationStatus.SENDING).update(
        status=NotificationStatus.PENDING if retry else NotificationStatus.FAILED,
        next_attempt_at=now + timedelta(minutes=2 ** (notification.attempts - 1)) if retry
        else None,
        error=error[:2000])


def deliver_due(limit: int = DUE_PER_RUN) -> list[int]:
    """Deliver pending notifications whose time has come (retries, lost enqueues)."""
    due = list(Notification.objects.filter(
        status=NotificationStatus.PENDING, next_attempt_at__lte=timezone.now(),
    ).order_by("next_attempt_at").values_list("pk", flat=True)[:limit])
    return [pk for pk in due if deliver(pk) == "sent"]


# --- what the dashboard shows -------------------------------------------------------------


def inbox(user: AbstractBaseUser):
    return Notification.objects.filter(user=user, channel=DashboardChannel.name)


def unread_count(user: AbstractBaseUser) -> int:
    return inbox(user).filter(read_at__isnull=True).count()


def mark_read(user: AbstractBaseUser, notification_id: int | None = None) -> int:
    """Mark one of the user's notifications read, or all of them: how many changed."""
    unread = inbox(user).filter(read_at__isnull=True)
    if notification_id is not None:
        unread = unread.filter(pk=notification_id)
    return unread.update(read_at=timezone.now())
