"""The lifecycle registry is the one home of the operation kinds' rules, and the runner tells
when an operation ends (once, after commit, with ids)."""

import pytest

from provisioning import lifecycle
from provisioning.models import OperationStatus, StagingStatus, StepState
from provisioning.operations import request_create, request_redeploy
from provisioning.runner import run_operation
from provisioning.signals import operation_finished, step_failed
from provisioning.stepkit import StepSpec
from tests.factories import make_operation, make_staging

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def heard():
    """What the two signals carried, in order."""
    seen: list[tuple[str, dict]] = []

    def operation(sender, **kwargs):
        seen.append(("finished", {k: v for k, v in kwargs.items() if k != "signal"}))

    def step(sender, **kwargs):
        seen.append(("step_failed", {k: v for k, v in kwargs.items() if k != "signal"}))

    operation_finished.connect(operation)
    step_failed.connect(step)
    yield seen
    operation_finished.disconnect(operation)
    step_failed.disconnect(step)


def test_every_kind_names_a_plan_and_statuses_it_may_end_in():
    for kind, rules in lifecycle.KINDS.items():
        assert rules.kind == kind
        assert {rules.success_status, rules.failure_status} <= lifecycle.SETTLED_STATUSES
        assert rules.working_status not in lifecycle.SETTLED_STATUSES
        assert rules.starts_from


def test_a_new_kind_is_one_registry_entry_and_its_steps(alice, monkeypatch, heard):
    """A hypothetical "noop" kind: nothing but an entry and its plan, run by the runner."""
    ran = []

    def noop_plan(operation):
        return [StepSpec("nothing", "Do nothing", lambda ctx: ran.append(ctx.staging.name))]

    monkeypatch.setitem(lifecycle.KINDS, "noop", lifecycle.KindRules(
        kind="noop", plan=noop_plan, working_status=StagingStatus.UPDATING,
        success_status=StagingStatus.READY, failure_status=StagingStatus.FAILED,
        starts_from=frozenset({StagingStatus.READY}), typical_seconds={"nothing": 1}))
    staging = make_staging(alice, status=StagingStatus.READY)
    operation = make_operation(staging, kind="noop")
    assert run_operation(operation.pk) is True
    operation.refresh_from_db()
    staging.refresh_from_db()
    assert operation.status == OperationStatus.SUCCEEDED and ran == [staging.name]
    assert staging.status == StagingStatus.READY
    assert heard == [("finished", {"operation_id": operation.pk, "staging_id": staging.pk,
                                   "kind": "noop", "succeeded": True})]


def test_a_failed_operation_is_told_once_with_its_failed_step(alice, monkeypatch, heard):
    def failing(ctx):
        raise RuntimeError("broken")

    monkeypatch.setitem(lifecycle.KINDS, "noop", lifecycle.KindRules(
        kind="noop", plan=lambda op: [StepSpec("break", "Break", failing)],
        working_status=StagingStatus.UPDATING, success_status=StagingStatus.READY,
        failure_status=StagingStatus.FAILED, starts_from=frozenset({StagingStatus.READY})))
    staging = make_staging(alice, status=StagingStatus.READY)
    operation = make_operation(staging, kind="noop")
    run_operation(operation.pk)
    assert run_operation(operation.pk) is False  # finished: never told twice
    failed = operation.steps.get(key="break")
    assert failed.state == StepState.FAILED
    assert heard == [
        ("finished", {"operation_id": operation.pk, "staging_id": staging.pk, "kind": "noop",
                      "succeeded": False}),
        ("step_failed", {"operation_id": operation.pk, "staging_id": staging.pk,
                         "kind": "noop", "step_id": failed.pk}),
    ]


def test_a_receiver_that_fails_does_not_fail_the_operation(host_env, alice, heard):
    def broken(sender, **kwargs):
        raise RuntimeError("the mail server is down")

    operation_finished.connect(broken)
    try:
        staging = request_create(branch="main", owner=alice, db_mode="shared")
        assert run_operation(staging.latest_operation().pk) is True
    finally:
        operation_finished.disconnect(broken)
    staging.refresh_from_db()
    assert staging.status == StagingStatus.READY
    assert [name for name, _ in heard] == ["finished"]


def test_redeploy_is_accepted_from_the_statuses_the_registry_names(host_env, alice):
    staging = make_staging(alice, status=StagingStatus.PROVISIONING)
    redeploy = lifecycle.rules_for("redeploy")
    assert not redeploy.accepts(staging, "create")
    staging.status = StagingStatus.FAILED
    assert redeploy.accepts(staging, "redeploy") and not redeploy.accepts(staging, "create")
    staging.status = StagingStatus.READY
    staging.save()
    assert request_redeploy(staging, user=alice).kind == "redeploy"


def test_every_schedule_names_a_function_that_exists_and_is_written_at_migrate():
    from django.utils.module_loading import import_string
    from django_q.models import Schedule

    from provisioning import tasks

    for every in tasks.SCHEDULES:
        assert import_string(every.dotted) is every.func
    # The test database was migrated: post_migrate wrote them.
    written = {s.name: (s.func, s.minutes) for s in Schedule.objects.all()}
    assert written == {e.name: (e.dotted, e.minutes) for e in tasks.SCHEDULES}


def test_a_schedule_no_longer_declared_is_removed_and_a_moved_one_follows():
    from django_q.models import Schedule

    from provisioning import tasks

    Schedule.objects.create(name="an old one", func="provisioning.tasks.renamed_long_ago",
                            schedule_type=Schedule.MINUTES, minutes=5)
    Schedule.objects.filter(name=tasks.SCHEDULES[0].name).update(func="provisioning.tasks.old")
    tasks.sync_schedules()
    assert not Schedule.objects.filter(name="an old one").exists()
    assert Schedule.objects.get(name=tasks.SCHEDULES[0].name).func == tasks.SCHEDULES[0].dotted


def test_the_queue_carries_ids_only(monkeypatch, admin):
    from provisioning import tasks

    sent = []
    monkeypatch.setattr(tasks, "async_task", lambda *args, **kwargs: sent.append(args))
    tasks.enqueue_operation(7)
    tasks.enqueue_pool_refill()
    tasks.enqueue_orphan_deletion([3, 4], admin.pk)
    for args in sent:
        assert all(isinstance(a, int | str | list | type(None)) for a in args), args
