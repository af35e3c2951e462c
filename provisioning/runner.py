"""Runs one operation's step graph, persisting each step's state as it goes.

* Steps whose dependencies are done run at the same time, each in its own thread.
* A step row that is done stays done: running an operation again (after a crash, or a queue
  redelivery) resumes from what is finished, and every step is idempotent for the rest.
* One runner at a time holds an operation: it claims it with a conditional update and keeps a
  heartbeat fresh; a runner that finds a fresh heartbeat leaves. A runner that loses its claim
  (a destroy superseded a create) stops at its next AWS call.
"""

import logging
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import close_old_connections, connection
from django.db.models import Q
from django.utils import timezone

from .aws.base import AwsError, is_throttling, while_polling
from .config import EngineConfig, load_config
from .errors import ExternalCallFailed, OperationCancelled, StepTimedOut, UserError
from .models import (
    Operation,
    OperationKind,
    OperationStatus,
    Staging,
    StagingStatus,
    Step,
    StepState,
)
from .names import ResourceNames

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 5.0
# A heartbeat older than this means the runner died (a killed worker, a lost machine).
STALE_AFTER = timedelta(seconds=30)
# The longest pause between two checks of a waiting step while AWS throttles them.
MAX_THROTTLED_PAUSE = 60.0


class Skip(Exception):
    """A step that has nothing to do for this staging (e.g. no DB step in shared mode)."""


@dataclass(frozen=True)
class StepSpec:
    key: str
    label: str
    run: Callable[["StepContext"], dict | None]
    after: tuple[str, ...] = ()


@dataclass
class StepContext:
    """What a step may use: the staging, its derived names, the config, earlier outputs."""

    staging: Staging
    operation: Operation
    config: EngineConfig
    step: Step
    cancelled: threading.Event
    outputs: dict[str, dict] = field(default_factory=dict)

    @property
    def names(self) -> ResourceNames:
        return ResourceNames(self.staging.name, self.config.domain)

    def output(self, key: str) -> dict:
        return self.outputs.get(key, {})

    def progress(self, detail: str) -> None:
        detail = detail[:255]
        if detail != self.step.detail:
            self.step.detail = detail
            Step.objects.filter(pk=self.step.pk).update(detail=detail)

    def check_cancelled(self) -> None:
        if self.cancelled.is_set():
            raise OperationCancelled()

    def update_staging(self, **fields) -> None:
        for name, value in fields.items():
            setattr(self.staging, name, value)
        Staging.objects.filter(pk=self.staging.pk).update(updated_at=timezone.now(), **fields)

    def wait_until(
        self, what: str, check: Callable[[], tuple[bool, str]], timeout: float
    ) -> None:
        """Poll ``check`` (which answers done?, what it saw) until done or ``timeout``.

        The checks' AWS calls are made once each (aws.base.while_polling): a throttled check
        counts as "not yet", and the pause before the next one doubles while AWS keeps
        throttling (up to MAX_THROTTLED_PAUSE), so many waiting stagings slow down together
        instead of failing."""
        deadline = timezone.now() + timedelta(seconds=timeout)
        pause = self.config.poll_seconds
        seen = "not checked yet"
        while True:
            self.check_cancelled()
            try:
                with while_polling():
                    done, seen = check()
                pause = self.config.poll_seconds
            except AwsError as exc:
                if not is_throttling(exc):
                    raise
                done = False
                pause = min(max(pause, self.config.poll_seconds) * 2, MAX_THROTTLED_PAUSE)
                seen = f"AWS is throttling {exc.call} ({exc.code}); asking again in {pause:.0f} s"
            self.progress(seen)
            if done:
                return
            if timezone.now() >= deadline:
                raise StepTimedOut(what, timeout, seen)
            if self.cancelled.wait(pause):
                raise OperationCancelled()


def claim_operation(operation_id: int, token: str) -> bool:
    now = timezone.now()
    claimed = (
        Operation.objects.filter(
            pk=operation_id, status__in=[OperationStatus.QUEUED, OperationStatus.RUNNING]
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


def _ensure_step_rows(operation: Operation, plan: list[StepSpec]) -> dict[str, Step]:
    rows = {row.key: row for row in operation.steps.all()}
    for position, spec in enumerate(plan):
        if spec.key not in rows:
            rows[spec.key] = Step.objects.create(
                operation=operation, key=spec.key, label=spec.label, position=position
            )
        elif rows[spec.key].state in {StepState.RUNNING, StepState.FAILED}:
            # Interrupted or failed in an earlier run: it runs again (steps are idempotent).
            rows[spec.key].state = StepState.PENDING
            rows[spec.key].save(update_fields=["state"])
    return rows


def _record_failure(step: Step, exc: BaseException) -> None:
    if isinstance(exc, ExternalCallFailed):
        call, code, message = exc.call, exc.code, exc.message
    elif isinstance(exc, UserError):
        call, code, message = "", "UserError", exc.message
    else:
        call, code, message = "", type(exc).__name__, str(exc) or repr(exc)
    step.state = StepState.FAILED
    step.error_call, step.error_code, step.error_message = call[:128], code[:128], message
    step.finished_at = timezone.now()
    step.save(update_fields=["state", "error_call", "error_code", "error_message", "finished_at"])


def _run_step(spec: StepSpec, context: StepContext) -> bool:
    step = context.step
    try:
        step.state, step.started_at, step.finished_at = StepState.RUNNING, timezone.now(), None
        step.attempts += 1
        step.error_call = step.error_code = step.error_message = ""
        step.save()
        try:
            outputs = spec.run(context) or {}
            step.state, step.outputs = StepState.DONE, outputs
        except Skip as skip:
            step.state, step.detail = StepState.SKIPPED, str(skip)[:255]
        step.finished_at = timezone.now()
        step.save(update_fields=["state", "outputs", "detail", "finished_at"])
        return True
    except OperationCancelled:
        step.state, step.detail = StepState.PENDING, "stopped before it finished"
        step.save(update_fields=["state", "detail"])
        return False
    except Exception as exc:  # every failure is recorded on the step, whatever it is
        log.warning("step %s of %s failed: %s", spec.key, context.operation, exc, exc_info=True)
        _record_failure(step, exc)
        return False
    finally:
        connection.close()


def _execute(
    plan: list[StepSpec], contexts: dict[str, StepContext], cancelled: threading.Event,
    stop_on_failure: bool,
) -> None:
    done = {key for key, ctx in contexts.items() if ctx.step.is_finished}
    failed: set[str] = set()
    with ThreadPoolExecutor(max_workers=max(len(plan), 1)) as pool:
        running: dict[Future, str] = {}
        while True:
            if not cancelled.is_set() and not (failed and stop_on_failure):
                for spec in plan:
                    ready = all(dep in done for dep in spec.after)
                    if ready and spec.key not in done | failed | set(running.values()):
                        for key in spec.after:
                            contexts[spec.key].outputs[key] = contexts[key].step.outputs
                        running[pool.submit(_run_step, spec, contexts[spec.key])] = spec.key
            if not running:
                return
            finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for future in finished:
                key = running.pop(future)
                if future.result():
                    done.add(key)
                else:
                    failed.add(key)
                    if stop_on_failure:
                        cancelled.set()


FINAL_STATUS = {
    OperationKind.CREATE: StagingStatus.READY,
    OperationKind.REDEPLOY: StagingStatus.READY,
    OperationKind.DESTROY: StagingStatus.DESTROYED,
}
WORKING_STATUS = {
    OperationKind.CREATE: StagingStatus.PROVISIONING,
    OperationKind.REDEPLOY: StagingStatus.UPDATING,
    OperationKind.DESTROY: StagingStatus.DESTROYING,
}


def _failure_summary(operation: Operation) -> str:
    failed = operation.steps.filter(state=StepState.FAILED).first()
    if failed is None:
        return "The operation stopped before all steps finished."
    where = f" ({failed.error_call})" if failed.error_call else ""
    return f"{failed.label} failed{where}: {failed.error_code}: {failed.error_message}"


def _finish(operation: Operation, token: str) -> None:
    now = timezone.now()
    staging = operation.staging
    steps = list(operation.steps.all())
    succeeded = all(step.is_finished for step in steps)
    holder = Operation.objects.filter(pk=operation.pk, runner_token=token)
    if succeeded:
        if not holder.filter(status=OperationStatus.RUNNING).update(
            status=OperationStatus.SUCCEEDED, finished_at=now, runner_token=""
        ):
            return
        fields = {"status": FINAL_STATUS[operation.kind], "error": "", "updated_at": now}
        if operation.kind == OperationKind.DESTROY:
            fields["destroyed_at"] = now
        elif operation.kind == OperationKind.CREATE:
            fields["ready_at"] = now
        Staging.objects.filter(pk=staging.pk).update(**fields)
        return
    summary = _failure_summary(operation)
    if not holder.filter(status=OperationStatus.RUNNING).update(
        status=OperationStatus.FAILED, finished_at=now, error=summary, runner_token=""
    ):
        # Superseded (a destroy took over): only release the claim so the destroy may go on.
        holder.update(runner_token="")
        return
    Staging.objects.filter(pk=staging.pk).update(
        status=StagingStatus.FAILED, error=summary, updated_at=now
    )


def run_operation(operation_id: int, plan_for: Callable[[Operation], list[StepSpec]]) -> bool:
    """Run (or resume) the operation; False if another runner holds it or it is finished."""
    close_old_connections()
    token = uuid.uuid4().hex
    if not claim_operation(operation_id, token):
        log.info("operation %s is finished or held by another runner", operation_id)
        return False
    operation = Operation.objects.select_related("staging").get(pk=operation_id)
    Staging.objects.filter(pk=operation.staging_id).update(
        status=WORKING_STATUS[operation.kind], updated_at=timezone.now()
    )
    plan = plan_for(operation)
    rows = _ensure_step_rows(operation, plan)
    config = load_config()
    with Heartbeat(operation_id, token) as heartbeat:
        contexts = {
            spec.key: StepContext(
                staging=Staging.objects.get(pk=operation.staging_id),
                operation=operation, config=config, step=rows[spec.key],
                cancelled=heartbeat.cancelled,
            )
            for spec in plan
        }
        stop_on_failure = operation.kind != OperationKind.DESTROY
        _execute(plan, contexts, heartbeat.cancelled, stop_on_failure)
    _finish(operation, token)
    return True
