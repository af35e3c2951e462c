"""Random secrets a staging owns in Secrets Manager (its account API token, its sign-in bypass
token): made once and kept across attempts, since what an earlier attempt made may already be
in use (a task definition or a listener rule points at it), and removed with the staging."""

import secrets

from ..aws import secretsmanager
from ..names import staging_tags
from ..stepkit import Skip, StepContext


def keep_random_secret(ctx: StepContext, *, name: str, nbytes: int) -> dict:
    arn = secretsmanager.find_secret_arn(name=name)
    if arn is None:
        arn = secretsmanager.store_secret(name=name, value=secrets.token_urlsafe(nbytes),
                                          tags=staging_tags(ctx.staging.name))
    return {"secret_arn": arn}


def remove_secret(*, name: str, what: str) -> dict:
    # Asked first: whether DeleteSecret of a missing name is an error is not to be relied on.
    if secretsmanager.find_secret_arn(name=name) is None:
        raise Skip(f"no {what}")
    if not secretsmanager.delete_secret(name=name):
        raise Skip(f"no {what}")
    return {"deleted": name}
