"""The JSON API's staging endpoints against moto's host environment: what each answers, with
which status, for whom, and what it leaves in our records (operations, the audit trail).

alice owns the stagings, bob is a colleague, admin is staff; each calls with a token of their
own. No queue runs: what the API asks to run is collected by ``enqueued``.
"""

import io
import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from dashboard.api.idempotency import fingerprint
from dashboard.api.schemas import CreateStagingIn
from provisioning.aws import ecr
from provisioning.errors import ExternalCallFailed
from provisioning.models import (
    AuditEvent,
    IdempotencyKey,
    Operation,
    OperationKind,
    OperationStatus,
    Staging,
    StagingStatus,
    StepState,
)
from tests.api_calls import call, token_for
from tests.conftest import HOST_DB, QA_DB, RELEASE_TAG, SEEDED_TAGS, SNAPSHOT_SOURCES
from tests.factories import make_operation, make_staging

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("enqueued")]


@pytest.fixture
def alices(alice):
    return token_for(alice)


@pytest.fixture
def bobs(bob):
    return token_for(bob)


@pytest.fixture
def admins(admin):
    return token_for(admin)


def ds_json(*args: str):
    out = io.StringIO()
    call_command("ds", *args, "--json", stdout=out)
    return json.loads(out.getvalue())


def ready(owner, name="shop", **fields) -> Staging:
    staging = make_staging(owner, name=name, branch="main", status=StagingStatus.READY,
                           url=f"https://{name}.dynamic.test", image_tag="main", **fields)
    make_operation(staging, status=OperationStatus.SUCCEEDED, finished_at=timezone.now())
    return staging


def created(response, enqueued) -> Staging:
    assert response.status_code == 202, response.content
    return Staging.objects.get(name=response.json()["name"])


# --- reading --------------------------------------------------------------------------------

def test_the_list_is_what_ds_list_json_prints(alice, bob, alices):
    ready(alice, "shop")
    make_staging(bob, name="cart", status=StagingStatus.PROVISIONING)
    make_staging(alice, name="gone", status=StagingStatus.DESTROYED)
    response = call("get", "stagings", alices)
    assert response.status_code == 200
    assert response.json() == ds_json("list")
    assert [s["name"] for s in response.json()] == ["cart", "shop"]
    assert {"name", "status", "url", "branch", "source", "db_mode"} <= set(response.json()[0])


def test_the_list_filters_by_status_and_owner(alice, bob, alices):
    ready(alice, "shop")
    make_staging(bob, name="cart", status=StagingStatus.READY)
    make_staging(alice, name="gone", status=StagingStatus.DESTROYED)
    names = lambda query: [s["name"] for s in call("get", f"stagings?{query}", alices).json()]  # noqa: E731
    assert names("status=destroyed") == ["gone"]
    assert names("status=ready") == ["cart", "shop"]
    assert names("mine=1") == ["shop"]
    assert names("mine=1&status=destroyed") == ["gone"]
    assert names("limit=1") == ["cart"]


@pytest.mark.parametrize("query", ["status=asleep", "limit=0", "limit=100000", "mine=perhaps"])
def test_a_bad_query_is_a_bad_request(alices, query):
    response = call("get", f"stagings?{query}", alices)
    assert response.status_code == 400
    assert response.json()["error"] == "bad_request"
    assert query.split("=")[0] in response.json()["detail"]


def test_one_staging_with_its_steps_progress_and_time_left(alice, alices):
    staging = make_staging(alice, name="shop", status=StagingStatus.PROVISIONING)
    operation = make_operation(staging, status=OperationStatus.RUNNING,
                               started_at=timezone.now())
    operation.steps.create(key="image", label="Find the image", state=StepState.DONE,
                           position=0, started_at=timezone.now(), finished_at=timezone.now())
    operation.steps.create(key="database", label="Restore the database",
                           state=StepState.RUNNING, position=1, started_at=timezone.now())
    response = call("get", "stagings/shop", alices)
    assert response.status_code == 200
    body = response.json()
    shown = ds_json("show", "shop")
    assert {key: body[key] for key in shown} == shown
    assert [(s["key"], s["state"]) for s in body["steps"]] == [("image", "done"),
                                                               ("database", "running")]
    progress = body["progress"]
    assert (progress["done"], progress["finished"]) == (1, False)
    # The bar follows expected time: the image is seconds, the restore minutes.
    assert progress["total"] == 2 and 0 <= progress["percent"] < 5
    assert progress["seconds_left"] > 0


def test_a_settled_staging_has_no_time_left(alice, alices):
    ready(alice, "shop")
    progress = call("get", "stagings/shop", alices).json()["progress"]
    assert progress["finished"] is True and progress["seconds_left"] is None


def test_a_destroyed_name_shows_its_last_staging_and_an_unknown_one_is_404(alice, alices):
    make_staging(alice, name="gone", status=StagingStatus.DESTROYED)
    assert call("get", "stagings/gone", alices).json()["status"] == "destroyed"
    response = call("get", "stagings/never", alices)
    assert response.status_code == 404
    assert response.json() == {"error": "not_found", "detail": "No staging named 'never'."}


def test_sources_and_branches(host_env, alices):
    sources = call("get", "sources", alices)
    assert sources.status_code == 200
    by_name = {s["name"]: s for s in sources.json()}
    assert set(by_name) == set(SNAPSHOT_SOURCES)
    assert by_name[HOST_DB]["is_host"] and not by_name[QA_DB]["is_host"]
    assert by_name[QA_DB]["snapshot"] == host_env.qa_snapshot
    assert by_name[QA_DB]["snapshot_taken_at"]
    branches = call("get", "branches", alices)
    assert branches.status_code == 200
    assert {found["tag"] for found in branches.json()} == set(SEEDED_TAGS)


def test_a_tag_is_offered_as_the_branch_it_stands_for(host_env, alices):
    call("post", "stagings", alices, {"branch": "feature/Login_Page", "db_mode": "shared"})
    branches = {found["tag"]: found["branch"] for found in call("get", "branches",
                                                                 alices).json()}
    assert branches["feature-Login_Page"] == "feature/Login_Page"
    assert branches["main"] == "main"


def test_aws_failing_to_list_is_a_502(host_env, alices, monkeypatch):
    def refuse(**_):
        raise ExternalCallFailed("ecr:DescribeImages", "AccessDenied", "not allowed")

    monkeypatch.setattr(ecr, "list_image_tags", refuse)
    response = call("get", "branches", alices)
    assert response.status_code == 502
    assert response.json()["error"] == "aws_error"
    assert "AccessDenied" in response.json()["detail"]


# --- create ---------------------------------------------------------------------------------

def test_create_answers_202_with_the_staging_and_where_to_follow_it(host_env, alice, alices,
                                                                   enqueued,
                                                                   django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = call("post", "stagings", alices,
                        {"branch": "main", "source": QA_DB, "db_mode": "dedicated"})
    staging = created(response, enqueued)
    body = response.json()
    assert response["Location"] == f"http://testserver/api/v1/stagings/{staging.name}"
    assert (body["name"], body["status"], body["branch"], body["source"], body["db_mode"],
            body["owner"]) == (staging.name, "pending", "main", QA_DB, "dedicated", "alice")
    assert body["operation"] == "create" and body["progress"]["finished"] is False
    assert (staging.owner, staging.snapshot_id) == (alice, host_env.qa_snapshot)
    assert enqueued == [staging.operations.get().pk]
    assert call("get", response["Location"].split("/api/v1/")[1], alices).status_code == 200


def test_create_is_on_the_audit_trail_with_the_api_and_the_token(host_env, alice):
    token = token_for(alice, name="release-bot")
    staging = created(call("post", "stagings", token, {"branch": "main", "db_mode": "shared",
                                                       "name": "bot-made"}), None)
    event = AuditEvent.objects.get(staging=staging)
    assert (event.action, event.actor, event.channel) == ("create", alice, "api")
    assert event.channel_detail.startswith("token release-bot (dst_")
    assert token not in event.channel_detail and token[12:] not in event.detail


@pytest.mark.parametrize(("body", "words"), [
    ({}, "branch: Field required"),
    ({"branch": "main", "hours": 4}, "hours: Extra inputs are not permitted"),
    ({"branch": "main", "db_mode": "borrowed"}, "db_mode: Input should be 'dedicated' or"),
    ({"branch": 42}, "branch: Input should be a valid string"),
    ("[1, 2]", "the body: Input should be a valid dictionary"),
    ("{not json", "The request body is not valid JSON."),
])
def test_a_body_of_the_wrong_shape_is_a_400(host_env, alices, body, words):
    response = call("post", "stagings", alices, body)
    assert response.status_code == 400, response.content
    assert response.json()["error"] == "bad_request"
    assert words in response.json()["detail"]
    assert not Staging.objects.exists()


@pytest.mark.parametrize(("body", "status", "code", "field", "words"), [
    ({"branch": "bad..branch"}, 422, "invalid", "branch", "not a valid git branch name"),
    ({"branch": "feature/never-pushed"}, 422, "invalid", "branch", "No image tagged"),
    ({"branch": "main", "source": "prod-db"}, 422, "invalid", "source", "Unknown snapshot"),
    ({"branch": "main", "name": "Not A Name"}, 422, "invalid", "name", "lower-case"),
    ({"branch": "main", "name": "taken"}, 409, "name_taken", "name", "is taken"),
])
def test_refused_values_say_which_field(host_env, alice, alices, body, status, code, field,
                                        words):
    ready(alice, "taken")
    response = call("post", "stagings", alices, body)
    assert response.status_code == status, response.content
    answer = response.json()
    assert (answer["error"], answer["field"]) == (code, field)
    assert words in answer["detail"]
    assert Staging.objects.count() == 1


def test_too_many_operations_under_way_is_a_429(host_env, alice, alices, settings):
    settings.DS_MAX_INFLIGHT_PER_USER = 1
    busy = make_staging(alice, name="busy", status=StagingStatus.PROVISIONING)
    make_operation(busy, status=OperationStatus.RUNNING)
    response = call("post", "stagings", alices, {"branch": "main", "db_mode": "shared"})
    assert response.status_code == 429
    assert response.json()["error"] == "too_many_in_flight"
    assert "(1)" in response.json()["detail"]


def test_a_full_fleet_is_a_409(host_env, alice, alices, settings):
    settings.DS_MAX_LIVE_PER_USER = 1
    ready(alice, "shop")
    response = call("post", "stagings", alices, {"branch": RELEASE_TAG, "db_mode": "shared"})
    assert response.status_code == 409
    assert response.json()["error"] == "limit_reached"


def test_a_branch_with_a_live_staging_is_a_409_naming_it(host_env, alice, alices):
    ready(alice, "shop")
    response = call("post", "stagings", alices, {"branch": "main", "db_mode": "shared"})
    assert response.status_code == 409
    assert response.json()["error"] == "branch_has_staging"
    assert "shop" in response.json()["detail"]


def test_a_missing_setting_is_a_503(host_env, alices, settings):
    settings.DS_LISTENER_ARN = ""
    response = call("post", "stagings", alices, {"branch": "main", "db_mode": "shared"})
    assert response.status_code == 503
    assert response.json()["error"] == "not_configured"
    assert "DS_LISTENER_ARN" in response.json()["detail"]


def test_aws_refusing_a_check_is_a_502_and_makes_nothing(host_env, alices, monkeypatch):
    def refuse(**_):
        raise ExternalCallFailed("ecr:DescribeImages", "ThrottlingException", "slow down")

    monkeypatch.setattr(ecr, "find_image", refuse)
    response = call("post", "stagings", alices, {"branch": "main", "db_mode": "shared"})
    assert response.status_code == 502
    assert "ThrottlingException" in response.json()["detail"]
    assert not Staging.objects.exists()


# --- idempotency ------------------------------------------------------------------------------

def test_a_retry_with_the_same_key_gets_the_same_staging(host_env, alices, enqueued,
                                                         django_capture_on_commit_callbacks):
    body = {"branch": "main", "db_mode": "shared"}
    key = {"Idempotency-Key": "deploy-4711"}
    with django_capture_on_commit_callbacks(execute=True):
        first = call("post", "stagings", alices, body, headers=key)
        again = call("post", "stagings", alices, body, headers=key)
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.json()["name"] == first.json()["name"]
    assert again["Location"] == first["Location"]
    assert again["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first
    assert Staging.objects.count() == 1 and len(enqueued) == 1
    assert Operation.objects.count() == 1


def test_the_same_key_with_another_body_is_refused(host_env, alices):
    key = {"Idempotency-Key": "deploy-4711"}
    assert call("post", "stagings", alices, {"branch": "main", "db_mode": "shared"},
                headers=key).status_code == 202
    response = call("post", "stagings", alices, {"branch": RELEASE_TAG, "db_mode": "shared"},
                    headers=key)
    assert response.status_code == 422
    assert response.json()["error"] == "idempotency_key_reused"
    assert Staging.objects.count() == 1


def test_keys_belong_to_their_user(host_env, alice, bob, alices, bobs):
    key = {"Idempotency-Key": "nightly"}
    mine = call("post", "stagings", alices, {"branch": "main", "db_mode": "shared"}, headers=key)
    theirs = call("post", "stagings", bobs, {"branch": RELEASE_TAG, "db_mode": "shared"},
                  headers=key)
    assert (mine.status_code, theirs.status_code) == (202, 202)
    assert (mine.json()["owner"], theirs.json()["owner"]) == ("alice", "bob")


def test_a_refused_create_frees_its_key_for_the_corrected_retry(host_env, alices):
    key = {"Idempotency-Key": "try-again"}
    refused = call("post", "stagings", alices, {"branch": "main", "name": "Bad Name"},
                   headers=key)
    assert refused.status_code == 422
    assert not IdempotencyKey.objects.exists()
    # The corrected request is another body: with the key freed, it is accepted.
    fixed = call("post", "stagings", alices, {"branch": "main", "name": "good-name"},
                 headers=key)
    assert fixed.status_code == 202 and fixed.json()["name"] == "good-name"


def test_a_key_whose_first_request_is_still_working_is_409(host_env, alice, alices):
    body = {"branch": "main", "db_mode": "shared"}
    # What a concurrent first request leaves while it works: its claim, no staging yet.
    IdempotencyKey.objects.create(user=alice, key="in-flight",
                                  fingerprint=fingerprint(CreateStagingIn(**body).model_dump()))
    response = call("post", "stagings", alices, body, headers={"Idempotency-Key": "in-flight"})
    assert response.status_code == 409
    assert response.json()["error"] == "idempotency_key_in_use"
    assert response["Retry-After"] == "5"
    assert not Staging.objects.exists()
    # A claim left by a request that died is taken over after a while.
    IdempotencyKey.objects.update(created_at=timezone.now() - timedelta(minutes=10))
    taken_over = call("post", "stagings", alices, body, headers={"Idempotency-Key": "in-flight"})
    assert taken_over.status_code == 202
    assert IdempotencyKey.objects.get().staging.name == taken_over.json()["name"]


@pytest.mark.parametrize("key", ["", "x" * 256, "tab\there", "ключ"])
def test_a_malformed_key_is_a_400(host_env, alices, key):
    response = call("post", "stagings", alices, {"branch": "main", "db_mode": "shared"},
                    headers={"Idempotency-Key": key})
    assert response.status_code == 400, response.content
    assert "Idempotency-Key" in response.json()["detail"]
    assert not Staging.objects.exists()


# --- redeploy -------------------------------------------------------------------------------

def test_the_owner_redeploys_with_or_without_a_tag(host_env, alice, alices, enqueued,
                                                   django_capture_on_commit_callbacks):
    staging = ready(alice, "shop")
    with django_capture_on_commit_callbacks(execute=True):
        response = call("post", "stagings/shop/redeploy", alices)
    assert response.status_code == 202, response.content
    assert response.json()["status"] == "updating"
    assert response["Location"].endswith("/api/v1/stagings/shop")
    operation = staging.latest_operation()
    assert operation.kind == OperationKind.REDEPLOY and enqueued == [operation.pk]
    event = AuditEvent.objects.get(action="redeploy")
    assert (event.actor, event.channel) == (alice, "api")

    Operation.objects.filter(pk=operation.pk).update(status=OperationStatus.SUCCEEDED)
    Staging.objects.filter(pk=staging.pk).update(status=StagingStatus.READY)
    tagged = call("post", "stagings/shop/redeploy", alices, {"tag": RELEASE_TAG})
    assert tagged.status_code == 202
    assert staging.latest_operation().params == {"tag": RELEASE_TAG}


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"tag": "no-such-tag"}, 422, "invalid"),
    ({"image": "x"}, 400, "bad_request"),
])
def test_a_redeploy_with_a_bad_tag_or_field(host_env, alice, alices, body, status, code):
    ready(alice, "shop")
    response = call("post", "stagings/shop/redeploy", alices, body)
    assert (response.status_code, response.json()["error"]) == (status, code)
    assert Operation.objects.filter(kind=OperationKind.REDEPLOY).count() == 0


def test_a_busy_staging_cannot_be_redeployed(host_env, alice, alices):
    make_staging(alice, name="shop", status=StagingStatus.PROVISIONING)
    response = call("post", "stagings/shop/redeploy", alices)
    assert response.status_code == 409
    assert response.json()["error"] == "wrong_status"
    assert "provisioning" in response.json()["detail"]


def test_redeploying_nothing_is_404(host_env, alices):
    assert call("post", "stagings/never/redeploy", alices).status_code == 404


# --- destroy --------------------------------------------------------------------------------

def test_the_owner_destroys_and_asking_again_joins_the_teardown(alice, alices, enqueued,
                                                                django_capture_on_commit_callbacks):
    staging = ready(alice, "shop")
    with django_capture_on_commit_callbacks(execute=True):
        first = call("delete", "stagings/shop", alices)
        again = call("delete", "stagings/shop", alices)
    assert (first.status_code, again.status_code) == (202, 202)
    assert first.json()["status"] == "destroying"
    assert first["Location"].endswith("/api/v1/stagings/shop")
    destroys = staging.operations.filter(kind=OperationKind.DESTROY)
    assert destroys.count() == 1 and enqueued == [destroys.get().pk]
    event = AuditEvent.objects.get(action="destroy")
    assert (event.actor, event.channel) == (alice, "api")


def test_a_destroyed_staging_is_200_and_nothing_new(alice, alices):
    staging = make_staging(alice, name="gone", status=StagingStatus.DESTROYED)
    response = call("delete", "stagings/gone", alices)
    assert response.status_code == 200
    assert response.json()["status"] == "destroyed"
    assert staging.operations.count() == 0


def test_destroying_nothing_is_404(alices):
    assert call("delete", "stagings/never", alices).status_code == 404


# --- permissions ------------------------------------------------------------------------------

@pytest.mark.parametrize(("method", "path"), [
    ("delete", "stagings/shop"), ("post", "stagings/shop/redeploy"),
])
def test_alices_staging_is_not_bobs_to_act_on(host_env, alice, bob, bobs, method, path):
    staging = ready(alice, "shop")
    response = call(method, path, bobs)
    assert response.status_code == 403
    assert response.json() == {"error": "forbidden",
                               "detail": "Only the staging's owner or an admin may do this."}
    staging.refresh_from_db()
    assert staging.status == StagingStatus.READY
    assert staging.operations.count() == 1
    assert not AuditEvent.objects.filter(staging=staging).exists()


@pytest.mark.parametrize(("method", "path", "status"), [
    ("delete", "stagings/shop", "destroying"), ("post", "stagings/shop/redeploy", "updating"),
])
def test_staff_may_act_on_anybodys(host_env, alice, admin, admins, method, path, status):
    ready(alice, "shop")
    response = call(method, path, admins)
    assert response.status_code == 202
    assert response.json()["status"] == status
    assert AuditEvent.objects.get(action__in=["destroy", "redeploy"]).actor == admin


def test_everyone_may_read_everybodys(alice, bobs):
    ready(alice, "shop")
    assert call("get", "stagings/shop", bobs).status_code == 200
    assert [s["name"] for s in call("get", "stagings", bobs).json()] == ["shop"]
