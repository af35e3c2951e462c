"""django-q2 entry points: the one way into the queue. Everything enqueued goes through here
and carries ids only (never a model object: it would be pickled, stale and large); state lives
in our models. The periodic schedules are declared here too, in code, and written to the
queue's table at start (``sync_schedules``), so a renamed function fails a test rather than a
schedule at 3 a.m. Each run of a scheduled function (``@scheduled``, also when enqueued at once
like a pool refill after a claim) leaves a ScheduleRun row: what it did, or how it failed."""

import functools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import close_old_connections, connection
from django.utils import timezone
from django_q.tasks import async_task

log = logging.getLogger(__name__)

# An operation queued this long ago that no runner has touched is taken as lost.
QUEUED_GRACE = timedelta(minutes=2)
# A parked operation put back on the queue is due again after this if no runner took it (the
# delivery was lost with a worker): waking it again is harmless, the runner's claim decides.
REDELIVER_AFTER = timedelta(minutes=1)
# How often each worker process looks for parked operations that are due.
MIN_TICK_SECONDS, MAX_TICK_SECONDS = 0.2, 5.0


def _dotted(func) -> str:
    return f"{func.__module__}.{func.__qualname__}"


@dataclass(frozen=True)
class Every:
    """A periodic task: ``func`` every ``minutes``."""

    name: str
    func: Callable
    minutes: int

    @property
    def dotted(self) -> str:
        return _dotted(self.func)


# Runs kept per schedule: for one that runs every minute, the last eight hours or so.
SCHEDULE_RUNS_KEPT = 500


def _said(result) -> tuple[str, str]:
    return ("" if result is None else str(result)), ""


def scheduled(name: str, minutes: int, describe: Callable[[Any], tuple[str, str]] = _said):
    """Declare ``func`` a periodic task (its ``Every`` is ``func.every``) whose every run leaves
    a ScheduleRun row: started, finished, ``describe(result)`` as (outcome, error), or the
    exception it raised (raised again, so the queue records the failure too). The function
    keeps its dotted name, so the queue's schedule row still names it."""

    def declare(func: Callable[[], Any]) -> Callable[[], Any]:
        @functools.wraps(func)
        def recorded():
            return _run_recorded(name, func, describe)

        recorded.every = Every(name, recorded, minutes)
        return recorded

    return declare


def _run_recorded(name: str, func: Callable[[], Any],
                  describe: Callable[[Any], tuple[str, str]]):
    from .models import ScheduleRun

    run = ScheduleRun.objects.create(name=name)
    try:
        result = func()
    except Exception as exc:
        ScheduleRun.objects.filter(pk=run.pk).update(
            finished_at=timezone.now(), error=f"{type(exc).__name__}: {exc}")
        raise
    else:
        outcome, error = describe(result)
        ScheduleRun.objects.filter(pk=run.pk).update(
            finished_at=timezone.now(), outcome=outcome, error=error)
    finally:
        boundary = list(ScheduleRun.objects.filter(name=name).order_by("-pk").values_list(
            "pk", flat=True)[SCHEDULE_RUNS_KEPT:SCHEDULE_RUNS_KEPT + 1])
        if boundary:
            ScheduleRun.objects.filter(name=name, pk__lte=boundary[0]).delete()
    return result


def enqueue_operation(operation_id: int) -> None:
    """A new request: a ticket to start the fairest new operation, which need not be this one
    (see fairness.py); the id names the task in the queue's admin."""
    async_task(_dotted(start_next_operation_task), operation_id,
               task_name=f"operation-{operation_id}")


def enqueue_resume(operation_id: int) -> None:
    """An operation already started (woken, or lost by a dead worker): run exactly this one."""
    async_task(_dotted(run_operation_task), operation_id, task_name=f"resume-{operation_id}")


def enqueue_pool_refill() -> None:
    """Refill soon rather than at the next minute's schedule (after a create took one)."""
    async_task(_dotted(refill_pools), task_name="refill-pools")


def enqueue_orphan_deletion(orphan_ids: list[int], actor_id: int | None) -> None:
    """Removing a service waits for it to drain, minutes on real AWS: never in a request."""
    async_task(_dotted(delete_orphans_task), list(orphan_ids), actor_id,
               task_name=f"delete-leftovers-{'-'.join(map(str, orphan_ids))}"[:100])


def enqueue_notification(notification_id: int) -> None:
    """Send a notification outside the transaction that made it (a slow mail server or Slack
    never holds up an operation's end)."""
    async_task(_dotted(deliver_notification_task), notification_id,
               task_name=f"notification-{notification_id}")


def enqueue_slack_request(request_id: int) -> None:
    """A slash command or button press: Slack wants its answer within 3 seconds, and who
    typed it, the engine and AWS may take longer, so the request only records it."""
    async_task(_dotted(answer_slack_request_task), request_id,
               task_name=f"slack-request-{request_id}")


def answer_slack_request_task(request_id: int) -> str:
    from .slack.bot import answer

    return answer(request_id)


def run_operation_task(operation_id: int) -> bool:
    from .runner import run_operation

    return run_operation(operation_id)


def start_next_operation_task(ticket: int) -> int | None:
    """The operation started for the ticket of request ``ticket``, or None."""
    from .fairness import start_fairest
    from .runner import run_operation

    started = start_fairest(run_operation)
    log.info("ticket of operation %s started operation %s", ticket, started)
    return started


def wake_parked_operations(limit: int | None = None,
                           resume: Callable[[int], None] | None = None) -> list[int]:
    """Resume parked operations whose time has come, at most ``limit`` of them (by default on
    the queue; the wake-up thread of a worker process runs them itself, see _Resumer). Each
    once: a conditional update on the ``wake_at`` that was read, so several processes and
    nodes never double one; if the one that took it dies, it is due again a minute later."""
    from .models import Operation, OperationStatus

    now = timezone.now()
    due = Operation.objects.filter(status=OperationStatus.RUNNING, runner_token="",
                                   wake_at__lte=now).order_by("wake_at")
    woken = []
    for operation_id, wake_at in due.values_list("pk", "wake_at")[:limit]:
        if Operation.objects.filter(pk=operation_id, wake_at=wake_at, runner_token="").update(
                wake_at=now + REDELIVER_AFTER):
            (resume or enqueue_resume)(operation_id)
            woken.append(operation_id)
    return woken


class _Resumer:
    """A few threads in each worker process that run the rounds of woken operations, beside
    the queue rather than through it: a round of an operation that waits is short and mostly
    waits on AWS, and through the queue thousands of them a minute would line up in front of
    the new requests. The queue's workers so stay free for new creates, redeploys and
    destroys, which never wait behind somebody's restore."""

    def __init__(self, threads: int):
        self._threads = threads
        self._busy = 0
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="resume")

    def free(self) -> int:
        with self._lock:
            return self._threads - self._busy

    def resume(self, operation_id: int) -> None:
        with self._lock:
            self._busy += 1
        self._pool.submit(self._run, operation_id)

    def _run(self, operation_id: int) -> None:
        from .runner import run_operation

        try:
            close_old_connections()
            run_operation(operation_id)
        except Exception:  # the claim's heartbeat goes stale and the operation is resumed
            log.exception("resuming operation %s failed", operation_id)
        finally:
            connection.close()
            with self._lock:
                self._busy -= 1


_ticker: threading.Thread | None = None
_ticker_lock = threading.Lock()


def start_wake_ticker(**_signal) -> None:
    """Receives django-q2's ``post_spawn``: each worker process keeps one thread that wakes
    parked operations, every half poll interval (0.2-5 s), and runs their rounds on
    DS_RESUME_THREADS threads of its own."""
    global _ticker
    with _ticker_lock:
        if _ticker is not None and _ticker.is_alive():
            return
        _ticker = threading.Thread(target=_tick_forever, name="wake-parked", daemon=True)
        _ticker.start()


def _tick_forever() -> None:
    from .config import load_config

    config = load_config()
    interval = min(max(config.poll_seconds / 2, MIN_TICK_SECONDS), MAX_TICK_SECONDS)
    resumer = _Resumer(config.resume_threads)
    while True:
        try:
            close_old_connections()
            if resumer.free():
                wake_parked_operations(limit=resumer.free(), resume=resumer.resume)
        except Exception:  # the next tick tries again; a worker must never lose this thread
            log.exception("could not wake parked operations")
        time.sleep(interval)


def _resumed(ids: list[int]) -> tuple[str, str]:
    if not ids:
        return "nothing stalled", ""
    return f"re-enqueued {len(ids)} stalled operation(s): {', '.join(map(str, ids))}", ""


@scheduled("resume stalled operations", minutes=1, describe=_resumed)
def resume_stalled_operations() -> list[int]:
    """Re-enqueue unfinished operations whose runner died (run every minute by a schedule).

    A killed worker leaves its operation "running" with a heartbeat that stops moving; the
    queue would redeliver it only after its long retry time. The runner's claim makes a
    duplicate delivery harmless, so re-enqueueing early is safe.
    """
    from .claims import STALE_AFTER
    from .models import Operation, OperationStatus

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
        enqueue_resume(operation_id)
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

    from .claims import HEARTBEAT_SECONDS, STALE_AFTER

    due = timezone.now() + STALE_AFTER + timedelta(seconds=HEARTBEAT_SECONDS)
    try:
        Schedule.objects.filter(
            func=_dotted(resume_stalled_operations), next_run__gt=due
        ).update(next_run=due)
    except Exception:  # a worker must start even when this cannot be written
        log.exception("could not bring the resume schedule forward")


def _swept(result) -> tuple[str, str]:
    return result.summary(), ""


@scheduled("sweep orphaned resources", minutes=15, describe=_swept)
def sweep_orphans():
    """Compare our records with AWS both ways (run every 15 minutes): mark the stagings whose
    resources AWS no longer has lost, and record what AWS holds that no staging owns (never
    deleting it). What it found (reconcile.Reconciled)."""
    from .reconcile import find_lost
    from .sweep import sweep

    found = find_lost()
    found.orphans = sweep(delete=False)
    return found


def _refilled(result) -> tuple[str, str]:
    return result.summary(), "; ".join(result.errors)


@scheduled("refill warm database pools", minutes=1, describe=_refilled)
def refill_pools():
    """Keep each source's warm pool at its configured size (run every minute): what it did."""
    from .pool import refill_pools as refill

    return refill()


def _expired(result) -> tuple[str, str]:
    return result.summary(), ""


@scheduled("destroy expired stagings", minutes=1, describe=_expired)
def expire_stagings():
    """Warn of coming expiries and destroy the expired stagings (run every minute); each
    destroy is enqueued by its operation's id."""
    from .expiry import check

    return check()


def delete_orphans_task(orphan_ids: list[int], actor_id: int | None) -> int:
    from django.contrib.auth import get_user_model

    from .sweep import delete_orphans

    actor = get_user_model().objects.filter(pk=actor_id).first() if actor_id else None
    return len(delete_orphans(orphan_ids, actor))


def deliver_notification_task(notification_id: int) -> str:
    from .notifications import deliver

    return deliver(notification_id)


def _delivered(ids: list[int]) -> tuple[str, str]:
    return (f"{len(ids)} notification(s) sent" if ids else "nothing due"), ""


@scheduled("deliver due notifications", minutes=1, describe=_delivered)
def deliver_due_notifications() -> list[int]:
    """Retries of failed sends, and notifications whose queued delivery was lost."""
    from .notifications import deliver_due

    return deliver_due()


SCHEDULES = (resume_stalled_operations.every, sweep_orphans.every, refill_pools.every,
             expire_stagings.every, deliver_due_notifications.every)


def recent_runs(per_schedule: int = 5) -> list[tuple[Every, list]]:
    """Each declared schedule with its newest runs (ScheduleRun rows), newest first."""
    from .models import ScheduleRun

    return [(every, list(ScheduleRun.objects.filter(name=every.name)
                         .order_by("-started_at", "-pk")[:per_schedule]))
            for every in SCHEDULES]


def sync_schedules(**_signal) -> None:
    """Write SCHEDULES to the queue's table (after every ``migrate``, see apps.py): each by its
    name, with the function it names now; a schedule of ours no longer declared is removed."""
    from django_q.models import Schedule

    for every in SCHEDULES:
        Schedule.objects.update_or_create(name=every.name, defaults={
            "func": every.dotted, "schedule_type": Schedule.MINUTES,
            "minutes": every.minutes, "repeats": -1})
    Schedule.objects.filter(func__startswith=f"{__name__}.").exclude(
        name__in=[every.name for every in SCHEDULES]).delete()
