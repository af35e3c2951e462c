"""django-q2 entry points. The queue only carries operation ids; state lives in our models."""

import logging
from datetime import timedelta

from django.utils import timezone
from django_q.tasks import async_task

log = logging.getLogger(__name__)

# An operation queued this long ago that no runner has touched is taken as lost.
QUEUED_GRACE = timedelta(minutes=2)


def enqueue_operation(operation_id: int) -> None:
    async_task(
        "provisioning.tasks.run_operation_task", operation_id,
        task_name=f"operation-{operation_id}",
    )


def run_operation_task(operation_id: int) -> bool:
    from .runner import run_operation
    from .steps import plan_for

    return run_operation(operation_id, plan_for)


def resume_stalled_operations() -> list[int]:
    """Re-enqueue unfinished operations whose runner died (run every minute by a schedule).

    A killed worker leaves its operation "running" with a heartbeat that stops moving; the
    queue would redeliver it only after its long retry time. The runner's claim makes a
    duplicate delivery harmless, so re-enqueueing early is safe.
    """
    from .models import Operation, OperationStatus
    from .runner import STALE_AFTER

    now = timezone.now()
    stalled = Operation.objects.filter(
        status=OperationStatus.RUNNING, heartbeat_at__lt=now - STALE_AFTER
    ) | Operation.objects.filter(
        status=OperationStatus.QUEUED, heartbeat_at__isnull=True,
        created_at__lt=now - QUEUED_GRACE,
    )
    ids = list(stalled.values_list("pk", flat=True))
    for operation_id in ids:
        log.info("re-enqueueing stalled operation %s", operation_id)
        enqueue_operation(operation_id)
    return ids


def resume_after_start(**_signal) -> None:
    """Receives django-q2's ``post_spawn`` (each worker process as it starts; see apps.py).

    A qcluster killed with its workers leaves their operations "running" under a heartbeat
    that stops moving. The every-minute resume schedule is brought forward to the moment those
    heartbeats are stale, so a restarted cluster resumes its work about half a minute after
    it starts. Only an existing row is moved, and only earlier: workers and nodes starting
    together cannot make duplicates or put it off.
    """
    from django_q.models import Schedule

    from .runner import HEARTBEAT_SECONDS, STALE_AFTER

    due = timezone.now() + STALE_AFTER + timedelta(seconds=HEARTBEAT_SECONDS)
    try:
        Schedule.objects.filter(
            func="provisioning.tasks.resume_stalled_operations", next_run__gt=due
        ).update(next_run=due)
    except Exception:  # a worker must start even when this cannot be written
        log.exception("could not bring the resume schedule forward")


def sweep_orphans() -> int:
    """Record what AWS holds that no live staging owns (run every 15 minutes)."""
    from .sweep import sweep

    return len(sweep(delete=False))


def refill_pools() -> None:
    """Keep each source's warm pool at its configured size (run every minute)."""
    from .pool import refill_pools as refill

    refill()
