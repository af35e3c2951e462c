"""The engine's public interface: what every entry point (the pages, the ``ds`` command, and
the JSON API, Slack and GitHub to come) asks of the engine. An entry point imports this module
(and the models it reads), never the steps, the host, the AWS wrappers or the runner, so a rule
(may this user destroy? which statuses allow a redeploy? what is live?) keeps one home."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser

from .aws import ecr
from .config import load_config
from .host import read_host_environment
from .models import Staging
from .operations import (
    SourceInfo,
    derive_name,
    list_sources,
    may_act,
    request_create,
    request_destroy,
    request_recreate,
    request_redeploy,
)
from .steps.account import read_login_password
from .steps.image import registry_id_of

__all__ = [
    "SourceInfo", "acting_user", "branch_tags", "derive_name", "list_sources", "live_staging",
    "may_act", "reveal_login", "request_create", "request_destroy", "request_recreate",
    "request_redeploy", "staging_named",
]


def live_staging(name: str) -> Staging | None:
    """The staging that holds the name: a live one, or a lost one."""
    return Staging.objects.holding_names().filter(name=name).select_related("owner").first()


def staging_named(name: str) -> Staging | None:
    """The staging holding the name (live or lost), else the newest destroyed one (its
    history)."""
    return live_staging(name) or Staging.objects.filter(name=name).select_related(
        "owner").first()


def acting_user(username: str) -> AbstractBaseUser:
    """The dashboard user an entry point acts for, made on first use (the command line's
    DS_USER; later a Slack user's or a token's owner)."""
    user, _ = get_user_model().objects.get_or_create(username=username)
    return user


def reveal_login(staging: Staging) -> str:
    """The test account's password, read from Secrets Manager when an allowed user asks."""
    return read_login_password(staging)


def branch_tags(limit: int) -> list[str]:
    """The image tags of the host's app repository, newest push first, each once."""
    image = read_host_environment(load_config()).image
    tags = ecr.list_image_tags(registry_id=registry_id_of(image), repository=image.repository)
    return list(dict.fromkeys(tag.tag for tag in tags))[:limit]
