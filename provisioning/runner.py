"""Runs one operation's step graph, persisting each step's state as it goes.

* Steps whose dependencies are done run at the same time, each in its own thread.
* A step row that is done stays done: running an operation again (after a crash, or a queue
  redelivery) resumes from what is finished, and every step is idempotent for the rest.
* One runner at a time holds an operation: it claims it with a conditional update and keeps a
  heartbeat fresh; a runner that finds a fresh heartbeat leaves. A runner that loses its claim
  (a destroy superseded a create) stops at its next AWS call.
* Waiting holds no worker. A step waiting on AWS (a restore, a service start, a drain) checks
  once and, when it is not there yet, is parked: the runner goes on with the other steps, and
  once every unfinished step waits, it parks the operation (``wake_at``, claim released) and
  gives its worker back. tasks.wake_parked_operations puts it on the queue again when it is time
  to look, and the next run resumes those steps from the top (every step is idempotent; what a
  step must not do twice it keeps in ``StepContext.remember``). A handful of workers so drives
  any number of operations in flight, and nobody's request waits behind somebody's restore.
"""

import logging
import threading
import time
import uuid
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import datetime

from django.db import close_old_connections, connection
from django.utils import timezone

from . import lifecycle, signals
from .claims import Heartbeat, claim_operation
from .config import EngineConfig, load_config
from .errors import ExternalCallFailed, OperationCancelled, UserError
from .models import Operation, OperationStatus, Staging, Step, StepLog, StepState
from .stepkit import WAITS_KEY, Parked, Skip, StepContext, StepSpec

log = logging.getLogger(__name__)


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
    step.parked_until = None
    step.save(update_fields=["state", "error_call", "error_code", "error_message", "finished_at",
                             "parked_until"])


DONE, PARKED, STOPPED = "done", "parked", "stopped"


def _start(context: StepContext) -> None:
    """A waiting step goes on where it was; any other starts afresh (keeping what it
    remembered of its deeds, not the clocks of its waits)."""
    step = context.step
    if step.state == StepState.WAITING:
        context.log_if_more("looked at again")
    else:
        step.started_at, step.finished_at = timezone.now(), None
        step.attempts += 1
        step.error_call = step.error_code = step.error_message = ""
        step.memory = {k: v for k, v in step.memory.items() if k != WAITS_KEY}
        context.log("started" if step.attempts == 1 else f"started (attempt {step.attempts})")
    step.state, step.parked_until = StepState.RUNNING, None
    step.save()


def _failure_line(step: Step) -> str:
    call = f"{step.error_call}: " if step.error_call else ""
    return f"failed: {call}{step.error_code}: {step.error_message}"


def _run_step(spec: StepSpec, context: StepContext) -> str:
    step = context.step
    try:
        _start(context)
        try:
            outputs = spec.run(context) or {}
            step.state, step.outputs = StepState.DONE, outputs
            line = f"done in {_seconds(step)}"
        except Skip as skip:
            step.state, step.detail = StepState.SKIPPED, str(skip)[:255]
            line = f"skipped: {skip}"
        except Parked as parked:
            step.state, step.parked_until = StepState.WAITING, parked.until
            step.save(update_fields=["state", "parked_until"])
            if context.lines_written:
                wait = max((parked.until - timezone.now()).total_seconds(), 0)
                context.log(f"waiting on AWS; looks again in {wait:.0f} s")
            return PARKED
        step.finished_at, step.memory = timezone.now(), {}
        step.save(update_fields=["state", "outputs", "detail", "finished_at", "memory"])
        context.log(line)
        return DONE
    except OperationCancelled:
        step.state, step.detail = StepState.PENDING, "stopped before it finished"
        step.save(update_fields=["state", "detail"])
        context.log(step.detail)
        return STOPPED
    except Exception as exc:  # every failure is recorded on the step, whatever it is
        log.warning("step %s of %s failed: %s", spec.key, context.operation, exc, exc_info=True)
        _record_failure(step, exc)
        context.log(_failure_line(step))
        return STOPPED
    finally:
        connection.close()


def _seconds(step: Step) -> str:
    return f"{(timezone.now() - step.started_at).total_seconds():.1f} s"


def _is_parked(step: Step, now: datetime) -> bool:
    return step.state == StepState.WAITING and bool(step.parked_until) and step.parked_until > now


def _execute(
    plan: list[StepSpec], contexts: dict[str, StepContext], cancelled: threading.Event,
    stop_on_failure: bool,
) -> None:
    """Run every step that can run now, each as soon as its dependencies are done; return
    when none is running and none can start (the rest is done, failed or waiting)."""
    now = timezone.now()
    done = {key for key, ctx in contexts.items() if ctx.step.is_finished}
    parked = {key for key, ctx in contexts.items() if _is_parked(ctx.step, now)}
    failed: set[str] = set()
    with ThreadPoolExecutor(max_workers=max(len(plan), 1)) as pool:
        running: dict[Future, str] = {}
        while True:
            if not cancelled.is_set() and not (failed and stop_on_failure):
                for spec in plan:
                    ready = all(dep in done for dep in spec.after)
                    if ready and spec.key not in done | failed | parked | set(running.values()):
                        for key in spec.after:
                            contexts[spec.key].outputs[key] = contexts[key].step.outputs
                        running[pool.submit(_run_step, spec, contexts[spec.key])] = spec.key
            if not running:
                return
            finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for future in finished:
                key = running.pop(future)
                outcome = future.result()
                if outcome == DONE:
                    done.add(key)
                elif outcome == PARKED:
                    parked.add(key)
                else:
                    failed.add(key)
                    if stop_on_failure:
                        cancelled.set()


def _failure_summary(operation: Operation) -> str:
    failed = operation.steps.filter(state=StepState.FAILED).first()
    if failed is None:
        return "The operation stopped before all steps finished."
    where = f" ({failed.error_call})" if failed.error_call else ""
    return f"{failed.label} failed{where}: {failed.error_code}: {failed.error_message}"


def _finish(operation: Operation, token: str) -> None:
    """Record how the operation ended, on it and on its staging (the statuses the lifecycle
    registry names), and tell whoever listens (signals), once: the conditional update on the
    claim lets only one runner get here for an operation."""
    now = timezone.now()
    rules = lifecycle.rules_for(operation.kind)
    steps = list(operation.steps.all())
    succeeded = all(step.is_finished for step in steps)
    holder = Operation.objects.filter(pk=operation.pk, runner_token=token)
    if succeeded:
        if not holder.filter(status=OperationStatus.RUNNING).update(
            status=OperationStatus.SUCCEEDED, finished_at=now, runner_token="", wake_at=None
        ):
            return
        fields = {"status": rules.success_status, "error": "", "updated_at": now}
        if rules.success_stamp:
            fields[rules.success_stamp] = now
        Staging.objects.filter(pk=operation.staging_id).update(**fields)
        signals.finished(operation, succeeded=True)
        return
    summary = _failure_summary(operation)
    stop_waiting_steps(operation.pk)
    if not holder.filter(status=OperationStatus.RUNNING).update(
        status=OperationStatus.FAILED, finished_at=now, error=summary, runner_token="",
        wake_at=None,
    ):
        # Superseded (a destroy took over): only release the claim so the destroy may go on.
        holder.update(runner_token="")
        return
    Staging.objects.filter(pk=operation.staging_id).update(
        status=rules.failure_status, error=summary, updated_at=now
    )
    failed = next((step for step in steps if step.state == StepState.FAILED), None)
    signals.finished(operation, succeeded=False, failed_step=failed)


def _park(operation: Operation, token: str, steps: list[Step]) -> datetime | None:
    """Give the worker back until the earliest waiting step is due; that time, or None when
    the claim was lost meanwhile (a destroy superseded the operation)."""
    wake_at = min(step.parked_until or timezone.now() for step in steps
                  if step.state == StepState.WAITING)
    holder = Operation.objects.filter(pk=operation.pk, runner_token=token)
    if holder.filter(status=OperationStatus.RUNNING).update(
            runner_token="", heartbeat_at=None, wake_at=wake_at):
        return wake_at
    holder.update(runner_token="")
    stop_waiting_steps(operation.pk)
    return None


def stop_waiting_steps(operation_id: int) -> None:
    """Steps of an operation that ended (failed, or superseded by a destroy) will not be
    looked at again: they show as stopped, not as waiting."""
    waiting = Step.objects.filter(operation_id=operation_id, state=StepState.WAITING)
    stopped = list(waiting.values_list("pk", flat=True))
    waiting.filter(pk__in=stopped).update(
        state=StepState.PENDING, parked_until=None, detail="stopped before it finished")
    for step_id in stopped:
        StepLog.objects.write(step_id, "stopped before it finished: the operation ended")


def _settle(operation: Operation, token: str, stop_on_failure: bool) -> datetime | None:
    """After a round: park the operation while steps wait (and, for a kind that stops on a
    failure, none failed); else finish it. The time to wake it, or None when finished."""
    steps = list(operation.steps.all())
    waiting = any(step.state == StepState.WAITING for step in steps)
    failed = any(step.state == StepState.FAILED for step in steps)
    if waiting and not (failed and stop_on_failure):
        return _park(operation, token, steps)
    _finish(operation, token)
    return None


def _run_round(operation_id: int, config: EngineConfig) -> tuple[bool, datetime | None]:
    """One run of whatever can run now: (claimed?, when to wake the operation or None)."""
    token = uuid.uuid4().hex
    if not claim_operation(operation_id, token):
        log.info("operation %s is finished or held by another runner", operation_id)
        return False, None
    operation = Operation.objects.select_related("staging").get(pk=operation_id)
    rules = lifecycle.rules_for(operation.kind)
    Staging.objects.filter(pk=operation.staging_id).update(
        status=rules.working_status, updated_at=timezone.now()
    )
    plan = rules.plan(operation)
    rows = _ensure_step_rows(operation, plan)
    with Heartbeat(operation_id, token) as heartbeat:
        contexts = {
            spec.key: StepContext(
                staging=Staging.objects.get(pk=operation.staging_id),
                operation=operation, config=config, step=rows[spec.key],
                cancelled=heartbeat.cancelled,
            )
            for spec in plan
        }
        _execute(plan, contexts, heartbeat.cancelled, rules.stop_on_failure)
    return True, _settle(operation, token, rules.stop_on_failure)


def run_operation(operation_id: int, *, hold_seconds: float | None = None) -> bool:
    """Run (or resume) the operation until it finishes, or until it is parked to be looked at
    more than ``hold_seconds`` (DS_HOLD_WORKER_SECONDS) from now: then this worker is free
    and the queue brings the operation back when it is due. False if another runner holds it
    or it is finished."""
    close_old_connections()
    config = load_config()
    hold = config.hold_worker_seconds if hold_seconds is None else hold_seconds
    ran = False
    while True:
        claimed, wake_at = _run_round(operation_id, config)
        ran = ran or claimed
        if not claimed or wake_at is None:
            return ran
        delay = (wake_at - timezone.now()).total_seconds()
        if delay > hold:
            return True
        if delay > 0:
            time.sleep(delay)
