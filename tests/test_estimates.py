"""Time left, late steps and the progress bar, on a staging's page and on the fleet's rows.

Before this installation has timed an operation of a kind, its steps are expected to take the
lifecycle registry's real-AWS durations times the AWS's speed (the sandbox's delay scale; 1 on
AWS); then the medians of the latest finished operations. A step under way keeps its clock while
it waits on AWS; one well past its usual time says so with both numbers; the bar weighs steps
by their usual durations, not by their count.
"""

import os
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from dashboard.progress import load_progress
from provisioning.lifecycle import plan_for, rules_for
from provisioning.models import (
    Operation,
    OperationKind,
    OperationStatus,
    Staging,
    StagingStatus,
    Step,
    StepState,
)
from tests.conftest import HOST_DB, QA_DB
from tests.pages import HTMX, client_for

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parent.parent
CREATE = rules_for(OperationKind.CREATE).typical_seconds
# The steps a create from the host's own snapshot has besides the database: all small.
SMALL_DONE = ("image", "web_task_definition", "worker_task_definition", "target_group",
              "listener_rule")


def staging_of(owner, name="shop", *, source=HOST_DB, status=StagingStatus.PROVISIONING,
               db_mode="dedicated") -> Staging:
    return Staging.objects.create(name=name, branch=f"feature/{name}", source=source,
                                  db_mode=db_mode, owner=owner, status=status)


def operation_with(staging, steps: dict[str, tuple[str, float, float]], *,
                   kind=OperationKind.CREATE, status=OperationStatus.RUNNING) -> Operation:
    """An operation whose steps are ``key: (state, started seconds ago, took seconds)``; the
    rest of its plan pending, as the runner writes them."""
    now = timezone.now()
    finished = status in {OperationStatus.SUCCEEDED, OperationStatus.FAILED}
    operation = Operation.objects.create(
        staging=staging, kind=kind, status=status, requested_by=staging.owner,
        started_at=now - timedelta(hours=1), finished_at=now if finished else None)
    planned = {spec.key: (StepState.PENDING, 0, 0) for spec in plan_for(operation)}
    for position, (key, (state, started_ago, took)) in enumerate((planned | steps).items()):
        started = now - timedelta(seconds=started_ago) if state != StepState.PENDING else None
        ended = state in {StepState.DONE, StepState.SKIPPED, StepState.FAILED}
        Step.objects.create(operation=operation, key=key, label=f"Step {key}",
                            position=position, state=state, started_at=started,
                            finished_at=started + timedelta(seconds=took) if ended else None)
    return operation


def progress_text(page: str) -> str:
    found = re.search(r'<p class="progress-text">(.*?)</p>', page, re.S)
    assert found, "no progress text"
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", found.group(1))).strip()


def percent_on(page: str) -> int:
    return int(re.search(r'<progress max="100" value="(\d+)"', page).group(1))


# --- before anything was timed: the registry, scaled to the AWS in use ----------------------

def test_the_first_estimate_is_the_registrys_scaled_to_the_sandbox(alice, settings):
    """The sandbox's AWS runs at 7% of real durations: its first create from another source
    is announced as about a minute, not the real thirteen."""
    settings.DS_SANDBOX_DELAY_SCALE = 0.07
    staging = staging_of(alice, source=QA_DB)  # another source: its password is changed
    Operation.objects.create(staging=staging, kind=OperationKind.CREATE,
                             requested_by=alice)  # queued: no step rows yet
    longest = (CREATE["database"] + CREATE["db_credentials"] + CREATE["web_healthy"]
               + CREATE["report"])
    assert load_progress(staging).seconds_left == pytest.approx(longest * 0.07)
    page = client_for(alice).get(reverse("staging", args=[staging.pk])).content.decode()
    assert "about 1 min left" in progress_text(page)

    settings.DS_SANDBOX_DELAY_SCALE = 1.0  # real AWS
    cache.clear()
    assert load_progress(staging).seconds_left == pytest.approx(longest)


def config_in_a_process(tmp_path, **env: str) -> str:
    """What a fresh process's config says about the sandbox and its AWS's speed."""
    clean = {k: v for k, v in os.environ.items()
             if k not in {"DS_SANDBOX", "DS_SANDBOX_DELAY_SCALE", "DJANGO_SETTINGS_MODULE"}}
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c",
         "from provisioning.config import load_config; c = load_config(); "
         "print(c.sandbox, c.aws_time_scale)"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**clean, "DJANGO_SECRET_KEY": "estimates-test", "DS_SANDBOX_STATE_DIR": str(
            tmp_path), "DS_SQLITE_PATH": str(tmp_path / "db.sqlite3"), **env},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def test_the_aws_speed_comes_from_the_sandbox_and_is_1_elsewhere(tmp_path):
    assert config_in_a_process(tmp_path, DS_SANDBOX="1",
                               DS_SANDBOX_DELAY_SCALE="0.05") == "True 0.05"
    assert config_in_a_process(tmp_path, DS_SANDBOX="1") == "True 0.07"
    # Outside the sandbox the variable means nothing: AWS takes the time it takes.
    assert config_in_a_process(tmp_path, DS_SANDBOX_DELAY_SCALE="0.05") == "False 1.0"


def test_measured_durations_win_over_the_scaled_registry(alice, settings):
    settings.DS_SANDBOX_DELAY_SCALE = 0.07
    done = staging_of(alice, "done", status=StagingStatus.READY)
    operation_with(done, {"database": (StepState.DONE, 500, 200)},
                   status=OperationStatus.SUCCEEDED)
    staging = staging_of(alice)
    operation_with(staging, {})
    # database as timed here (200 s); the rest of its chain from the scaled registry
    expected = 200 + (CREATE["web_service"] + CREATE["web_healthy"] + CREATE["report"]) * 0.07
    assert load_progress(staging).seconds_left == pytest.approx(expected)


# --- a step under way -----------------------------------------------------------------------

def test_a_step_waiting_on_aws_keeps_its_clock(alice):
    """A restore parked between looks (waiting) has been going on since it started: what is
    left of it is its usual time less that, not all of it again."""
    staging = staging_of(alice, db_mode="shared")
    operation_with(staging, {**{key: (StepState.DONE, 100, 1) for key in (
        *SMALL_DONE, "web_service", "worker_service", "worker_steady", "account")},
        "web_healthy": (StepState.WAITING, 80, 0)})
    progress = load_progress(staging)
    # web_healthy's usual 120 s less the 80 s it has waited, then the report
    assert progress.seconds_left == pytest.approx(120 - 80 + CREATE["report"], abs=1)


def test_a_late_step_says_so_with_both_numbers(alice):
    done = staging_of(alice, "done", status=StagingStatus.READY)
    operation_with(done, {**{key: (StepState.DONE, 900, 1) for key in CREATE},
                          "database": (StepState.DONE, 900, 120),
                          "web_healthy": (StepState.DONE, 700, 60)},
                   status=OperationStatus.SUCCEEDED)
    staging = staging_of(alice)
    operation_with(staging, {**{key: (StepState.DONE, 400, 1) for key in SMALL_DONE},
                             "database": (StepState.WAITING, 360, 0)})
    page = client_for(alice).get(reverse("staging", args=[staging.pk])).content.decode()
    text = progress_text(page)
    assert "Step database: taking longer than usual: 6 min so far, usually 2 min" in text
    # what follows it (the services, 60 s of health checks, the report), not a made-up end
    assert "once it ends, about 1 min more" in text
    assert "less than a minute left" not in text
    assert re.search(r'Step database</span>\s*<span class="step-meta">[^<]*'
                     r'<span class="late">longer than usual', page)


def test_a_late_step_off_the_longest_chain_leaves_the_time_left(alice):
    staging = staging_of(alice)
    operation_with(staging, {"image": (StepState.DONE, 60, 1),
                             "database": (StepState.RUNNING, 60, 0),
                             "target_group": (StepState.RUNNING, 60, 0)})
    text = progress_text(client_for(alice).get(
        reverse("staging", args=[staging.pk])).content.decode())
    assert "about 11 min left" in text  # the restore's 600 s less 60, then the services
    assert "Step target_group: taking longer than usual: 60 s so far, usually 2 s" in text


# --- the bar --------------------------------------------------------------------------------

def test_the_bar_follows_expected_time_not_the_count_of_steps(alice):
    """Five quick steps done and a restore a minute in: 5 of 12 steps (42%), but under a
    tenth of the time a create from the host's snapshot takes."""
    staging = staging_of(alice)
    operation_with(staging, {**{key: (StepState.DONE, 60, 1) for key in SMALL_DONE},
                             "database": (StepState.WAITING, 60, 0)})
    plan = [spec.key for spec in plan_for(Operation(kind=OperationKind.CREATE,
                                                    staging=staging))]
    expected = (sum(CREATE[key] for key in SMALL_DONE) + 60) / sum(CREATE[k] for k in plan)
    page = client_for(alice).get(reverse("staging", args=[staging.pk])).content.decode()
    assert "5 of 12 steps done" in page
    assert percent_on(page) == int(100 * expected) < 10


def test_the_bar_stays_below_100_until_the_operation_succeeded(alice):
    staging = staging_of(alice)
    operation = operation_with(staging, {
        **{key: (StepState.DONE, 60, 1) for key in CREATE if key != "report"},
        "report": (StepState.RUNNING, 5, 0)})
    client = client_for(alice)
    assert percent_on(client.get(reverse("staging", args=[staging.pk])).content.decode()) == 99
    Step.objects.filter(operation=operation).update(state=StepState.DONE)
    Operation.objects.filter(pk=operation.pk).update(status=OperationStatus.SUCCEEDED,
                                                     finished_at=timezone.now())
    assert percent_on(client.get(reverse("staging", args=[staging.pk])).content.decode()) == 100


# --- the fleet's rows -----------------------------------------------------------------------

def fleet_row(page: str, name: str) -> str:
    found = re.search(rf'<tr data-staging="{name}">(.*?)</tr>', page, re.S)
    assert found, f"no row for {name}"
    return found.group(1)


def busy(owner, name: str) -> Staging:
    staging = staging_of(owner, name)
    operation_with(staging, {**{key: (StepState.DONE, 60, 1) for key in SMALL_DONE},
                             "database": (StepState.WAITING, 60, 0)})
    return staging


def fleet_table(client) -> tuple[str, int]:
    """The fleet table as a poll gets it (the medians already cached), and its queries."""
    client.get(reverse("fleet_partial"), **HTMX)
    with CaptureQueriesContext(connection) as captured:
        response = client.get(reverse("fleet_partial"), **HTMX)
    assert response.status_code == 200
    return response.content.decode(), len(captured.captured_queries)


def test_the_rows_of_stagings_being_changed_show_their_progress(alice):
    busy(alice, "shop")
    staging_of(alice, "calm", status=StagingStatus.READY)
    client = client_for(alice)
    page, queries = fleet_table(client)
    row = fleet_row(page, "shop")
    assert re.search(r'<progress max="100" value="\d+"', row)
    assert re.search(r"\d+% · about 11 min left", re.sub(r"<[^>]+>", "", row))
    assert "<progress" not in fleet_row(page, "calm")
    # Flat: ten stagings being changed cost the table the queries of one.
    for i in range(9):
        busy(alice, f"more{i}")
    page, more_queries = fleet_table(client)
    assert page.count('<span class="row-progress">') == 10
    assert more_queries == queries


def test_a_round_of_an_operation_changes_the_fleets_version(alice):
    """The table is polled with its version (304 while nothing changed): a row's progress must
    move on while its operation runs (the runner renews its heartbeat every 5 s) and when an
    operation waiting on AWS is looked at again (it gets a new wake-up time)."""
    staging = busy(alice, "shop")
    operation = staging.operations.get()
    client = client_for(alice)

    def poll(version: str = ""):
        extra = HTMX | ({"HTTP_IF_NONE_MATCH": version} if version else {})
        return client.get(reverse("fleet_partial"), **extra)

    version = poll()["ETag"]
    assert poll(version).status_code == 304
    # A runner holds it: the restore ends while it beats.
    Step.objects.filter(operation=operation, key="database").update(
        state=StepState.DONE, finished_at=timezone.now())
    Operation.objects.filter(pk=operation.pk).update(heartbeat_at=timezone.now())
    answer = poll(version)
    assert answer.status_code == 200 and answer["ETag"] != version
    # It gives its worker back until AWS is worth asking again.
    version = answer["ETag"]
    Operation.objects.filter(pk=operation.pk).update(
        heartbeat_at=None, wake_at=timezone.now() + timedelta(seconds=10))
    assert poll(version).status_code == 200
