"""The dashboard's pages and partials, through Django's test client.

alice owns the stagings, bob is a colleague, admin is staff. AWS is moto with a small seeded host
environment (``host_env``) where a page reads AWS, or our own wrappers patched at their module.
"""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from dashboard import console
from provisioning import operations
from provisioning.errors import ExternalCallFailed, UserError
from provisioning.models import (
    Operation,
    OperationKind,
    OperationStatus,
    Staging,
    StagingStatus,
    Step,
    StepState,
)
from tests.conftest import SEEDED_TAGS

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}
REGION = "us-east-1"
ACCOUNT = "123456789012"
TG_ARN = f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:targetgroup/ds-shop/0123456789abcdef"
RULE_ARN = (f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:listener-rule/app/dynamic/"
            "50dc6c495c0c9188/f2f7dc8efc522ab2/9683b2d02a6cabee")
WEB_SERVICE_ARN = f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/host-staging/ds-shop-web"
WORKER_SERVICE_ARN = f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/host-staging/ds-shop-worker"
WEB_TD_ARN = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/ds-shop-web:3"
WORKER_TD_ARN = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/ds-shop-worker:3"
CREATE_OUTPUTS = {
    "image": {"image": "registry/app@sha256:abc", "tag": "feature-shop"},
    "database": {"db_instance": "ds-shop", "address": "ds-shop.example.rds.amazonaws.com"},
    "web_task_definition": {"arn": WEB_TD_ARN},
    "worker_task_definition": {"arn": WORKER_TD_ARN},
    "target_group": {"arn": TG_ARN},
    "listener_rule": {"arn": RULE_ARN, "priority": 17},
    "web_service": {"arn": WEB_SERVICE_ARN},
    "worker_service": {"arn": WORKER_SERVICE_ARN},
    "web_healthy": {}, "worker_steady": {}, "account": {}, "report": {"url": "https://x"},
}


@pytest.fixture(autouse=True)
def enqueued(monkeypatch):
    """Operations the views asked the queue to run (no queue runs in these tests)."""
    calls: list[int] = []
    monkeypatch.setattr("provisioning.tasks.enqueue_operation", calls.append)
    return calls


@pytest.fixture(autouse=True)
def region(monkeypatch):
    monkeypatch.setenv("AWS_REGION", REGION)


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def make(owner, name="shop", *, status=StagingStatus.READY, db_mode="dedicated",
         age=timedelta(hours=2), **fields) -> Staging:
    now = timezone.now()
    if status == StagingStatus.DESTROYED:
        fields.setdefault("destroyed_at", now - timedelta(minutes=5))
    if status in {StagingStatus.READY, StagingStatus.UPDATING}:
        fields.setdefault("url", f"https://{name}.dynamic.test")
        fields.setdefault("login_username", f"qa+{name}@example.com")
        fields.setdefault("login_secret_arn", f"{SECRET_ARN_PREFIX}dynamic-stagings/{name}/login")
    return Staging.objects.create(
        name=name, branch=f"feature/{name}", source="host-db", db_mode=db_mode, owner=owner,
        status=status, created_at=now - age, image_tag=f"feature-{name}", **fields,
    )


SECRET_ARN_PREFIX = "arn:aws:secretsmanager:us-east-1:123456789012:secret:"


def add_operation(staging, kind=OperationKind.CREATE, status=OperationStatus.SUCCEEDED,
                  steps=None, outputs=CREATE_OUTPUTS, took=timedelta(seconds=30)) -> Operation:
    """An operation with one row per step; ``steps`` maps keys to states (default: all done)."""
    now = timezone.now()
    finished = status in {OperationStatus.SUCCEEDED, OperationStatus.FAILED}
    operation = Operation.objects.create(
        staging=staging, kind=kind, status=status, requested_by=staging.owner,
        started_at=now - took, finished_at=now if finished else None,
    )
    keys = steps if steps is not None else {key: StepState.DONE for key in outputs}
    for position, (key, state) in enumerate(keys.items()):
        done = state in {StepState.DONE, StepState.FAILED}
        Step.objects.create(
            operation=operation, key=key, label=f"Step {key}", position=position, state=state,
            started_at=now - took if state != StepState.PENDING else None,
            finished_at=now if done else None,
            outputs=outputs.get(key, {}) if state == StepState.DONE else {},
        )
    return operation


def running_create(staging) -> Operation:
    states = {key: StepState.DONE for key in ("image", "web_task_definition",
                                              "worker_task_definition", "target_group")}
    states |= {"database": StepState.RUNNING, "listener_rule": StepState.RUNNING}
    states |= {key: StepState.PENDING for key in ("web_service", "worker_service", "web_healthy",
                                                  "worker_steady", "account", "report")}
    return add_operation(staging, status=OperationStatus.RUNNING, steps=states)


# --- login and permissions ------------------------------------------------------------------

@pytest.mark.parametrize("url", [
    "/", "/fleet/table/", "/history/", "/stagings/new/", "/stagings/new/name/?branch=x",
    "/stagings/1/", "/stagings/1/progress/", "/stagings/1/destroy/",
])
def test_every_page_needs_login(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("url", ["/stagings/1/destroy/", "/stagings/1/redeploy/"])
def test_posts_need_login(client, url):
    response = client.post(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_login_page_logs_in(client, alice):
    page = client.get(reverse("login"))
    assert b'name="username"' in page.content
    response = client.post(reverse("login"), {"username": "alice", "password": "alice-password"})
    assert response.status_code == 302
    assert response["Location"] == reverse("home")


def test_bob_may_not_destroy_alices_staging(alice, bob):
    staging = make(alice)
    client = client_for(bob)
    assert client.get(reverse("destroy", args=[staging.pk])).status_code == 403
    response = client.post(reverse("destroy", args=[staging.pk]))
    assert response.status_code == 403
    assert b"owner" in response.content
    assert not staging.operations.exists()


def test_bob_may_not_redeploy_alices_staging(alice, bob, monkeypatch):
    staging = make(alice)
    monkeypatch.setattr(operations, "request_redeploy", pytest.fail)
    assert client_for(bob).post(reverse("redeploy", args=[staging.pk])).status_code == 403


def test_redeploy_needs_post(alice):
    staging = make(alice)
    assert client_for(alice).get(reverse("redeploy", args=[staging.pk])).status_code == 405


def test_bob_sees_no_action_buttons_on_alices_staging(alice, bob):
    staging = make(alice)
    add_operation(staging)
    page = client_for(bob).get(reverse("staging", args=[staging.pk])).content.decode()
    assert "Destroy" not in page and "Redeploy" not in page
    fleet = client_for(bob).get("/").content.decode()
    assert reverse("destroy", args=[staging.pk]) not in fleet


# --- destroy ----------------------------------------------------------------------------------

def test_destroy_asks_then_destroys(alice, enqueued, django_capture_on_commit_callbacks):
    staging = make(alice)
    client = client_for(alice)
    page = client.get(reverse("destroy", args=[staging.pk]))
    assert page.status_code == 200
    assert "Destroy shop?" in page.content.decode()
    assert not staging.operations.exists()

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("destroy", args=[staging.pk]))
    assert response.status_code == 302
    assert response["Location"] == reverse("staging", args=[staging.pk])
    operation = staging.operations.get()
    assert operation.kind == OperationKind.DESTROY
    assert enqueued == [operation.pk]


def test_staff_may_destroy_anyones_staging(alice, admin):
    staging = make(alice)
    response = client_for(admin).post(reverse("destroy", args=[staging.pk]))
    assert response.status_code == 302
    assert staging.operations.get().kind == OperationKind.DESTROY


def test_destroy_from_the_fleet_returns_to_the_fleet(alice):
    staging = make(alice)
    response = client_for(alice).post(reverse("destroy", args=[staging.pk]),
                                      {"next": "/?owner=mine"})
    assert response["Location"] == "/?owner=mine"


def test_destroy_ignores_a_foreign_next(alice):
    staging = make(alice)
    response = client_for(alice).post(reverse("destroy", args=[staging.pk]),
                                      {"next": "https://evil.example/"})
    assert response["Location"] == reverse("staging", args=[staging.pk])


def test_destroy_of_a_destroyed_staging_says_so(alice):
    staging = make(alice, status=StagingStatus.DESTROYED)
    client = client_for(alice)
    response = client.post(reverse("destroy", args=[staging.pk]), follow=True)
    assert "already destroyed" in response.content.decode()
    assert not staging.operations.exists()


def test_csrf_is_enforced_on_destroy_and_redeploy(alice, monkeypatch):
    monkeypatch.setattr(operations, "request_redeploy", lambda staging, user: None)
    staging = make(alice)
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    for name in ("destroy", "redeploy"):
        assert client.post(reverse(name, args=[staging.pk])).status_code == 403
    assert not staging.operations.exists()

    page = client.get(reverse("destroy", args=[staging.pk])).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    response = client.post(reverse("destroy", args=[staging.pk]),
                           {"csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert staging.operations.get().kind == OperationKind.DESTROY


# --- redeploy ---------------------------------------------------------------------------------

def test_redeploy_starts_an_operation(alice, monkeypatch):
    staging = make(alice)
    seen = []
    monkeypatch.setattr(operations, "request_redeploy",
                        lambda staging, user: seen.append((staging.pk, user.username)))
    response = client_for(alice).post(reverse("redeploy", args=[staging.pk]), follow=True)
    assert seen == [(staging.pk, "alice")]
    assert "Redeploying shop" in response.content.decode()


def test_redeploy_refused_is_a_sentence(alice, monkeypatch):
    staging = make(alice)

    def refuse(staging, user):
        raise UserError("No image tagged 'feature-shop' in repository 'app'.", field="branch")

    monkeypatch.setattr(operations, "request_redeploy", refuse)
    response = client_for(alice).post(reverse("redeploy", args=[staging.pk]), follow=True)
    assert response.status_code == 200
    assert "No image tagged" in response.content.decode()


def test_redeploy_aws_failure_is_not_a_500(alice, monkeypatch):
    staging = make(alice)

    def fail(staging, user):
        raise ExternalCallFailed("ecr:DescribeImages", "ThrottlingException", "Rate exceeded")

    monkeypatch.setattr(operations, "request_redeploy", fail)
    response = client_for(alice).post(reverse("redeploy", args=[staging.pk]), follow=True)
    assert response.status_code == 200
    assert "ThrottlingException" in response.content.decode()


# --- fleet ------------------------------------------------------------------------------------

def test_fleet_shows_live_stagings_with_costs_and_totals(alice, bob):
    make(alice, "shop")
    make(bob, "cart", db_mode="shared", status=StagingStatus.PROVISIONING)
    make(alice, "gone", status=StagingStatus.DESTROYED)
    page = client_for(alice).get("/").content.decode()
    assert 'href="/stagings/' in page
    assert ">shop<" in page and ">cart<" in page
    assert ">gone<" not in page
    assert "Live stagings" in page and "Fleet cost per hour" in page
    assert "Projection for the month" in page and "Cost so far this month" in page
    assert re.search(r"\$0\.0\d", page), "an hourly cost in dollars"
    assert "status-provisioning" in page
    assert "from host-db" in page  # DB mode and source
    assert "estimates from list prices as of" in page
    assert "<svg" in page and "<rect" in page  # the 30-day chart, drawn on the server


def test_fleet_filters_work_without_javascript(alice, bob):
    make(alice, "shop")
    make(bob, "cart", status=StagingStatus.FAILED)
    client = client_for(alice)
    mine = client.get("/?owner=mine").content.decode()
    assert ">shop<" in mine and ">cart<" not in mine
    failed = client.get("/?status=failed").content.decode()
    assert ">cart<" in failed and ">shop<" not in failed
    # nonsense filters fall back to everything instead of failing
    assert ">cart<" in client.get("/?owner=x&status=nope").content.decode()


def test_history_lists_destroyed_stagings(alice):
    make(alice, "shop")
    make(alice, "gone", status=StagingStatus.DESTROYED)
    page = client_for(alice).get(reverse("history")).content.decode()
    assert ">gone<" in page and ">shop<" not in page


def test_fleet_polls_only_while_something_changes(alice):
    ready = make(alice, "shop")
    client = client_for(alice)
    assert "hx-trigger" not in client.get("/").content.decode()
    partial = client.get(reverse("fleet_partial"), **HTMX)
    assert partial.status_code == 286
    assert "hx-trigger" not in partial.content.decode()

    Staging.objects.filter(pk=ready.pk).update(status=StagingStatus.DESTROYING)
    page = client.get("/").content.decode()
    assert 'hx-get="/fleet/table/"' in page and 'hx-trigger="every 3s"' in page
    partial = client.get(reverse("fleet_partial"), **HTMX)
    assert partial.status_code == 200
    body = partial.content.decode()
    assert body.lstrip().startswith('<div id="fleet"')
    assert "<html" not in body
    assert 'hx-swap="outerHTML"' in body
    assert 'href="/"' in body  # the no-JavaScript refresh beside the hx-get


def test_fleet_polls_while_an_operation_waits_for_a_worker(alice):
    staging = make(alice, "shop")  # still "ready": no worker has picked the destroy up
    add_operation(staging, kind=OperationKind.DESTROY, status=OperationStatus.QUEUED, steps={})
    client = client_for(alice)
    body = client.get(reverse("fleet_partial"), **HTMX)
    assert body.status_code == 200
    text = body.content.decode()
    assert 'hx-trigger="every 3s"' in text and "destroy queued" in text
    assert reverse("destroy", args=[staging.pk]) not in text
    page = client.get(reverse("staging", args=[staging.pk])).content.decode()
    assert "Destroy waiting for a worker" in page
    assert ">Destroy<" not in page and ">Redeploy<" not in page
    assert 'hx-trigger="every 2s"' in page


def test_fleet_partial_keeps_the_filters(alice):
    make(alice, "shop", status=StagingStatus.PROVISIONING)
    body = client_for(alice).get("/fleet/table/?owner=mine&status=provisioning",
                                 **HTMX).content.decode()
    assert 'hx-get="/fleet/table/?owner=mine&amp;status=provisioning"' in body


def test_fleet_partial_without_htmx_goes_to_the_page(alice):
    response = client_for(alice).get("/fleet/table/?owner=mine")
    assert response.status_code == 302
    assert response["Location"] == "/?owner=mine"


def test_fleet_offers_destroy_per_row(alice):
    staging = make(alice)
    page = client_for(alice).get("/").content.decode()
    assert f'href="/stagings/{staging.pk}/destroy/?next=/"' in page


def _fleet(owner, count: int, start: int = 0) -> None:
    for i in range(start, start + count):
        status = StagingStatus.PROVISIONING if i % 3 == 0 else StagingStatus.READY
        staging = make(owner, f"{owner.username}{i}", status=status,
                       db_mode="shared" if i % 2 else "dedicated")
        add_operation(staging)


def _count_queries(client, url, **extra) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, **extra)
    assert response.status_code in {200, 286}
    return len(queries)


def test_fleet_table_queries_do_not_grow_with_the_fleet(alice, bob):
    client = client_for(alice)
    _fleet(alice, 5)
    small = _count_queries(client, reverse("fleet_partial"), **HTMX)
    _fleet(bob, 45)
    large = _count_queries(client, reverse("fleet_partial"), **HTMX)
    assert small == large
    # session + user, the filtered stagings with their owners, the month's lifetimes, the
    # unfinished operations
    assert large <= 5
    assert _count_queries(client, "/") == _count_queries(client, "/") <= 5


def test_progress_partial_queries_do_not_grow(alice, bob):
    client = client_for(alice)
    _fleet(bob, 5)
    staging = make(alice, "shop", status=StagingStatus.PROVISIONING)
    running_create(staging)
    url = reverse("staging_progress", args=[staging.pk])
    small = _count_queries(client, url, **HTMX)
    _fleet(bob, 45, start=5)  # 45 more stagings, and 45 more finished creates to take medians from
    large = _count_queries(client, url, **HTMX)
    assert small == large
    # session + user, the staging, its latest operation, its steps, the medians, the outputs
    assert large <= 7


# --- staging page and progress ----------------------------------------------------------------

def test_progress_polls_while_running(alice):
    staging = make(alice, "shop", status=StagingStatus.PROVISIONING)
    running_create(staging)
    client = client_for(alice)
    page = client.get(reverse("staging", args=[staging.pk])).content.decode()
    progress_url = reverse("staging_progress", args=[staging.pk])
    assert f'hx-get="{progress_url}"' in page
    assert 'hx-trigger="every 2s"' in page and 'hx-swap="outerHTML"' in page
    assert "4 of 12 steps done" in page
    assert re.search(r"(about \d+ min|less than a minute) left", page)
    assert f'href="{reverse("staging", args=[staging.pk])}"' in page  # no-JS refresh

    partial = client.get(progress_url, **HTMX)
    assert partial.status_code == 200
    body = partial.content.decode()
    assert body.lstrip().startswith('<section id="staging-live"')
    assert "<html" not in body and 'hx-trigger="every 2s"' in body


def test_progress_stops_polling_when_finished(alice):
    staging = make(alice, "shop")
    add_operation(staging)
    response = client_for(alice).get(reverse("staging_progress", args=[staging.pk]), **HTMX)
    assert response.status_code == 286
    body = response.content.decode()
    assert "hx-trigger" not in body
    assert "12 of 12 steps done" in body
    assert "https://shop.dynamic.test" in body  # the ready panel arrives with the last swap


def test_progress_keeps_polling_until_the_staging_settles(alice):
    staging = make(alice, "shop", status=StagingStatus.PROVISIONING)
    add_operation(staging)  # finished a moment before the staging's own status is written
    response = client_for(alice).get(reverse("staging_progress", args=[staging.pk]), **HTMX)
    assert response.status_code == 200
    assert "hx-trigger" in response.content.decode()


def test_progress_without_htmx_goes_to_the_page(alice):
    staging = make(alice)
    response = client_for(alice).get(reverse("staging_progress", args=[staging.pk]))
    assert response.status_code == 302
    assert response["Location"] == reverse("staging", args=[staging.pk])


def test_time_left_uses_the_median_of_past_runs(alice):
    for i in range(3):  # past creates whose database step took 100 s
        past = make(alice, f"old{i}", status=StagingStatus.DESTROYED)
        add_operation(past, took=timedelta(seconds=100))
    staging = make(alice, "shop", status=StagingStatus.PROVISIONING)
    add_operation(staging, status=OperationStatus.RUNNING,
                  steps={"image": StepState.DONE, "database": StepState.PENDING})
    page = client_for(alice).get(reverse("staging", args=[staging.pk])).content.decode()
    # the create's remaining chain, each step at its 100 s median, is a few minutes; the
    # defaults would have said ten minutes and more for the database alone
    minutes = int(re.search(r"about (\d+) min left", page).group(1))
    assert 3 <= minutes <= 9


def test_ready_staging_shows_url_login_resources_and_logs(alice):
    staging = make(alice, "shop")
    add_operation(staging)
    page = client_for(alice).get(reverse("staging", args=[staging.pk])).content.decode()
    assert 'href="https://shop.dynamic.test"' in page
    assert "qa+shop@example.com" in page
    assert "<script>" not in page and "onclick" not in page
    assert f"#TargetGroup:targetGroupArn={TG_ARN}" in page
    assert ("https://us-east-1.console.aws.amazon.com/rds/home?region=us-east-1"
            "#database:id=ds-shop") in page
    assert "/ecs/v2/clusters/host-staging/services/ds-shop-web/logs?region=us-east-1" in page
    assert "priority 17" in page
    assert ">Redeploy<" in page and ">Destroy<" in page
    assert "estimate, prices as of" in page


def test_failed_step_shows_the_aws_call_code_and_message(alice):
    staging = make(alice, "shop", status=StagingStatus.FAILED,
                   error="Restore database failed: DBSnapshotNotFound")
    operation = add_operation(staging, status=OperationStatus.FAILED,
                              steps={"image": StepState.DONE, "database": StepState.FAILED})
    Step.objects.filter(operation=operation, key="database").update(
        error_call="rds:RestoreDBInstanceFromDBSnapshot", error_code="DBSnapshotNotFound",
        error_message="DBSnapshot host-db-2025 not found.",
    )
    page = client_for(alice).get(reverse("staging", args=[staging.pk])).content.decode()
    assert "rds:RestoreDBInstanceFromDBSnapshot" in page
    assert "DBSnapshotNotFound" in page
    assert "DBSnapshot host-db-2025 not found." in page


def test_destroying_staging_shows_teardown_progress(alice):
    staging = make(alice, "shop", status=StagingStatus.DESTROYING)
    add_operation(staging)
    add_operation(staging, kind=OperationKind.DESTROY, status=OperationStatus.RUNNING,
                  steps={"handover": StepState.DONE, "listener_rule": StepState.RUNNING,
                         "database": StepState.PENDING})
    page = client_for(alice).get(reverse("staging", args=[staging.pk])).content.decode()
    assert "Destroy running" in page
    assert "1 of 3 steps done" in page
    assert 'hx-trigger="every 2s"' in page


def test_unknown_staging_is_404(alice):
    assert client_for(alice).get(reverse("staging", args=[999])).status_code == 404


# --- create form ------------------------------------------------------------------------------

def test_create_form_offers_branches_sources_and_modes(alice, host_env):
    page = client_for(alice).get(reverse("create")).content.decode()
    assert '<datalist id="branch-suggestions">' in page
    for tag in SEEDED_TAGS:
        assert f'<option value="{tag}">' in page
    assert re.search(r"host-db \(host\): snapshot [^<]*old", page)
    assert "qa-db: snapshot" in page
    assert 'value="dedicated"' in page and 'value="shared"' in page
    assert 'hx-get="/stagings/new/name/"' in page
    assert "becomes <code>feature-new-login-" in page  # the no-JavaScript hint


def test_create_goes_straight_to_the_staging_page(alice, host_env, enqueued,
                                                  django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(alice).post(reverse("create"), {
            "branch": "main", "source": "qa-db", "db_mode": "dedicated", "name": "",
        })
    staging = Staging.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("staging", args=[staging.pk])
    assert (staging.branch, staging.source, staging.owner) == ("main", "qa-db", alice)
    assert staging.snapshot_id == host_env.qa_snapshot
    assert enqueued == [staging.operations.get().pk]


@pytest.mark.parametrize(("data", "field", "words"), [
    ({"branch": "feature/nothing-pushed"}, "branch", "No image tagged"),
    ({"branch": "bad..branch"}, "branch", "is not a valid git branch name"),
    ({"branch": "main", "name": "Not A Name"}, "name", "lower-case letters"),
    ({"branch": "main", "name": "taken"}, "name", "is taken by a live staging"),
    ({"branch": "main", "source": "qa-db", "db_mode": "shared"}, "source", "shared database"),
])
def test_create_errors_appear_next_to_the_field(alice, host_env, data, field, words):
    make(alice, "taken")
    form = {"source": "host-db", "db_mode": "dedicated", "name": ""} | data
    response = client_for(alice).post(reverse("create"), form)
    assert response.status_code == 200
    page = response.content.decode()
    error = re.search(rf'<p class="field-error" id="{field}-error">(.*?)</p>', page, re.S)
    assert error, page
    assert words in error.group(1).replace("&#x27;", "'")
    assert Staging.objects.filter(status=StagingStatus.PENDING).count() == 0


def test_source_without_snapshot_is_a_source_error(alice, host_env):
    import boto3

    rds = boto3.client("rds")
    for snapshot in rds.describe_db_snapshots(DBInstanceIdentifier="qa-db")["DBSnapshots"]:
        rds.delete_db_snapshot(DBSnapshotIdentifier=snapshot["DBSnapshotIdentifier"])
    client = client_for(alice)
    assert "qa-db: no snapshot yet" in client.get(reverse("create")).content.decode()
    page = client.post(reverse("create"), {"branch": "main", "source": "qa-db",
                                           "db_mode": "dedicated"}).content.decode()
    assert re.search(r'id="source-error">[^<]*has no available snapshot', page)


def test_required_branch(alice, monkeypatch):
    _no_aws_on_the_form(monkeypatch)
    page = client_for(alice).post(reverse("create"), {"branch": "", "source": "host-db",
                                                      "db_mode": "dedicated"}).content.decode()
    assert re.search(r'id="branch-error">[^<]*required', page)


def _no_aws_on_the_form(monkeypatch):
    monkeypatch.setattr(operations, "list_sources", lambda: [
        operations.SourceInfo("host-db", True, None)])
    monkeypatch.setattr("dashboard.forms.branch_suggestions", lambda: (["main"], None))


def test_aws_failure_while_validating_is_a_message_not_a_500(alice, monkeypatch):
    _no_aws_on_the_form(monkeypatch)

    def fail(**kwargs):
        raise ExternalCallFailed("ecs:DescribeServices", "AccessDeniedException",
                                 "User is not authorized to perform ecs:DescribeServices")

    monkeypatch.setattr(operations, "request_create", fail)
    response = client_for(alice).post(reverse("create"), {
        "branch": "main", "source": "host-db", "db_mode": "dedicated"})
    assert response.status_code == 200
    page = response.content.decode()
    assert 'class="form-error"' in page
    assert "AccessDeniedException" in page and "Nothing was created" in page


def test_form_still_works_when_aws_cannot_be_read(alice, monkeypatch):
    def fail(**kwargs):
        raise ExternalCallFailed("rds:DescribeDBSnapshots", "Throttling", "slow down")

    monkeypatch.setattr(operations, "list_sources", lambda: fail())
    monkeypatch.setattr("provisioning.host.read_host_environment", lambda config: fail())
    page = client_for(alice).get(reverse("create"))
    assert page.status_code == 200
    text = page.content.decode()
    assert "Could not read the snapshots" in text and "Could not list the branches" in text
    assert '<option value="host-db"' in text


def test_name_preview_partial(alice, django_assert_max_num_queries):
    client = client_for(alice)
    body = client.get(reverse("name_preview"), {"branch": "feature/Login_Page"},
                      **HTMX).content.decode()
    assert body.startswith('<p id="name-preview"')
    assert re.search(r'<strong class="derived-name">feature-login-page-[0-9a-f]{6}</strong>', body)
    body = client.get(reverse("name_preview"), {"branch": "x", "name": "My Name"}).content
    assert b"lower-case letters" in body
    make(alice, "shop")
    body = client.get(reverse("name_preview"), {"branch": "x", "name": "shop"}).content
    assert b"already has this name" in body


# --- console links ----------------------------------------------------------------------------

def test_console_links_from_arns():
    links = {link.kind: link for link in console.resource_links(CREATE_OUTPUTS,
                                                                 cluster="host-staging")}
    assert set(links) == {"Web service", "Worker service", "Web task definition",
                          "Worker task definition", "Target group", "Listener rule", "Database"}
    assert links["Web service"].url == (
        "https://us-east-1.console.aws.amazon.com/ecs/v2/clusters/host-staging/services/"
        "ds-shop-web/health?region=us-east-1")
    assert links["Web task definition"].url.endswith(
        "/ecs/v2/task-definitions/ds-shop-web/3/containers?region=us-east-1")
    assert links["Web task definition"].name == "ds-shop-web:3"
    assert links["Target group"].name == "ds-shop"
    assert links["Listener rule"].url.endswith(f"#ListenerRuleDetails:ruleArn={RULE_ARN}")


def test_console_uses_the_arns_region_and_old_style_service_arns():
    old = "arn:aws:ecs:eu-west-1:123456789012:service/ds-shop-web"
    assert console.service_logs_url(old, cluster="host-staging") == (
        "https://eu-west-1.console.aws.amazon.com/ecs/v2/clusters/host-staging/services/"
        "ds-shop-web/logs?region=eu-west-1")
