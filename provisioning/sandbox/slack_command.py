"""``manage.py sandbox slack "/staging create feature/x" [--user demo]``: what Slack does when
someone types a slash command, against the running sandbox: the Slack user (with the
dashboard user's e-mail) is made known to the fake Slack, a response URL is handed out, the
command is signed with the sandbox's signing secret and posted to the dashboard's
``/slack/commands``. Then what comes back is printed as it comes: the immediate answer, the
answers on the response URL and the messages in the channel, until the command and what it
started have been answered (or the time is up)."""

import hashlib
import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode

from django.contrib.auth import get_user_model
from slack_sdk.signature import SignatureVerifier

from ..config import load_config
from ..models import (
    Notification,
    NotificationStatus,
    Operation,
    SlackRequest,
    SlackRequestStatus,
)

CHANNEL = {"id": "C0SANDBOX", "name": "sandbox"}
TEAM = {"id": "T0SANDBOX", "domain": "sandbox"}
POLL_SECONDS = 0.5
# After the operation ended, how long its Slack message may take to be sent.
NOTIFICATION_GRACE_SECONDS = 60


class SlackSandboxError(Exception):
    pass


@dataclass(frozen=True)
class Typed:
    command: str
    text: str


def split_typed(typed: str) -> Typed:
    """"/staging create x" -> ("/staging", "create x"); without a slash command, /staging."""
    words = typed.strip().split(maxsplit=1)
    if words and words[0].startswith("/"):
        return Typed(words[0], words[1] if len(words) > 1 else "")
    return Typed("/staging", typed.strip())


def _fake_slack_base() -> str:
    return re.sub(r"/api/?$", "", load_config().slack_api_url.rstrip("/"))


def _call(url: str, data: dict | None = None) -> dict:
    body = json.dumps(data).encode() if data is not None else None
    request = urllib.request.Request(url, data=body, method="POST" if body else "GET",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())


def slack_user_for(username: str) -> dict:
    """The Slack user standing for dashboard user ``username``, with that user's e-mail (or
    an address nobody on the dashboard has, to see the refusal)."""
    user = get_user_model().objects.filter(username=username).first()
    email = user.email if user is not None and user.email else f"{username}@sandbox.invalid"
    letters = re.sub(r"[^A-Z0-9]", "", username.upper())[:9]
    slack_id = "U0" + (letters or hashlib.sha256(username.encode()).hexdigest()[:9].upper())
    return {"id": slack_id, "email": email, "name": username}


def send(typed: Typed, *, username: str, dashboard_url: str) -> tuple[int, str, str, int]:
    """Post the signed command: (HTTP status, the answer's text, the response URL, the fake
    Slack's last log entry before it)."""
    config = load_config()
    if not config.slack_signing_secret:
        raise SlackSandboxError("No sandbox is running (no DS_SLACK_SIGNING_SECRET): start it "
                                "with make run.")
    base = _fake_slack_base()
    try:
        user = slack_user_for(username)
        _call(f"{base}/sandbox/users", user)
        response_url = _call(f"{base}/sandbox/response-urls", {})["url"]
        entries = _call(f"{base}/sandbox/log")["entries"]
    except OSError as exc:
        raise SlackSandboxError(f"The sandbox's Slack at {base} does not answer: {exc}") from exc
    form = {"token": "", "team_id": TEAM["id"], "team_domain": TEAM["domain"],
            "channel_id": CHANNEL["id"], "channel_name": CHANNEL["name"],
            "user_id": user["id"], "user_name": username, "command": typed.command,
            "text": typed.text, "api_app_id": "A0SANDBOX", "response_url": response_url,
            "trigger_id": f"{int(time.time())}.sandbox"}
    body = urlencode(form)
    timestamp = str(int(time.time()))
    signature = SignatureVerifier(config.slack_signing_secret).generate_signature(
        timestamp=timestamp, body=body)
    request = urllib.request.Request(
        f"{dashboard_url.rstrip('/')}/slack/commands", data=body.encode(), method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded",
                 "X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": signature})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            status, raw = answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read().decode(errors="replace")
    except OSError as exc:
        raise SlackSandboxError(f"The dashboard at {dashboard_url} does not answer ({exc}): "
                                "is `manage.py sandbox run` running?") from exc
    try:
        text = json.loads(raw).get("text", raw)
    except ValueError:
        text = raw
    return status, text, response_url, entries[-1]["seq"] if entries else 0


def describe(entry: dict) -> str:
    body = entry["body"]
    buttons = [element["text"]["text"] for block in body.get("blocks") or []
               if isinstance(block, dict) for element in block.get("elements", [])
               if element.get("type") == "button"]
    shown = f" [{'] ['.join(buttons)}]" if buttons else ""
    where = (f"#{CHANNEL['name']}" if entry["kind"] == "chat.postMessage"
             else f"response_url ({body.get('response_type', 'ephemeral')})")
    return f"{where}: {body.get('text', '')}{shown}"


def _settled(response_url: str, operation_ended: list[float]) -> bool:
    """The command was answered, and what it started has ended and been told in Slack."""
    request = SlackRequest.objects.filter(response_url=response_url).first()
    if request is None:
        return True  # answered in the request itself (help, a problem): nothing queued
    if request.status != SlackRequestStatus.ANSWERED:
        return False
    if request.operation_id is None:
        return True
    operation = Operation.objects.get(pk=request.operation_id)
    if not operation.is_finished:
        return False
    if not operation_ended:
        operation_ended.append(time.monotonic())
    told = Notification.objects.filter(operation_id=operation.pk, channel="slack")
    if told.exists() and not told.filter(status__in=[NotificationStatus.PENDING,
                                                      NotificationStatus.SENDING]).exists():
        return True
    return time.monotonic() - operation_ended[0] > NOTIFICATION_GRACE_SECONDS


def follow(response_url: str, after: int, *, timeout: float,
           write: Callable[[str], None]) -> bool:
    """Print what the bot sends to this command's response URL and to the channel, until it
    is all answered: True, or False when ``timeout`` seconds passed first."""
    base = _fake_slack_base()
    started = time.monotonic()
    ended: list[float] = []
    while True:
        settled = _settled(response_url, ended)
        for entry in _call(f"{base}/sandbox/log?after={after}")["entries"]:
            after = entry["seq"]
            ours = entry.get("response_url") == response_url
            if entry["kind"] == "chat.postMessage" or ours:
                write(describe(entry))
        if settled:
            return True
        if time.monotonic() - started > timeout:
            return False
        time.sleep(POLL_SECONDS)
