"""The queries behind the fleet page, the history and the staging page.

The fleet table is polled while anything changes, so it reads a fixed number of rows sets
(the filtered stagings with their owners, and the lifetimes of this month's stagings for the
totals) whatever the size of the fleet; per-row numbers are computed in Python.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q, QuerySet
from django.utils import timezone

from provisioning import lifecycle
from provisioning.costs import (
    DailyCost,
    FleetTotals,
    Lifetime,
    Rates,
    chart_window_start,
    cost_so_far,
    daily_costs,
    database_hourly,
    fleet_totals,
)
from provisioning.engine import may_act
from provisioning.models import (
    Operation,
    OperationKind,
    Staging,
    StagingStatus,
    Step,
    StepState,
)
from provisioning.pool import waiting_databases

OWNER_FILTERS = {"all": "Everyone", "mine": "Mine"}
LIVE_STATUSES = sorted(lifecycle.LIVE_STATUSES, key=StagingStatus.values.index)


@dataclass(frozen=True)
class FleetFilters:
    owner: str = "all"
    status: str = ""

    @classmethod
    def from_params(cls, params) -> "FleetFilters":
        owner = params.get("owner", "all")
        status = params.get("status", "")
        return cls(
            owner=owner if owner in OWNER_FILTERS else "all",
            status=status if status in LIVE_STATUSES else "",
        )

    def as_query(self) -> str:
        parts = []
        if self.owner != "all":
            parts.append(f"owner={self.owner}")
        if self.status:
            parts.append(f"status={self.status}")
        return "&".join(parts)


@dataclass(frozen=True)
class FleetRow:
    staging: Staging
    hourly: float
    so_far: float
    may_act: bool
    queued: str = ""  # the kind of an operation requested but not yet picked up by a worker

    @property
    def destroy_requested(self) -> bool:
        return self.staging.status == StagingStatus.DESTROYING or self.queued == "destroy"


@dataclass(frozen=True)
class Fleet:
    rows: list[FleetRow]
    totals: FleetTotals
    busy: bool  # something in the fleet is being created, changed or destroyed
    rates: Rates
    lifetimes: list[Lifetime]

    def daily(self, now: datetime | None = None) -> list[DailyCost]:
        return daily_costs(self.rates, self.lifetimes, now)


def lifetime_of(staging: Staging) -> Lifetime:
    return Lifetime(staging.db_mode, staging.created_at, _end_of(staging))


def _end_of(staging: Staging) -> datetime | None:
    if staging.status != StagingStatus.DESTROYED:
        return None
    # A destroyed row always has destroyed_at from the runner; updated_at covers older rows.
    return staging.destroyed_at or staging.updated_at


def _recent_lifetimes(now: datetime) -> tuple[list[Lifetime], bool]:
    """Every staging alive at some point of the chart's window or this month (one query), and
    whether any of them is busy."""
    rows = Staging.objects.filter(
        ~Q(status=StagingStatus.DESTROYED) | Q(destroyed_at__gte=chart_window_start(now))
        | Q(destroyed_at__isnull=True, updated_at__gte=chart_window_start(now))
    ).values_list("db_mode", "created_at", "destroyed_at", "updated_at", "status")
    lifetimes, busy = [], False
    for db_mode, created_at, destroyed_at, updated_at, status in rows:
        end = (destroyed_at or updated_at) if status == StagingStatus.DESTROYED else None
        lifetimes.append(Lifetime(db_mode, created_at, end))
        busy = busy or not lifecycle.is_settled(status)
    return lifetimes, busy


def _unfinished_operations() -> dict[int, str]:
    """Staging id -> kind of its queued or running operation (one query). A staging's own
    status changes only once a worker picks the operation up; until then this says it will."""
    return dict(Operation.objects.unfinished()
                .values_list("staging_id", "kind"))


def live_stagings(filters: FleetFilters, user: AbstractBaseUser) -> QuerySet[Staging]:
    stagings = (Staging.objects.live()
                .select_related("owner").order_by("-created_at", "-pk"))
    if filters.owner == "mine":
        stagings = stagings.filter(owner=user)
    if filters.status:
        stagings = stagings.filter(status=filters.status)
    return stagings


def load_fleet(user: AbstractBaseUser, filters: FleetFilters,
               now: datetime | None = None) -> Fleet:
    """Three queries: the filtered table, the lifetimes behind the fleet's totals and the
    operations not finished yet."""
    now = now or timezone.now()
    rates = Rates()
    unfinished = _unfinished_operations()
    rows = [
        FleetRow(staging, rates.hourly(staging.db_mode),
                 cost_so_far(rates, lifetime_of(staging), now), may_act(user, staging),
                 queued=unfinished.get(staging.pk, "") if not staging.is_busy else "")
        for staging in live_stagings(filters, user)
    ]
    lifetimes, busy = _recent_lifetimes(now)
    totals = fleet_totals(rates, lifetimes, now)
    return Fleet(rows, totals, busy or bool(unfinished), rates, lifetimes)


@dataclass(frozen=True)
class PoolLine:
    source: str
    size: int  # what DS_POOL_SIZES asks for
    ready: int
    restoring: int
    retiring: int
    hourly: float


@dataclass(frozen=True)
class WarmPool:
    lines: list[PoolLine]
    hourly_each: float

    @property
    def hourly(self) -> float:
        return sum(line.hourly for line in self.lines)


def warm_pool(rates: Rates) -> WarmPool:
    """The warm pool per source with what it costs (one query, none when no pool is
    configured; no AWS call): every database restored ahead and not yet taken by a staging
    costs its instance and storage."""
    each = database_hourly(rates.prices, rates.config)
    counts: dict[str, dict[str, int]] = {
        source: {} for source, size in rates.config.pool_sizes.items() if size
    }
    for database in waiting_databases() if counts else ():
        per_status = counts.setdefault(database.source, {})
        per_status[database.status] = per_status.get(database.status, 0) + 1
    lines = [
        PoolLine(source, rates.config.pool_size(source), found.get("ready", 0),
                 found.get("restoring", 0), found.get("retiring", 0),
                 sum(found.values()) * each)
        for source, found in sorted(counts.items())
    ]
    return WarmPool(lines, each)


@dataclass(frozen=True)
class HistoryRow:
    staging: Staging
    lived: timedelta
    cost: float


def history_rows(stagings, rates: Rates) -> list[HistoryRow]:
    rows = []
    for staging in stagings:
        lifetime = lifetime_of(staging)
        end = lifetime.destroyed_at or timezone.now()
        rows.append(HistoryRow(staging, end - staging.created_at,
                               cost_so_far(rates, lifetime, end)))
    return rows


def destroyed_stagings(user: AbstractBaseUser, owner: str) -> QuerySet[Staging]:
    stagings = (Staging.objects.destroyed()
                .select_related("owner").order_by("-destroyed_at", "-pk"))
    if owner == "mine":
        stagings = stagings.filter(owner=user)
    return stagings


def name_is_taken(name: str) -> bool:
    return Staging.objects.live().filter(name=name).exists()


def resource_outputs(staging: Staging) -> dict[str, dict]:
    """The step outputs that name the staging's resources, the latest create or redeploy
    winning (a redeploy registers new task definitions). One query."""
    rows = (
        Step.objects.filter(
            operation__staging=staging, state=StepState.DONE,
            operation__kind__in=[OperationKind.CREATE, OperationKind.REDEPLOY],
        )
        .order_by("operation__created_at", "operation__pk", "position")
        .values_list("key", "outputs")
    )
    outputs: dict[str, dict] = {}
    for key, data in rows:
        if data:
            outputs[key] = {**outputs.get(key, {}), **data}
    return outputs


def recent_operations(staging: Staging, limit: int = 20) -> list[Operation]:
    return list(staging.operations.select_related("requested_by")
                .order_by("-created_at", "-pk")[:limit])
