"""A stand-in for the app's account API, served on loopback while the sandbox runs.

The contract is the one the real app offers (README "Account API"):

* ``POST <url>`` with ``Authorization: Bearer <token>`` and ``{"staging", "host"}`` answers 201
  with ``{"account_id", "username", "password", "login_url"}``;
* ``DELETE <url>/<account_id>`` answers 204, or 404 for an unknown account;
* a missing or wrong token answers 401, a body that is not the expected JSON 400.

Accounts live in memory, and are saved with the sandbox's AWS state (persistence.py): they
come back when the sandbox starts again, as the stagings' AWS resources do.
"""

import hmac
import json
import secrets
import threading
import uuid
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PATH = "/api/dynamic-staging-accounts"


class AccountStore:
    def __init__(self, token: str, accounts: dict[str, dict[str, str]] | None = None,
                 on_change: Callable[[], object] = lambda: None):
        self.token = token
        self.accounts: dict[str, dict[str, str]] = dict(accounts or {})
        self.lock = threading.Lock()
        self.on_change = on_change  # the sandbox saves its state after a change

    def copy(self) -> dict[str, dict[str, str]]:
        with self.lock:
            return dict(self.accounts)

    def create(self, staging: str, host: str) -> dict[str, str]:
        account = {
            "account_id": uuid.uuid4().hex[:12],
            "username": f"admin@{staging}.example",
            "password": secrets.token_urlsafe(12),
            "login_url": f"http://{host}/login",
        }
        with self.lock:
            self.accounts[account["account_id"]] = account
        self.on_change()
        return account

    def delete(self, account_id: str) -> bool:
        with self.lock:
            found = self.accounts.pop(account_id, None) is not None
        self.on_change()
        return found


def _parse_request(raw: bytes) -> tuple[str, str] | None:
    try:
        data = json.loads(raw or b"null")
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    staging, host = data.get("staging"), data.get("host")
    if not (isinstance(staging, str) and staging and isinstance(host, str) and host):
        return None
    return staging, host


class AccountApiHandler(BaseHTTPRequestHandler):
    server_version = "SandboxAccountAPI/1"
    store: AccountStore  # set on the handler class made per server

    def do_POST(self) -> None:
        if not self._authorised():
            return
        if self.path.rstrip("/") != PATH:
            self._reply(HTTPStatus.NOT_FOUND, {"error": "no such endpoint"})
            return
        length = int(self.headers.get("Content-Length") or 0)
        parsed = _parse_request(self.rfile.read(length))
        if parsed is None:
            self._reply(HTTPStatus.BAD_REQUEST, {"error": 'expected JSON {"staging", "host"}'})
            return
        self._reply(HTTPStatus.CREATED, self.store.create(*parsed))

    def do_DELETE(self) -> None:
        if not self._authorised():
            return
        parent, _, account_id = self.path.rstrip("/").rpartition("/")
        if parent != PATH or not self.store.delete(account_id):
            self._reply(HTTPStatus.NOT_FOUND, {"error": "no such account"})
            return
        self.send_response(HTTPStatus.NO_CONTENT)
        self.end_headers()

    def _authorised(self) -> bool:
        given = self.headers.get("Authorization", "")
        if hmac.compare_digest(given.encode(), f"Bearer {self.store.token}".encode()):
            return True
        self._reply(HTTPStatus.UNAUTHORIZED, {"error": "missing or wrong bearer token"})
        return False

    def _reply(self, status: HTTPStatus, payload: dict) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        """Quiet: the sandbox's terminal is for the dashboard's own output."""


def start_account_api(token: str, store: AccountStore | None = None
                      ) -> tuple[str, ThreadingHTTPServer]:
    """Serve the API on a free loopback port in a daemon thread; returns (url, server)."""
    store = store or AccountStore(token)
    handler = type("BoundAccountApiHandler", (AccountApiHandler,), {"store": store})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="sandbox-account-api", daemon=True).start()
    host, port = server.server_address[:2]
    return f"http://{host}:{port}{PATH}", server
