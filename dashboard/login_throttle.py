"""Login attempts throttled per user name and per address (django-axes).

After ``DS_LOGIN_FAILURE_LIMIT`` failed logins for one user name, or from one address, further
logins for that name, or from that address, are refused for ``DS_LOGIN_LOCKOUT_MINUTES``, even
with the right password, and the lockout is written to the audit trail once. The lock runs from
the failure that set it: attempts while locked neither count nor extend it.
"""

import ipaddress

from django.conf import settings
from django.http import HttpRequest

from provisioning import audit
from provisioning.config import load_config
from provisioning.models import AuditAction

_MAX_SHOWN_NAME = 150


def _ip_or_none(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        return None


def client_address(request: HttpRequest) -> str | None:
    """The address a login came from. Behind the load balancer (DJANGO_BEHIND_PROXY) that is
    the last X-Forwarded-For entry, the one the load balancer itself appended: the entries
    before it are whatever the client chose to send."""
    if load_config().behind_proxy:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
        if address := _ip_or_none(forwarded[-1]):
            return address
    return _ip_or_none(request.META.get("REMOTE_ADDR", ""))


def _shown(name: str | None) -> str:
    printable = "".join(ch if ch.isprintable() else "?" for ch in name or "")
    return repr(printable[:_MAX_SHOWN_NAME])


def record_lockout(sender, request: HttpRequest, username: str | None,
                   ip_address: str | None, **kwargs) -> None:
    """axes' user_locked_out receiver. axes sends it again for every attempt made while
    locked; only the failure that reached the limit is the lockout."""
    if getattr(request, "axes_failures_since_start", None) != settings.AXES_FAILURE_LIMIT:
        return
    audit.record(
        AuditAction.LOGIN_LOCKOUT, actor=None,
        detail=(f"{settings.AXES_FAILURE_LIMIT} failed logins for user name {_shown(username)} "
                f"or from {ip_address or 'an unknown address'}: logins locked for "
                f"{load_config().login_lockout_minutes} minutes"),
    )
