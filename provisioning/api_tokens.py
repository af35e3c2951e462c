"""Bearer tokens for the JSON API: made, checked, revoked.

A token is ``dst_`` and 43 URL-safe characters: 256 random bits from ``secrets``. It is shown
once, when it is made. The database keeps its SHA-256 (a salt or a slow hash buys nothing
against guessing 256 random bits, and a fast one costs nothing per request) and its first 12
characters, which are no secret and let people tell their tokens apart. A token is checked by
looking up the rows with its prefix and comparing the hashes in constant time.

A token belongs to one user and acts with that user's rights (the same rules as the pages: a
staging's owner or staff may act on it). Its scope is ``read`` (look only) or ``write``. It
expires after a number of days (at most ``MAX_DAYS``) and can be revoked at any time, by its
owner or by staff. Its last use is kept to the minute, so that checking a token does not
write to the database on every request.
"""

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet
from django.utils import timezone

from . import audit
from .errors import UserError
from .models import ApiToken, AuditAction, TokenScope
from .names import invisible_character

SECRET_PREFIX = "dst_"
# What is kept in clear and shown: the marker and 8 characters (48 bits) of the random part.
SHOWN_LENGTH = len(SECRET_PREFIX) + 8
DEFAULT_DAYS = 90
MAX_DAYS = 365
MAX_NAME_LENGTH = 100
LAST_USE_PRECISION = timedelta(minutes=1)


class TokenRefused(Exception):
    """The token cannot be used; the message says why, in one sentence."""


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    # The token itself: shown to its owner once, kept nowhere.
    secret: str


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _validated_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise UserError("Give the token a name that says what it is for.", field="name")
    if len(name) > MAX_NAME_LENGTH:
        raise UserError(f"A token name has at most {MAX_NAME_LENGTH} characters.", field="name")
    if invisible := invisible_character(name):
        raise UserError(f"The name contains an invisible or control character ({invisible}); "
                        "remove it.", field="name")
    return name


def issue(user: AbstractBaseUser, *, name: str, scope: str = TokenScope.READ,
          days: int = DEFAULT_DAYS, actor: AbstractBaseUser | None = None,
          channel: audit.Channel | None = None) -> IssuedToken:
    """A new token for ``user``; ``actor`` is who asked (the user, or an operator)."""
    name = _validated_name(name)
    if scope not in TokenScope.values:
        raise UserError(f"Unknown scope {scope!r}; use read or write.", field="scope")
    if not 1 <= days <= MAX_DAYS:
        raise UserError(f"A token expires after 1 to {MAX_DAYS} days.", field="days")
    if not user.is_active:
        raise UserError(f"{user.get_username()} is not an active user.", field="user")
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    now = timezone.now()
    token = ApiToken.objects.create(
        user=user, name=name, scope=scope, prefix=secret[:SHOWN_LENGTH],
        secret_hash=hash_secret(secret), created_at=now, expires_at=now + timedelta(days=days),
    )
    audit.record(AuditAction.TOKEN_CREATE, actor=actor or user, channel=channel,
                 detail=f"{_described(token)}, scope {scope}, expires "
                        f"{token.expires_at:%Y-%m-%d %H:%M} UTC")
    return IssuedToken(token, secret)


def _described(token: ApiToken) -> str:
    return f"token {token.name} ({token.prefix}…) of {token.user.get_username()}"


def authenticate(secret: str) -> ApiToken:
    """The token ``secret`` names, if it may be used now; TokenRefused says why not."""
    secret = secret.strip()
    if not secret.startswith(SECRET_PREFIX) or len(secret) <= SHOWN_LENGTH:
        raise TokenRefused("This is not a token of this dashboard (they start with "
                           f"{SECRET_PREFIX}); make one on the API tokens page.")
    digest = hash_secret(secret)
    candidates = ApiToken.objects.filter(prefix=secret[:SHOWN_LENGTH]).select_related("user")
    token = next((c for c in candidates if hmac.compare_digest(c.secret_hash, digest)), None)
    if token is None:
        raise TokenRefused("Unknown token: it was never issued, or it was mistyped.")
    now = timezone.now()
    if token.is_revoked:
        raise TokenRefused(f"This token was revoked on {token.revoked_at:%Y-%m-%d %H:%M} UTC.")
    if token.is_expired(now):
        raise TokenRefused(f"This token expired on {token.expires_at:%Y-%m-%d %H:%M} UTC; "
                           "make a new one.")
    if not token.user.is_active:
        raise TokenRefused(f"The token's user {token.user.get_username()} is not active.")
    _note_use(token, now)
    return token


def _note_use(token: ApiToken, now) -> None:
    """At most one write a minute per token, however often it is used."""
    if token.last_used_at is None or now - token.last_used_at >= LAST_USE_PRECISION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now


def visible_to(user: AbstractBaseUser) -> QuerySet[ApiToken]:
    """Everyone sees their own tokens; staff see everybody's (to revoke a leaked one)."""
    tokens = ApiToken.objects.select_related("user")
    return tokens if user.is_staff else tokens.filter(user_id=user.pk)


def may_revoke(user: AbstractBaseUser, token: ApiToken) -> bool:
    return bool(user.is_authenticated and (user.is_staff or token.user_id == user.pk))


def revoke(token: ApiToken, *, by: AbstractBaseUser,
           channel: audit.Channel | None = None) -> bool:
    """Revoke the token at once; False when it already was (nothing recorded again)."""
    now = timezone.now()
    if not ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=now):
        return False
    token.revoked_at = now
    audit.record(AuditAction.TOKEN_REVOKE, actor=by, detail=_described(token), channel=channel)
    return True
