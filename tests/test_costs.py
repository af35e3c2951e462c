"""The cost estimate: the bundled price table, one staging's hourly price, fleet totals and the
daily series behind the chart."""

import dataclasses
import json
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from provisioning import costs
from provisioning.config import load_config
from provisioning.costs import Lifetime, Rates

NOW = datetime(2025, 6, 15, 12, 0, tzinfo=UTC)


@pytest.fixture
def prices():
    return costs.load_prices("us-east-1")


@pytest.fixture
def rates(prices, settings):
    settings.DS_WEB_CPU, settings.DS_WEB_MEMORY = "256", "512"
    settings.DS_WORKER_CPU, settings.DS_WORKER_MEMORY = "256", "512"
    settings.DS_DB_INSTANCE_CLASS = "db.t3.micro"
    return Rates(prices, load_config())


def test_price_table_is_dated_and_complete():
    table = json.loads(costs.PRICES_PATH.read_text())
    as_of = date.fromisoformat(table["as_of"])
    assert date(2024, 1, 1) <= as_of <= date.today()
    assert {"us-east-1", "eu-west-1", "eu-central-1"} <= set(table["regions"])
    for region, raw in table["regions"].items():
        for key in ("fargate_vcpu_hour", "fargate_gb_hour", "alb_hour", "alb_lcu_hour"):
            assert 0 < raw[key] < 1, (region, key)
        assert {"db.t3.micro", "db.t3.small", "db.t3.medium"} <= set(raw["rds_instance_hour"])
        assert raw["rds_instance_hour"]["db.t3.micro"] < raw["rds_instance_hour"]["db.t3.small"]
        assert {"gp2", "gp3"} <= set(raw["rds_storage_gb_month"])


def test_region_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    prices = costs.load_prices()
    assert prices.region == "eu-west-1"
    assert not prices.fell_back


def test_unknown_region_falls_back_and_says_so():
    prices = costs.load_prices("mars-north-1")
    assert prices.region == costs.DEFAULT_REGION
    assert prices.requested_region == "mars-north-1"
    assert prices.fell_back


@pytest.mark.parametrize(("raw", "units"), [("256", 256), ("0.25 vCPU", 256), ("1 vcpu", 1024)])
def test_cpu_units(raw, units):
    assert costs.cpu_units(raw) == units


@pytest.mark.parametrize(("raw", "mib"), [("512", 512), ("0.5 GB", 512), ("2GB", 2048)])
def test_memory_mib(raw, mib):
    assert costs.memory_mib(raw) == mib


def test_dedicated_staging_by_hand(rates, prices):
    task = 0.25 * prices.fargate_vcpu_hour + 0.5 * prices.fargate_gb_hour
    db = prices.rds_instance_hour["db.t3.micro"]
    storage = costs.DB_STORAGE_GB * prices.rds_storage_gb_month["gp2"] / costs.HOURS_PER_MONTH
    alb = costs.ALB_SHARE * prices.alb_hour + costs.LCU_PER_STAGING * prices.alb_lcu_hour
    assert rates.hourly("dedicated") == pytest.approx(2 * task + db + storage + alb)
    # About 4 to 5 cents an hour in us-east-1: a sanity check on the table's magnitudes.
    assert 0.03 < rates.hourly("dedicated") < 0.06


def test_shared_database_adds_nothing(rates, prices):
    difference = rates.hourly("dedicated") - rates.hourly("shared")
    storage = costs.DB_STORAGE_GB * prices.rds_storage_gb_month["gp2"] / costs.HOURS_PER_MONTH
    assert difference == pytest.approx(prices.rds_instance_hour["db.t3.micro"] + storage)
    labels = [line.label for line in rates.estimates["shared"].lines]
    assert not any("database" in label for label in labels)


def test_bigger_tasks_cost_more(prices, settings):
    settings.DS_WEB_CPU, settings.DS_WEB_MEMORY = "1024", "2048"
    big = costs.estimate_hourly("shared", prices=prices, config=load_config())
    settings.DS_WEB_CPU, settings.DS_WEB_MEMORY = "256", "512"
    small = costs.estimate_hourly("shared", prices=prices, config=load_config())
    assert big.hourly - small.hourly == pytest.approx(
        0.75 * prices.fargate_vcpu_hour + 1.5 * prices.fargate_gb_hour)


def test_unpriced_instance_class_is_named(prices, settings):
    settings.DS_DB_INSTANCE_CLASS = "db.x2iedn.32xlarge"
    estimate = costs.estimate_hourly("dedicated", prices=prices, config=load_config())
    assert estimate.unpriced == ("db.x2iedn.32xlarge",)


def test_cost_counts_only_the_overlap(rates):
    lifetime = Lifetime("shared", NOW - timedelta(hours=10), NOW - timedelta(hours=4))
    hourly = rates.hourly("shared")
    assert costs.cost_so_far(rates, lifetime, NOW) == pytest.approx(6 * hourly)
    window = (NOW - timedelta(hours=5), NOW)
    assert costs.cost_between(rates, lifetime, *window) == pytest.approx(1 * hourly)
    assert costs.cost_between(rates, lifetime, NOW - timedelta(hours=3), NOW) == 0


def test_live_staging_costs_until_now(rates):
    lifetime = Lifetime("dedicated", NOW - timedelta(hours=2))
    assert costs.cost_so_far(rates, lifetime, NOW) == pytest.approx(2 * rates.hourly("dedicated"))


def test_month_boundaries():
    assert costs.month_start(NOW) == datetime(2025, 6, 1, tzinfo=UTC)
    assert costs.next_month_start(NOW) == datetime(2025, 7, 1, tzinfo=UTC)
    december = datetime(2025, 12, 31, 23, 0, tzinfo=UTC)
    assert costs.next_month_start(december) == datetime(2026, 1, 1, tzinfo=UTC)


def test_fleet_totals(rates):
    lifetimes = [
        Lifetime("dedicated", NOW - timedelta(hours=24)),  # live a day
        Lifetime("shared", NOW - timedelta(hours=3)),  # live 3 h
        # destroyed last month: nothing this month
        Lifetime("dedicated", datetime(2025, 5, 1, tzinfo=UTC), datetime(2025, 5, 2, tzinfo=UTC)),
        # straddles the month's start: only June's part counts
        Lifetime("shared", datetime(2025, 5, 31, 12, tzinfo=UTC),
                 datetime(2025, 6, 1, 12, tzinfo=UTC)),
    ]
    totals = costs.fleet_totals(rates, lifetimes, NOW)
    dedicated, shared = rates.hourly("dedicated"), rates.hourly("shared")
    assert totals.live == 2
    assert totals.hourly == pytest.approx(dedicated + shared)
    assert totals.month_to_date == pytest.approx(24 * dedicated + 3 * shared + 12 * shared)
    hours_left = (datetime(2025, 7, 1, tzinfo=UTC) - NOW).total_seconds() / 3600
    assert totals.month_projection == pytest.approx(
        totals.month_to_date + hours_left * (dedicated + shared))


def test_daily_costs_cover_thirty_days_ending_today(rates):
    lifetimes = [Lifetime("shared", datetime(2025, 6, 10, tzinfo=UTC),
                          datetime(2025, 6, 11, tzinfo=UTC))]
    days = costs.daily_costs(rates, lifetimes, NOW)
    assert len(days) == costs.CHART_DAYS
    assert days[-1].day == NOW.date()
    assert days[0].day == NOW.date() - timedelta(days=29)
    by_day = {d.day: d.cost for d in days}
    assert by_day[date(2025, 6, 10)] == pytest.approx(24 * rates.hourly("shared"))
    assert sum(by_day.values()) == pytest.approx(by_day[date(2025, 6, 10)])


def test_today_counts_only_up_to_now(rates):
    days = costs.daily_costs(rates, [Lifetime("shared", NOW - timedelta(days=3))], NOW)
    assert days[-1].cost == pytest.approx(12 * rates.hourly("shared"))


def test_chart_window_reaches_back_to_the_month_start():
    early = datetime(2025, 6, 2, 8, tzinfo=UTC)
    assert costs.chart_window_start(early) == datetime(2025, 5, 4, tzinfo=UTC)
    late = datetime(2025, 7, 31, 8, tzinfo=UTC)
    assert costs.chart_window_start(late) == datetime(2025, 7, 1, tzinfo=UTC)


lifetimes_strategy = st.lists(
    st.tuples(
        st.sampled_from(["dedicated", "shared"]),
        st.integers(min_value=0, max_value=60 * 24 * 40),  # minutes before NOW it started
        st.one_of(st.none(), st.integers(min_value=0, max_value=60 * 24 * 40)),  # minutes lived
    ),
    max_size=12,
)


@hypothesis_settings(max_examples=60, deadline=None)
@given(raw=lifetimes_strategy)
def test_days_add_up_to_the_window(raw):
    """The chart's bars, added up, are the fleet's cost over the chart's window."""
    config = dataclasses.replace(load_config(), web_cpu="256", web_memory="512",
                                 worker_cpu="256", worker_memory="512",
                                 db_instance_class="db.t3.micro")
    rates = Rates(costs.load_prices("us-east-1"), config)
    lifetimes = []
    for mode, started_ago, lived in raw:
        start = NOW - timedelta(minutes=started_ago)
        end = None if lived is None else min(start + timedelta(minutes=lived), NOW)
        lifetimes.append(Lifetime(mode, start, end))
    days = costs.daily_costs(rates, lifetimes, NOW)
    window_start = datetime.combine(days[0].day, datetime.min.time(), tzinfo=UTC)
    expected = sum(costs.cost_between(rates, lt, window_start, NOW) for lt in lifetimes)
    assert sum(d.cost for d in days) == pytest.approx(expected, abs=1e-9)
    assert all(d.cost >= 0 for d in days)
