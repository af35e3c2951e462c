"""One runner at a time holds an operation: it claims it with a conditional update and keeps
a heartbeat fresh; a runner that finds a fresh heartbeat leaves, and one that loses its claim
(a destroy superseded the operation) is told through ``Heartbeat.cancelled``."""

import threading
from datetime import timedelta

from django.db import connection
from django.db.models import Q
from django.utils import timezone

from .models import UNFINISHED_OPERATION_STATUSES, Operation, OperationStatus

HEARTBEAT_SECONDS = 5.0
# A heartbeat older than this means the runner died (a killed worker, a lost machine).
STALE_AFTER = timedelta(seconds=30)


def claim_operation(operation_id: int, token: str) -> bool:
    now = timezone.now()
    claimed = (
        Operation.objects.filter(
            pk=operation_id, status__in=UNFINISHED_OPERATION_STATUSES
        )
        .filter(Q(heartbeat_at__isnull=True) | Q(heartbeat_at__lt=now - STALE_AFTER))
        .update(status=OperationStatus.RUNNING, runner_token=token, heartbeat_at=now)
    )
    if claimed:
        Operation.objects.filter(pk=operation_id, started_at__isnull=True).update(started_at=now)
    return bool(claimed)


class Heartbeat:
    """Keeps the claim fresh in a thread; sets ``cancelled`` when the claim is lost."""

    def __init__(self, operation_id: int, token: str):
        self.operation_id = operation_id
        self.token = token
        self.cancelled = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True, name="heartbeat")

    def __enter__(self) -> "Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        try:
            while not self._stop.wait(HEARTBEAT_SECONDS):
                held = Operation.objects.filter(
                    pk=self.operation_id, runner_token=self.token,
                    status=OperationStatus.RUNNING,
                ).update(heartbeat_at=timezone.now())
                if not held:
                    self.cancelled.set()
        finally:
            connection.close()
