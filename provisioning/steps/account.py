"""The staging's test account in the app, through the app's account API."""

from .. import account_api
from ..runner import Skip, StepContext


def _endpoint(ctx: StepContext) -> str:
    return account_api.endpoint_for(
        ctx.config.account_api_url, name=ctx.staging.name, host=ctx.names.host
    )


def create_account(ctx: StepContext) -> dict:
    if not ctx.config.account_api_url:
        raise Skip("no account API configured (DS_ACCOUNT_API_URL)")
    if ctx.staging.account_id:
        return {"account_id": ctx.staging.account_id, "username": ctx.staging.login_username}
    account = account_api.create_account(
        url=_endpoint(ctx), token=ctx.config.account_api_token, name=ctx.staging.name,
        host=ctx.names.host, timeout=ctx.config.account_api_timeout,
    )
    ctx.update_staging(
        account_id=account.account_id, login_username=account.username,
        login_password=account.password, login_url=account.login_url,
    )
    return {"account_id": account.account_id, "username": account.username}


def remove_account(ctx: StepContext) -> dict:
    if not ctx.staging.account_id:
        raise Skip("no account was made")
    if not ctx.config.account_api_url:
        raise Skip("no account API configured (DS_ACCOUNT_API_URL)")
    account_api.delete_account(
        url=_endpoint(ctx), token=ctx.config.account_api_token,
        account_id=ctx.staging.account_id, timeout=ctx.config.account_api_timeout,
    )
    ctx.update_staging(login_password="")
    return {"deleted": ctx.staging.account_id}
