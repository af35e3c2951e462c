"""How far a staging's latest operation has got, and a guess at the time it still needs.

Each step's usual duration is the median over recent finished operations of the same kind;
before this installation has timed a step, the engine's expected duration on the AWS in use
(the lifecycle registry's real-AWS figures, scaled to the sandbox's speed in the sandbox).

* Time left walks the operation's step graph: a step still to run finishes after its slowest
  dependency plus its usual duration; a step under way (running, or waiting on AWS) has its
  usual duration less what it has taken so far. Steps run side by side, so the answer is the
  longest chain, not the sum.
* A step under way well past its usual duration is said to be late, with both numbers ("taking
  longer than usual: 3 min so far, usually 1 min"): how much longer it takes is not known, and
  a time left would pretend it is.
* The bar follows expected time, not the count of steps: each step weighs its usual duration,
  done steps count whole and steps under way by the share of it they have taken; it stays
  below 100% until the operation has succeeded.

Polling asks for this every two seconds: it costs the same few SQL queries however many
stagings, operations and steps the database holds, and the medians come from the cache most of
the time. The fleet asks for every operation under way at once (one query for their steps).
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from statistics import median

from django.core.cache import cache
from django.db.models import Subquery
from django.utils import timezone

from provisioning import engine, lifecycle
from provisioning.models import (
    FINISHED_OPERATION_STATUSES,
    Operation,
    OperationKind,
    OperationStatus,
    Staging,
    StagingStatus,
    Step,
    StepState,
)
from provisioning.presenters import operation_outcome

UNKNOWN_STEP_SECONDS = 10.0
# Enough history for a stable median, little enough to read on every poll: the steps of the
# latest finished operations of a kind, found through the (kind, finished_at) index.
HISTORY_OPERATIONS = 50
# Every open progress partial polls every two seconds; the medians move slowly.
TYPICAL_CACHE_SECONDS = 30
# A step running longer than usual is not done yet: it still counts for a little.
MIN_REMAINING_SECONDS = 5.0
# A step under way is late past this share of its usual duration (and at least
# MIN_REMAINING_SECONDS past it): a median is passed by half the runs, by a little.
LATE_SHARE = 1.25
# Until the operation has succeeded its last step may still fail: the bar never shows done.
UNFINISHED_MAX_PERCENT = 99
UNDER_WAY = frozenset({StepState.RUNNING, StepState.WAITING})
FINISHED_STEP_STATES = frozenset({StepState.DONE, StepState.SKIPPED})


@dataclass(frozen=True)
class StepTimes:
    """What an estimate reads of a step: the fleet's rows read only this of their steps'
    rows (a model instance per step costs more than the rest of a row)."""

    key: str
    label: str = ""
    state: str = StepState.PENDING
    started_at: datetime | None = None

    @property
    def is_finished(self) -> bool:
        return self.state in FINISHED_STEP_STATES


def typical_step_seconds(kind: str) -> dict[str, float]:
    """Usual duration per step key: the median over the latest finished operations of
    ``kind``, else the engine's expected duration (one query, then kept for
    TYPICAL_CACHE_SECONDS)."""
    key = f"progress:typical-step-seconds:{kind}"
    typical = cache.get(key)
    if typical is None:
        typical = _measured_step_seconds(kind)
        cache.set(key, typical, TYPICAL_CACHE_SECONDS)
    return typical


def _measured_step_seconds(kind: str) -> dict[str, float]:
    latest = (Operation.objects
              .filter(kind=kind, status__in=FINISHED_OPERATION_STATUSES)
              .order_by("-finished_at")
              .values("pk")[:HISTORY_OPERATIONS])
    rows = Step.objects.filter(
        operation__in=Subquery(latest), state=StepState.DONE,
        started_at__isnull=False, finished_at__isnull=False,
    ).order_by().values_list("key", "started_at", "finished_at")
    seen: dict[str, list[float]] = defaultdict(list)
    for key, started, finished in rows:
        seen[key].append(max((finished - started).total_seconds(), 0.0))
    typical = engine.expected_step_seconds(kind)
    typical.update({key: median(values) for key, values in seen.items()})
    return typical


def step_dependencies(operation: Operation,
                      steps: list[Step | StepTimes]) -> dict[str, tuple[str, ...]]:
    """Each step's dependencies from the operation's plan; if the plan cannot be built (the
    configuration changed under it), take the steps as a chain in their recorded order."""
    try:
        return {spec.key: spec.after for spec in lifecycle.plan_for(operation)}
    except Exception:  # an estimate must never break the page
        keys = [step.key for step in steps]
        return {key: tuple(keys[:i][-1:]) for i, key in enumerate(keys)}


def _plan_shape(operation: Operation) -> tuple:
    """What an operation's plan depends on besides the configuration (steps/__init__.py)."""
    return operation.kind, operation.staging.db_mode, operation.staging.source


@dataclass(frozen=True)
class LateStep:
    """A step under way well past its usual duration."""

    key: str
    label: str
    elapsed: float
    usual: float


@dataclass(frozen=True)
class Estimate:
    seconds_left: float  # the longest chain still ahead
    # The same, with each late step taken as ending now: what follows it, at the least.
    seconds_after_late: float
    share_done: float  # of the expected time, 0 to 1
    late: tuple[LateStep, ...] = ()

    @property
    def late_holds_up(self) -> bool:
        """A late step is on the longest chain: how long is left depends on when it ends,
        which nobody knows."""
        return self.seconds_left > self.seconds_after_late


def _elapsed(step: Step | StepTimes, now: datetime) -> float | None:
    """Seconds a step under way has taken so far (a wait on AWS keeps its start)."""
    if step.state in UNDER_WAY and step.started_at:
        return max((now - step.started_at).total_seconds(), 0.0)
    return None


def _longest_chain(steps: dict[str, Step | StepTimes], after: dict[str, tuple[str, ...]],
                   usual: dict[str, float], own: dict[str, float]) -> float:
    """When the last step ends, from now: a step under way or over ends after ``own`` (its
    remaining seconds), a step to come after its slowest dependency plus its usual time."""
    finish: dict[str, float] = {}

    def finish_of(key: str, visiting: frozenset = frozenset()) -> float:
        if key not in finish:
            if key in own:
                finish[key] = own[key]
            else:
                deps = [d for d in after.get(key, ()) if d in steps and d not in visiting]
                finish[key] = max((finish_of(d, visiting | {key}) for d in deps),
                                  default=0.0) + usual[key]
        return finish[key]

    return max((finish_of(key) for key in steps), default=0.0)


def estimate(steps: list[Step | StepTimes], after: dict[str, tuple[str, ...]],
             typical: dict[str, float], now: datetime | None = None) -> Estimate:
    now = now or timezone.now()
    by_key = {step.key: step for step in steps}
    usual = {key: typical.get(key, UNKNOWN_STEP_SECONDS) for key in by_key}
    own: dict[str, float] = {}  # finished, failed and under way: their own remaining seconds
    late: list[LateStep] = []
    done_weight = 0.0
    for key, step in by_key.items():
        expected, elapsed = usual[key], _elapsed(step, now)
        if step.is_finished or step.state == StepState.FAILED:
            own[key] = 0.0
            done_weight += expected if step.is_finished else 0.0
        elif elapsed is not None:
            own[key] = max(expected - elapsed, MIN_REMAINING_SECONDS)
            done_weight += min(elapsed, expected)
            if elapsed > max(expected * LATE_SHARE, expected + MIN_REMAINING_SECONDS):
                late.append(LateStep(key, step.label or key, elapsed, expected))
    total_weight = sum(usual.values())
    left = _longest_chain(by_key, after, usual, own)
    return Estimate(
        seconds_left=left,
        seconds_after_late=_longest_chain(by_key, after, usual,
                                          own | {step.key: 0.0 for step in late})
        if late else left,
        share_done=done_weight / total_weight if total_weight else 0.0,
        late=tuple(late),
    )


def seconds_left(steps: list[Step | StepTimes], after: dict[str, tuple[str, ...]],
                 typical: dict[str, float], now=None) -> float:
    return estimate(steps, after, typical, now).seconds_left


@dataclass(frozen=True)
class Progress:
    operation: Operation
    steps: list[Step | StepTimes]
    # None once the operation has finished: nothing is ahead.
    estimate: Estimate | None = None

    @property
    def late(self) -> tuple[LateStep, ...]:
        return self.estimate.late if self.estimate else ()

    @property
    def seconds_left(self) -> float | None:
        return self.estimate.seconds_left if self.estimate else None

    @property
    def seconds_after_late(self) -> float | None:
        return self.estimate.seconds_after_late if self.estimate else None

    @property
    def late_holds_up(self) -> bool:
        return bool(self.estimate and self.estimate.late_holds_up)

    @property
    def late_keys(self) -> frozenset[str]:
        return frozenset(step.key for step in self.late)

    @property
    def total(self) -> int:
        return len(self.steps)

    @property
    def done(self) -> int:
        return sum(1 for step in self.steps if step.is_finished)

    @property
    def percent(self) -> int:
        if self.operation.status == OperationStatus.SUCCEEDED:
            return 100
        if self.estimate is not None:
            return min(int(100 * self.estimate.share_done), UNFINISHED_MAX_PERCENT)
        # A failed operation: how many of its steps got done.
        return min(100 * self.done // self.total, UNFINISHED_MAX_PERCENT) if self.total else 0

    @property
    def outcome(self) -> str:
        return operation_outcome(self.operation, self.steps)

    @property
    def failed_steps(self) -> list[Step]:
        return [step for step in self.steps if step.state == StepState.FAILED]

    @property
    def is_finished(self) -> bool:
        return self.operation.is_finished


def progress_of(operation: Operation, steps: list[Step | StepTimes],
                after: dict[str, tuple[str, ...]] | None = None) -> Progress:
    """``operation`` (its staging set) with its step rows; estimated while unfinished.
    ``after``: the plan's dependencies, when known already."""
    if operation.is_finished:
        return Progress(operation, steps)
    after = after if after is not None else step_dependencies(operation, steps)
    recorded = {step.key for step in steps}
    # Before a runner writes the step rows (queued), the whole plan is still ahead.
    ahead = [StepTimes(key) for key in after if key not in recorded]
    found = estimate([*steps, *ahead], after, typical_step_seconds(operation.kind))
    return Progress(operation, steps, found)


def load_progress(staging: Staging, latest: Operation | None = None) -> Progress | None:
    """The latest operation's progress (pass it if already loaded): at most three queries."""
    operation = latest or staging.operations.order_by("-created_at", "-pk").first()
    if operation is None:
        return None
    operation.staging = staging  # the plan reads it; spare the query
    return progress_of(operation, list(operation.steps.all()))


def load_unfinished_progress(
    under_way: dict[int, tuple[Staging, int, str]],
) -> dict[int, Progress]:
    """For the fleet's rows: per staging id, the progress of its operation under way, given as
    staging id -> (staging, operation id, kind). One query for all their steps, besides the
    medians of each kind in flight (cached)."""
    if not under_way:
        return {}
    steps: dict[int, list[StepTimes]] = defaultdict(list)
    rows = (Step.objects.filter(operation_id__in=[op for _, op, _ in under_way.values()])
            .order_by("operation_id", "position", "pk")
            .values_list("operation_id", "key", "label", "state", "started_at"))
    for operation_id, *times in rows:
        steps[operation_id].append(StepTimes(*times))
    plans: dict[tuple, dict[str, tuple[str, ...]]] = {}  # the same few plans, many rows
    found = {}
    for staging_id, (staging, operation_id, kind) in under_way.items():
        own = steps.get(operation_id, [])
        # Queued until a runner writes its steps; the rest of the row is not read here.
        status = OperationStatus.RUNNING if own else OperationStatus.QUEUED
        operation = Operation(pk=operation_id, kind=kind, status=status, staging=staging)
        shape = _plan_shape(operation)
        if shape not in plans:
            plans[shape] = step_dependencies(operation, own)
        found[staging_id] = progress_of(operation, own, plans[shape])
    return found


def is_settled(staging: Staging, progress: Progress | None) -> bool:
    """Nothing will change without a new request: polling may stop."""
    return not staging.is_busy and (progress is None or progress.is_finished)


@dataclass(frozen=True)
class Offered:
    """Which buttons the staging page shows: the ones whose request would be accepted now."""

    redeploy: bool
    destroy: bool
    recreate: bool = False


def offered_actions(staging: Staging, progress: Progress | None, may_act: bool) -> Offered:
    if not may_act or staging.status == StagingStatus.DESTROYED:
        return Offered(False, False)
    running = progress is not None and not progress.is_finished
    last_kind = progress.operation.kind if progress else None
    destroy_rules = lifecycle.rules_for(OperationKind.DESTROY)
    destroying = staging.status == destroy_rules.working_status or (
        running and last_kind == OperationKind.DESTROY)
    redeploy = not running and lifecycle.rules_for(OperationKind.REDEPLOY).accepts(
        staging, last_kind)
    recreate = not running and staging.status in lifecycle.RECREATABLE_STATUSES
    return Offered(redeploy=redeploy, destroy=not destroying, recreate=recreate)
