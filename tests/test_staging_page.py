"""A staging's page and its polled progress: steps, time left, the ready panel with
URL, login and console links, failures with the AWS call, the audit trail."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse

from dashboard import console
from provisioning import audit, operations
from provisioning.models import (
    AuditAction,
    Operation,
    OperationKind,
    OperationStatus,
    StagingStatus,
    Step,
    StepState,
)
from tests.factories import (
    CREATE_OUTPUTS,
    RULE_ARN,
    TG_ARN,
    add_operation,
    make_fleet,
    make_listed_staging,
)
from tests.pages import HTMX, client_for, cold_query_count, query_count

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("enqueued", "aws_region")]


def running_create(staging) -> Operation:
    states = {key: StepState.DONE for key in ("image", "web_task_definition",
                                              "worker_task_definition", "target_group")}
    states |= {"database": StepState.RUNNING, "listener_rule": StepState.RUNNING}
    states |= {key: StepState.PENDING for key in ("web_service", "worker_service", "web_healthy",
                                                  "worker_steady", "account", "report")}
    return add_operation(staging, status=OperationStatus.RUNNING, steps=states)


# --- progress -------------------------------------------------------------------------------------

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


def test_progress_partial_queries_do_not_grow(alice, bob):
    client = client_for(alice)
    make_fleet(bob, 5)
    staging = make_listed_staging(alice, "shop", status=StagingStatus.PROVISIONING)
    running_create(staging)
    url = reverse("staging_progress", args=[staging.pk])
    small = cold_query_count(client, url, **HTMX)
    # 45 more stagings, and 45 more finished creates to take medians from
    make_fleet(bob, 45, start=5)
    large = cold_query_count(client, url, **HTMX)
    assert small == large
    # session + user, the staging, its latest operation, its steps, the medians, the outputs,
    # the steps' newest log lines
    assert large <= 8
    # the medians are kept a little while: the next poll does not read them again
    assert query_count(client, url, **HTMX) == large - 1


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


# --- what the page shows --------------------------------------------------------------------------

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


# --- console links --------------------------------------------------------------------------------

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


# --- audit trail ----------------------------------------------------------------------------------

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
    small = query_count(client, url)
    for i in range(40):
        audit.record(AuditAction.REVEAL_LOGIN, actor=(alice, bob, admin)[i % 3], staging=staging)
    assert query_count(client, url) == small
