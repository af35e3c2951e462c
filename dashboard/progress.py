"""How far a staging's latest operation has got, and a guess at the time it still needs.

The guess walks the operation's step graph: a step still to run finishes after its slowest
dependency plus how long that step usually takes (the median over recent finished operations of
the same kind, else the lifecycle registry's typical durations). Steps run side by side, so
the answer is the longest chain, not the sum.

Polling asks for this every two seconds: it costs the same few SQL queries however many
stagings, operations and steps the database holds, and the medians come from the cache most of
the time.
"""

from collections import defaultdict
from dataclasses import dataclass
from statistics import median

from django.core.cache import cache
from django.db.models import Subquery
from django.utils import timezone

from provisioning import lifecycle
from provisioning.models import (
    FINISHED_OPERATION_STATUSES,
    Operation,
    OperationKind,
    Staging,
    StagingStatus,
    Step,
    StepState,
)

UNKNOWN_STEP_SECONDS = 10.0
# Enough history for a stable median, little enough to read on every poll: the steps of the
# latest finished operations of a kind, found through the (kind, finished_at) index.
HISTORY_OPERATIONS = 50
# Every open progress partial polls every two seconds; the medians move slowly.
TYPICAL_CACHE_SECONDS = 30
# A step running longer than usual is not done yet: it still counts for a little.
MIN_REMAINING_SECONDS = 5.0


def typical_step_seconds(kind: str) -> dict[str, float]:
    """Median duration per step key over the latest finished operations of ``kind`` (one
    query, then kept for TYPICAL_CACHE_SECONDS)."""
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
    typical = dict(lifecycle.rules_for(kind).typical_seconds)
    typical.update({key: median(values) for key, values in seen.items()})
    return typical


def step_dependencies(operation: Operation, steps: list[Step]) -> dict[str, tuple[str, ...]]:
    """Each step's dependencies from the operation's plan; if the plan cannot be built (the
    configuration changed under it), take the steps as a chain in their recorded order."""
    try:
        return {spec.key: spec.after for spec in lifecycle.plan_for(operation)}
    except Exception:  # an estimate must never break the page
        keys = [step.key for step in steps]
        return {key: tuple(keys[:i][-1:]) for i, key in enumerate(keys)}


def seconds_left(steps: list[Step], after: dict[str, tuple[str, ...]],
                 typical: dict[str, float], now=None) -> float:
    now = now or timezone.now()
    by_key = {step.key: step for step in steps}
    finish: dict[str, float] = {}

    def finish_of(key: str, visiting: frozenset = frozenset()) -> float:
        if key in finish:
            return finish[key]
        step = by_key[key]
        usual = typical.get(key, UNKNOWN_STEP_SECONDS)
        if step.is_finished or step.state == StepState.FAILED:
            result = 0.0
        elif step.state == StepState.RUNNING and step.started_at:
            elapsed = (now - step.started_at).total_seconds()
            result = max(usual - elapsed, MIN_REMAINING_SECONDS)
        else:
            deps = [d for d in after.get(key, ()) if d in by_key and d not in visiting]
            result = max((finish_of(d, visiting | {key}) for d in deps), default=0.0) + usual
        finish[key] = result
        return result

    return max((finish_of(key) for key in by_key), default=0.0)


@dataclass(frozen=True)
class Progress:
    operation: Operation
    steps: list[Step]
    seconds_left: float | None

    @property
    def total(self) -> int:
        return len(self.steps)

    @property
    def done(self) -> int:
        return sum(1 for step in self.steps if step.is_finished)

    @property
    def percent(self) -> int:
        if self.operation.status == "succeeded":
            return 100
        return round(100 * self.done / self.total) if self.total else 0

    @property
    def failed_steps(self) -> list[Step]:
        return [step for step in self.steps if step.state == StepState.FAILED]

    @property
    def is_finished(self) -> bool:
        return self.operation.is_finished


def load_progress(staging: Staging, latest: Operation | None = None) -> Progress | None:
    """The latest operation's progress (pass it if already loaded): at most three queries."""
    operation = latest or staging.operations.order_by("-created_at", "-pk").first()
    if operation is None:
        return None
    operation.staging = staging  # the plan reads it; spare the query
    steps = list(operation.steps.all())
    left = None
    if not operation.is_finished:
        after = step_dependencies(operation, steps)
        recorded = {step.key for step in steps}
        # Before a runner writes the step rows (queued), the whole plan is still ahead.
        ahead = [Step(key=key, state=StepState.PENDING) for key in after if key not in recorded]
        left = seconds_left(steps + ahead, after, typical_step_seconds(operation.kind))
    return Progress(operation, steps, left)


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
