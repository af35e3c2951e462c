"""Client of the app's account API (the contract is in README "Account API").

``POST <url>`` with ``{"staging", "host"}`` answers 201 with the account's login;
``DELETE <url>/<account_id>`` answers 204, and 404 counts as already gone. The URL may contain
``{name}`` and ``{host}``, filled in per staging.
"""

import json
import urllib.error
import urllib.request
from dataclasses import dataclass

from .errors import ExternalCallFailed

_MAX_ERROR_BODY = 500


class AccountApiError(ExternalCallFailed):
    pass


@dataclass(frozen=True)
class Account:
    account_id: str
    username: str
    password: str
    login_url: str


def endpoint_for(url_template: str, *, name: str, host: str) -> str:
    return url_template.replace("{name}", name).replace("{host}", host).rstrip("/")


def targets_staging(url_template: str) -> bool:
    """True when the API is served by the staging itself (so it must be healthy first)."""
    return "{name}" in url_template or "{host}" in url_template


def _send(request: urllib.request.Request, timeout: float) -> tuple[int, bytes]:
    call = f"{request.get_method()} {request.full_url}"
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise AccountApiError(call, "ConnectionError", str(reason)) from exc


def _headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Accept": "application/json"}


def create_account(*, url: str, token: str, name: str, host: str, timeout: float) -> Account:
    body = json.dumps({"staging": name, "host": host}).encode()
    request = urllib.request.Request(
        url, data=body, method="POST",
        headers=_headers(token) | {"Content-Type": "application/json"},
    )
    status, payload = _send(request, timeout)
    call = f"POST {url}"
    if status != 201:
        body = payload[:_MAX_ERROR_BODY].decode(errors="replace")
        raise AccountApiError(call, f"HTTP {status}", body)
    try:
        data = json.loads(payload)
        return Account(
            account_id=str(data["account_id"]),
            username=str(data["username"]),
            password=str(data["password"]),
            login_url=str(data["login_url"]),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise AccountApiError(call, "InvalidResponse", f"unexpected answer: {exc}") from exc


def delete_account(*, url: str, token: str, account_id: str, timeout: float) -> bool:
    """Remove the account; False if the API says it was already gone."""
    target = f"{url}/{urllib.request.quote(account_id, safe='')}"
    request = urllib.request.Request(target, method="DELETE", headers=_headers(token))
    status, payload = _send(request, timeout)
    if status == 404:
        return False
    if status not in {200, 202, 204}:
        raise AccountApiError(
            f"DELETE {target}", f"HTTP {status}", payload[:_MAX_ERROR_BODY].decode(errors="replace")
        )
    return True
