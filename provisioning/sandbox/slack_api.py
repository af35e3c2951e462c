"""A stand-in for Slack, served on loopback while the sandbox runs: the part of the Web API
stagingbot calls, and the response URLs Slack hands out with each command. Everything the bot
sends is recorded, in memory and one JSON object a line in ``<state dir>/slack.jsonl``.

Slack's rules the bot must live with, kept here too:

* a Web API call without the bot token answers ``{"ok": false, "error": "invalid_auth"}``
  (HTTP 200, as Slack does); ``users.info`` of an unknown id ``user_not_found``;
* ``chat.postMessage`` needs a channel (``channel_not_found``), a text or blocks
  (``no_text``), at most 50 blocks (``invalid_blocks``);
* a response URL takes at most 5 answers within 30 minutes of the command, then answers 404
  (``used_url`` / ``expired_url``).

For the sandbox's own use (``manage.py sandbox slack``): ``POST /sandbox/users`` adds a Slack
user ``{"id", "email", "name"}``, ``POST /sandbox/response-urls`` hands out a response URL,
``GET /sandbox/log?after=N`` lists what was recorded after entry N.
"""

import json
import threading
import time
import uuid
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

RESPONSE_URL_USES = 5
RESPONSE_URL_SECONDS = 30 * 60
MAX_BLOCKS = 50
LOG_FILE_NAME = "slack.jsonl"
# The sandbox's demo login has a Slack user too.
DEMO_USER = {"id": "U0DEMO", "email": "demo@example.com", "name": "demo"}


class SlackState:
    def __init__(self, token: str, log_path: Path | None):
        self.token = token
        self.log_path = log_path
        self.users: dict[str, dict[str, str]] = {DEMO_USER["id"]: dict(DEMO_USER)}
        self.response_urls: dict[str, dict] = {}
        self.entries: list[dict] = []
        self.lock = threading.Lock()

    def record(self, kind: str, body: dict, **extra) -> dict:
        with self.lock:
            entry = {"seq": len(self.entries) + 1, "at": datetime.now(UTC).isoformat(),
                     "kind": kind, "body": body, **extra}
            self.entries.append(entry)
            if self.log_path is not None:
                with self.log_path.open("a", encoding="utf-8") as log:
                    log.write(json.dumps(entry) + "\n")
        return entry

    def issue_response_url(self, base: str) -> str:
        key = uuid.uuid4().hex
        with self.lock:
            self.response_urls[key] = {"issued": time.monotonic(), "uses": 0}
        return f"{base}/response/{key}"

    def use_response_url(self, key: str) -> str:
        """"" when the answer is taken, else Slack's reason for refusing it."""
        with self.lock:
            issued = self.response_urls.get(key)
            if issued is None:
                return "no_such_url"
            if time.monotonic() - issued["issued"] > RESPONSE_URL_SECONDS:
                return "expired_url"
            if issued["uses"] >= RESPONSE_URL_USES:
                return "used_url"
            issued["uses"] += 1
            return ""


class SlackApiHandler(BaseHTTPRequestHandler):
    server_version = "SandboxSlack/1"
    state: SlackState  # set on the handler class made per server

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path == "/sandbox/log":
            after = int((parse_qs(parts.query).get("after") or ["0"])[0] or 0)
            with self.state.lock:
                entries = [entry for entry in self.state.entries if entry["seq"] > after]
            self._reply(HTTPStatus.OK, {"entries": entries})
        elif parts.path.startswith("/api/"):
            self._web_api(parts.path.removeprefix("/api/"), _flat(parse_qs(parts.query)))
        else:
            self._reply(HTTPStatus.NOT_FOUND, {"ok": False, "error": "unknown_path"})

    def do_POST(self) -> None:
        parts = urlsplit(self.path)
        arguments = {**_flat(parse_qs(parts.query)), **self._body()}
        if parts.path.startswith("/api/"):
            self._web_api(parts.path.removeprefix("/api/"), arguments)
        elif parts.path.startswith("/response/"):
            self._response_url(parts.path.removeprefix("/response/"), arguments)
        elif parts.path == "/sandbox/users":
            user = {key: str(arguments.get(key, "")) for key in ("id", "email", "name")}
            with self.state.lock:
                self.state.users[user["id"]] = user
            self._reply(HTTPStatus.OK, {"ok": True, "user": user})
        elif parts.path == "/sandbox/response-urls":
            host, port = self.server.server_address[:2]
            url = self.state.issue_response_url(f"http://{host}:{port}")
            self._reply(HTTPStatus.OK, {"ok": True, "url": url})
        else:
            self._reply(HTTPStatus.NOT_FOUND, {"ok": False, "error": "unknown_path"})

    def _body(self) -> dict:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if "json" in self.headers.get("Content-Type", ""):
            try:
                data = json.loads(raw or b"{}")
            except ValueError:
                return {}
            return data if isinstance(data, dict) else {}
        return _flat(parse_qs(raw.decode(errors="replace")))

    def _web_api(self, method: str, arguments: dict) -> None:
        given = self.headers.get("Authorization", "")
        token = given.removeprefix("Bearer ") if given else str(arguments.get("token", ""))
        if token != self.state.token:
            self._reply(HTTPStatus.OK, {"ok": False, "error": "invalid_auth"})
            return
        if method == "users.info":
            self._users_info(str(arguments.get("user", "")))
        elif method == "chat.postMessage":
            self._post_message(arguments)
        else:
            self._reply(HTTPStatus.OK, {"ok": False, "error": "unknown_method"})

    def _users_info(self, user_id: str) -> None:
        self.state.record("users.info", {"user": user_id})
        with self.state.lock:
            user = self.state.users.get(user_id)
        if user is None:
            self._reply(HTTPStatus.OK, {"ok": False, "error": "user_not_found"})
            return
        self._reply(HTTPStatus.OK, {"ok": True, "user": {
            "id": user["id"], "name": user["name"], "profile": {"email": user["email"]}}})

    def _post_message(self, arguments: dict) -> None:
        blocks = arguments.get("blocks")
        if isinstance(blocks, str):
            try:
                blocks = json.loads(blocks)
            except ValueError:
                blocks = "invalid"
        error = ""
        if not arguments.get("channel"):
            error = "channel_not_found"
        elif not arguments.get("text") and not blocks:
            error = "no_text"
        elif blocks is not None and (not isinstance(blocks, list) or len(blocks) > MAX_BLOCKS):
            error = "invalid_blocks"
        if error:
            self._reply(HTTPStatus.OK, {"ok": False, "error": error})
            return
        entry = self.state.record("chat.postMessage", arguments)
        self._reply(HTTPStatus.OK, {"ok": True, "channel": arguments["channel"],
                                    "ts": f"{int(time.time())}.{entry['seq']:06d}",
                                    "message": {"text": arguments.get("text", "")}})

    def _response_url(self, key: str, body: dict) -> None:
        refused = self.state.use_response_url(key)
        if refused:
            self._reply(HTTPStatus.NOT_FOUND, refused, plain=True)
            return
        host, port = self.server.server_address[:2]
        self.state.record("response_url", body,
                          response_url=f"http://{host}:{port}/response/{key}")
        self._reply(HTTPStatus.OK, "ok", plain=True)

    def _reply(self, status: HTTPStatus, payload, *, plain: bool = False) -> None:
        body = (payload if plain else json.dumps(payload)).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain" if plain else "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        """Quiet: what matters is recorded in slack.jsonl."""


def _flat(query: dict[str, list[str]]) -> dict[str, str]:
    return {key: values[-1] for key, values in query.items()}


def start_slack_api(token: str, state_dir: Path | None) -> tuple[str, ThreadingHTTPServer]:
    """Serve the fake Slack on a free loopback port in a daemon thread: (base URL, server)."""
    log_path = Path(state_dir) / LOG_FILE_NAME if state_dir is not None else None
    state = SlackState(token, log_path)
    handler = type("BoundSlackApiHandler", (SlackApiHandler,), {"state": state})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="sandbox-slack", daemon=True).start()
    host, port = server.server_address[:2]
    return f"http://{host}:{port}", server
