"""Pages that stay flat with years of history, and a fleet page that shows others' changes.

Every query a polled or paged view makes is asked for its plan: none may read a whole table
of stagings, operations or steps (SQLite's ``EXPLAIN QUERY PLAN``; on PostgreSQL ``EXPLAIN``
with sequential scans priced out, which shows an index exists that the query can use). The
fleet's costs, computed per day with the closed days cached, must equal the same numbers
computed the slow way from every lifetime. The fleet table carries a version (ETag): a poll
that sends it back gets 304 until anybody's staging changes.
"""

import dataclasses
import re
from datetime import timedelta
from unittest import mock

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from dashboard import fleet as fleet_queries
from dashboard.progress import typical_step_seconds
from provisioning import costs
from provisioning.config import load_config
from provisioning.costs import Lifetime, Rates
from provisioning.models import (
    Operation,
    OperationKind,
    OperationStatus,
    Staging,
    StagingStatus,
    Step,
    StepState,
)
from tests.factories import add_operation, make_listed_staging
from tests.pages import HTMX, client_for

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("aws_region")]
BIG_TABLES = ("provisioning_staging", "provisioning_operation", "provisioning_step")
CREATE_KEYS = ("image", "database", "web_task_definition", "web_service", "web_healthy")


@pytest.fixture
def history(alice, bob):
    """A fleet with a history: destroyed stagings of both, live ones, a running create."""
    for i in range(60):
        gone = make_listed_staging(alice if i % 2 else bob, f"gone{i}",
                                   status=StagingStatus.DESTROYED, age=timedelta(days=i % 40 + 1),
                                   destroyed_ago=timedelta(hours=i))
        add_operation(gone, finished_ago=timedelta(days=i % 40))
        add_operation(gone, OperationKind.DESTROY, finished_ago=timedelta(hours=i))
    for i in range(5):
        add_operation(make_listed_staging(bob, f"live{i}",
                                          db_mode="shared" if i % 2 else "dedicated"))
    creating = make_listed_staging(alice, "shop", status=StagingStatus.PROVISIONING)
    add_operation(creating, status=OperationStatus.RUNNING, steps={
        "image": StepState.DONE, "database": StepState.RUNNING,
        "web_task_definition": StepState.PENDING})
    return creating


# --- plans ------------------------------------------------------------------------------------

def full_scans(sql: str) -> list[str]:
    """The plan lines of ``sql`` that read a whole big table (or a whole index of one)."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("EXPLAIN QUERY PLAN " + sql)
            lines = [row[-1] for row in cursor.fetchall()]
            return [line for line in lines
                    if re.match(rf"SCAN ({'|'.join(BIG_TABLES)})\b", line)]
        # Priced out, a sequential scan is still chosen when no index can serve the query.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + sql)
        lines = [row[0] for row in cursor.fetchall()]
        cursor.execute("SET LOCAL enable_seqscan = on")
        return [line for line in lines
                if re.search(rf"Seq Scan on ({'|'.join(BIG_TABLES)})\b", line)]


def page_queries(client, url: str, **extra) -> list[str]:
    cache.clear()  # a cold request: it asks everything it can ask
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, **extra)
    assert response.status_code in {200, 286}, response.status_code
    return [query["sql"] for query in captured.captured_queries
            if query["sql"].lstrip().upper().startswith("SELECT")]


@pytest.mark.parametrize("page", [
    "progress", "fleet table", "fleet page", "history", "history last page", "history mine",
])
def test_no_page_reads_a_whole_table(alice, history, page):
    client = client_for(alice)
    url, extra = {
        "progress": (reverse("staging_progress", args=[history.pk]), HTMX),
        "fleet table": (reverse("fleet_partial"), HTMX),
        "fleet page": ("/", {}),
        "history": (reverse("history"), {}),
        "history last page": (reverse("history") + "?page=2", {}),
        "history mine": (reverse("history") + "?owner=mine&page=2", {}),
    }[page]
    scans = {sql: found for sql in page_queries(client, url, **extra)
             if (found := full_scans(sql))}
    assert not scans


def test_the_medians_read_only_the_latest_operations_of_their_kind(alice):
    old = make_listed_staging(alice, "old", status=StagingStatus.DESTROYED)
    for _ in range(3):  # long ago, the database step took 1000 s
        add_operation(old, took=timedelta(seconds=1000), finished_ago=timedelta(days=30))
    recent = make_listed_staging(alice, "recent")
    for _ in range(50):
        add_operation(recent, took=timedelta(seconds=100), finished_ago=timedelta(hours=1))
    add_operation(recent, OperationKind.DESTROY, took=timedelta(seconds=7))  # another kind
    assert typical_step_seconds(OperationKind.CREATE)["database"] == pytest.approx(100)


def test_the_medians_are_kept_a_little_while(alice):
    past = make_listed_staging(alice, "past")
    add_operation(past, took=timedelta(seconds=100))
    assert typical_step_seconds(OperationKind.CREATE)["database"] == pytest.approx(100)
    add_operation(past, took=timedelta(seconds=300))
    add_operation(past, took=timedelta(seconds=300))
    assert typical_step_seconds(OperationKind.CREATE)["database"] == pytest.approx(100)
    now = timezone.now()
    with mock.patch("django.core.cache.backends.locmem.time.time",
                    return_value=now.timestamp() + 31):
        assert typical_step_seconds(OperationKind.CREATE)["database"] == pytest.approx(300)


def sqlite_work(client, url: str, **extra) -> float:
    """Thousands of SQLite virtual-machine instructions a request's queries ran: rows read
    show up here, whichever index a plan names. Every instruction is counted: SQLite counts
    towards the handler's period per statement, from what a cached statement ran before, so
    a coarser period adds up to a tick of noise per statement."""
    ticks = [0]

    def tick() -> int:
        ticks[0] += 1
        return 0  # go on

    connection.ensure_connection()
    connection.connection.set_progress_handler(tick, 1)
    try:
        response = client.get(url, **extra)
    finally:
        connection.connection.set_progress_handler(None, 1)
    assert response.status_code in {200, 286, 304}
    return ticks[0] / 1000


def add_old_history(owners, count: int) -> None:
    """``count`` stagings destroyed long before the chart's window, each with a finished create
    and destroy and their steps, written in bulk."""
    now = timezone.now()
    stagings = Staging.objects.bulk_create([
        Staging(name=f"old{i}", branch="main", source="host-db", owner=owners[i % len(owners)],
                status=StagingStatus.DESTROYED, created_at=now - timedelta(days=200 + i % 300),
                destroyed_at=now - timedelta(days=100 + i % 300))
        for i in range(count)
    ])
    operations = Operation.objects.bulk_create([
        Operation(staging=staging, kind=kind, status=OperationStatus.SUCCEEDED,
                  requested_by=staging.owner, created_at=staging.created_at,
                  started_at=staging.created_at, finished_at=staging.destroyed_at)
        for staging in stagings for kind in (OperationKind.CREATE, OperationKind.DESTROY)
    ])
    Step.objects.bulk_create([
        Step(operation=operation, key=key, label=key, position=position, state=StepState.DONE,
             started_at=operation.started_at,
             finished_at=operation.started_at + timedelta(seconds=60))
        for operation in operations for position, key in enumerate(CREATE_KEYS)
    ])


@pytest.mark.skipif("connection.vendor != 'sqlite'")
def test_polled_pages_do_the_same_work_with_ten_times_the_history(alice, bob, history):
    """The polled pages and the fleet page read what is live, recent or in view, not the
    history: ten times as many destroyed stagings, operations and steps cost them nothing."""
    client = client_for(alice)
    pages = {
        "progress": (reverse("staging_progress", args=[history.pk]), HTMX),
        "fleet table": (reverse("fleet_partial"), HTMX),
        "fleet page": ("/", {}),
    }

    def work() -> dict[str, int]:
        found = {}
        for label, (url, extra) in pages.items():
            cache.clear()
            found[label] = sqlite_work(client, url, **extra)
        return found

    add_old_history([alice, bob], 100)
    before = work()
    add_old_history([alice, bob], 1000)
    after = work()
    assert all(after[label] <= before[label] * 1.2 + 2 for label in pages), (before, after)


# --- costs ------------------------------------------------------------------------------------

def every_lifetime() -> list[Lifetime]:
    return [fleet_queries.lifetime_of(staging) for staging in Staging.objects.all()]


def test_fleet_costs_equal_the_sum_over_every_lifetime(alice, bob, history):
    now = timezone.now()
    # one destroyed today, one before the month (never counted), one without destroyed_at
    # (an older row: its last change ends it)
    make_listed_staging(bob, "today", status=StagingStatus.DESTROYED, age=timedelta(days=3),
                        destroyed_ago=timedelta(minutes=1))
    make_listed_staging(bob, "ancient", status=StagingStatus.DESTROYED, age=timedelta(days=90),
                        destroyed_ago=timedelta(days=80))
    legacy = make_listed_staging(alice, "legacy", status=StagingStatus.DESTROYED,
                                 age=timedelta(days=4), destroyed_at=None)
    Staging.objects.filter(pk=legacy.pk).update(updated_at=now - timedelta(days=2))
    rates = Rates()
    totals, days = fleet_queries.fleet_costs(rates, fleet_queries.fleet_state(now))
    expected_days = costs.daily_costs(rates, every_lifetime(), now)
    expected = costs.fleet_totals(rates, every_lifetime(), now)
    assert [d.day for d in days] == [d.day for d in expected_days]
    assert [d.cost for d in days] == pytest.approx([d.cost for d in expected_days])
    assert totals.live == expected.live == 6
    assert totals.hourly == pytest.approx(expected.hourly)
    assert totals.month_to_date == pytest.approx(expected.month_to_date)
    assert totals.month_projection == pytest.approx(expected.month_projection)


def test_closed_days_are_read_once(alice, history, django_assert_num_queries):
    rates = Rates()
    state = fleet_queries.fleet_state()
    # the closed days; today's destroyed stagings: their count, then their rows
    with django_assert_num_queries(3):
        first = fleet_queries.fleet_costs(rates, state)
    with django_assert_num_queries(1):  # the count says nothing was destroyed since
        again = fleet_queries.fleet_costs(rates, state)
    assert again == first
    make_listed_staging(alice, "just-gone", status=StagingStatus.DESTROYED,
                        destroyed_ago=timedelta(0))
    with django_assert_num_queries(2):
        third = fleet_queries.fleet_costs(rates, state)
    assert third[0].month_to_date > first[0].month_to_date
    # other sizes are other prices, and other numbers
    bigger = Rates(config=dataclasses.replace(load_config(), web_cpu="1024", web_memory="2048"))
    with django_assert_num_queries(3):
        totals, _ = fleet_queries.fleet_costs(bigger, state)
    assert totals.month_to_date > first[0].month_to_date


def test_a_lifetime_is_priced_once_per_day_it_spans():
    """Per day bucket: not every day asking every lifetime."""
    now = timezone.now()
    asked = []

    class CountingRates:
        def hourly(self, db_mode):
            asked.append(db_mode)
            return 1.0

    lifetimes = [Lifetime("shared", now - timedelta(hours=1))] * 100
    days = costs.daily_costs(CountingRates(), lifetimes, now)
    assert len(asked) == 100
    assert sum(d.cost for d in days) == pytest.approx(100, rel=1e-6)


# --- history ----------------------------------------------------------------------------------

def test_history_pages_run_newest_first_to_the_oldest(alice, history,
                                                     django_assert_max_num_queries):
    client = client_for(alice)
    names = list(Staging.objects.destroyed().order_by("-destroyed_at", "-pk")
                 .values_list("name", flat=True))
    with django_assert_max_num_queries(6):  # session, user, unread count, count, ids, rows
        first = client.get(reverse("history")).content.decode()
    last = client.get(reverse("history") + "?page=2").content.decode()
    assert "Page 1 of 2" in first and "Page 2 of 2" in last
    shown = re.findall(r'<a href="/stagings/\d+/">([^<]+)</a>', first + last)
    assert shown == names
    # a page past the end is the last one; nonsense is the first
    assert "Page 2 of 2" in client.get(reverse("history") + "?page=9").content.decode()
    assert "Page 1 of 2" in client.get(reverse("history") + "?page=x").content.decode()
    mine = client.get(reverse("history") + "?owner=mine").content.decode()
    assert set(re.findall(r'<a href="/stagings/\d+/">([^<]+)</a>', mine)) == set(
        Staging.objects.destroyed().filter(owner=alice).values_list("name", flat=True))


# --- the fleet's version ----------------------------------------------------------------------

def poll(client, version: str = "", url: str = "/fleet/table/"):
    extra = HTMX | ({"HTTP_IF_NONE_MATCH": version} if version else {})
    return client.get(url, **extra)


def test_an_unchanged_fleet_answers_304_cheaply(alice, bob, history,
                                               django_assert_max_num_queries):
    client = client_for(alice)
    first = poll(client)
    assert first.status_code == 200
    version = first["ETag"]
    assert f'"If-None-Match": "\\"{version.strip(chr(34))}\\""' in first.content.decode()
    assert "no-cache" in first["Cache-Control"] and "private" in first["Cache-Control"]
    with django_assert_max_num_queries(3):  # session, user, the state
        again = poll(client, version)
    assert again.status_code == 304
    assert again.content == b""
    assert again["ETag"] == version


@pytest.mark.parametrize("change", ["created", "status", "queued", "destroyed", "minute"])
def test_the_version_changes_with_anybodys_staging(alice, bob, history, change):
    client = client_for(alice)
    version = poll(client)["ETag"]
    later = timezone.now()
    if change == "created":
        make_listed_staging(bob, "newcomer", status=StagingStatus.PENDING)
    elif change == "status":
        Staging.objects.filter(name="live1").update(status=StagingStatus.FAILED,
                                                    updated_at=timezone.now())
    elif change == "queued":
        add_operation(Staging.objects.get(name="live2"), OperationKind.DESTROY,
                      OperationStatus.QUEUED, steps={})
    elif change == "destroyed":
        Staging.objects.filter(name="live3").update(
            status=StagingStatus.DESTROYED, destroyed_at=timezone.now(),
            updated_at=timezone.now())
    else:
        later += timedelta(minutes=1)
    with mock.patch("django.utils.timezone.now", return_value=later):
        answer = poll(client, version)
    assert answer.status_code == 200
    assert answer["ETag"] != version
    body = answer.content.decode()
    if change == "created":
        assert ">newcomer<" in body
    if change == "queued":
        assert "destroy queued" in body
    if change == "destroyed":
        assert ">live3<" not in body


def test_the_version_is_per_viewer_and_filter(alice, bob, history):
    version = poll(client_for(alice))["ETag"]
    assert poll(client_for(bob), version).status_code == 200
    assert poll(client_for(alice), version, "/fleet/table/?owner=mine").status_code == 200


def test_without_javascript_a_reload_shows_everybodys_stagings(alice, bob, history):
    client = client_for(alice)
    client.get("/")
    make_listed_staging(bob, "newcomer")
    page = client.get("/").content.decode()
    assert ">newcomer<" in page and ">live0<" in page
    assert poll(client, url="/fleet/table/").status_code == 200
    plain = client.get("/fleet/table/")  # no HTMX: the page itself
    assert plain.status_code == 302 and plain["Location"] == "/"


@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin", "America/Los_Angeles"])
def test_history_times_read_as_the_date_filter_writes_them(settings, zone):
    from django.template.defaultfilters import date as date_filter

    settings.TIME_ZONE = zone
    for value in (timezone.now(), timezone.now() - timedelta(days=200, minutes=7),
                  timezone.now().replace(month=1, day=3, hour=23, minute=59)):
        moment = fleet_queries.Moment.of(value)
        local = timezone.localtime(value)
        assert moment.text == date_filter(local, "j M Y H:i")
        assert moment.iso == date_filter(local, "c")
