"""``Idempotency-Key`` on a create: a client that retries (a timeout, a lost answer) with the
same key gets the staging its first request made, not a second one.

A key belongs to the token's user (two users may use the same key) and is remembered with a
fingerprint of the request. The first request claims the key before it asks the engine, so a
concurrent retry finds it claimed and gets 409 until the first one is done; a refused create
releases its key, so the client may correct and retry. The same key with another request gets
422: it names another operation. A claim whose request died before it finished (the process
was killed) is taken over after ``STALE_CLAIM``.
"""

import hashlib
import json
from datetime import timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from provisioning.models import IdempotencyKey, Staging

from .errors import ApiError

MAX_KEY_LENGTH = 255
# Far above how long a create request takes to answer (it checks AWS, then enqueues).
STALE_CLAIM = timedelta(minutes=5)


def fingerprint(request_data: dict) -> str:
    return hashlib.sha256(json.dumps(request_data, sort_keys=True).encode()).hexdigest()


def _checked(key: str) -> str:
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable() or not key.isascii():
        raise ApiError(400, "bad_request", f"An Idempotency-Key is 1 to {MAX_KEY_LENGTH} "
                                           "printable ASCII characters.")
    return key


def recall_or_claim(user: AbstractBaseUser, key: str, request_data: dict) -> Staging | None:
    """The staging an earlier request with this key made, or None when this request now holds
    the key and should go on (then ``remember`` or ``release`` it)."""
    key, digest = _checked(key), fingerprint(request_data)
    try:
        with transaction.atomic():
            IdempotencyKey.objects.create(user=user, key=key, fingerprint=digest)
        return None
    except IntegrityError:
        pass
    claim = IdempotencyKey.objects.select_related("staging__owner").get(user=user, key=key)
    if claim.fingerprint != digest:
        raise ApiError(422, "idempotency_key_reused",
                       "This Idempotency-Key was used with another request; use a new key for "
                       "a new request.")
    if claim.staging is not None:
        return claim.staging
    now = timezone.now()
    if IdempotencyKey.objects.filter(pk=claim.pk, staging__isnull=True,
                                     created_at__lt=now - STALE_CLAIM).update(created_at=now):
        return None
    raise ApiError(409, "idempotency_key_in_use",
                   "A request with this Idempotency-Key is still being worked on; retry in a "
                   "few seconds.", headers={"Retry-After": "5"})


def remember(user: AbstractBaseUser, key: str, staging: Staging) -> None:
    IdempotencyKey.objects.filter(user=user, key=key).update(staging=staging)


def release(user: AbstractBaseUser, key: str) -> None:
    IdempotencyKey.objects.filter(user=user, key=key, staging__isnull=True).delete()
