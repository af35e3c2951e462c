"""Waiting holds no worker: an operation whose steps all wait on AWS is parked (claim released,
``wake_at`` set) and put back on the queue when it is due; it resumes where it was."""

import time
from unittest import mock

import pytest
from django.utils import timezone

from provisioning.models import OperationStatus, StagingStatus, Step, StepState
from provisioning.operations import request_create, request_destroy
from provisioning.runner import run_operation
from provisioning.tasks import wake_parked_operations
from tests.conftest import BRANCH
from tests.factories import make_operation, make_staging, step_context
from tests.faults import restoring_for
from tests.running import steps_of

pytestmark = pytest.mark.django_db(transaction=True)


def wait_until_due(operation) -> None:
    operation.refresh_from_db()
    time.sleep(max((operation.wake_at - timezone.now()).total_seconds(), 0) + 0.01)


def test_a_waiting_operation_gives_its_worker_back_and_is_woken_once(host_env, alice, enqueued):
    staging = request_create(branch=BRANCH, owner=alice)
    operation = staging.latest_operation()
    with restoring_for(looks=3):
        assert run_operation(operation.pk, hold_seconds=0) is True
        operation.refresh_from_db()
        assert operation.status == OperationStatus.RUNNING
        assert (operation.runner_token, operation.heartbeat_at) == ("", None)
        assert operation.wake_at is not None
        assert steps_of(operation)["database"] == StepState.WAITING
        # What did not depend on the database went as far as it could before parking.
        assert steps_of(operation)["listener_rule"] == StepState.DONE
        first_start = operation.steps.get(key="database").started_at

        enqueued.clear()
        wait_until_due(operation)
        assert wake_parked_operations() == [operation.pk]
        assert wake_parked_operations() == []  # each wake-up is put on the queue once
        assert enqueued == [operation.pk]

        assert run_operation(operation.pk) is True  # tests hold through waits
    operation.refresh_from_db()
    staging.refresh_from_db()
    assert operation.status == OperationStatus.SUCCEEDED and operation.wake_at is None
    assert staging.status == StagingStatus.READY
    database = operation.steps.get(key="database")
    assert (database.attempts, database.started_at) == (1, first_start)
    assert database.memory == {} and database.parked_until is None


def test_a_lost_wake_up_is_delivered_again(host_env, alice, enqueued):
    staging = request_create(branch=BRANCH, owner=alice)
    operation = staging.latest_operation()
    with restoring_for(looks=100):
        run_operation(operation.pk, hold_seconds=0)
    wait_until_due(operation)
    assert wake_parked_operations() == [operation.pk]
    operation.refresh_from_db()
    # Nobody ran it (the worker died with the message): it is due again a minute later.
    assert 50 < (operation.wake_at - timezone.now()).total_seconds() <= 60
    with mock.patch("django.utils.timezone.now",
                    return_value=operation.wake_at + timezone.timedelta(seconds=1)):
        assert wake_parked_operations() == [operation.pk]


def test_a_destroy_takes_over_a_parked_create_at_once(host_env, alice, enqueued):
    staging = request_create(branch=BRANCH, owner=alice)
    create = staging.latest_operation()
    with restoring_for(looks=100):
        run_operation(create.pk, hold_seconds=0)
    destroy = request_destroy(staging, user=alice)
    create.refresh_from_db()
    assert create.status == OperationStatus.FAILED and create.wake_at is None
    assert steps_of(create)["database"] == StepState.PENDING
    assert create.steps.get(key="database").detail == "stopped before it finished"
    assert wake_parked_operations() == []
    assert run_operation(destroy.pk) is True
    destroy.refresh_from_db()
    assert destroy.status == OperationStatus.SUCCEEDED
    assert steps_of(destroy)["handover"] == StepState.SKIPPED


def test_a_wait_times_out_from_when_it_began_not_from_each_look(host_env, alice, settings):
    settings.DS_DB_WAIT_SECONDS = 0.3
    staging = request_create(branch=BRANCH, owner=alice)
    operation = staging.latest_operation()
    with restoring_for(looks=10_000):
        run_operation(operation.pk)
    operation.refresh_from_db()
    assert operation.status == OperationStatus.FAILED
    database = operation.steps.get(key="database")
    assert database.state == StepState.FAILED and database.error_code == "Timeout"
    assert "creating" in database.error_message


def test_what_a_step_remembers_survives_its_runs_until_it_finishes(alice):
    operation = make_operation(make_staging(alice))
    step_context(operation, "db_credentials").remember("password_set", True)
    assert step_context(operation, "db_credentials").recall("password_set") is True
    assert Step.objects.get(key="db_credentials").memory == {"password_set": True}


def test_a_worker_process_resumes_woken_operations_beside_the_queue(host_env, alice,
                                                                    enqueued):
    """The wake-up thread runs the rounds on threads of its own, never more than it has."""
    from provisioning.tasks import _Resumer

    stagings = [request_create(branch=branch, owner=alice) for branch in (BRANCH, "main")]
    operations = [staging.latest_operation() for staging in stagings]
    with restoring_for(looks=100):
        for operation in operations:
            run_operation(operation.pk, hold_seconds=0)
    resumer = _Resumer(threads=1)
    for operation in operations:
        wait_until_due(operation)
    enqueued.clear()
    woken = wake_parked_operations(limit=resumer.free(), resume=resumer.resume)
    assert len(woken) == 1 and enqueued == []  # one free thread: one taken, none queued
    deadline = time.monotonic() + 30
    while resumer.free() == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert resumer.free() == 1
