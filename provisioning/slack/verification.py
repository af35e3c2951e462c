"""Is this request from Slack, and new? Slack signs each request: ``v0=`` and the HMAC-SHA256,
keyed with the app's signing secret, of ``v0:<timestamp>:<body>``. slack_sdk's
SignatureVerifier checks it and refuses a timestamp more than five minutes from now; a
signature seen before (the same request sent again within those five minutes) is a replay,
refused by the unique row each accepted signature leaves."""

from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone
from slack_sdk.signature import SignatureVerifier

from ..config import load_config
from ..models import SlackSignature

WINDOW = timedelta(minutes=5)


def is_fresh_and_signed(body: bytes, timestamp: str | None, signature: str | None) -> bool:
    """True once per genuine request: signed with our secret, at most five minutes old, and
    not accepted before. Anything else changes nothing."""
    secret = load_config().slack_signing_secret
    if not secret or not timestamp or not signature or not timestamp.isdecimal():
        return False
    if not SignatureVerifier(secret).is_valid(body, timestamp, signature):
        return False
    return _first_time(signature, int(timestamp))


def _first_time(signature: str, timestamp: int) -> bool:
    now = timezone.now()
    # Slack's timestamp may be up to five minutes either side of our clock, so a signature
    # stays acceptable for up to ten minutes after it is first seen; after that its row goes.
    SlackSignature.objects.filter(seen_at__lt=now - 2 * WINDOW).delete()
    try:
        with transaction.atomic():
            SlackSignature.objects.create(signature=signature, timestamp=timestamp, seen_at=now)
    except IntegrityError:
        return False
    return True
