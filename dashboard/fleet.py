"""The queries behind the fleet page, the history and the staging page.

The fleet table is polled by every open fleet page, so a poll reads a fixed number of small
row sets whatever the size of the fleet or of its history:

* the state (one query): every live staging with its operation not finished yet and that
  operation's heartbeat and wake-up time. A version of it (an ETag) lets a poll that finds
  nothing changed answer 304 without rendering anything. A runner renews its operation's
  heartbeat every 5 s and a parked operation gets a new wake-up time at each round, so the row
  of a staging being changed moves on within seconds of a step starting or ending, while a
  calm fleet answers 304;
* only when something changed: the filtered table with the owners, the steps of the
  operations under way (for their rows' progress and time left), and the count and latest
  end of today's destroyed stagings (from an index), which say whether what they cost today,
  kept in the cache, still holds.

What the closed days (before today) cost never changes, so the chart's days and the month's
cost up to yesterday are computed once per day (and prices), from one query, and cached.
"""

import hashlib
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.core.paginator import Page, Paginator
from django.db.models import Count, FilteredRelation, Max, Q, QuerySet
from django.utils import timezone

from provisioning import lifecycle
from provisioning.costs import (
    CHART_DAYS,
    HOURS_PER_MONTH,
    DailyCost,
    FleetTotals,
    Lifetime,
    Rates,
    bucket_costs,
    chart_window_start,
    cost_so_far,
    database_hourly,
    day_starts,
    month_start,
    totals_from,
)
from provisioning.engine import may_act
from provisioning.expiry import ExpiryView, expiry_of
from provisioning.lifecycle import RowChange, row_change
from provisioning.models import (
    UNFINISHED_OPERATION_STATUSES,
    Operation,
    OperationKind,
    Staging,
    StagingStatus,
    Step,
    StepState,
)
from provisioning.pool import waiting_databases

from .progress import Progress, load_unfinished_progress

OWNER_FILTERS = {"all": "Everyone", "mine": "Mine"}
LIVE_STATUSES = sorted(lifecycle.LIVE_STATUSES, key=StagingStatus.values.index)
# Closed days are kept until the day after (the key names the day): a day is never asked again.
CLOSED_DAYS_CACHE_SECONDS = 26 * 3600


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
class RowUrls:
    """A row's links from URLs reversed once per table: reversing costs more per row than
    the rest of the row, and the table is polled."""

    staging: str
    destroy: str
    extend: str = ""
    recreate: str = ""

    MARKER = 987654321

    @classmethod
    def from_reversed(cls, staging: str, destroy: str, extend: str = "",
                      recreate: str = "") -> "RowUrls":
        marker = str(cls.MARKER)
        return cls(*(url.replace(marker, "{pk}") for url in (staging, destroy, extend,
                                                             recreate)))


@dataclass(frozen=True)
class FleetRow:
    staging: Staging
    hourly: float
    so_far: float
    may_act: bool
    queued: str = ""  # the kind of an operation requested but not yet picked up by a worker
    urls: RowUrls | None = None
    expiry: ExpiryView | None = None
    may_extend: bool = False
    progress: Progress | None = None  # of its operation under way

    @property
    def monthly(self) -> float:
        """What it costs a month at this rate: shown for a kept staging, which never ends."""
        return self.hourly * HOURS_PER_MONTH

    @property
    def extend_url(self) -> str:
        return self.urls.extend.format(pk=self.staging.pk)

    @property
    def destroy_requested(self) -> bool:
        return self.staging.status == StagingStatus.DESTROYING or self.queued == "destroy"

    @property
    def url(self) -> str:
        return self.urls.staging.format(pk=self.staging.pk)

    @property
    def destroy_url(self) -> str:
        return self.urls.destroy.format(pk=self.staging.pk)

    @property
    def recreate_url(self) -> str:
        return self.urls.recreate.format(pk=self.staging.pk)


@dataclass(frozen=True)
class FleetState:
    """What a poll reads before it knows whether anything changed (one query)."""

    now: datetime
    live: list[tuple]  # (pk, db_mode, created_at, updated_at, status) per live staging
    unfinished: dict[int, tuple[int, str]]  # staging id -> (operation id, kind)
    # staging id -> (heartbeat, wake-up time) of its operation under way: they move while it
    # runs and at each of its rounds
    rounds: dict[int, tuple] = field(default_factory=dict)

    @property
    def live_lifetimes(self) -> list[Lifetime]:
        return [Lifetime(db_mode, created_at) for _, db_mode, created_at, _, _ in self.live]

    @property
    def busy(self) -> bool:
        """Something in the fleet is being created, changed or destroyed, or waits for a
        worker to be."""
        return bool(self.unfinished) or any(
            not lifecycle.is_settled(status) for *_, status in self.live)

    def version(self, user: AbstractBaseUser, filters: FleetFilters) -> str:
        """Changes whenever the table would: a staging made, changed or gone (by anybody),
        an operation requested, run or woken, the viewer's rights or filters, and once a
        minute (ages, costs so far, time left)."""
        digest = hashlib.blake2b(digest_size=12)
        for part in (
            (user.pk, user.is_staff, filters.owner, filters.status),
            int(self.now.timestamp() // 60),
            [(pk, updated) for pk, _, _, updated, _ in self.live],
            sorted(self.unfinished.items()),
            sorted(self.rounds.items()),
        ):
            digest.update(repr(part).encode())
        return digest.hexdigest()


def lifetime_of(staging: Staging) -> Lifetime:
    return Lifetime(staging.db_mode, staging.created_at, _end_of(staging))


def _end_of(staging: Staging) -> datetime | None:
    return _cost_end(staging.status, staging.destroyed_at, staging.updated_at, staging.lost_at)


def _cost_end(status: str, destroyed_at, updated_at, lost_at) -> datetime | None:
    """When a staging stopped costing: when the reconcile found its resources gone (also
    for one destroyed since, the destroy only finishing the bookkeeping), when it was
    destroyed, or never yet."""
    if lost_at is not None and status in {StagingStatus.LOST, StagingStatus.DESTROYED}:
        return lost_at
    if status != StagingStatus.DESTROYED:
        return None
    # A destroyed row always has destroyed_at from the runner; updated_at covers older rows.
    return destroyed_at or updated_at


def _destroyed_since(since: datetime, *columns: str) -> tuple[QuerySet, QuerySet]:
    """Destroyed stagings that still existed at ``since``, as two ranges of the history index
    to unite (an OR of the two would read every destroyed staging there ever was)."""
    destroyed = Staging.objects.destroyed().order_by()
    return (destroyed.filter(destroyed_at__gte=since).values_list(*columns),
            destroyed.filter(destroyed_at__isnull=True, updated_at__gte=since)
            .values_list(*columns))


def _today(now: datetime) -> datetime:
    return day_starts(now, 1)[0]


def fleet_state(now: datetime | None = None) -> FleetState:
    """One query: the live stagings, each with its operation not finished yet, if any, and
    that operation's heartbeat and wake-up time."""
    now = now or timezone.now()
    rows = (Staging.objects.live().order_by()
            .annotate(unfinished=FilteredRelation("operations", condition=Q(
                operations__status__in=sorted(UNFINISHED_OPERATION_STATUSES))))
            .values_list("pk", "db_mode", "created_at", "updated_at", "status",
                         "unfinished__pk", "unfinished__kind", "unfinished__heartbeat_at",
                         "unfinished__wake_at"))
    live, unfinished, rounds = [], {}, {}
    for pk, db_mode, created_at, updated_at, status, operation, kind, beat, wake in rows:
        live.append((pk, db_mode, created_at, updated_at, status))
        if operation is not None:
            unfinished[pk] = (operation, kind)
            rounds[pk] = (beat, wake)
    return FleetState(now, live, unfinished, rounds)


def _cache_key(kind: str, *parts) -> str:
    return f"fleet:{kind}:" + hashlib.blake2b(repr(parts).encode(), digest_size=16).hexdigest()


def _destroyed_today_cost(rates: Rates, now: datetime) -> float:
    """What the stagings destroyed today cost today. It changes only when one more is
    destroyed: their count and the latest destroyed_at (read from the index alone) say
    whether the cached sum still holds. (Rows without destroyed_at are older than that
    field: none was destroyed today.)"""
    today = _today(now)
    destroyed = Staging.objects.destroyed().filter(destroyed_at__gte=today).order_by()
    seen = destroyed.aggregate(count=Count("pk"), last=Max("destroyed_at"))
    if not seen["count"]:
        return 0.0
    key = _cache_key("destroyed-today", today, seen["count"], seen["last"], rates.fingerprint)
    cost = cache.get(key)
    if cost is None:
        lifetimes = [Lifetime(db_mode, created_at, lost_at or destroyed_at)
                     for db_mode, created_at, destroyed_at, lost_at in destroyed.values_list(
                         "db_mode", "created_at", "destroyed_at", "lost_at")]
        cost = sum(bucket_costs(rates, lifetimes, [today], now))
        cache.set(key, cost, CLOSED_DAYS_CACHE_SECONDS)
    return cost


def _closed_days(rates: Rates, now: datetime) -> list[DailyCost]:
    """What each day from the chart's (or the month's) first day until yesterday cost: read
    and computed once a day (one query), then taken from the cache."""
    today = _today(now)
    first = chart_window_start(now)
    key = _cache_key("closed-days", first, today, rates.fingerprint)
    cached = cache.get(key)
    if cached is not None:
        return cached
    starts = [first + timedelta(days=back) for back in range((today - first).days)]
    columns = ("db_mode", "created_at", "destroyed_at", "updated_at", "status", "lost_at")
    # The lost ones are few (a destroy or a recreate takes each out of that status).
    rows = (Staging.objects.live().order_by().values_list(*columns)
            .union(*_destroyed_since(first, *columns),
                   Staging.objects.lost().order_by().values_list(*columns), all=True))
    lifetimes = [
        Lifetime(db_mode, created_at, _cost_end(status, destroyed_at, updated_at, lost_at))
        for db_mode, created_at, destroyed_at, updated_at, status, lost_at in rows
    ]
    days = [DailyCost(start.date(), cost)
            for start, cost in zip(starts, bucket_costs(rates, lifetimes, starts, today),
                                   strict=True)]
    cache.set(key, days, CLOSED_DAYS_CACHE_SECONDS)
    return days


@dataclass(frozen=True)
class Fleet:
    rows: list[FleetRow]
    totals: FleetTotals
    busy: bool  # something in the fleet is being created, changed or destroyed
    rates: Rates
    daily: list[DailyCost]  # the chart's days, today (so far) last
    version: str = ""
    # Stagings whose resources AWS no longer has: shown apart, costing nothing more.
    lost: list[FleetRow] = field(default_factory=list)


def fleet_costs(rates: Rates, state: FleetState) -> tuple[FleetTotals, list[DailyCost]]:
    """The totals and the chart's days: the closed days from the cache, today from the
    state's lifetimes."""
    now = state.now
    today = _today(now)
    closed = _closed_days(rates, now)
    live = state.live_lifetimes
    today_cost = (sum(bucket_costs(rates, live, [today], now))
                  + _destroyed_today_cost(rates, now))
    this_month: date = month_start(now).date()
    month_to_date = sum(day.cost for day in closed if day.day >= this_month) + today_cost
    days = [*closed, DailyCost(today.date(), today_cost)][-CHART_DAYS:]
    return totals_from(rates, live, month_to_date, now), days


# What the table shows and its costs and rights need: the rest of a row (errors, images,
# logins) is not read on every poll.
TABLE_FIELDS = ("name", "branch", "status", "db_mode", "source", "created_at", "updated_at",
                "destroyed_at", "lost_at", "owner__username", "expires_at", "kept")


def live_stagings(filters: FleetFilters, user: AbstractBaseUser) -> QuerySet[Staging]:
    """The table's stagings with their owners, the lost ones among them (shown apart): one
    query for both."""
    stagings = (Staging.objects.holding_names()
                .select_related("owner").only(*TABLE_FIELDS).order_by("-created_at", "-pk"))
    if filters.owner == "mine":
        stagings = stagings.filter(owner=user)
    if filters.status:
        stagings = stagings.filter(status=filters.status)
    return stagings


def load_fleet(user: AbstractBaseUser, filters: FleetFilters, urls: RowUrls,
               state: FleetState | None = None) -> Fleet:
    """Two or three queries besides the state's: the filtered table, the steps of the
    operations under way (when any) and today's destroyed stagings' count (and, when that or
    the day changed, their rows and the closed days' costs; the medians of each operation kind
    in flight, when not cached)."""
    state = state or fleet_state()
    rates = Rates()
    now = state.now
    stagings = list(live_stagings(filters, user))
    progress = load_unfinished_progress({
        staging.pk: (staging, *state.unfinished[staging.pk])
        for staging in stagings if staging.pk in state.unfinished})
    rows, lost = [], []
    extend = row_change(RowChange.EXTEND)
    for staging in stagings:
        if staging.is_lost:
            # Costing nothing more: what it cost until AWS lost it.
            lost.append(FleetRow(staging, 0.0, cost_so_far(rates, lifetime_of(staging), now),
                                 may_act(user, staging), urls=urls))
            continue
        queued = state.unfinished.get(staging.pk)
        rows.append(FleetRow(
            staging, rates.hourly(staging.db_mode),
            cost_so_far(rates, lifetime_of(staging), now), may_act(user, staging),
            queued=queued[1] if queued and not staging.is_busy else "", urls=urls,
            expiry=expiry_of(staging, now, rates.config),
            may_extend=not staging.kept and extend.allowed(user, staging),
            progress=progress.get(staging.pk),
        ))
    totals, daily = fleet_costs(rates, state)
    return Fleet(rows, totals, state.busy, rates, daily, state.version(user, filters), lost)


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
class Moment:
    """A time as the history shows it, formatted once in Python: Django's date filter, four
    times a row, was most of a history page's time."""

    iso: str
    text: str  # as the date filter's "j M Y H:i"

    @classmethod
    def of(cls, value: datetime) -> "Moment":
        local = timezone.localtime(value)
        return cls(local.isoformat(), f"{local.day} {MONTHS[local.month - 1]} {local:%Y %H:%M}")


MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True)
class HistoryRow:
    staging: Staging
    lived: timedelta
    cost: float
    url: str = ""
    created: Moment | None = None
    destroyed: Moment | None = None
    recreate_url: str = ""  # set when the viewer may recreate it


def history_rows(stagings, rates: Rates, urls: RowUrls | None = None,
                 user: AbstractBaseUser | None = None) -> list[HistoryRow]:
    recreate = row_change(RowChange.RECREATE)
    rows = []
    for staging in stagings:
        may_recreate = bool(urls and urls.recreate and user and recreate.allowed(user, staging))
        lifetime = lifetime_of(staging)
        end = lifetime.destroyed_at or timezone.now()
        rows.append(HistoryRow(
            staging, end - staging.created_at, cost_so_far(rates, lifetime, end),
            url=urls.staging.format(pk=staging.pk) if urls else "",
            created=Moment.of(staging.created_at),
            destroyed=Moment.of(staging.destroyed_at) if staging.destroyed_at else None,
            recreate_url=urls.recreate.format(pk=staging.pk) if may_recreate else "",
        ))
    return rows


def destroyed_ids(user: AbstractBaseUser, owner: str) -> QuerySet:
    """The destroyed stagings' ids, newest first: read from the history indexes alone."""
    stagings = Staging.objects.destroyed().order_by("-destroyed_at", "-pk")
    if owner == "mine":
        stagings = stagings.filter(owner=user)
    return stagings.values_list("pk", flat=True)


def history_page(user: AbstractBaseUser, owner: str, number, size: int) -> Page:
    """One page of the history in three queries (its count and its ids from an index, then its
    rows): an old page skips the rows before it in the index, without reading them."""
    page = Paginator(destroyed_ids(user, owner), size).get_page(number)
    ids = list(page.object_list)
    found = Staging.objects.select_related("owner").in_bulk(ids)
    page.object_list = [found[pk] for pk in ids if pk in found]
    return page


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
