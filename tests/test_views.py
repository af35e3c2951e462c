"""The dashboard's pages and partials, through Django's test client.

alice owns the stagings, bob is a colleague, admin is staff. AWS is moto with a small seeded host
environment (``host_env``) where a page reads AWS, or our own wrappers patched at their module.
"""

import logging
import re
from datetime import timedelta

import pytest
from django.apps import apps
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from dashboard import console
from provisioning import audit, engine, operations
from provisioning.aws import secretsmanager
from provisioning.errors import ExternalCallFailed, UserError
from provisioning.models import (
    AuditAction,
    AuditEvent,
    Operation,
    OperationKind,
    OperationStatus,
    Orphan,
    Staging,
    StagingStatus,
    Step,
    StepState,
)
from tests.conftest import QA_DB, SEEDED_TAGS
from tests.factories import (
    ACCOUNT,
    CREATE_OUTPUTS,
    REGION,
    RULE_ARN,
    TG_ARN,
    add_operation,
    make_listed_staging,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("enqueued")]
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture(autouse=True)
def region(monkeypatch):
    monkeypatch.setenv("AWS_REGION", REGION)


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


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
    staging = make_listed_staging(alice)
    client = client_for(bob)
    assert client.get(reverse("destroy", args=[staging.pk])).status_code == 403
    response = client.post(reverse("destroy", args=[staging.pk]))
    assert response.status_code == 403
    assert b"owner" in response.content
    assert not staging.operations.exists()


def test_bob_may_not_redeploy_alices_staging(alice, bob, monkeypatch):
    staging = make_listed_staging(alice)
    monkeypatch.setattr(engine, "request_redeploy", pytest.fail)
    assert client_for(bob).post(reverse("redeploy", args=[staging.pk])).status_code == 403


def test_redeploy_needs_post(alice):
    staging = make_listed_staging(alice)
    assert client_for(alice).get(reverse("redeploy", args=[staging.pk])).status_code == 405


def test_bob_sees_no_action_buttons_on_alices_staging(alice, bob):
    staging = make_listed_staging(alice)
    add_operation(staging)
    page = client_for(bob).get(reverse("staging", args=[staging.pk])).content.decode()
    assert "Destroy" not in page and "Redeploy" not in page
    fleet = client_for(bob).get("/").content.decode()
    assert reverse("destroy", args=[staging.pk]) not in fleet


# --- destroy ----------------------------------------------------------------------------------

def test_destroy_asks_then_destroys(alice, enqueued, django_capture_on_commit_callbacks):
    staging = make_listed_staging(alice)
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
    staging = make_listed_staging(alice)
    response = client_for(admin).post(reverse("destroy", args=[staging.pk]))
    assert response.status_code == 302
    assert staging.operations.get().kind == OperationKind.DESTROY


def test_destroy_from_the_fleet_returns_to_the_fleet(alice):
    staging = make_listed_staging(alice)
    response = client_for(alice).post(reverse("destroy", args=[staging.pk]),
                                      {"next": "/?owner=mine"})
    assert response["Location"] == "/?owner=mine"


def test_destroy_ignores_a_foreign_next(alice):
    staging = make_listed_staging(alice)
    response = client_for(alice).post(reverse("destroy", args=[staging.pk]),
                                      {"next": "https://evil.example/"})
    assert response["Location"] == reverse("staging", args=[staging.pk])


def test_destroy_of_a_destroyed_staging_says_so(alice):
    staging = make_listed_staging(alice, status=StagingStatus.DESTROYED)
    client = client_for(alice)
    response = client.post(reverse("destroy", args=[staging.pk]), follow=True)
    assert "already destroyed" in response.content.decode()
    assert not staging.operations.exists()


def test_csrf_is_enforced_on_destroy_and_redeploy(alice, monkeypatch):
    monkeypatch.setattr(engine, "request_redeploy", lambda staging, user: None)
    staging = make_listed_staging(alice)
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
    staging = make_listed_staging(alice)
    seen = []
    monkeypatch.setattr(engine, "request_redeploy",
                        lambda staging, user: seen.append((staging.pk, user.username)))
    response = client_for(alice).post(reverse("redeploy", args=[staging.pk]), follow=True)
    assert seen == [(staging.pk, "alice")]
    assert "Redeploying shop" in response.content.decode()


def test_redeploy_refused_is_a_sentence(alice, monkeypatch):
    staging = make_listed_staging(alice)

    def refuse(staging, user):
        raise UserError("No image tagged 'feature-shop' in repository 'app'.", field="branch")

    monkeypatch.setattr(engine, "request_redeploy", refuse)
    response = client_for(alice).post(reverse("redeploy", args=[staging.pk]), follow=True)
    assert response.status_code == 200
    assert "No image tagged" in response.content.decode()


def test_redeploy_aws_failure_is_not_a_500(alice, monkeypatch):
    staging = make_listed_staging(alice)

    def fail(staging, user):
        raise ExternalCallFailed("ecr:DescribeImages", "ThrottlingException", "Rate exceeded")

    monkeypatch.setattr(engine, "request_redeploy", fail)
    response = client_for(alice).post(reverse("redeploy", args=[staging.pk]), follow=True)
    assert response.status_code == 200
    assert "ThrottlingException" in response.content.decode()


# --- fleet ------------------------------------------------------------------------------------

def test_fleet_shows_live_stagings_with_costs_and_totals(alice, bob):
    make_listed_staging(alice, "shop")
    make_listed_staging(bob, "cart", db_mode="shared", status=StagingStatus.PROVISIONING)
    make_listed_staging(alice, "gone", status=StagingStatus.DESTROYED)
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
    make_listed_staging(alice, "shop")
    make_listed_staging(bob, "cart", status=StagingStatus.FAILED)
    client = client_for(alice)
    mine = client.get("/?owner=mine").content.decode()
    assert ">shop<" in mine and ">cart<" not in mine
    failed = client.get("/?status=failed").content.decode()
    assert ">cart<" in failed and ">shop<" not in failed
    # nonsense filters fall back to everything instead of failing
    assert ">cart<" in client.get("/?owner=x&status=nope").content.decode()


def test_history_lists_destroyed_stagings(alice):
    make_listed_staging(alice, "shop")
    make_listed_staging(alice, "gone", status=StagingStatus.DESTROYED)
    page = client_for(alice).get(reverse("history")).content.decode()
    assert ">gone<" in page and ">shop<" not in page


def test_fleet_polls_faster_while_something_changes(alice):
    ready = make_listed_staging(alice, "shop")
    client = client_for(alice)
    # Nothing changes: still polled, slowly, so stagings others make show up.
    assert 'hx-trigger="every 10s"' in client.get("/").content.decode()
    partial = client.get(reverse("fleet_partial"), **HTMX)
    assert partial.status_code == 200
    assert 'hx-trigger="every 10s"' in partial.content.decode()

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
    # Still "ready": no worker has picked the destroy up.
    staging = make_listed_staging(alice, "shop")
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
    make_listed_staging(alice, "shop", status=StagingStatus.PROVISIONING)
    body = client_for(alice).get("/fleet/table/?owner=mine&status=provisioning",
                                 **HTMX).content.decode()
    assert 'hx-get="/fleet/table/?owner=mine&amp;status=provisioning"' in body


def test_fleet_partial_without_htmx_goes_to_the_page(alice):
    response = client_for(alice).get("/fleet/table/?owner=mine")
    assert response.status_code == 302
    assert response["Location"] == "/?owner=mine"


def test_fleet_offers_destroy_per_row(alice):
    staging = make_listed_staging(alice)
    page = client_for(alice).get("/").content.decode()
    assert f'href="/stagings/{staging.pk}/destroy/?next=/"' in page


def _fleet(owner, count: int, start: int = 0) -> None:
    for i in range(start, start + count):
        status = StagingStatus.PROVISIONING if i % 3 == 0 else StagingStatus.READY
        staging = make_listed_staging(owner, f"{owner.username}{i}", status=status,
                                      db_mode="shared" if i % 2 else "dedicated")
        add_operation(staging)


def _count_queries(client, url, **extra) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, **extra)
    assert response.status_code in {200, 286}
    return len(queries)


def _cold_queries(client, url, **extra) -> int:
    """Queries of a request that finds nothing in the cache (the most one can cost)."""
    cache.clear()
    return _count_queries(client, url, **extra)


def test_fleet_table_queries_do_not_grow_with_the_fleet(alice, bob):
    client = client_for(alice)
    _fleet(alice, 5)
    small = _cold_queries(client, reverse("fleet_partial"), **HTMX)
    _fleet(bob, 45)
    large = _cold_queries(client, reverse("fleet_partial"), **HTMX)
    assert small == large
    # session + user, the live and today's lifetimes, the unfinished operations, the filtered
    # stagings with their owners, and (once a day) the closed days' costs
    assert large <= 6
    assert _count_queries(client, reverse("fleet_partial"), **HTMX) <= 5
    # the full page also counts the sweep's open leftovers, once
    assert _cold_queries(client, "/") == _cold_queries(client, "/") <= 7


def test_progress_partial_queries_do_not_grow(alice, bob):
    client = client_for(alice)
    _fleet(bob, 5)
    staging = make_listed_staging(alice, "shop", status=StagingStatus.PROVISIONING)
    running_create(staging)
    url = reverse("staging_progress", args=[staging.pk])
    small = _cold_queries(client, url, **HTMX)
    _fleet(bob, 45, start=5)  # 45 more stagings, and 45 more finished creates to take medians from
    large = _cold_queries(client, url, **HTMX)
    assert small == large
    # session + user, the staging, its latest operation, its steps, the medians, the outputs,
    # the steps' newest log lines
    assert large <= 8
    # the medians are kept a little while: the next poll does not read them again
    assert _count_queries(client, url, **HTMX) == large - 1


# --- staging page and progress ----------------------------------------------------------------

def test_progress_polls_while_running(alice):
    staging = make_listed_staging(alice, "shop", status=StagingStatus.PROVISIONING)
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
    staging = make_listed_staging(alice, "shop")
    add_operation(staging)
    response = client_for(alice).get(reverse("staging_progress", args=[staging.pk]), **HTMX)
    assert response.status_code == 286
    body = response.content.decode()
    assert "hx-trigger" not in body
    assert "12 of 12 steps done" in body
    assert "https://shop.dynamic.test" in body  # the ready panel arrives with the last swap


def test_progress_keeps_polling_until_the_staging_settles(alice):
    staging = make_listed_staging(alice, "shop", status=StagingStatus.PROVISIONING)
    add_operation(staging)  # finished a moment before the staging's own status is written
    response = client_for(alice).get(reverse("staging_progress", args=[staging.pk]), **HTMX)
    assert response.status_code == 200
    assert "hx-trigger" in response.content.decode()


def test_progress_without_htmx_goes_to_the_page(alice):
    staging = make_listed_staging(alice)
    response = client_for(alice).get(reverse("staging_progress", args=[staging.pk]))
    assert response.status_code == 302
    assert response["Location"] == reverse("staging", args=[staging.pk])


def test_time_left_uses_the_median_of_past_runs(alice):
    for i in range(3):  # past creates whose database step took 100 s
        past = make_listed_staging(alice, f"old{i}", status=StagingStatus.DESTROYED)
        add_operation(past, took=timedelta(seconds=100))
    staging = make_listed_staging(alice, "shop", status=StagingStatus.PROVISIONING)
    add_operation(staging, status=OperationStatus.RUNNING,
                  steps={"image": StepState.DONE, "database": StepState.PENDING})
    page = client_for(alice).get(reverse("staging", args=[staging.pk])).content.decode()
    # the create's remaining chain, each step at its 100 s median, is a few minutes; the
    # defaults would have said ten minutes and more for the database alone
    minutes = int(re.search(r"about (\d+) min left", page).group(1))
    assert 3 <= minutes <= 9


def test_ready_staging_shows_url_login_resources_and_logs(alice):
    staging = make_listed_staging(alice, "shop")
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
    staging = make_listed_staging(alice, "shop", status=StagingStatus.FAILED,
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
    staging = make_listed_staging(alice, "shop", status=StagingStatus.DESTROYING)
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
    assert f"{QA_DB}: snapshot" in page
    assert 'value="dedicated"' in page and 'value="shared"' in page
    assert 'hx-get="/stagings/new/name/"' in page
    assert "becomes <code>feature-new-login-" in page  # the no-JavaScript hint


def test_create_goes_straight_to_the_staging_page(alice, host_env, enqueued,
                                                  django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(alice).post(reverse("create"), {
            "branch": "main", "source": QA_DB, "db_mode": "dedicated", "name": "",
        })
    staging = Staging.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("staging", args=[staging.pk])
    assert (staging.branch, staging.source, staging.owner) == ("main", QA_DB, alice)
    assert staging.snapshot_id == host_env.qa_snapshot
    assert enqueued == [staging.operations.get().pk]


@pytest.mark.parametrize(("data", "field", "words"), [
    ({"branch": "feature/nothing-pushed"}, "branch", "No image tagged"),
    ({"branch": "bad..branch"}, "branch", "is not a valid git branch name"),
    ({"branch": "main", "name": "Not A Name"}, "name", "lower-case letters"),
    ({"branch": "main", "name": "taken"}, "name", "is taken by a live staging"),
    ({"branch": "main", "source": QA_DB, "db_mode": "shared"}, "source", "shared database"),
])
def test_create_errors_appear_next_to_the_field(alice, host_env, data, field, words):
    make_listed_staging(alice, "taken")
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
    for snapshot in rds.describe_db_snapshots(DBInstanceIdentifier=QA_DB)["DBSnapshots"]:
        rds.delete_db_snapshot(DBSnapshotIdentifier=snapshot["DBSnapshotIdentifier"])
    client = client_for(alice)
    assert f"{QA_DB}: no snapshot yet" in client.get(reverse("create")).content.decode()
    page = client.post(reverse("create"), {"branch": "main", "source": QA_DB,
                                           "db_mode": "dedicated"}).content.decode()
    assert re.search(r'id="source-error">[^<]*has no available snapshot', page)


def test_required_branch(alice, monkeypatch):
    _no_aws_on_the_form(monkeypatch)
    page = client_for(alice).post(reverse("create"), {"branch": "", "source": "host-db",
                                                      "db_mode": "dedicated"}).content.decode()
    assert re.search(r'id="branch-error">[^<]*required', page)


def _no_aws_on_the_form(monkeypatch):
    monkeypatch.setattr(engine, "list_sources", lambda: [
        operations.SourceInfo("host-db", True, None)])
    monkeypatch.setattr("dashboard.forms.branch_suggestions", lambda: (["main"], None))


def test_aws_failure_while_validating_is_a_message_not_a_500(alice, monkeypatch):
    _no_aws_on_the_form(monkeypatch)

    def fail(**kwargs):
        raise ExternalCallFailed("ecs:DescribeServices", "AccessDeniedException",
                                 "User is not authorized to perform ecs:DescribeServices")

    monkeypatch.setattr(engine, "request_create", fail)
    response = client_for(alice).post(reverse("create"), {
        "branch": "main", "source": "host-db", "db_mode": "dedicated"})
    assert response.status_code == 200
    page = response.content.decode()
    assert 'class="form-error"' in page
    assert "AccessDeniedException" in page and "Nothing was created" in page


def test_form_still_works_when_aws_cannot_be_read(alice, monkeypatch):
    def fail(**kwargs):
        raise ExternalCallFailed("rds:DescribeDBSnapshots", "Throttling", "slow down")

    monkeypatch.setattr(engine, "list_sources", lambda: fail())
    monkeypatch.setattr("provisioning.engine.read_host_environment", lambda config: fail())
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
    make_listed_staging(alice, "shop")
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


# --- the test account's password, on request ------------------------------------------------

# Quotes and angle brackets: it must come back escaped, in the text and in the copy button.
PASSWORD = "Pa55\"<b>&'word"
PASSWORD_HTML = "Pa55&quot;&lt;b&gt;&amp;&#x27;word"


@pytest.fixture
def with_secret(aws):
    """A ready staging of alice's whose login password is a real (moto) secret."""

    def make_with_secret(owner, name="shop"):
        arn = secretsmanager.store_secret(name=f"dynamic-stagings/{name}/login", value=PASSWORD,
                                          tags={"dynamic-staging": name})
        staging = make_listed_staging(owner, name, login_secret_arn=arn)
        add_operation(staging)
        return staging

    return make_with_secret


def reveal_url(staging) -> str:
    return reverse("reveal_login", args=[staging.pk])


def test_password_is_not_on_the_page_until_asked(alice, with_secret):
    staging = with_secret(alice)
    page = client_for(alice).get(reverse("staging", args=[staging.pk])).content.decode()
    assert PASSWORD_HTML not in page and "Pa55" not in page
    form = re.search(r'<form method="post" action="([^"]+)" hx-post="([^"]+)"[^>]*>(.*?)</form>',
                     page, re.S)
    assert form.group(1) == form.group(2) == reveal_url(staging)
    assert 'name="csrfmiddlewaretoken"' in form.group(3) and "Show password" in form.group(3)
    # while the page polls (a redeploy), a password shown meanwhile is kept in place
    assert '<span id="login-password-box" class="password" hx-preserve="true">' in page
    assert not AuditEvent.objects.filter(action=AuditAction.REVEAL_LOGIN).exists()


def test_owner_sees_the_password_in_place_with_a_copy_button(alice, with_secret, caplog):
    caplog.set_level(logging.DEBUG, logger="provisioning")
    caplog.set_level(logging.DEBUG, logger="django")
    caplog.set_level(logging.DEBUG, logger="dashboard")
    staging = with_secret(alice)
    response = client_for(alice).post(reveal_url(staging), **HTMX)
    assert response.status_code == 200
    body = response.content.decode()
    assert body.startswith('<span id="login-password-box"') and "<html" not in body
    assert f'<code id="login-password">{PASSWORD_HTML}</code>' in body
    assert f'data-copy="{PASSWORD_HTML}"' in body and "Copy password" in body
    assert PASSWORD not in body and "hx-preserve" not in body
    assert "no-store" in response["Cache-Control"]
    event = AuditEvent.objects.get()
    assert (event.action, event.actor, event.actor_name, event.staging) == (
        AuditAction.REVEAL_LOGIN, alice, "alice", staging)
    # never logged, never kept: not in any log record, nor in any row of any table
    assert PASSWORD not in caplog.text
    for model in apps.get_models():
        for row in model.objects.values():
            assert PASSWORD not in repr(row), model


def test_without_javascript_the_page_comes_back_with_the_password(alice, with_secret):
    staging = with_secret(alice)
    response = client_for(alice).post(reveal_url(staging))
    assert response.status_code == 200
    page = response.content.decode()
    assert "<html" in page and f'<code id="login-password">{PASSWORD_HTML}</code>' in page
    assert "Show password" not in page
    # the look itself is on the trail at once
    trail = re.search(r'<section class="card" id="audit-trail".*?</section>', page, re.S).group(0)
    assert "showed the password" in trail and ">alice<" in trail


def test_staff_may_see_the_password_but_bob_may_not(alice, bob, admin, with_secret, monkeypatch):
    staging = with_secret(alice)
    assert PASSWORD_HTML in client_for(admin).post(reveal_url(staging), **HTMX).content.decode()

    monkeypatch.setattr("provisioning.engine.reveal_login", pytest.fail)
    response = client_for(bob).post(reveal_url(staging), **HTMX)
    assert response.status_code == 403
    page = client_for(bob).get(reverse("staging", args=[staging.pk])).content.decode()
    assert reveal_url(staging) not in page and "Show password" not in page
    # newest first: bob's refused look is on the trail too
    assert list(AuditEvent.objects.values_list("actor_name", "action")) == [
        ("bob", AuditAction.REVEAL_REFUSED), ("admin", AuditAction.REVEAL_LOGIN)]


def test_reveal_needs_post(alice, with_secret):
    staging = with_secret(alice)
    assert client_for(alice).get(reveal_url(staging)).status_code == 405


def test_a_secret_aws_cannot_read_is_a_sentence(alice, aws):
    staging = make_listed_staging(alice)  # its ARN points at no secret
    add_operation(staging)
    response = client_for(alice).post(reveal_url(staging), **HTMX)
    assert response.status_code == 200
    body = response.content.decode()
    assert "Could not read the password from AWS" in body
    assert "secretsmanager:GetSecretValue" in body and "ResourceNotFoundException" in body
    assert "Show password" in body  # to try again
    assert "hx-preserve" not in body  # else htmx would keep the old box instead
    assert not AuditEvent.objects.exists()


def test_no_secret_no_password(alice):
    staging = make_listed_staging(alice, login_secret_arn="")
    add_operation(staging)
    client = client_for(alice)
    assert "Show password" not in client.get(reverse("staging", args=[staging.pk])).content.decode()
    body = client.post(reveal_url(staging), **HTMX).content.decode()
    assert "No password is kept" in body


# --- audit trail ------------------------------------------------------------------------------

def test_staging_page_shows_who_did_what_and_when(alice, admin, enqueued):
    staging = make_listed_staging(alice)
    add_operation(staging)
    audit.record(AuditAction.CREATE, actor=alice, staging=staging, detail="branch feature/<b>")
    operations.request_destroy(staging, user=admin)
    page = client_for(alice).get(reverse("staging", args=[staging.pk])).content.decode()
    trail = re.search(r'<section class="card" id="audit-trail".*?</section>', page, re.S).group(0)
    rows = re.findall(r"<tr>\s*<td data-label=\"When\"><time datetime=\"([^\"]+)\">.*?"
                      r"<td data-label=\"Who\">([^<]*)</td>.*?audit-([a-z-]+)", trail, re.S)
    assert [(who, what) for _, who, what in rows] == [("admin", "destroy"), ("alice", "create")]
    assert all(when for when, _, _ in rows)
    assert "branch feature/&lt;b&gt;" in trail
    # the trail is not part of what polls
    live = client_for(alice).get(reverse("staging_progress", args=[staging.pk]), **HTMX)
    assert "audit-trail" not in live.content.decode()


def test_staging_page_queries_do_not_grow_with_the_trail(alice, bob, admin):
    staging = make_listed_staging(alice)
    add_operation(staging)
    client = client_for(alice)
    url = reverse("staging", args=[staging.pk])
    audit.record(AuditAction.CREATE, actor=alice, staging=staging)
    small = _count_queries(client, url)
    for i in range(40):
        audit.record(AuditAction.REVEAL_LOGIN, actor=(alice, bob, admin)[i % 3], staging=staging)
    assert _count_queries(client, url) == small


# --- leftovers (the orphan sweep) -------------------------------------------------------------

def orphan(arn_suffix: str, *, kind="elasticloadbalancing:targetgroup", name="gone",
           deleted=False, error="") -> Orphan:
    return Orphan.objects.create(
        arn=f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:targetgroup/ds-{arn_suffix}/1",
        kind=kind, staging_name=name, error=error,
        deleted_at=timezone.now() if deleted else None,
    )


@pytest.fixture
def sweeper(monkeypatch):
    """The sweep's entry points and the queue, as the views call them."""
    calls: dict[str, list] = {"sweep": [], "enqueued": []}

    def sweep(delete=False, actor=None):
        calls["sweep"].append((delete, actor.username))
        return list(Orphan.objects.filter(deleted_at__isnull=True))

    monkeypatch.setattr("provisioning.sweep.sweep", sweep)
    monkeypatch.setattr("provisioning.sweep.delete_orphans", pytest.fail)
    monkeypatch.setattr("provisioning.tasks.async_task",
                        lambda func, *args, **kwargs: calls["enqueued"].append((func, args)))
    return calls


def test_leftovers_page_lists_open_orphans_for_everyone(bob):
    orphan("old", name="old-one", error="elbv2:DeleteTargetGroup: ResourceInUse: in use")
    orphan("done", name="done-one", deleted=True)
    audit.record(AuditAction.SWEEP, actor=None, detail="1 orphaned resource(s)")
    page = client_for(bob).get(reverse("leftovers")).content.decode()
    assert "targetgroup/ds-old/1" in page and "old-one" in page
    assert "targetgroup/ds-done/1" not in page
    assert "ResourceInUse: in use" in page
    assert "Recent sweeps" in page and ">system<" in page
    # bob may look, not act
    assert "Delete leftovers" not in page and "Sweep now" not in page
    assert 'type="checkbox"' not in page and "Only an admin" in page


def test_staff_see_the_buttons(admin):
    item = orphan("old")
    page = client_for(admin).get(reverse("leftovers")).content.decode()
    assert f'name="orphan" value="{item.pk}"' in page
    assert f'action="{reverse("delete_leftovers")}"' in page and "Delete leftovers" in page
    assert f'action="{reverse("sweep_now")}"' in page and "Sweep now" in page


def test_nothing_left_behind_says_so(alice):
    page = client_for(alice).get(reverse("leftovers")).content.decode()
    assert "Nothing left behind" in page


def test_only_staff_may_sweep_or_delete(alice, bob, sweeper):
    item = orphan("old")
    for user in (alice, bob):
        client = client_for(user)
        assert client.post(reverse("sweep_now")).status_code == 403
        assert client.post(reverse("delete_leftovers"), {"orphan": [item.pk]}).status_code == 403
    assert sweeper == {"sweep": [], "enqueued": []}


def test_sweep_now(admin, sweeper):
    orphan("old")
    response = client_for(admin).post(reverse("sweep_now"), follow=True)
    assert sweeper["sweep"] == [(False, "admin")]
    assert response.redirect_chain == [(reverse("leftovers"), 302)]
    assert "found 1 leftover in AWS" in response.content.decode()


def test_sweep_now_when_aws_refuses(admin, monkeypatch):
    def refuse(delete=False, actor=None):
        raise ExternalCallFailed("tag:GetResources", "AccessDeniedException", "not allowed")

    monkeypatch.setattr("provisioning.sweep.sweep", refuse)
    response = client_for(admin).post(reverse("sweep_now"), follow=True)
    assert response.status_code == 200
    page = response.content.decode()
    assert "tag:GetResources: AccessDeniedException: not allowed" in page


def test_delete_leftovers_queues_the_chosen_ones(admin, sweeper):
    first, second, _third = orphan("a"), orphan("b"), orphan("c")
    response = client_for(admin).post(reverse("delete_leftovers"),
                                      {"orphan": [second.pk, first.pk]}, follow=True)
    assert sweeper["enqueued"] == [("provisioning.tasks.delete_orphans_task",
                                    ([first.pk, second.pk], admin.pk))]
    assert "Deleting 2 leftovers in the background" in response.content.decode()


@pytest.mark.parametrize("chosen", [[], ["abc"], ["1e3"], ["-1"], ["99999"], ["deleted"]])
def test_delete_leftovers_refuses_what_is_not_listed(admin, sweeper, chosen):
    orphan("a")
    gone = orphan("b", deleted=True)
    chosen = [str(gone.pk) if value == "deleted" else value for value in chosen]
    response = client_for(admin).post(reverse("delete_leftovers"), {"orphan": chosen},
                                      follow=True)
    assert response.status_code == 200
    assert sweeper["enqueued"] == []
    assert re.search(r'class="message error">(Choose at least one|A chosen leftover is no '
                     r'longer listed)', response.content.decode())


def test_fleet_mentions_leftovers_only_when_there_are_some(alice):
    client = client_for(alice)
    assert "leftovers-notice" not in client.get("/").content.decode()
    orphan("a")
    orphan("b")
    orphan("c", deleted=True)
    page = client.get("/").content.decode()
    notice = re.search(r'<p class="notice leftovers-notice">(.*?)</p>', page, re.S).group(1)
    assert notice.startswith("2 AWS resources") and f'href="{reverse("leftovers")}"' in notice
