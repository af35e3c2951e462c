"""What the pages swap in by themselves, in a real browser: a staging page left open while its
destroy ends stops showing an hourly cost, and a fleet row of a staging being created shows
its bar and time left, moving on as its steps end, without a reload.

Needs Debian's ``chromium``; skipped without it, except under ``CI=true``.
"""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from provisioning.models import (
    Operation,
    OperationKind,
    OperationStatus,
    Staging,
    StagingStatus,
    Step,
    StepState,
)
from tests.browser.chromium import shoot, signed_in_pages

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SMALL_STEPS = ("image", "web_task_definition", "worker_task_definition", "target_group",
               "listener_rule")


@pytest.fixture
def page(live_server, alice, monkeypatch):
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    with signed_in_pages(live_server.url, alice, monkeypatch) as open_page:
        yield open_page(20_000)


def staging_of(owner, name: str, status: str) -> Staging:
    return Staging.objects.create(name=name, branch=f"feature/{name}", source="host-db",
                                  owner=owner, status=status,
                                  created_at=timezone.now() - timedelta(hours=2))


def running(staging: Staging, kind: str, steps: dict[str, str]) -> Operation:
    now = timezone.now()
    operation = Operation.objects.create(staging=staging, kind=kind,
                                         status=OperationStatus.RUNNING,
                                         requested_by=staging.owner, started_at=now)
    Step.objects.bulk_create([
        Step(operation=operation, key=key, label=key, position=i, state=state,
             started_at=now - timedelta(seconds=60) if state != StepState.PENDING else None,
             finished_at=now if state == StepState.DONE else None)
        for i, (key, state) in enumerate(steps.items())])
    return operation


def test_the_header_drops_the_hourly_cost_when_the_destroy_ends(page, live_server, alice):
    from playwright.sync_api import expect

    staging = staging_of(alice, "shop", StagingStatus.DESTROYING)
    destroy = running(staging, OperationKind.DESTROY, {"handover": StepState.DONE,
                                                       "web_service": StepState.WAITING})
    page.goto(f"{live_server.url}/stagings/{staging.pk}/")
    facts = page.locator("dl.facts:has(dt:has-text('Cost'))")
    cost = facts.locator("dt:has-text('Cost') + dd")
    expect(cost).to_contain_text("an hour")

    Step.objects.filter(operation=destroy).update(state=StepState.DONE,
                                                  finished_at=timezone.now())
    Operation.objects.filter(pk=destroy.pk).update(status=OperationStatus.SUCCEEDED,
                                                   finished_at=timezone.now())
    Staging.objects.filter(pk=staging.pk).update(status=StagingStatus.DESTROYED,
                                                 destroyed_at=timezone.now())
    expect(page.locator("#staging-status")).to_have_text("destroyed")
    expect(cost).not_to_contain_text("an hour")
    expect(cost).to_contain_text("in all")
    expect(facts).to_contain_text("Destroyed")
    shoot(page, "staging-destroyed-while-open")


def test_a_fleet_row_shows_the_progress_of_its_create_and_moves_on(page, live_server, alice):
    from playwright.sync_api import expect

    staging = staging_of(alice, "shop", StagingStatus.PROVISIONING)
    create = running(staging, OperationKind.CREATE, {
        **{key: StepState.DONE for key in SMALL_STEPS}, "database": StepState.WAITING,
        **{key: StepState.PENDING for key in ("web_service", "worker_service", "web_healthy",
                                              "worker_steady", "account", "report")}})
    page.goto(live_server.url + "/")
    row = page.locator("tr[data-staging=shop] .row-progress")
    expect(row).to_contain_text(re.compile(r"\d+% · about \d+ min left"))
    before = int(row.locator("progress").get_attribute("value"))

    # The restore ends while a runner holds the create (renewing its heartbeat): the polled
    # table, sent with its version, brings the row forward.
    Step.objects.filter(operation=create, key="database").update(
        state=StepState.DONE, finished_at=timezone.now())
    Operation.objects.filter(pk=create.pk).update(heartbeat_at=timezone.now())
    expect(row.locator("progress")).not_to_have_attribute("value", str(before),
                                                          timeout=25_000)
    assert int(row.locator("progress").get_attribute("value")) > before
    expect(row).to_contain_text(re.compile(r"about \d+ min left"))
    shoot(page, "fleet-row-progress")
