"""Which new operation a free worker starts: fair between people, destroys first, each ticket
starts at most one, and a lost race for a claim moves on to the next."""

import pytest

from provisioning import tasks
from provisioning.fairness import fairest_new_operations, start_fairest
from provisioning.models import OperationKind, OperationStatus
from tests.factories import make_operation, make_staging

pytestmark = pytest.mark.django_db


def queued(owner, name: str, kind: str = OperationKind.CREATE):
    return make_operation(make_staging(owner, name=name), kind)


def test_somebody_with_fewer_in_flight_goes_before_an_earlier_burst(alice, bob):
    bursts = [queued(bob, f"bob-{i}") for i in range(3)]
    late = queued(alice, "alice-1")
    assert fairest_new_operations() == [late.pk] + [op.pk for op in bursts]


def test_a_destroy_goes_first_whoever_asked(alice, bob):
    queued(alice, "alice-1")
    creates = [queued(bob, f"bob-{i}") for i in range(2)]
    destroy = queued(bob, "bob-old", OperationKind.DESTROY)
    assert fairest_new_operations()[0] == destroy.pk
    assert set(fairest_new_operations()[2:]) == {op.pk for op in creates}


def test_operations_already_started_count_but_are_not_started_again(alice, bob):
    running = [queued(bob, f"bob-{i}") for i in range(2)]
    for operation in running:
        operation.status = OperationStatus.RUNNING
        operation.save()
    bob_new = queued(bob, "bob-new")
    parked = queued(alice, "alice-parked")
    parked.status = OperationStatus.RUNNING
    parked.save()
    alice_new = queued(alice, "alice-new")
    # Bob has three in flight, Alice two: hers first although his is older.
    assert fairest_new_operations() == [alice_new.pk, bob_new.pk]


def test_a_ticket_starts_one_and_moves_past_lost_claims(alice, bob):
    first = queued(alice, "alice-1")
    second = queued(bob, "bob-1")
    queued(bob, "bob-2")
    tried = []

    def run(operation_id):  # another worker wins the first claim
        tried.append(operation_id)
        return operation_id != first.pk

    assert start_fairest(run) == second.pk
    assert tried == [first.pk, second.pk]


def test_a_ticket_with_nothing_left_does_nothing(alice):
    started = make_operation(make_staging(alice), status=OperationStatus.SUCCEEDED)
    assert start_fairest(lambda operation_id: pytest.fail(f"ran {operation_id}")) is None
    assert started.pk not in fairest_new_operations()


def test_requests_send_tickets_and_resumes_name_their_operation(monkeypatch):
    sent = []
    monkeypatch.setattr(tasks, "async_task", lambda func, *args, **kwargs: sent.append(
        (func, args)))
    tasks.enqueue_operation(7)
    tasks.enqueue_resume(8)
    assert sent == [("provisioning.tasks.start_next_operation_task", (7,)),
                    ("provisioning.tasks.run_operation_task", (8,))]
