"""With the account API served by the staging itself ({host}/{name} in DS_ACCOUNT_API_URL),
each staging gets a random token of its own: kept in Secrets Manager, handed to its containers
as an ECS secret, used for its API calls, and deleted on destroy. The shared
DS_ACCOUNT_API_TOKEN never goes to branch code."""

import json
import re

import boto3
import pytest
from werkzeug import Response

from provisioning.aws import secretsmanager
from provisioning.lifecycle import plan_for
from provisioning.models import OperationStatus, StagingStatus
from provisioning.steps.account import make_account_token
from tests.conftest import CLUSTER
from tests.factories import make_operation, make_staging, step_context
from tests.footprint import assert_nothing_left, tagged
from tests.running import create, run, steps_of

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("enqueued")]

SHARED = "shared-token-for-the-central-api"
ANSWER = {"account_id": "42", "username": "qa@example.com", "password": "pw",
          "login_url": "https://x/login"}


@pytest.fixture
def staging_api(settings, httpserver):
    """The app's account API as if served by each staging (a {name} template on loopback);
    the Authorization header of every call, in order."""
    settings.DS_ACCOUNT_API_URL = httpserver.url_for("/stagings/{name}/accounts")
    settings.DS_ACCOUNT_API_TOKEN = SHARED
    seen: list[str] = []

    def answer(request):
        seen.append(request.headers.get("Authorization", ""))
        if request.method == "POST":
            return Response(json.dumps(ANSWER), status=201,
                            content_type="application/json")
        return Response("", status=204)

    httpserver.expect_request(re.compile(r"/stagings/[a-z0-9-]+/accounts"), method="POST"
                              ).respond_with_handler(answer)
    httpserver.expect_request(re.compile(r"/stagings/[a-z0-9-]+/accounts/42"), method="DELETE"
                              ).respond_with_handler(answer)
    return seen


def token_secret(name: str) -> str:
    return f"dynamic-stagings/{name}/account-api-token"


def app_container(arn: str) -> dict:
    definition = boto3.client("ecs").describe_task_definition(taskDefinition=arn)
    return definition["taskDefinition"]["containerDefinitions"][0]


def service_definition(name: str, role: str) -> str:
    return boto3.client("ecs").describe_services(
        cluster=CLUSTER, services=[f"ds-{name}-{role}"])["services"][0]["taskDefinition"]


def test_each_staging_gets_its_own_token(host_env, alice, staging_api):
    staging, operation = create(alice)
    keys = {s.key: s.after for s in plan_for(operation)}
    assert "account_token" in keys["web_task_definition"]
    assert "account_token" in keys["worker_task_definition"]
    operation = run(operation)
    assert operation.status == OperationStatus.SUCCEEDED, operation.error
    assert steps_of(operation)["account_token"] == "done"

    arn = secretsmanager.find_secret_arn(name=token_secret(staging.name))
    token = secretsmanager.read_secret(secret_id=arn)
    assert len(token) >= 40 and token != SHARED
    assert staging_api == [f"Bearer {token}"]
    tags = boto3.client("secretsmanager").describe_secret(SecretId=arn)["Tags"]
    assert {t["Key"]: t["Value"] for t in tags} == {
        "dynamic-staging": staging.name, "managed-by": "dynamic-stagings"}

    for role in ("web", "worker"):
        container = app_container(service_definition(staging.name, role))
        assert {"name": "ACCOUNT_API_TOKEN", "valueFrom": arn} in container["secrets"]
        assert token not in repr(container) and SHARED not in repr(container)

    staging.refresh_from_db()
    assert token not in repr(staging.__dict__)

    destroy = run(request_destroy_of(staging, alice))
    assert destroy.status == OperationStatus.SUCCEEDED, destroy.error
    assert steps_of(destroy)["account_token"] == "done"
    assert staging_api == [f"Bearer {token}"] * 2
    assert secretsmanager.find_secret_arn(name=token_secret(staging.name)) is None
    assert_nothing_left(staging.name, host_env.listener_arn)


def request_destroy_of(staging, user):
    from provisioning.operations import request_destroy

    staging.refresh_from_db()
    return request_destroy(staging, user=user)


def test_two_stagings_never_share_a_token(host_env, alice, settings, httpserver):
    settings.DS_ACCOUNT_API_URL = httpserver.url_for("/stagings/{name}/accounts")
    tokens = []
    for branch in ("feature/one", "feature/two"):
        staging = make_staging(alice, name=f"s-{branch[-3:]}", status=StagingStatus.PENDING)
        ctx = step_context(make_operation(staging), "account_token")
        arn = make_account_token(ctx)["secret_arn"]
        tokens.append(secretsmanager.read_secret(secret_id=arn))
    assert len(set(tokens)) == 2


def test_the_token_step_keeps_the_token_an_earlier_attempt_made(host_env, alice, settings,
                                                                httpserver):
    settings.DS_ACCOUNT_API_URL = httpserver.url_for("/stagings/{name}/accounts")
    staging = make_staging(alice, status=StagingStatus.PENDING)
    ctx = step_context(make_operation(staging), "account_token")
    first = make_account_token(ctx)
    value = secretsmanager.read_secret(secret_id=first["secret_arn"])
    assert make_account_token(ctx) == first
    assert secretsmanager.read_secret(secret_id=first["secret_arn"]) == value


def test_the_variable_name_is_a_setting(host_env, alice, staging_api, settings):
    settings.DS_ENV_ACCOUNT_API_TOKEN = "STAGING_ACCOUNTS_TOKEN"
    staging, operation = create(alice)
    assert run(operation).status == OperationStatus.SUCCEEDED
    names = [s["name"] for s in app_container(service_definition(staging.name, "web"))["secrets"]]
    assert "STAGING_ACCOUNTS_TOKEN" in names and "ACCOUNT_API_TOKEN" not in names


def test_a_redeploy_keeps_handing_the_token(host_env, alice, staging_api):
    from provisioning.operations import request_redeploy

    staging, operation = create(alice)
    assert run(operation).status == OperationStatus.SUCCEEDED
    arn = secretsmanager.find_secret_arn(name=token_secret(staging.name))
    staging.refresh_from_db()
    redeploy = run(request_redeploy(staging, user=alice, tag="main"))
    assert redeploy.status == OperationStatus.SUCCEEDED, redeploy.error
    assert service_definition(staging.name, "web").endswith(":2")
    container = app_container(service_definition(staging.name, "web"))
    assert {"name": "ACCOUNT_API_TOKEN", "valueFrom": arn} in container["secrets"]
    assert secretsmanager.find_secret_arn(name=token_secret(staging.name)) == arn


def test_a_central_api_keeps_the_shared_token_and_makes_no_secret(host_env, alice, settings,
                                                                 httpserver):
    settings.DS_ACCOUNT_API_URL = httpserver.url_for("/api/accounts")
    settings.DS_ACCOUNT_API_TOKEN = SHARED
    httpserver.expect_request("/api/accounts", method="POST", headers={
        "Authorization": f"Bearer {SHARED}"}).respond_with_json(ANSWER, status=201)
    staging, operation = create(alice)
    assert "account_token" not in steps_of(run(operation))
    assert secretsmanager.find_secret_arn(name=token_secret(staging.name)) is None
    container = app_container(service_definition(staging.name, "web"))
    assert "ACCOUNT_API_TOKEN" not in repr(container)
    assert not [arn for arn in tagged(staging.name) if "account-api-token" in arn]


def test_a_staging_from_before_tokens_still_destroys(host_env, alice, settings, httpserver):
    staging = make_staging(alice, status=StagingStatus.READY, account_id="42")
    settings.DS_ACCOUNT_API_URL = httpserver.url_for("/stagings/{name}/accounts")
    destroy = run(request_destroy_of(staging, alice))
    assert destroy.status == OperationStatus.SUCCEEDED, destroy.error
    assert steps_of(destroy)["account"] == "skipped"
    assert steps_of(destroy)["account_token"] == "skipped"
    assert httpserver.log == []
