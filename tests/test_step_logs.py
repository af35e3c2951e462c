"""Each step keeps its log: the lines its progress showed and the runner's start, wait, resume,
finish and failure lines, capped per step; the staging page shows them under each step."""

import re
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from provisioning import models
from provisioning.aws.base import AwsError
from provisioning.models import (
    LOG_LINES_KEPT_PER_STEP,
    OperationStatus,
    StagingStatus,
    Step,
    StepLog,
    StepState,
)
from provisioning.operations import request_create
from provisioning.runner import _run_step, run_operation
from provisioning.stepkit import Parked, Skip, StepSpec
from tests.conftest import BRANCH
from tests.factories import (
    add_operation,
    make_listed_staging,
    make_operation,
    make_staging,
    step_context,
)
from tests.faults import restoring_for
from tests.pages import HTMX

pytestmark = pytest.mark.django_db(transaction=True)


def lines_of(step: Step) -> list[str]:
    return list(StepLog.objects.filter(step=step).values_list("message", flat=True))


@pytest.fixture
def context(alice):
    operation = make_operation(make_staging(alice))
    return step_context(operation, "database")


# --- progress ---------------------------------------------------------------------------------

def test_progress_logs_each_change_once_and_keeps_the_latest_as_detail(context):
    context.progress("restoring ds-login-page: creating")
    context.progress("restoring ds-login-page: creating")
    long = "restoring ds-login-page: backing-up " + "x" * 400
    context.progress(long)
    step = Step.objects.get(pk=context.step.pk)
    assert lines_of(step) == ["restoring ds-login-page: creating", long]
    assert step.detail == long[:255]


def test_the_log_keeps_only_the_newest_lines_of_a_step(context, alice):
    other = step_context(context.operation, "target_group")
    other.log("a line of another step")
    for number in range(LOG_LINES_KEPT_PER_STEP + 7):
        StepLog.objects.write(context.step.pk, f"line {number}")
    kept = lines_of(context.step)
    assert len(kept) == LOG_LINES_KEPT_PER_STEP
    assert kept[0] == "line 7" and kept[-1] == f"line {LOG_LINES_KEPT_PER_STEP + 6}"
    assert lines_of(other.step) == ["a line of another step"]


def test_newest_lines_per_step_in_one_query(context, django_assert_num_queries):
    other = step_context(context.operation, "target_group")
    for number in range(30):
        StepLog.objects.write(context.step.pk, f"db {number}")
    other.log("tg 0")
    steps = [context.step, other.step, step_context(context.operation, "report").step]
    with django_assert_num_queries(1):
        StepLog.objects.attach_to(steps, limit=5)
    database, target_group, report = (step.recent_log for step in steps)
    assert [line.message for line in database.lines] == [f"db {n}" for n in range(25, 30)]
    assert (database.kept, database.hidden) == (30, 25)
    assert ([line.message for line in target_group.lines], target_group.hidden) == (["tg 0"], 0)
    assert (report.lines, report.kept) == ([], 0)


# --- the runner's lines -----------------------------------------------------------------------

def run_alone(context, run) -> str:
    """Run one step as the runner does: in a thread of its own, which closes its connection."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        spec = StepSpec(key=context.step.key, label="Database", run=run)
        return pool.submit(_run_step, spec, context).result()


def test_a_step_logs_its_start_progress_and_end(context):
    def run(ctx):
        ctx.progress("restoring")
        return {"db": "ds-login-page"}

    assert run_alone(context, run) == "done"
    lines = lines_of(context.step)
    assert lines[:2] == ["started", "restoring"]
    assert re.fullmatch(r"done in \d+\.\d s", lines[2]) and len(lines) == 3


def test_a_failure_is_logged_with_the_call_and_code(context):
    def run(ctx):
        raise AwsError("rds:RestoreDBInstanceFromDBSnapshot", "DBSnapshotNotFound",
                       "DBSnapshot rds:host-db-1 not found.")

    assert run_alone(context, run) == "stopped"
    assert lines_of(context.step) == [
        "started",
        "failed: rds:RestoreDBInstanceFromDBSnapshot: DBSnapshotNotFound: "
        "DBSnapshot rds:host-db-1 not found.",
    ]


def test_a_skip_and_a_second_attempt_are_logged(context):
    Step.objects.filter(pk=context.step.pk).update(attempts=1)
    context.step.refresh_from_db()

    def run(ctx):
        raise Skip("shared database: nothing to restore")

    run_alone(context, run)
    assert lines_of(context.step) == ["started (attempt 2)",
                                      "skipped: shared database: nothing to restore"]


def test_a_wait_that_sees_nothing_new_adds_nothing(context):
    seen = iter(["creating", "creating", "creating", "available"])

    def run(ctx):
        status = next(seen)
        ctx.progress(f"database: {status}")
        if status != "available":
            raise Parked(timezone.now())
        return {}

    assert run_alone(context, run) == "parked"
    for _ in range(2):  # looked at again twice, still creating
        context = step_context(context.operation, "database")
        assert run_alone(context, run) == "parked"
    context = step_context(context.operation, "database")
    assert run_alone(context, run) == "done"
    lines = lines_of(context.step)
    assert lines[:3] == ["started", "database: creating", "waiting on AWS; looks again in 0 s"]
    assert lines[3:5] == ["looked at again", "database: available"]
    assert lines[5].startswith("done in ") and len(lines) == 6


def test_a_create_that_waits_for_its_database_logs_the_whole_story(host_env, alice, enqueued):
    staging = request_create(branch=BRANCH, owner=alice)
    operation = staging.latest_operation()
    with restoring_for(looks=3):
        assert run_operation(operation.pk, hold_seconds=0) is True
        database = operation.steps.get(key="database")
        assert database.state == StepState.WAITING
        assert lines_of(database)[0] == "started"
        assert lines_of(database)[-1].startswith("waiting on AWS")
        assert run_operation(operation.pk) is True
    operation.refresh_from_db()
    assert operation.status == OperationStatus.SUCCEEDED
    lines = lines_of(database)
    assert lines[-1].startswith("done in ")
    assert "looked at again" in lines
    # The three looks that found it restoring wrote one waiting line, not three.
    assert sum(line.startswith("waiting on AWS") for line in lines) == 1
    for step in operation.steps.all():
        assert lines_of(step)[0] == "started", step.key


def test_steps_stopped_by_a_failure_say_so(context):
    Step.objects.filter(pk=context.step.pk).update(state=StepState.WAITING)
    from provisioning.runner import stop_waiting_steps

    stop_waiting_steps(context.operation.pk)
    assert lines_of(context.step) == ["stopped before it finished: the operation ended"]


def test_a_cancelled_step_says_it_stopped(context):
    cancelled = threading.Event()
    context.cancelled = cancelled

    def run(ctx):
        cancelled.set()
        ctx.check_cancelled()

    assert run_alone(context, run) == "stopped"
    assert lines_of(context.step) == ["started", "stopped before it finished"]


# --- the staging page -------------------------------------------------------------------------

def _page_with_logs(alice, *, running: bool, lines: int):
    staging = make_listed_staging(alice, "shop", status=StagingStatus.PROVISIONING if running
                                  else StagingStatus.READY)
    states = {"image": StepState.DONE, "database": StepState.RUNNING if running
              else StepState.DONE, "report": StepState.PENDING if running else StepState.DONE}
    operation = add_operation(staging, status=OperationStatus.RUNNING if running
                              else OperationStatus.SUCCEEDED, steps=states)
    database = operation.steps.get(key="database")
    for number in range(lines):
        StepLog.objects.write(database.pk, f"database: look {number}")
    StepLog.objects.write(operation.steps.get(key="image").pk, "image <b>sha256:abc</b>")
    client = Client()
    client.force_login(alice)
    return staging, client


def test_the_staging_page_shows_each_steps_log_without_javascript(alice):
    staging, client = _page_with_logs(alice, running=False, lines=30)
    page = client.get(reverse("staging", args=[staging.pk])).content.decode()
    assert page.count('<details class="step-log"') == 2
    assert "database: look 0<" in page and "database: look 29<" in page
    assert "(30 lines)" in page and "earlier line" not in page
    assert "image &lt;b&gt;sha256:abc&lt;/b&gt;" in page  # escaped
    assert "<script>" not in page and "style=" not in page


def test_the_polled_partial_shows_only_the_newest_lines(alice):
    staging, client = _page_with_logs(alice, running=True, lines=30)
    body = client.get(reverse("staging_progress", args=[staging.pk]), **HTMX).content.decode()
    assert "database: look 29<" in body and "database: look 9<" not in body
    assert "database: look 10<" in body
    assert "10 earlier lines not shown" in body
    # The running step's log is open; a finished step's stays folded.
    assert re.search(r'<details class="step-log" open>\s*<summary>Log <span class="muted small">'
                     r"\(30 lines\)", body)
    assert re.search(r'<details class="step-log">\s*<summary>Log <span class="muted small">'
                     r"\(1 line\)", body)


def test_the_polled_partial_does_not_read_more_with_more_lines(alice):
    staging, client = _page_with_logs(alice, running=True, lines=3)
    url = reverse("staging_progress", args=[staging.pk])
    client.get(url, **HTMX)  # the first poll also reads the medians, kept a while after
    with CaptureQueriesContext(connection) as few:
        client.get(url, **HTMX)
    database = Step.objects.get(operation__staging=staging, key="database")
    for number in range(150):
        StepLog.objects.write(database.pk, f"more {number}")
    with CaptureQueriesContext(connection) as many:
        body = client.get(url, **HTMX).content.decode()
    assert len(many) == len(few)
    assert body.count("more ") == 20


def test_constants_are_what_the_page_promises():
    from dashboard.views import LOG_LINES_WHILE_POLLING

    assert LOG_LINES_WHILE_POLLING < models.LOG_LINES_KEPT_PER_STEP
