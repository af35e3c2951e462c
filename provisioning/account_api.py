"""Client of the app's account API (the contract is in README "Account API").

``POST <url>`` with ``{"staging", "host"}`` answers 201 with the account's login;
``DELETE <url>/<account_id>`` answers 204, and 404 counts as already gone. The URL may contain
``{name}`` and ``{host}``, filled in per staging.

The API may be served by branch code (``{host}`` mode), so every answer is treated as hostile:

* a redirect is an error, never followed: the bearer token goes to the configured URL only;
* the body is read up to ``MAX_BODY_BYTES`` and no further;
* one deadline covers the whole call (connect, headers, body): a server that drips a byte at a
  time cannot keep a worker longer than the configured timeout;
* the token never travels in clear: http is refused unless the host is loopback;
* errors name the call, ``HTTP<status>`` and a short reason; of the body only a printable,
  single-line excerpt of a JSON ``error``/``detail`` field is shown, never the raw body.
"""

import contextlib
import http.client
import ipaddress
import json
import socket
import ssl
import threading
import time
import urllib.parse
from dataclasses import dataclass
from http import HTTPStatus

from .errors import ExternalCallFailed

MAX_BODY_BYTES = 64 * 1024
MAX_EXCERPT = 200
_READ_CHUNK = 8192
_LOOPBACK_NAMES = {"localhost", "localhost."}


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


def is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _excerpt(text: str) -> str:
    printable = "".join(ch if ch.isprintable() else " " for ch in text)
    return " ".join(printable.split())[:MAX_EXCERPT]


def _reason(status: int, payload: bytes) -> str:
    """The status's standard phrase, plus the API's own short ``error``/``detail`` if any."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "unexpected status"
    try:
        data = json.loads(payload)
    except ValueError:
        return phrase
    if isinstance(data, dict):
        for key in ("error", "detail"):
            if isinstance(data.get(key), str) and _excerpt(data[key]):
                return f"{phrase}: {_excerpt(data[key])}"
    return phrase


@dataclass(frozen=True)
class _Answer:
    status: int
    payload: bytes


class _Deadline:
    """Shuts the connection's socket down when the call's time is up, so a blocked read
    returns whatever the server is doing (socket timeouts only bound each single read)."""

    def __init__(self, connection: http.client.HTTPConnection, seconds: float):
        self._connection = connection
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self.expired = False

    def _expire(self) -> None:
        self.expired = True
        sock = self._connection.sock
        if sock is not None:
            # The plain socket's shutdown: an SSL socket's own would also drop its TLS state
            # under the reading thread's feet.
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)

    def __enter__(self) -> "_Deadline":
        self._timer.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._timer.cancel()


def _connection(call: str, url: str, timeout: float) -> tuple[http.client.HTTPConnection, str]:
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme not in {"http", "https"} or not host:
        raise AccountApiError(call, "InvalidUrl", "the account API URL must be https://HOST/...")
    if parts.scheme == "http" and not is_loopback(host):
        raise AccountApiError(
            call, "InsecureUrl",
            f"refused to send the token over plain http to {host}: use https "
            "(http is allowed only for loopback hosts)")
    target = parts.path or "/"
    if parts.query:
        target += f"?{parts.query}"
    if parts.scheme == "https":
        connection = http.client.HTTPSConnection(
            host, parts.port, timeout=timeout, context=ssl.create_default_context())
    else:
        connection = http.client.HTTPConnection(host, parts.port, timeout=timeout)
    return connection, target


def _read_body(call: str, response: http.client.HTTPResponse) -> bytes:
    declared = response.getheader("Content-Length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise AccountApiError(call, "ResponseTooLarge",
                              f"the answer is {declared} bytes, more than {MAX_BODY_BYTES}")
    payload = bytearray()
    while chunk := response.read(min(_READ_CHUNK, MAX_BODY_BYTES + 1 - len(payload))):
        payload += chunk
        if len(payload) > MAX_BODY_BYTES:
            raise AccountApiError(call, "ResponseTooLarge",
                                  f"the answer is longer than {MAX_BODY_BYTES} bytes")
    return bytes(payload)


def _send(method: str, url: str, *, token: str, timeout: float,
          body: bytes | None = None) -> _Answer:
    call = f"{method} {url}"
    connection, target = _connection(call, url, timeout)
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    started = time.monotonic()
    try:
        with _Deadline(connection, timeout) as deadline:
            try:
                connection.request(method, target, body=body, headers=headers)
                response = connection.getresponse()
                if 300 <= response.status < 400:
                    location = urllib.parse.urlsplit(response.getheader("Location", ""))
                    where = location.hostname or "the same host"
                    raise AccountApiError(
                        call, f"HTTP{response.status}",
                        f"redirect to {_excerpt(where)} refused (redirects are not followed)")
                payload = _read_body(call, response)
                if deadline.expired:
                    # The shutdown made the read end early: what came is not the whole answer.
                    raise TimeoutError
                return _Answer(response.status, payload)
            except (http.client.HTTPException, OSError) as exc:
                if deadline.expired or time.monotonic() - started >= timeout:
                    raise AccountApiError(
                        call, "Timeout", f"no complete answer within {timeout:g} s") from exc
                reason = getattr(exc, "reason", None) or exc.__class__.__name__
                if isinstance(exc, OSError) and exc.strerror:
                    reason = exc.strerror
                raise AccountApiError(call, "ConnectionError", _excerpt(str(reason))) from exc
    finally:
        connection.close()


def _failure(call: str, answer: _Answer) -> AccountApiError:
    return AccountApiError(call, f"HTTP{answer.status}", _reason(answer.status, answer.payload))


def create_account(*, url: str, token: str, name: str, host: str, timeout: float) -> Account:
    body = json.dumps({"staging": name, "host": host}).encode()
    call = f"POST {url}"
    answer = _send("POST", url, token=token, timeout=timeout, body=body)
    if answer.status != 201:
        raise _failure(call, answer)
    try:
        data = json.loads(answer.payload)
        return Account(
            account_id=str(data["account_id"]),
            username=str(data["username"]),
            password=str(data["password"]),
            login_url=str(data["login_url"]),
        )
    except (ValueError, KeyError, TypeError) as exc:
        missing = f"no {exc}" if isinstance(exc, KeyError) else "not the expected JSON object"
        raise AccountApiError(call, "InvalidResponse",
                              f"unexpected answer ({_excerpt(missing)})") from exc


def delete_account(*, url: str, token: str, account_id: str, timeout: float) -> bool:
    """Remove the account; False if the API says it was already gone."""
    target = f"{url}/{urllib.parse.quote(account_id, safe='')}"
    answer = _send("DELETE", target, token=token, timeout=timeout)
    if answer.status == 404:
        return False
    if answer.status not in {200, 202, 204}:
        raise _failure(f"DELETE {target}", answer)
    return True
