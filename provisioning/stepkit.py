"""What a step may use: its context (the staging, derived names, the config, earlier outputs,
progress, waiting without a worker, what it remembers) and the ways it ends besides returning
(Skip, Parked). Steps import this, never the runner, so the runner may ask the lifecycle
registry, which knows the steps."""

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.utils import timezone

from .aws.base import AwsError, is_throttling, while_polling
from .config import EngineConfig
from .errors import OperationCancelled, StepTimedOut
from .models import Operation, Staging, Step, StepLog, StepState
from .names import ResourceNames

# The longest pause between two checks of a waiting step while AWS throttles them.
MAX_THROTTLED_PAUSE = 60.0
# How much later than it could a long wait may notice it is over, and the longest pause
# between two of its looks, in polls (see StepContext.wait_until).
LONG_WAIT_SHARE = 0.05
LONG_WAIT_MAX_POLLS = 6
# AWS's describe calls are eventually consistent: what this very operation made a moment ago
# may not show yet. For this long after making it, "not found" means "not yet"; after it, or
# for anything an earlier operation made, it means gone, and a wait fails at once instead of
# asking again until its timeout.
PROPAGATION_SECONDS = 60.0


class Skip(Exception):
    """A step that has nothing to do for this staging (e.g. no DB step in shared mode)."""


class Parked(Exception):
    """The step waits on AWS: it is looked at again at ``until``, by whichever runner then
    holds the operation (raised by StepContext.wait_until, handled by the runner)."""

    def __init__(self, until: datetime):
        super().__init__(f"parked until {until.isoformat()}")
        self.until = until


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
    # Lines written to the step's log in this run, and one held back until another comes
    # (a waiting step looked at again and still waiting adds nothing to its log).
    lines_written: int = field(default=0, init=False)
    held_line: str = field(default="", init=False)

    @property
    def names(self) -> ResourceNames:
        return ResourceNames(self.staging.name, self.config.domain)

    def output(self, key: str) -> dict:
        return self.outputs.get(key, {})

    def progress(self, detail: str) -> None:
        """Show what the step is doing: the step's ``detail`` (the latest, cut to fit a
        listing) and, when it changed, a line of its log."""
        shown = detail[:255]
        if shown != self.step.detail:
            self.step.detail = shown
            Step.objects.filter(pk=self.step.pk).update(detail=shown)
            self.log(detail)

    def log(self, message: str) -> None:
        if self.held_line:
            StepLog.objects.write(self.step.pk, self.held_line)
            self.held_line = ""
        StepLog.objects.write(self.step.pk, message)
        self.lines_written += 1

    def log_if_more(self, message: str) -> None:
        """``message`` goes into the log just before the next line, or never if none comes."""
        self.held_line = message

    def check_cancelled(self) -> None:
        if self.cancelled.is_set():
            raise OperationCancelled()

    def update_staging(self, **fields) -> None:
        for name, value in fields.items():
            setattr(self.staging, name, value)
        Staging.objects.filter(pk=self.staging.pk).update(updated_at=timezone.now(), **fields)

    def finished_at(self, key: str) -> datetime | None:
        """When the step ``key`` of this operation finished doing its work (None: it did not,
        or it had nothing to do)."""
        return Step.objects.filter(operation_id=self.operation.pk, key=key,
                                   state=StepState.DONE).values_list(
                                       "finished_at", flat=True).first()

    def remember(self, key: str, value) -> None:
        """Keep ``value`` on the step until it finishes: a later run of the step (after a park
        or a crash) finds it with ``recall``. For what AWS cannot show was already done."""
        self.step.memory = {**self.step.memory, key: value}
        Step.objects.filter(pk=self.step.pk).update(memory=self.step.memory)

    def recall(self, key: str, default=None):
        return self.step.memory.get(key, default)

    def wait_until(
        self, what: str, check: Callable[[], tuple[bool, str]], timeout: float
    ) -> None:
        """Return once ``check`` (which answers done?, what it saw) says done; otherwise park
        the step (raise Parked) to be run again after ``poll_seconds``, until ``timeout``
        seconds have passed since this wait began (kept across runs of the step).

        The check's AWS calls are made once each (aws.base.while_polling): a throttled check
        counts as "not yet", and the pause before the next one doubles while AWS keeps
        throttling (up to MAX_THROTTLED_PAUSE), so many waiting stagings slow down together
        instead of failing.

        A long wait is looked at less often as it goes on: after ``poll_seconds``, a twentieth
        of the time waited so far (up to LONG_WAIT_MAX_POLLS polls). A 15-minute restore is so
        asked about ~40 times instead of ~90, and is seen done at most 5% late."""
        self.check_cancelled()
        waits = dict(self.recall(WAITS_KEY, {}))
        began, pause = waits.get(what, (timezone.now().isoformat(), 0.0))
        try:
            with while_polling():
                done, seen = check()
            pause = self._pause_after(datetime.fromisoformat(began))
        except AwsError as exc:
            if not is_throttling(exc):
                raise
            done = False
            pause = min(max(pause, self.config.poll_seconds) * 2, MAX_THROTTLED_PAUSE)
            seen = f"AWS is throttling {exc.call} ({exc.code}); asking again in {pause:.0f} s"
        self.progress(seen)
        if done:
            waits.pop(what, None)
            self.remember(WAITS_KEY, waits)
            return
        now = timezone.now()
        if now >= datetime.fromisoformat(began) + timedelta(seconds=timeout):
            raise StepTimedOut(what, timeout, seen)
        waits[what] = (began, pause)
        self.remember(WAITS_KEY, waits)
        raise Parked(now + timedelta(seconds=pause))


    def _pause_after(self, began: datetime) -> float:
        poll = self.config.poll_seconds
        waited = (timezone.now() - began).total_seconds()
        return max(poll, min(waited * LONG_WAIT_SHARE, poll * LONG_WAIT_MAX_POLLS))


def made_moments_ago(made_at: datetime | str | None) -> bool:
    """Whether ``made_at`` (a time, or ISO 8601 as a step remembers it) lies within
    PROPAGATION_SECONDS of now."""
    if not made_at:
        return False
    if isinstance(made_at, str):
        made_at = datetime.fromisoformat(made_at)
    return timezone.now() - made_at < timedelta(seconds=PROPAGATION_SECONDS)


# Where a step keeps, per wait, when it began and the current pause between checks.
WAITS_KEY = "waits"
