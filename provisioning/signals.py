"""What the engine tells whoever listens (notifications: the dashboard, e-mail, Slack, a pull
request): each sent once per operation, after the transaction that recorded it commits, with
ids only (a receiver reads what it needs; nothing stale or unpicklable travels).

* ``operation_finished``: ``operation_id``, ``staging_id``, ``kind``, ``succeeded``.
* ``step_failed``: ``operation_id``, ``staging_id``, ``kind``, ``step_id`` (the first failed
  step of a failed operation).
* ``expiry_warning``: ``staging_id``, ``window_hours`` (the DS_EXPIRY_WARN_HOURS window the
  staging's expiry has entered), ``expires_at``: once per window and expiry (an extension or
  a redeploy starts them over), sent by the every-minute expiry check (provisioning/expiry.py).
"""

import logging

from django.db import transaction
from django.dispatch import Signal

from .models import Operation, Staging, Step

log = logging.getLogger(__name__)

operation_finished = Signal()
step_failed = Signal()
expiry_warning = Signal()


def _send(signal: Signal, sender=Operation, **kwargs) -> None:
    """A receiver that fails is logged; it never fails the operation nor the other receivers."""
    for receiver, outcome in signal.send_robust(sender=sender, **kwargs):
        if isinstance(outcome, Exception):
            log.error("%s failed on %s", receiver, kwargs, exc_info=outcome)


def finished(operation: Operation, *, succeeded: bool, failed_step: Step | None = None) -> None:
    ids = {"operation_id": operation.pk, "staging_id": operation.staging_id,
           "kind": operation.kind}

    def send() -> None:
        _send(operation_finished, succeeded=succeeded, **ids)
        if failed_step is not None:
            _send(step_failed, step_id=failed_step.pk, **ids)

    transaction.on_commit(send)


def expiry_warned(*, staging_id: int, window_hours: float, expires_at) -> None:
    transaction.on_commit(lambda: _send(expiry_warning, sender=Staging, staging_id=staging_id,
                                        window_hours=window_hours, expires_at=expires_at))
