"""The engine's public interface: what every entry point (the pages, the ``ds`` command, the
JSON API, and Slack and GitHub to come) asks of the engine. An entry point imports this module
(and the models it reads), never the steps, the host, the AWS wrappers or the runner, so a rule
(may this user destroy? which statuses allow a redeploy? what is live?) keeps one home."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser

from . import lifecycle
from .api_tokens import IssuedToken, TokenRefused
from .api_tokens import authenticate as authenticate_token
from .api_tokens import issue as issue_token
from .api_tokens import may_revoke as may_revoke_token
from .api_tokens import revoke as revoke_token
from .api_tokens import visible_to as tokens_visible_to
from .aws import ecr
from .branches import BranchSuggestion, suggestions_for_tags
from .config import load_config
from .expiry import Extension, extend, set_kept
from .host import read_host_environment
from .models import Staging
from .operations import (
    CreateAllowance,
    CreatePreview,
    SourceInfo,
    create_allowance,
    derive_name,
    list_sources,
    may_act,
    may_redeploy,
    preview_create,
    request_create,
    request_destroy,
    request_recreate,
    request_redeploy,
)
from .steps.account import read_login_password
from .steps.image import registry_id_of
from .steps.routing import bypass_token_of

__all__ = [
    "BranchSuggestion", "CreateAllowance", "CreatePreview", "Extension", "SourceInfo",
    "acting_user", "branch_suggestions", "branch_tags", "create_allowance", "demo_login",
    "derive_name", "expected_step_seconds", "extend", "last_destroyed", "list_sources",
    "live_staging", "may", "may_act", "may_redeploy", "offered_changes", "preview_create",
    "request_create", "request_destroy", "request_recreate", "request_redeploy",
    "reveal_bypass", "reveal_login", "set_kept", "staging_named", "user_with_email",
    # API tokens: who a bearer token acts for, and making and revoking them.
    "IssuedToken", "TokenRefused", "authenticate_token", "issue_token", "may_revoke_token",
    "revoke_token", "tokens_visible_to",
]


def live_staging(name: str) -> Staging | None:
    """The staging that holds the name: a live one, or a lost one."""
    return Staging.objects.holding_names().filter(name=name).select_related("owner").first()


def last_destroyed(name: str) -> Staging | None:
    """The newest destroyed staging of that name: what a recreate makes again."""
    return Staging.objects.destroyed().filter(name=name).select_related("owner").order_by(
        "-destroyed_at", "-pk").first()


def staging_named(name: str) -> Staging | None:
    """The staging holding the name (live or lost), else the newest destroyed one (its
    history)."""
    return live_staging(name) or Staging.objects.filter(name=name).select_related(
        "owner").first()


def may(change: str, user: AbstractBaseUser, staging: Staging) -> bool:
    """Whether ``user`` may make the row change ("extend", "keep", "recreate") to the staging
    at all (the lifecycle registry's rule; its status may still refuse it now)."""
    return lifecycle.row_change(change).may_start(user, staging)


def offered_changes(user: AbstractBaseUser, staging: Staging) -> frozenset[str]:
    """The row changes a page offers this user for the staging now."""
    return frozenset(change for change, rules in lifecycle.ROW_CHANGES.items()
                     if rules.allowed(user, staging))


def acting_user(username: str) -> AbstractBaseUser:
    """The dashboard user an entry point acts for, made on first use (the command line's
    DS_USER; later a Slack user's or a token's owner)."""
    user, _ = get_user_model().objects.get_or_create(username=username)
    return user


def reveal_bypass(staging: Staging) -> tuple[str, str] | None:
    """The header and token with which automated tests skip a staging's sign-in (staff only:
    the caller checks), or None when its rules have no bypass."""
    config = load_config()
    if not (staging.is_live and config.stagings_need_sign_in and config.staging_bypass_header):
        return None
    token = bypass_token_of(staging.name, config)
    return (config.staging_bypass_header, token) if token else None


def user_with_email(email: str) -> AbstractBaseUser | None:
    """The one active dashboard user with this e-mail address (a Slack user's), else None:
    nobody has it, or several do and none can be told apart."""
    if not email:
        return None
    found = list(get_user_model().objects.filter(email__iexact=email, is_active=True)[:2])
    return found[0] if len(found) == 1 else None


def reveal_login(staging: Staging) -> str:
    """The test account's password, read from Secrets Manager when an allowed user asks."""
    return read_login_password(staging)


# --- sources and branches: what a create may be asked for ---------------------------------------

def branch_tags(limit: int) -> list[str]:
    """The image tags of the host's app repository, newest push first, each once (AWS)."""
    image = read_host_environment(load_config()).image
    tags = ecr.list_image_tags(registry_id=registry_id_of(image), repository=image.repository)
    return list(dict.fromkeys(tag.tag for tag in tags))[:limit]


def branch_suggestions(image_tags: list[str]) -> list[BranchSuggestion]:
    """The branches to offer for these image tags: the known branch a tag stands for, else
    the tag itself (our records only; see provisioning.branches). A create given one of
    these tags resolves it the same way."""
    return suggestions_for_tags(image_tags)


def expected_step_seconds(kind: str) -> dict[str, float]:
    """How long each step of an operation of ``kind`` takes on the AWS in use, before this
    installation has timed its own: the registry's real-AWS durations, scaled to the sandbox
    when AWS is the sandbox's."""
    return lifecycle.rules_for(kind).expected_seconds(load_config().aws_time_scale)


def demo_login() -> tuple[str, str] | None:
    """The sandbox's demo login (user name, password) while its user exists; never outside
    the sandbox."""
    config = load_config()
    if not config.sandbox or not get_user_model().objects.filter(
            username=config.demo_username, is_active=True).exists():
        return None
    return config.demo_username, config.demo_password
