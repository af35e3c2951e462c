"""The staging's test account in the app, through the app's account API. Its password goes
to Secrets Manager at once; our database keeps only the secret's ARN.

When the API is served by the staging itself (``{host}``/``{name}`` in the URL), that is branch
code: it never sees the shared DS_ACCOUNT_API_TOKEN. Each such staging gets a random token of
its own, kept in Secrets Manager (``dynamic-stagings/NAME/account-api-token``) and handed to
its containers as an ECS secret, and the engine calls its API with that token.
"""

import secrets
import time

from .. import account_api
from ..aws import secretsmanager
from ..errors import ExternalCallFailed, OperationCancelled
from ..names import staging_tags
from ..stepkit import Skip, StepContext

# How long to wait for AWS to free the login secret's name after a destroy deleted it without
# recovery, in poll intervals (two minutes at the default DS_POLL_SECONDS): the API reference
# promises only "a short delay" and asks for backoff and retries.
NAME_FREE_POLLS = 12
TOKEN_BYTES = 32


def _endpoint(ctx: StepContext) -> str:
    return account_api.endpoint_for(
        ctx.config.account_api_url, name=ctx.staging.name, host=ctx.names.host
    )


def own_token(config) -> bool:
    """The staging's app serves the account API, so it gets a token of its own."""
    return account_api.targets_staging(config.account_api_url)


def _token(ctx: StepContext) -> str:
    if not own_token(ctx.config):
        return ctx.config.account_api_token
    arn = secretsmanager.find_secret_arn(name=ctx.names.account_api_token_secret)
    if arn is None:
        raise ExternalCallFailed("secretsmanager:DescribeSecret", "ResourceNotFoundException",
                                 f"{ctx.names.account_api_token_secret} does not exist: the "
                                 "staging's account API token was never made")
    return secretsmanager.read_secret(secret_id=arn)


def make_account_token(ctx: StepContext) -> dict:
    """The staging's own account API token; the one an earlier attempt made is kept, since
    task definitions may already point at it."""
    name = ctx.names.account_api_token_secret
    arn = secretsmanager.find_secret_arn(name=name)
    if arn is None:
        arn = secretsmanager.store_secret(name=name, value=secrets.token_urlsafe(TOKEN_BYTES),
                                          tags=staging_tags(ctx.staging.name))
    return {"secret_arn": arn}


def remove_account_token(ctx: StepContext) -> dict:
    # Asked first: whether DeleteSecret of a missing name is an error is not to be relied on.
    if secretsmanager.find_secret_arn(name=ctx.names.account_api_token_secret) is None:
        raise Skip("no account API token")
    if not secretsmanager.delete_secret(name=ctx.names.account_api_token_secret):
        raise Skip("no account API token")
    return {"deleted": ctx.names.account_api_token_secret}


def create_account(ctx: StepContext) -> dict:
    if not ctx.config.account_api_url:
        raise Skip("no account API configured (DS_ACCOUNT_API_URL)")
    if ctx.staging.account_id and ctx.staging.login_secret_arn:
        return {"account_id": ctx.staging.account_id, "username": ctx.staging.login_username}
    if ctx.staging.account_id:
        # An earlier attempt made the account but died before keeping its password: that
        # login is lost to us, so remove it rather than leave it behind in the app.
        account_api.delete_account(
            url=_endpoint(ctx), token=_token(ctx),
            account_id=ctx.staging.account_id, timeout=ctx.config.account_api_timeout,
        )
    account = account_api.create_account(
        url=_endpoint(ctx), token=_token(ctx), name=ctx.staging.name,
        host=ctx.names.host, timeout=ctx.config.account_api_timeout,
    )
    # Record the account before anything else can fail, so a destroy can remove it.
    ctx.update_staging(account_id=account.account_id, login_username=account.username,
                       login_url=account.login_url)
    secret_arn = _store_login_secret(ctx, account.password)
    ctx.update_staging(login_secret_arn=secret_arn)
    return {"account_id": account.account_id, "username": account.username}


def _store_login_secret(ctx: StepContext, password: str) -> str:
    """Store the password under the staging's secret name. The same name comes back when a
    staging is made again right after its destroy: a secret scheduled for deletion is restored,
    and one deleted without recovery is waited for, with backoff, until AWS frees its name."""
    deadline = time.monotonic() + NAME_FREE_POLLS * ctx.config.poll_seconds
    interval = ctx.config.poll_seconds
    while True:
        ctx.check_cancelled()
        try:
            return secretsmanager.store_secret(
                name=ctx.names.login_secret, value=password, tags=staging_tags(ctx.staging.name)
            )
        except secretsmanager.NameNotFree:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise
            ctx.progress(f"{ctx.names.login_secret} is still being deleted by AWS; waiting")
            if ctx.cancelled.wait(min(interval, remaining)):
                raise OperationCancelled() from None
            interval *= 2


def remove_account(ctx: StepContext) -> dict:
    if not ctx.staging.account_id:
        raise Skip("no account was made")
    if not ctx.config.account_api_url:
        raise Skip("no account API configured (DS_ACCOUNT_API_URL)")
    if own_token(ctx.config) and ctx.staging.lost_at:
        # The account lived in the staging's own app and database, which AWS lost with it.
        raise Skip("the staging's own app, which held the account, was lost with it")
    if own_token(ctx.config) and secretsmanager.find_secret_arn(
            name=ctx.names.account_api_token_secret) is None:
        # Made before the staging had a token of its own: its app cannot check one, and the
        # account goes with the staging's own database and services anyway.
        raise Skip("the staging has no account API token to call its API with")
    account_api.delete_account(
        url=_endpoint(ctx), token=_token(ctx),
        account_id=ctx.staging.account_id, timeout=ctx.config.account_api_timeout,
    )
    return {"deleted": ctx.staging.account_id}


def remove_login_secret(ctx: StepContext) -> dict:
    if not secretsmanager.delete_secret(name=ctx.names.login_secret):
        raise Skip("no login secret")
    ctx.update_staging(login_secret_arn="")
    return {"deleted": ctx.names.login_secret}


def read_login_password(staging) -> str:
    """The test account's password, fetched only when an allowed user asks to see it."""
    if not staging.login_secret_arn:
        return ""
    return secretsmanager.read_secret(secret_id=staging.login_secret_arn)
