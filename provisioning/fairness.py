"""Which new operation a free worker starts next: fair between people, destroys first.

The queue is first in, first out: eight creates one person submits together would be started
before a colleague's create submitted a moment later, and each start (the first round of a
create: image, task definitions, target group, restore call) takes a worker for a second or
more. So a request does not put *its* operation on the queue but a ticket: "start the fairest
new operation". A worker that takes a ticket starts the operation of whoever has the fewest
operations in flight (destroys before anything else, then the oldest), and every ticket starts
at most one, so each new operation still gets its start. A ticket that finds none left (its
operation was started by another ticket, or resumed as lost) does nothing.
"""

from django.db.models import Case, Count, IntegerField, OuterRef, Subquery, Value, When
from django.db.models.functions import Coalesce

from . import lifecycle
from .models import Operation, OperationStatus

# Candidates read per look; more are read when these were all taken by other workers meanwhile.
CANDIDATES = 8
# A ticket gives up after this many lost races (each one means some operation did start).
MAX_ATTEMPTS = 50


def fairest_new_operations(limit: int = CANDIDATES) -> list[int]:
    """Ids of operations nobody has started, fairest first."""
    in_flight = (Operation.objects.unfinished()
                 .filter(requested_by_id=OuterRef("requested_by_id"))
                 .order_by().values("requested_by_id").annotate(count=Count("pk"))
                 .values("count"))
    first = [kind for kind, rules in lifecycle.KINDS.items() if rules.jumps_queue]
    return list(
        Operation.objects.filter(status=OperationStatus.QUEUED, heartbeat_at__isnull=True)
        .annotate(queue_rank=Case(When(kind__in=first, then=Value(0)), default=Value(1),
                                  output_field=IntegerField()),
                  owner_in_flight=Coalesce(Subquery(in_flight), 0))
        .order_by("queue_rank", "owner_in_flight", "pk")
        .values_list("pk", flat=True)[:limit]
    )


def start_fairest(run) -> int | None:
    """Start (with ``run``, the runner's run_operation) the fairest new operation whose claim
    this worker wins; its id, or None when there was none left to start."""
    attempts = 0
    while attempts < MAX_ATTEMPTS:
        candidates = fairest_new_operations()
        if not candidates:
            return None
        for operation_id in candidates:
            attempts += 1
            if run(operation_id):
                return operation_id
    return None
