"""The audit trail: who asked for what, and when.

One row per accepted request (create, redeploy, destroy, a look at a test account's password)
and per sweep; one per refused look at a password (someone who is neither the owner nor an
admin asked) and per login lockout (dashboard/login_throttle.py). Another click on a teardown
already under way asks for nothing new and adds no row. Callers that write an operation row
call ``record`` inside the same transaction, so the trail never names an operation that was
rolled back, nor misses one that was made. The actor's name is copied onto the row: the trail
still reads right after a user is deleted.
Nothing secret goes into ``detail``. Each row names the channel the request came through
(``via``): an entry point other than the pages and the command line says which it is once,
around its calls to the engine, rather than every engine function passing it along.
"""

import contextlib
from collections.abc import Iterable, Iterator
from contextvars import ContextVar

from django.contrib.auth.models import AbstractBaseUser

from .models import AuditAction, AuditEvent, Staging

# Shown as the actor of what a schedule did on its own.
SYSTEM_ACTOR = "system"
# Enough for a staging's whole life; a page never grows without bound.
TRAIL_LENGTH = 50

_channel: ContextVar[str] = ContextVar("audit_channel", default="")


@contextlib.contextmanager
def via(channel: str) -> Iterator[None]:
    """Events recorded inside come through ``channel`` (e.g. "slack")."""
    token = _channel.set(channel)
    try:
        yield
    finally:
        _channel.reset(token)


def record(action: str, *, actor: AbstractBaseUser | None, staging: Staging | None = None,
           detail: str = "", staging_name: str = "") -> AuditEvent:
    """Write one event. ``staging_name`` names a staging no row exists for any more (a
    sweep's leftovers); with ``staging`` given, its name is used."""
    if action not in AuditAction.values:
        raise ValueError(f"unknown audit action {action!r}")
    known_user = actor is not None and actor.is_authenticated
    return AuditEvent.objects.create(
        action=action,
        staging=staging,
        staging_name=staging.name if staging is not None else staging_name,
        actor=actor if known_user else None,
        actor_name=actor.get_username() if known_user else SYSTEM_ACTOR,
        detail=detail,
        channel=_channel.get(),
    )


def trail_for(staging: Staging, limit: int = TRAIL_LENGTH) -> list[AuditEvent]:
    """The staging's newest events first, in one query whatever the number of users."""
    return list(AuditEvent.objects.filter(staging=staging)[:limit])


def recent(actions: Iterable[str], limit: int = 10) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action__in=list(actions))[:limit])
