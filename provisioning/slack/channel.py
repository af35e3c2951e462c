"""Slack as a notification channel: the end of an operation started from Slack is posted in
the conversation the command came from (a channel, or the direct messages with the bot), with
buttons for what comes next, and also answered on the command's ``response_url``.

An operation started elsewhere (the pages, the command line) is not told in Slack. A
notification without an operation (an expiry warning) goes to the conversation of the newest
Slack request about that staging, if any.
"""

import contextlib

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from ..config import load_config
from ..models import Notification, SlackRequest
from ..notifications import Channel, staging_link
from . import client, messages

# Slack's answer when the bot is not a member of the conversation: the response_url, which
# works wherever the command was typed, says it instead.
NOT_A_MEMBER = {"not_in_channel", "channel_not_found"}


class SlackChannel(Channel):
    name = "slack"

    def address(self, user, staging, operation):
        if not load_config().slack_bot_token:
            return None
        asked = SlackRequest.objects.exclude(channel_id="")
        if operation is not None:
            request = asked.filter(operation=operation).first()
        elif staging is not None:
            request = asked.filter(staging=staging).first()
        else:
            request = None
        if request is None:
            return None
        return {"channel": request.channel_id, "response_url": request.response_url,
                "asked_at": request.received_at.isoformat()}

    def send(self, notification: Notification) -> None:
        target = notification.target
        blocks = messages.outcome_blocks(notification.text, notification.staging,
                                         staging_link(notification.staging))
        answerable = _response_url_alive(target)
        try:
            client.post_message(channel=target["channel"], text=notification.text,
                                blocks=blocks)
        except client.SlackCallFailed as exc:
            if exc.code not in NOT_A_MEMBER or not answerable:
                raise
            client.respond(target["response_url"], {
                "response_type": "in_channel", "text": notification.text, "blocks": blocks,
                "replace_original": False})
            return
        if answerable:
            # The person who typed the command sees the result under it too; the message
            # in the conversation was sent, so a refusal here fails nothing.
            with contextlib.suppress(client.SlackCallFailed):
                client.respond(target["response_url"], messages.ephemeral(
                    notification.text, replace_original=False))


def _response_url_alive(target: dict) -> bool:
    asked_at = parse_datetime(target.get("asked_at", ""))
    return bool(target.get("response_url") and asked_at
                and timezone.now() - asked_at < client.RESPONSE_URL_LIFETIME)
