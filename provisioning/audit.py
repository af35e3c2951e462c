"""The audit trail: who asked for what, and when.

One row per accepted request (create, redeploy, destroy, a look at a test account's password)
and per sweep; one per refused look at a password (someone who is neither the owner nor an
admin asked) and per login lockout (dashboard/login_throttle.py). Another click on a teardown
already under way asks for nothing new and adds no row. Callers that write an operation row
call ``record`` inside the same transaction, so the trail never names an operation that was
rolled back, nor misses one that was made. The actor's name is copied onto the row: the trail
still reads right after a user is deleted.
Each row also says how its actor signed in to the dashboard (``SignInMethod``): the
authentication backend that loads a signed-in user marks it (dashboard/sso.py), and every
sign-in is an event of its own.
Nothing secret goes into ``detail``.

Each event says through which channel it was asked for (the web pages, the ``ds`` command,
the JSON API) and, where a channel has several credentials, which one (an API token's name
and prefix, never its secret).
"""

from collections.abc import Iterable
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser

from .models import ApiToken, AuditAction, AuditChannel, AuditEvent, SignInMethod, Staging

# Shown as the actor of what a schedule did on its own ("system: expiry" names which).
SYSTEM_ACTOR = "system"
# The attribute a signed-in user object carries: a SignInMethod value.
SIGNED_IN_WITH = "signed_in_with"
# Enough for a staging's whole life; a page never grows without bound.
TRAIL_LENGTH = 50

def system_actor(schedule: str = "") -> str:
    return f"{SYSTEM_ACTOR}: {schedule}" if schedule else SYSTEM_ACTOR


@dataclass(frozen=True)
class Channel:
    kind: str
    detail: str = ""


WEB = Channel(AuditChannel.WEB)
CLI = Channel(AuditChannel.CLI)
SLACK = Channel(AuditChannel.SLACK)


def api_channel(token: ApiToken) -> Channel:
    return Channel(AuditChannel.API, f"token {token.name} ({token.prefix}…)")


def record(action: str, *, actor: AbstractBaseUser | None, staging: Staging | None = None,
           detail: str = "", staging_name: str = "", system: str = "",
           channel: Channel | None = None) -> AuditEvent:
    """Write one event. ``staging_name`` names a staging no row exists for any more (a
    sweep's leftovers); with ``staging`` given, its name is used. Without a person as actor,
    ``system`` names the check that acted (``expiry``: the actor is "system: expiry"). No
    ``channel``: a schedule acting on its own."""
    if action not in AuditAction.values:
        raise ValueError(f"unknown audit action {action!r}")
    if channel is not None and channel.kind not in AuditChannel.values:
        raise ValueError(f"unknown audit channel {channel.kind!r}")
    known_user = actor is not None and actor.is_authenticated
    return AuditEvent.objects.create(
        action=action,
        staging=staging,
        staging_name=staging.name if staging is not None else staging_name,
        actor=actor if known_user else None,
        actor_name=actor.get_username() if known_user else system_actor(system),
        actor_sign_in=sign_in_method(actor) if known_user else "",
        detail=detail,
        channel=channel.kind if channel else "",
        channel_detail=channel.detail[:150] if channel else "",
    )


def sign_in_method(actor: AbstractBaseUser) -> str:
    """How this user signed in for the request at hand, as the backend that loaded it said."""
    method = getattr(actor, SIGNED_IN_WITH, "")
    return method if method in SignInMethod.values else ""


def trail_for(staging: Staging, limit: int = TRAIL_LENGTH) -> list[AuditEvent]:
    """The staging's newest events first, in one query whatever the number of users."""
    return list(AuditEvent.objects.filter(staging=staging)[:limit])


def recent(actions: Iterable[str], limit: int = 10) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action__in=list(actions))[:limit])
