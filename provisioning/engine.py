"""The engine's public interface: what every entry point (the pages, the ``ds`` command, and
the JSON API, Slack and GitHub to come) asks of the engine. An entry point imports this module
(and the models it reads), never the steps, the host, the AWS wrappers or the runner, so a rule
(may this user destroy? which statuses allow a redeploy? what is live?) keeps one home."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser

from .aws import ecr
from .branches import BranchSuggestion, suggestions_for_tags
from .config import load_config
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
    request_redeploy,
)
from .steps.account import read_login_password
from .steps.image import registry_id_of
from .steps.routing import bypass_token_of

__all__ = [
    "BranchSuggestion", "CreateAllowance", "CreatePreview", "SourceInfo", "acting_user",
    "branch_suggestions", "branch_tags", "create_allowance", "derive_name", "list_sources",
    "live_staging", "may_act", "may_redeploy", "preview_create", "reveal_login",
    "request_create", "request_destroy", "request_redeploy", "reveal_bypass", "staging_named",
]


def live_staging(name: str) -> Staging | None:
    return Staging.objects.live().filter(name=name).select_related("owner").first()


def staging_named(name: str) -> Staging | None:
    """The live staging of that name, else the newest destroyed one (its history)."""
    return live_staging(name) or Staging.objects.filter(name=name).select_related(
        "owner").first()


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
