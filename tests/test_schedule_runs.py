"""Every run of a background schedule leaves a row: when it started and finished, what it did
or the error it ended with; only each schedule's recent runs are kept."""

from datetime import timedelta

import pytest
from django.utils import timezone

from provisioning import tasks
from provisioning.models import Operation, OperationStatus, ScheduleRun
from tests.factories import make_operation, make_staging

pytestmark = pytest.mark.django_db


def runs_of(every: tasks.Every) -> list[ScheduleRun]:
    return list(ScheduleRun.objects.filter(name=every.name))


def test_every_schedule_is_recorded_under_its_name():
    assert [every.func for every in tasks.SCHEDULES] == [
        tasks.resume_stalled_operations, tasks.sweep_orphans, tasks.refill_pools,
        tasks.expire_stagings, tasks.deliver_due_notifications]
    assert len({every.name for every in tasks.SCHEDULES}) == len(tasks.SCHEDULES)


def test_resuming_records_what_it_re_enqueued(alice, enqueued):
    before = timezone.now()
    assert tasks.resume_stalled_operations() == []
    staging = make_staging(alice)
    lost = make_operation(staging, status=OperationStatus.QUEUED,
                          created_at=timezone.now() - timedelta(minutes=5))
    assert tasks.resume_stalled_operations() == [lost.pk]
    assert enqueued == [lost.pk]

    latest, first = runs_of(tasks.resume_stalled_operations.every)
    assert first.outcome == "nothing stalled" and first.error == ""
    assert latest.outcome == f"re-enqueued 1 stalled operation(s): {lost.pk}"
    assert before <= first.started_at <= first.finished_at <= latest.started_at
    assert latest.duration is not None
    assert Operation.objects.count() == 1


def test_a_schedule_that_fails_records_the_error_and_still_fails(monkeypatch):
    def broken(delete=False):
        raise RuntimeError("tagging API unreachable")

    monkeypatch.setattr("provisioning.sweep.sweep", broken)
    with pytest.raises(RuntimeError, match="unreachable"):
        tasks.sweep_orphans()
    (run,) = runs_of(tasks.sweep_orphans.every)
    assert run.finished_at is not None and run.outcome == ""
    assert run.error == "RuntimeError: tagging API unreachable"


def test_a_sweep_records_how_many_leftovers_it_found(monkeypatch):
    monkeypatch.setattr("provisioning.sweep.sweep", lambda delete=False: ["a", "b"])
    assert len(tasks.sweep_orphans().orphans) == 2
    (run,) = runs_of(tasks.sweep_orphans.every)
    assert (run.outcome, run.error) == ("2 leftover(s) found", "")


def test_a_refill_records_its_problems_as_the_error(host_env, settings):
    settings.DS_POOL_SIZES = {"no-such-db": 1}
    result = tasks.refill_pools()
    assert result.errors
    (run,) = runs_of(tasks.refill_pools.every)
    assert run.outcome == "nothing to do"
    assert "DS_POOL_SIZES names 'no-such-db'" in run.error


def test_a_refill_that_restores_says_which(host_env, settings):
    settings.DS_POOL_SIZES = {"host-db": 1}
    result = tasks.refill_pools()
    assert len(result.restored) == 1
    (run,) = runs_of(tasks.refill_pools.every)
    assert run.outcome == f"restoring {result.restored[0]}" and run.error == ""


def test_a_run_that_has_not_finished_shows_as_such(monkeypatch):
    seen = {}

    def sweep(delete=False):
        seen["while"] = list(ScheduleRun.objects.values_list("name", "finished_at"))
        return []

    monkeypatch.setattr("provisioning.sweep.sweep", sweep)
    tasks.sweep_orphans()
    assert seen["while"] == [("sweep orphaned resources", None)]


def test_only_each_schedules_recent_runs_are_kept(monkeypatch, enqueued):
    monkeypatch.setattr(tasks, "SCHEDULE_RUNS_KEPT", 3)
    monkeypatch.setattr("provisioning.sweep.sweep", lambda delete=False: [])
    tasks.sweep_orphans()
    for _ in range(5):
        tasks.resume_stalled_operations()
    kept = runs_of(tasks.resume_stalled_operations.every)
    assert len(kept) == 3
    assert all(run.finished_at for run in kept)
    assert len(runs_of(tasks.sweep_orphans.every)) == 1  # another schedule's runs stay


def test_the_leftovers_page_shows_each_schedules_last_runs(bob, monkeypatch, enqueued):
    from django.test import Client
    from django.urls import reverse

    monkeypatch.setattr("provisioning.sweep.sweep", lambda delete=False: ["a"])
    tasks.sweep_orphans()
    for _ in range(7):
        tasks.resume_stalled_operations()
    ScheduleRun.objects.create(name=tasks.sweep_orphans.every.name, outcome="")  # still going
    client = Client()
    client.force_login(bob)
    page = client.get(reverse("leftovers")).content.decode()
    assert "Background schedules" in page
    assert page.count('data-schedule="resume stalled operations"') == 5  # the newest five
    assert page.count('data-schedule="sweep orphaned resources"') == 2
    assert "1 leftover(s) found" in page and "not finished" in page
    assert "no run yet" in page  # the pool refill has not run
