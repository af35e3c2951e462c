"""Calls to Slack: the Web API (``users.info``, ``chat.postMessage``) with the bot token, and
answers posted to a command's ``response_url``. Scopes the bot token needs: ``commands``,
``chat:write``, ``users:read``, ``users:read.email``.

Slack answers a refused Web API call with HTTP 200 and ``{"ok": false, "error": ...}``;
slack_sdk raises SlackApiError for it, which comes out of here as SlackCallFailed with
Slack's error code, like any other failure to reach Slack.
"""

from datetime import timedelta

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.webhook import WebhookClient

from ..config import load_config

TIMEOUT_SECONDS = 10
# Slack takes at most five answers on a response_url, within 30 minutes of the command.
RESPONSE_URL_LIFETIME = timedelta(minutes=30)


class SlackCallFailed(Exception):
    def __init__(self, call: str, code: str):
        super().__init__(f"{call}: {code}")
        self.call = call
        self.code = code


def _web_client() -> WebClient:
    config = load_config()
    return WebClient(token=config.slack_bot_token, base_url=config.slack_api_url,
                     timeout=TIMEOUT_SECONDS)


def _call(method: str, **arguments) -> dict:
    client = _web_client()
    try:
        return getattr(client, method.replace(".", "_"))(**arguments).data
    except SlackApiError as exc:
        raise SlackCallFailed(method, str(exc.response.get("error", "unknown_error"))) from exc
    except (SlackClientError, OSError) as exc:
        raise SlackCallFailed(method, type(exc).__name__) from exc


def email_of(slack_user_id: str) -> str:
    """The e-mail address on the Slack user's profile, "" when Slack shows none."""
    data = _call("users.info", user=slack_user_id)
    return str(data.get("user", {}).get("profile", {}).get("email") or "")


def post_message(*, channel: str, text: str, blocks: list[dict] | None = None) -> None:
    _call("chat.postMessage", channel=channel, text=text, blocks=blocks,
          unfurl_links=False)


def respond(response_url: str, body: dict) -> None:
    """Post an answer to a command's or a button's ``response_url``."""
    try:
        answer = WebhookClient(response_url, timeout=TIMEOUT_SECONDS).send_dict(body)
    except (SlackClientError, OSError, ValueError) as exc:  # ValueError: a malformed URL
        raise SlackCallFailed("response_url", type(exc).__name__) from exc
    if answer.status_code != 200:
        raise SlackCallFailed("response_url", f"HTTP{answer.status_code}: {answer.body[:80]}")
