"""stagingbot's work, run from the queue: who typed the command (their Slack e-mail picks the
dashboard user), do it through the engine with that user's rights, and post the answer to the
command's ``response_url``. Each request is answered once: a redelivered task finds it taken.

What a command starts is linked to the request, so its end (ready, failed, destroyed) is told
in the conversation the command came from (provisioning/slack/channel.py). Everything asked
through here is on the audit trail with the channel "slack".
"""

import logging

from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from .. import audit, engine, notifications
from ..errors import ExternalCallFailed, UserError
from ..models import (
    DbMode,
    Operation,
    SlackRequest,
    SlackRequestStatus,
    Staging,
)
from . import client, messages
from .client import SlackCallFailed
from .commands import CommandProblem, parse

log = logging.getLogger(__name__)
LIST_LIMIT = 30


class Refusal(Exception):
    """One sentence telling the Slack user why nothing was done."""


def answer(request_id: int) -> str:
    """Answer one recorded request if no other worker has taken it: what became of it."""
    if not SlackRequest.objects.filter(pk=request_id, status=SlackRequestStatus.RECEIVED).update(
            status=SlackRequestStatus.WORKING):
        return "taken by another worker, or answered"
    request = SlackRequest.objects.get(pk=request_id)
    try:
        body = _answer(request)
    except Refusal as refusal:
        body = messages.ephemeral(str(refusal))
    except UserError as exc:
        body = messages.ephemeral(exc.message)
    except ExternalCallFailed as exc:
        body = messages.ephemeral(f"AWS did not answer as expected ({exc.call}: {exc.code}); "
                                  "try again in a minute.")
    except Exception:  # a bug must not leave the person waiting for an answer that never comes
        log.exception("answering Slack request %s failed", request_id)
        body = messages.ephemeral("Something went wrong on our side (it is in the dashboard's "
                                  "log); try again in a minute.")
    SlackRequest.objects.filter(pk=request_id).update(
        status=SlackRequestStatus.ANSWERED, reply=body.get("text", ""),
        answered_at=timezone.now())
    try:
        client.respond(request.response_url, body)
    except SlackCallFailed as exc:
        log.warning("could not answer Slack request %s: %s", request_id, exc)
        return f"answered, but Slack refused the answer ({exc})"
    return "answered"


def _answer(request: SlackRequest) -> dict:
    if request.kind == "action":
        action_id, _, name = request.text.partition(" ")
        if action_id == messages.DESTROY_CANCELLED:
            return messages.ephemeral(f"Nothing was destroyed: {name} stays.",
                                      replace_original=True)
        user = _dashboard_user(request)
        if action_id == messages.DESTROY:
            return messages.confirm_destroy(_staging_to_act_on(name, user, "destroy"))
        return {**_destroy(name, user, request), "replace_original": True}
    try:
        command = parse(request.text)
    except CommandProblem as problem:
        return messages.ephemeral(problem.message)
    if command.not_available:
        return messages.ephemeral(command.not_available)
    user = _dashboard_user(request)
    handler = {"create": _create, "list": _list, "show": _show, "redeploy": _redeploy,
               "extend": _extend,
               "destroy": lambda options, who, req: _destroy(options["name"], who, req)}
    return handler[command.verb](command.options, user, request)


def _dashboard_user(request: SlackRequest) -> AbstractBaseUser:
    try:
        email = client.email_of(request.slack_user_id)
    except SlackCallFailed as exc:
        raise Refusal(f"I could not ask Slack who you are ({exc.call}: {exc.code}); try again "
                      "in a minute.") from exc
    if not email:
        raise Refusal("Slack shows me no e-mail address for you, so I cannot tell which "
                      "dashboard user you are.")
    user = engine.user_with_email(email)
    if user is None:
        raise Refusal(f"No dashboard user has the e-mail address {email}, so I cannot act for "
                      "you: ask an admin to set it on your dashboard account.")
    SlackRequest.objects.filter(pk=request.pk).update(user=user)
    return user


def _link(request: SlackRequest, staging: Staging, operation: Operation | None) -> None:
    """Remember what the request started, then tell its end if it came first."""
    SlackRequest.objects.filter(pk=request.pk).update(staging=staging, operation=operation)
    if operation is not None:
        notifications.tell_if_finished(operation.pk)


def _staging_to_act_on(name: str, user: AbstractBaseUser, verb: str) -> Staging:
    staging = engine.live_staging(name)
    if staging is None:
        raise Refusal(f"No live staging is called {name}.")
    if not engine.may_act(user, staging):
        raise Refusal(f"Only {staging.name}'s owner ({staging.owner.get_username()}) or an "
                      f"admin may {verb} it.")
    return staging


def _create(options: dict, user: AbstractBaseUser, request: SlackRequest) -> dict:
    db_mode = DbMode.SHARED if options["shared_db"] else DbMode.DEDICATED
    staging = engine.request_create(branch=options["branch"], owner=user,
                                    name=options["name"], source=options["source"],
                                    db_mode=db_mode, ttl_hours=options["ttl"],
                                    channel=audit.SLACK)
    _link(request, staging, staging.latest_operation())
    database = ("the shared database" if db_mode == DbMode.SHARED
                else f"a database restored from {staging.source}")
    return messages.ephemeral(
        f"Creating *{staging.name}* from `{messages.escape(staging.branch)}` with {database}. "
        "I will post in this conversation when it is ready.")


def _list(options: dict, user: AbstractBaseUser, request: SlackRequest) -> dict:
    live = Staging.objects.live().select_related("owner").order_by("name")
    if options["whose"] == "mine":
        live = live.filter(owner=user)
    shown = list(live[:LIST_LIMIT + 1])
    if not shown:
        return messages.ephemeral("You have no live stagings." if options["whose"]
                                  else "There are no live stagings.")
    lines = [messages.staging_line(staging) for staging in shown[:LIST_LIMIT]]
    if len(shown) > LIST_LIMIT:
        lines.append("... and more: see the dashboard's fleet page.")
    return messages.ephemeral("\n".join(lines))


def _show(options: dict, user: AbstractBaseUser, request: SlackRequest) -> dict:
    staging = engine.staging_named(options["name"])
    if staging is None:
        raise Refusal(f"No staging is called {options['name']}.")
    return messages.ephemeral(messages.staging_details(
        staging, notifications.staging_link(staging)))


def _redeploy(options: dict, user: AbstractBaseUser, request: SlackRequest) -> dict:
    staging = _staging_to_act_on(options["name"], user, "redeploy")
    operation = engine.request_redeploy(staging, user=user, tag=options["tag"],
                                        channel=audit.SLACK)
    _link(request, staging, operation)
    return messages.ephemeral(
        f"Redeploying *{staging.name}* with `{messages.escape(operation.params['tag'])}`. "
        "I will post in this conversation when it is ready.")


def _extend(options: dict, user: AbstractBaseUser, request: SlackRequest) -> dict:
    staging = _staging_to_act_on(options["name"], user, "extend")
    extension = engine.extend(staging, user=user, hours=options["hours"], channel=audit.SLACK)
    return messages.ephemeral(extension.sentence(staging.name))


def _destroy(name: str, user: AbstractBaseUser, request: SlackRequest) -> dict:
    staging = _staging_to_act_on(name, user, "destroy")
    operation = engine.request_destroy(staging, user=user, channel=audit.SLACK)
    _link(request, staging, operation)
    return messages.ephemeral(
        f"Destroying *{staging.name}*: everything it made in AWS is being removed. I will post "
        "in this conversation when it is gone.")
