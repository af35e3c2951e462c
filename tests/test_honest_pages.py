"""Pages that say only what they know: a destroyed staging has no hourly cost (in the part the
page polls too), the leftovers page before any sweep, the month's projection with what it
assumes, and the sandbox (its demo login; its staging URLs and console links, which lead
nowhere real)."""

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from provisioning import audit
from provisioning.models import (
    AuditAction,
    Operation,
    OperationKind,
    OperationStatus,
    ScheduleRun,
    Staging,
    StagingStatus,
    Step,
    StepState,
)
from provisioning.tasks import sweep_orphans
from tests.pages import HTMX, client_for

pytestmark = pytest.mark.django_db
ARN = "arn:aws:{service}:us-east-1:123456789012:{resource}"
OUTPUTS = {
    "web_service": {"arn": ARN.format(service="ecs", resource="service/host-staging/ds-shop-web")},
    "worker_service": {"arn": ARN.format(service="ecs",
                                         resource="service/host-staging/ds-shop-worker")},
    "web_task_definition": {"arn": ARN.format(service="ecs",
                                              resource="task-definition/ds-shop-web:1")},
    "target_group": {"arn": ARN.format(service="elasticloadbalancing",
                                       resource="targetgroup/ds-shop/0123456789abcdef")},
    "database": {"db_instance": "ds-shop"},
}


@pytest.fixture(autouse=True)
def region(monkeypatch):
    monkeypatch.setenv("AWS_REGION", "us-east-1")


def staging_with(owner, status: str, *, kind=OperationKind.CREATE,
                 operation_status=OperationStatus.SUCCEEDED) -> Staging:
    now = timezone.now()
    staging = Staging.objects.create(
        name="shop", branch="feature/shop", source="host-db", owner=owner, status=status,
        created_at=now - timedelta(hours=3), url="https://shop.dynamic.test",
        login_username="qa+shop@example.com", login_url="https://shop.dynamic.test/login",
        destroyed_at=now if status == StagingStatus.DESTROYED else None)
    create = Operation.objects.create(staging=staging, kind=OperationKind.CREATE,
                                      status=OperationStatus.SUCCEEDED, requested_by=owner,
                                      started_at=now - timedelta(hours=3),
                                      finished_at=now - timedelta(hours=3))
    Step.objects.bulk_create([Step(operation=create, key=key, label=key, position=i,
                                   state=StepState.DONE, outputs=outputs)
                              for i, (key, outputs) in enumerate(OUTPUTS.items())])
    if kind != OperationKind.CREATE:
        Operation.objects.create(staging=staging, kind=kind, status=operation_status,
                                 requested_by=owner, started_at=now - timedelta(minutes=1),
                                 finished_at=now if operation_status in {
                                     OperationStatus.SUCCEEDED, OperationStatus.FAILED}
                                 else None)
    return staging


# --- a destroyed staging's cost ----------------------------------------------------------------

def facts(page: str) -> str:
    found = re.search(r'<dl class="facts card" id="staging-facts">(.*?)</dl>', page, re.S)
    assert found, "no facts"
    return found.group(1)


def test_the_polled_part_carries_the_facts_without_an_hourly_cost_once_destroyed(alice):
    """The page polls its progress partial while the destroy runs and swaps it in at the
    end: that partial must bring the facts, so the hourly cost goes with the staging."""
    staging = staging_with(alice, StagingStatus.DESTROYING, kind=OperationKind.DESTROY,
                           operation_status=OperationStatus.RUNNING)
    client = client_for(alice)
    polled = client.get(reverse("staging_progress", args=[staging.pk]), **HTMX)
    assert "an hour" in facts(polled.content.decode())

    Staging.objects.filter(pk=staging.pk).update(status=StagingStatus.DESTROYED,
                                                 destroyed_at=timezone.now())
    Operation.objects.filter(staging=staging, kind=OperationKind.DESTROY).update(
        status=OperationStatus.SUCCEEDED, finished_at=timezone.now())
    final = client.get(reverse("staging_progress", args=[staging.pk]), **HTMX)
    assert final.status_code == 286  # polling stops here: this is what stays on the page
    shown = facts(final.content.decode())
    assert "an hour" not in shown and "in all" in shown and "Destroyed" in shown
    assert "an hour" not in facts(client.get(reverse("staging", args=[staging.pk])).content
                                  .decode())


# --- leftovers before any sweep ----------------------------------------------------------------

def test_the_leftovers_page_says_no_sweep_has_run_yet(alice):
    client = client_for(alice)
    page = client.get(reverse("leftovers")).content.decode()
    assert "No sweep has run yet" in page
    assert "Nothing left behind" not in page and "as the last sweep found them" not in page

    # A scheduled sweep that failed found nothing out either.
    ScheduleRun.objects.create(name=sweep_orphans.every.name, finished_at=timezone.now(),
                               error="AccessDenied")
    assert "No sweep has run yet" in client.get(reverse("leftovers")).content.decode()

    ScheduleRun.objects.create(name=sweep_orphans.every.name, finished_at=timezone.now(),
                               outcome="0 leftover(s) found")
    page = client.get(reverse("leftovers")).content.decode()
    assert "No sweep has run yet" not in page
    assert "as the last sweep found them" in page and "Nothing left behind" in page


def test_a_sweep_a_person_asked_for_counts_and_its_time_is_shown(alice):
    event = audit.record(AuditAction.SWEEP, actor=alice, detail="nothing found")
    page = client_for(alice).get(reverse("leftovers")).content.decode()
    assert "No sweep has run yet" not in page and "Nothing left behind" in page
    shown = timezone.localtime(event.created_at).strftime("%Y-%m-%dT%H:%M:%S")
    assert f'as the last sweep found them (<time datetime="{shown}' in page


# --- the month's projection --------------------------------------------------------------------

def test_the_projection_says_what_it_assumes(alice):
    staging_with(alice, StagingStatus.READY)
    page = client_for(alice).get(reverse("home")).content.decode()
    note = re.search(r'<p class="muted small projection-note">(.*?)</p>', page, re.S)
    assert note, "the projection explains nothing"
    text = note.group(1)
    assert "live stagings (1) run until the month ends at today's hourly cost" in text
    so_far, hourly, hours = re.search(
        r"(\$[\d.,<]+) so far \+ \$([\d.]+)/h × (\d+) h left in the month", text).groups()
    projection = re.search(r"<dt>Projection for the month</dt><dd>\$([\d.,]+)</dd>",
                           page).group(1)
    month_to_date = 0.0 if so_far.startswith("$<") else float(so_far[1:].replace(",", ""))
    # the note rounds the hourly cost to four decimals and the hours to whole ones
    assert float(projection.replace(",", "")) == pytest.approx(
        month_to_date + float(hourly) * int(hours), abs=0.05 + float(hourly))


# --- the sandbox -------------------------------------------------------------------------------

def test_the_sandboxs_login_page_shows_the_demo_login(settings, django_user_model):
    settings.DS_SANDBOX = True
    client = Client()
    assert "demo-staging-123" not in client.get(reverse("login")).content.decode()  # no user
    django_user_model.objects.create_user("demo", password="demo-staging-123")
    page = client.get(reverse("login")).content.decode()
    assert "log in as <code>demo</code> with the password <code>demo-staging-123</code>" in page

    settings.DS_SANDBOX = False  # a real installation never shows it
    assert "demo-staging-123" not in client.get(reverse("login")).content.decode()


def test_in_the_sandbox_urls_and_console_links_say_they_are_simulated(alice, settings):
    staging = staging_with(alice, StagingStatus.READY)
    client = client_for(alice)
    settings.DS_SANDBOX = False
    real = client.get(reverse("staging", args=[staging.pk])).content.decode()
    assert 'href="https://shop.dynamic.test"' in real
    assert "console.aws.amazon.com" in real and "Simulated" not in real

    settings.DS_SANDBOX = True
    page = client.get(reverse("staging", args=[staging.pk])).content.decode()
    assert "console.aws.amazon.com" not in page  # no link that pretends to work
    assert 'href="https://shop.dynamic.test' not in page
    assert "https://shop.dynamic.test" in page  # still shown, to copy
    assert "Simulated: this is the sandbox" in page
    assert "Simulated: these live in the sandbox" in page
