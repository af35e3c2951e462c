"""What the Slack endpoints do inside the request, after the signature is checked: answer at
once (Slack waits 3 seconds at most) and leave the rest to the queue. Nothing here calls
Slack, AWS or the engine: help, a command that cannot be read and what is not available yet
are answered straight away; anything else is recorded and queued, and the answer goes to the
request's ``response_url`` (provisioning/slack/bot.py)."""

from django.db import transaction

from .. import tasks
from ..models import SlackRequest
from . import messages
from .commands import HELP, CommandProblem, parse

COMMAND, ACTION = "command", "action"
ANSWERED_BY_BUTTONS = {messages.DESTROY, messages.DESTROY_CONFIRMED, messages.DESTROY_CANCELLED}


def _queue(**fields) -> SlackRequest:
    with transaction.atomic():
        request = SlackRequest.objects.create(**fields)
        transaction.on_commit(lambda: tasks.enqueue_slack_request(request.pk))
    return request


def take_command(form) -> dict:
    """The immediate, ephemeral answer to a slash command (Slack's form fields)."""
    text = " ".join(form.get("text", "").split())
    try:
        command = parse(text)
    except CommandProblem as problem:
        return messages.ephemeral(problem.message)
    if command.verb == "help":
        return messages.ephemeral(HELP)
    if command.not_available:
        return messages.ephemeral(command.not_available)
    if not form.get("user_id") or not form.get("response_url"):
        return messages.ephemeral("Slack sent this command without a user or a response URL, "
                                  "so I cannot answer it.")
    _queue(kind=COMMAND, text=text[:1000], slack_user_id=form["user_id"][:32],
           slack_team_id=form.get("team_id", "")[:32], channel_id=form.get("channel_id", "")[:32],
           response_url=form["response_url"][:512])
    return messages.ephemeral(f"Working on `{messages.escape(text)}`...")


def take_action(payload: dict) -> bool:
    """Record a button press we act on (Destroy, its confirmation, Cancel): whether it was
    one. Link buttons (Open) are reported by Slack too; nothing to do for them."""
    if not isinstance(payload, dict) or payload.get("type") != "block_actions":
        return False
    actions = payload.get("actions") or [{}]
    action = actions[0] if isinstance(actions[0], dict) else {}
    action_id, value = str(action.get("action_id", "")), str(action.get("value", ""))
    user_id = str((payload.get("user") or {}).get("id", ""))
    response_url = str(payload.get("response_url", ""))
    if action_id not in ANSWERED_BY_BUTTONS or not value or not user_id or not response_url:
        return False
    _queue(kind=ACTION, text=f"{action_id} {value}"[:1000], slack_user_id=user_id[:32],
           slack_team_id=str((payload.get("team") or {}).get("id", ""))[:32],
           channel_id=str((payload.get("channel") or {}).get("id", ""))[:32],
           response_url=response_url[:512])
    return True
