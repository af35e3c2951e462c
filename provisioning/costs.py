"""What stagings cost: an estimate from a bundled, dated price table (prices.json).

AWS bills are late and not per staging, and the Pricing API needs extra rights (and the sandbox
has none), so the dashboard estimates from list prices instead. The model, per staging and hour:

* Fargate: the web and the worker task, each ``cpu/1024`` vCPU-hours and ``memory/1024``
  GB-hours at the sizes the engine gives new task definitions (DS_WEB_CPU, DS_WEB_MEMORY,
  DS_WORKER_CPU, DS_WORKER_MEMORY).
* Dedicated database only: the RDS instance class (DS_DB_INSTANCE_CLASS) plus its storage,
  ``DB_STORAGE_GB`` of ``DB_STORAGE_TYPE`` priced per GB-month and spread over 730 hours (AWS's
  own hours-per-month). A shared database is the host's, paid for anyway: it adds nothing.
* A fixed share of the dynamic stagings' load balancer: ``ALB_SHARE`` of its hourly price plus
  ``LCU_PER_STAGING`` load balancer capacity units. A fixed share, not "the ALB divided by the
  stagings alive", so that a staging's cost so far does not change when others come and go, and
  the fleet's sum is a plain sum.

A staging costs from the moment it is requested until it is destroyed: resources appear during
the create and vanish during the destroy, so this slightly overestimates both ends.

Everything here is plain data (no HTTP); the sizes come from load_config() at the time of the
estimate, so stagings made under other settings are priced at today's sizes.
"""

import json
from bisect import bisect_right
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache
from pathlib import Path

from django.utils import timezone

from .aws.base import current_region as aws_region
from .config import EngineConfig, load_config
from .models import DbMode

PRICES_PATH = Path(__file__).with_name("prices.json")
DEFAULT_REGION = "us-east-1"
HOURS_PER_MONTH = 730
DB_STORAGE_GB = 20
DB_STORAGE_TYPE = "gp2"
ALB_SHARE = 0.1
LCU_PER_STAGING = 0.1
CHART_DAYS = 30


@dataclass(frozen=True)
class RegionPrices:
    region: str  # the region whose prices these are
    requested_region: str  # the region asked for; differs when the table lacks it
    as_of: date
    currency: str
    fargate_vcpu_hour: float
    fargate_gb_hour: float
    rds_instance_hour: dict[str, float]
    rds_storage_gb_month: dict[str, float]
    alb_hour: float
    alb_lcu_hour: float

    @property
    def fell_back(self) -> bool:
        return self.region != self.requested_region


def current_region() -> str:
    """The region whose prices apply (the default region's when none is configured)."""
    return aws_region() or DEFAULT_REGION


@cache
def _price_table(path: Path = PRICES_PATH) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def load_prices(region: str | None = None, *, table: dict | None = None) -> RegionPrices:
    """The prices of ``region`` (default: the engine's), or of DEFAULT_REGION if the table has
    none for it; ``fell_back`` then tells the page to say so."""
    table = table if table is not None else _price_table()
    requested = region or current_region()
    used = requested if requested in table["regions"] else DEFAULT_REGION
    raw = table["regions"][used]
    return RegionPrices(
        region=used,
        requested_region=requested,
        as_of=date.fromisoformat(table["as_of"]),
        currency=table.get("currency", "USD"),
        fargate_vcpu_hour=float(raw["fargate_vcpu_hour"]),
        fargate_gb_hour=float(raw["fargate_gb_hour"]),
        rds_instance_hour={k: float(v) for k, v in raw["rds_instance_hour"].items()},
        rds_storage_gb_month={k: float(v) for k, v in raw["rds_storage_gb_month"].items()},
        alb_hour=float(raw["alb_hour"]),
        alb_lcu_hour=float(raw["alb_lcu_hour"]),
    )


def cpu_units(value: str) -> float:
    """ECS accepts "256" (CPU units) as well as "0.25 vCPU"."""
    text = str(value).strip().lower()
    if text.endswith("vcpu"):
        return float(text[:-4].strip()) * 1024
    return float(text)


def memory_mib(value: str) -> float:
    """ECS accepts "512" (MiB) as well as "0.5 GB"."""
    text = str(value).strip().lower()
    if text.endswith("gb"):
        return float(text[:-2].strip()) * 1024
    return float(text)


@dataclass(frozen=True)
class CostLine:
    label: str
    hourly: float


@dataclass(frozen=True)
class Estimate:
    """One staging's hourly cost, line by line, and what the table could not price."""

    lines: tuple[CostLine, ...]
    unpriced: tuple[str, ...] = ()

    @property
    def hourly(self) -> float:
        return sum(line.hourly for line in self.lines)


def fargate_hourly(prices: RegionPrices, *, cpu: str, memory: str) -> float:
    return (cpu_units(cpu) / 1024 * prices.fargate_vcpu_hour
            + memory_mib(memory) / 1024 * prices.fargate_gb_hour)


def estimate_hourly(
    db_mode: str, *, prices: RegionPrices, config: EngineConfig,
    storage_gb: float = DB_STORAGE_GB, storage_type: str = DB_STORAGE_TYPE,
) -> Estimate:
    lines = [
        CostLine(f"web task ({config.web_cpu} CPU, {config.web_memory} MiB)",
                 fargate_hourly(prices, cpu=config.web_cpu, memory=config.web_memory)),
        CostLine(f"worker task ({config.worker_cpu} CPU, {config.worker_memory} MiB)",
                 fargate_hourly(prices, cpu=config.worker_cpu, memory=config.worker_memory)),
    ]
    unpriced = []
    if db_mode == DbMode.DEDICATED:
        instance = prices.rds_instance_hour.get(config.db_instance_class)
        if instance is None:
            unpriced.append(config.db_instance_class)
        else:
            lines.append(CostLine(f"database {config.db_instance_class}", instance))
        per_gb_month = prices.rds_storage_gb_month.get(storage_type)
        if per_gb_month is None:
            unpriced.append(f"{storage_type} storage")
        else:
            lines.append(CostLine(f"database storage {storage_gb:g} GB {storage_type}",
                                  storage_gb * per_gb_month / HOURS_PER_MONTH))
    lines.append(CostLine("share of the load balancer",
                          ALB_SHARE * prices.alb_hour + LCU_PER_STAGING * prices.alb_lcu_hour))
    return Estimate(tuple(lines), tuple(unpriced))


def database_hourly(prices: RegionPrices, config: EngineConfig, storage_gb: float = DB_STORAGE_GB,
                    storage_type: str = DB_STORAGE_TYPE) -> float:
    """A dedicated database alone, instance class and storage: what a warm-pool database costs
    while it waits (0 for what the table cannot price)."""
    instance = prices.rds_instance_hour.get(config.db_instance_class, 0.0)
    per_gb_month = prices.rds_storage_gb_month.get(storage_type, 0.0)
    return instance + storage_gb * per_gb_month / HOURS_PER_MONTH


class Rates:
    """Hourly estimates per DB mode, computed once and reused for every staging of a page."""

    def __init__(self, prices: RegionPrices | None = None, config: EngineConfig | None = None):
        self.prices = prices or load_prices()
        self.config = config or load_config()
        self.estimates = {
            mode: estimate_hourly(mode, prices=self.prices, config=self.config)
            for mode in DbMode.values
        }
        # Asked once per staging and day of the chart: summed once here.
        self._hourly = {mode: estimate.hourly for mode, estimate in self.estimates.items()}

    def hourly(self, db_mode: str) -> float:
        hourly = self._hourly.get(db_mode)
        return self._hourly[DbMode.DEDICATED] if hourly is None else hourly

    @property
    def fingerprint(self) -> str:
        """Changes when any hourly price changes (prices, region or sizes): what a cost
        computed under other rates must not be taken for."""
        return ",".join(f"{mode}={hourly!r}" for mode, hourly in sorted(self._hourly.items()))


@dataclass(frozen=True)
class Lifetime:
    """When a staging existed (and so cost money): requested until destroyed (or now)."""

    db_mode: str
    created_at: datetime
    destroyed_at: datetime | None = None


def overlap_hours(lifetime: Lifetime, start: datetime, end: datetime) -> float:
    begins = max(lifetime.created_at, start)
    ends = min(lifetime.destroyed_at or end, end)
    return max((ends - begins).total_seconds(), 0.0) / 3600


def cost_between(rates: Rates, lifetime: Lifetime, start: datetime, end: datetime) -> float:
    return overlap_hours(lifetime, start, end) * rates.hourly(lifetime.db_mode)


def cost_so_far(rates: Rates, lifetime: Lifetime, now: datetime | None = None) -> float:
    now = now or timezone.now()
    return cost_between(rates, lifetime, lifetime.created_at, now)


def month_start(now: datetime) -> datetime:
    local = timezone.localtime(now)
    return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_month_start(now: datetime) -> datetime:
    first = month_start(now)
    # Day 28 + 4 days always lands in the next month; then back to its first day.
    return (first.replace(day=28) + timedelta(days=4)).replace(day=1)


@dataclass(frozen=True)
class FleetTotals:
    live: int
    hourly: float
    month_to_date: float
    # What the month costs if every live staging runs to its end at today's hourly prices
    # and none comes or goes: month_to_date + hourly * hours_left.
    month_projection: float
    hours_left: float = 0.0


def fleet_totals(rates: Rates, lifetimes: list[Lifetime],
                 now: datetime | None = None) -> FleetTotals:
    """``lifetimes`` must include every staging alive at some point this month."""
    now = now or timezone.now()
    start = month_start(now)
    live = [lt for lt in lifetimes if lt.destroyed_at is None]
    so_far = sum(bucket_costs(rates, lifetimes, [start], now))
    return totals_from(rates, live, so_far, now)


def totals_from(rates: Rates, live: list[Lifetime], month_to_date: float,
                now: datetime) -> FleetTotals:
    """The totals from the live stagings and what the month has cost so far."""
    hourly = sum(rates.hourly(lt.db_mode) for lt in live)
    hours_left = max((next_month_start(now) - now).total_seconds(), 0.0) / 3600
    return FleetTotals(len(live), hourly, month_to_date, month_to_date + hourly * hours_left,
                       hours_left)


@dataclass(frozen=True)
class DailyCost:
    day: date
    cost: float


def day_starts(now: datetime, days: int = CHART_DAYS) -> list[datetime]:
    """Local midnights of the last ``days`` days, oldest first, today last."""
    today = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    return [today - timedelta(days=back) for back in range(days - 1, -1, -1)]


def bucket_costs(rates: Rates, lifetimes: list[Lifetime], starts: list[datetime],
                 end: datetime) -> list[float]:
    """What the lifetimes cost in each bucket ``[starts[i], starts[i + 1])``, the last one
    ending at ``end``: one pass over the lifetimes, each adding to the few buckets it spans
    (not every bucket asking every lifetime)."""
    bounds = [*starts, end]
    totals = [0.0] * len(starts)
    if not starts:
        return totals
    for lifetime in lifetimes:
        begins = max(lifetime.created_at, bounds[0])
        ends = min(lifetime.destroyed_at or end, end)
        if ends <= begins:
            continue
        per_second = rates.hourly(lifetime.db_mode) / 3600
        index = max(bisect_right(bounds, begins) - 1, 0)
        while index < len(starts) and bounds[index] < ends:
            overlap = min(ends, bounds[index + 1]) - max(begins, bounds[index])
            totals[index] += max(overlap.total_seconds(), 0.0) * per_second
            index += 1
    return totals


def daily_costs(rates: Rates, lifetimes: list[Lifetime], now: datetime | None = None,
                days: int = CHART_DAYS) -> list[DailyCost]:
    """The fleet's cost on each of the last ``days`` days, today (so far) last."""
    now = now or timezone.now()
    starts = day_starts(now, days)
    return [DailyCost(start.date(), cost)
            for start, cost in zip(starts, bucket_costs(rates, lifetimes, starts, now),
                                   strict=True)]


def chart_window_start(now: datetime | None = None, days: int = CHART_DAYS) -> datetime:
    """The earliest moment the chart and the month's totals look at: a staging destroyed
    before it cannot change them."""
    now = now or timezone.now()
    today = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    return min(today - timedelta(days=days - 1), month_start(now))

