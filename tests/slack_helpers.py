"""Slack for tests: signed requests to the endpoints as Slack sends them, and a Slack Web API
on a real local HTTP server (pytest-httpserver) that knows some users and records what the
bot posts (``chat.postMessage``, answers on response URLs)."""

import json
import re
import time
from urllib.parse import parse_qs, urlencode

from slack_sdk.signature import SignatureVerifier
from werkzeug import Request, Response

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
TOKEN = "xoxb-test-token"
CHANNEL = "C0TESTCHAN"
# Slack user ids of the test users (tests/conftest.py's alice, bob, admin).
ALICE, BOB, ADMIN, STRANGER = "U0ALICE", "U0BOB", "U0ADMIN", "U0STRANGER"


def sign(body: str, timestamp: int | None = None, secret: str = SECRET) -> dict:
    """The two headers Slack adds, for Django's test client."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(secret).generate_signature(timestamp=stamp, body=body)
    return {"HTTP_X_SLACK_REQUEST_TIMESTAMP": stamp, "HTTP_X_SLACK_SIGNATURE": signature}


def command_form(text: str, *, user: str = ALICE, response_url: str = "",
                 channel: str = CHANNEL) -> dict:
    return {"token": "legacy", "team_id": "T0TEST", "team_domain": "test",
            "channel_id": channel, "channel_name": "stagings", "user_id": user,
            "user_name": user.lower(), "command": "/staging", "text": text,
            "api_app_id": "A0TEST", "response_url": response_url, "trigger_id": "1.2.3"}


def post_signed(client, path: str, form: dict, **signing):
    body = urlencode(form)
    return client.post(path, data=body, content_type="application/x-www-form-urlencoded",
                       **sign(body, **signing))


def action_form(action_id: str, value: str, *, user: str = ALICE, response_url: str = "",
                channel: str = CHANNEL) -> dict:
    payload = {"type": "block_actions", "user": {"id": user}, "team": {"id": "T0TEST"},
               "channel": {"id": channel}, "response_url": response_url,
               "actions": [{"action_id": action_id, "value": value, "type": "button"}]}
    return {"payload": json.dumps(payload)}


class FakeSlack:
    """Slack's Web API as the bot uses it, on ``httpserver``: ``users.info`` from ``users``
    (id -> e-mail), ``chat.postMessage`` recorded in ``messages`` (``refuse`` makes it
    answer ``{"ok": false, "error": refuse}``), response URLs recorded in ``responses``."""

    def __init__(self, httpserver):
        self.httpserver = httpserver
        self.users: dict[str, str] = {}
        self.messages: list[dict] = []
        self.responses: list[dict] = []
        self.refuse = ""
        self.lookups: list[str] = []
        httpserver.expect_request("/api/users.info").respond_with_handler(self._users_info)
        httpserver.expect_request("/api/chat.postMessage", method="POST").respond_with_handler(
            self._post_message)
        httpserver.expect_request(re.compile(r"^/response/.+"), method="POST"
                                  ).respond_with_handler(self._response_url)

    @property
    def api_url(self) -> str:
        return self.httpserver.url_for("/api/")

    def response_url(self, name: str = "1") -> str:
        return self.httpserver.url_for(f"/response/{name}")

    def _authorised(self, request: Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {TOKEN}"

    def _users_info(self, request: Request) -> Response:
        if not self._authorised(request):
            return _ok_false("invalid_auth")
        user = request.args.get("user") or parse_qs(request.get_data(as_text=True)).get(
            "user", [""])[0]
        self.lookups.append(user)
        if user not in self.users:
            return _ok_false("user_not_found")
        profile = {"email": self.users[user]} if self.users[user] else {}
        return _json({"ok": True, "user": {"id": user, "name": user.lower(),
                                           "profile": profile}})

    def _post_message(self, request: Request) -> Response:
        if not self._authorised(request):
            return _ok_false("invalid_auth")
        body = request.get_json()
        if self.refuse:
            return _ok_false(self.refuse)
        self.messages.append(body)
        return _json({"ok": True, "channel": body["channel"], "ts": f"{len(self.messages)}.0"})

    def _response_url(self, request: Request) -> Response:
        self.responses.append({"path": request.path, **request.get_json()})
        return Response("ok", content_type="text/plain")

    def texts(self) -> list[str]:
        return [response["text"] for response in self.responses]


def _json(data: dict) -> Response:
    return Response(json.dumps(data), content_type="application/json")


def _ok_false(error: str) -> Response:
    return _json({"ok": False, "error": error})
