"""The polled pages under load: gunicorn serving the dashboard, 50 clients polling.

    .venv/bin/pip install -q -e '.[bench]' && .venv/bin/python benchmarks/page_load.py
    .venv/bin/python benchmarks/page_load.py --sizes 1000,10000,50000

Builds a SQLite file like a busy installation's (--live stagings, default 100, some of them
being created, redeployed or destroyed, and --destroyed ones, default 1,000, each with its
operations and their steps, written with bulk_create a chunk at a time), serves the dashboard
from it with gunicorn, logs in once over HTTP and has locust (headless) drive --users clients,
each polling what an open page polls (a staging's progress partial every 2 s, the fleet table
every 3 s), for --seconds; then the same load from plain threads, whose fleet-table polls send
back the ETag they were given, as the page does (so most are answered 304). Prints requests per
second, p50/p95/p99 latency, errors and SQL queries per page, as the client and as gunicorn
timed them.

--sizes builds each number of destroyed stagings in turn (each on the last; 50 live unless
--live says otherwise) and, with no server, times with Django's test client the progress
partial of a running create, the fleet table, the first and last history page and the fleet
page: the median of --runs requests each and its SQL queries, against the targets.

No AWS is needed: the pages read only our database. To prove it, the server's AWS endpoint is
a closed local port, and the in-process requests refuse every AWS client.
"""

import argparse
import csv
import http.cookiejar
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PASSWORD = "bench-password-123"
SOURCES = ("host-db", "staging-marketing-db", "staging-support-db")
BRANCHES = ("main", "develop", "feature/login-page", "feature/search", "fix/invoice-rounding",
            "release/2026.11", "feature/new-onboarding", "chore/upgrade-rails")
# Live stagings by status, 100 in all; the busy ones have an operation running.
LIVE = {"ready": 72, "provisioning": 12, "updating": 5, "destroying": 4, "failed": 4,
        "pending": 3}
DESTROYED = 1000
# The fleet table asked with the version it last answered, when nothing changed since (304).
UNCHANGED = "/fleet/table/ (304)"
LIVE_COUNT = sum(LIVE.values())


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def closed_port() -> int:
    return free_port()  # nothing listens there once the probe is closed


# --- the data ------------------------------------------------------------------------------------


def make_people():
    from django.contrib.auth import get_user_model

    users = get_user_model()
    viewer = users.objects.create_user("bench", "bench@example.com", PASSWORD, is_staff=True)
    return [viewer] + [users.objects.create_user(f"user{i}", f"user{i}@example.com")
                       for i in range(15)]


class Builder:
    """Stagings with their whole history (operations and every step), written with
    bulk_create a chunk at a time: 50,000 destroyed stagings and their ~1.4M steps take
    minutes, not hours, and the memory of one chunk."""

    CHUNK = 1000

    def __init__(self, rng: random.Random, people: list):
        from django.utils import timezone

        self.rng, self.people, self.now = rng, people, timezone.now()
        self.serial = 0
        self.plans: dict[tuple, list] = {}

    def _staging(self, status: str, created_at, destroyed_at=None):
        from provisioning.models import DbMode, Staging
        from provisioning.names import image_tag_for_branch

        rng = self.rng
        self.serial += 1
        serial = self.serial
        dedicated = rng.random() < 0.6
        branch = rng.choice(BRANCHES)
        # bulk_create skips Staging.save(), which fills branch_tag.
        return Staging(
            name=f"bench-{serial}", branch=branch, branch_tag=image_tag_for_branch(branch),
            image=f"123456789012.dkr.ecr.us-east-1.amazonaws.com/app@sha256:{serial:064x}",
            image_tag="main", source=rng.choice(SOURCES) if dedicated else SOURCES[0],
            snapshot_id="snap" if dedicated else "",
            db_mode=DbMode.DEDICATED if dedicated else DbMode.SHARED,
            owner=rng.choice(self.people), status=status,
            url=f"https://bench-{serial}.stagings.example.com",
            db_instance=f"ds-bench-{serial}" if dedicated else "",
            login_username=f"tester-{serial}", created_at=created_at, updated_at=created_at,
            ready_at=created_at + timedelta(minutes=12) if status != "pending" else None,
            destroyed_at=destroyed_at,
        )

    def _plan(self, operation) -> list:
        """The step specs of an operation, built once per kind and database choice."""
        from provisioning.lifecycle import plan_for

        staging = operation.staging
        key = (operation.kind, staging.db_mode, staging.source)
        if key not in self.plans:
            self.plans[key] = plan_for(operation)
        return self.plans[key]

    def destroyed(self, count: int) -> None:
        for first in range(0, count, self.CHUNK):
            rows = []
            for _ in range(min(self.CHUNK, count - first)):
                created = self.now - timedelta(hours=self.rng.uniform(2, 24 * 120))
                gone = min(created + timedelta(hours=self.rng.uniform(1, 24 * 5)), self.now)
                rows.append(self._staging("destroyed", created, gone))
            self._write(rows)

    def live(self, count: int) -> list[int]:
        """``count`` live stagings, LIVE's mix of statuses scaled to it; their ids."""
        total = sum(LIVE.values())
        statuses = [status for status, share in LIVE.items()
                    for _ in range(max(round(share * count / total), 1))]
        statuses = (statuses + ["ready"] * count)[:count]
        rows = [self._staging(status, self.now - timedelta(hours=self.rng.uniform(0.1, 240)))
                for status in statuses]
        self._write(rows)
        return [row.pk for row in rows]

    def _write(self, stagings: list) -> None:
        from django.db import transaction

        from provisioning.models import Operation, OperationKind, Staging, Step

        rng, now = self.rng, self.now
        with transaction.atomic():
            Staging.objects.bulk_create(stagings)  # the ids come back (RETURNING)
            # Each staging's history: its create, maybe redeploys, and its destroy.
            operations: list[tuple[Operation, str]] = []  # (operation, how far it got)
            for row in stagings:
                history = [(OperationKind.CREATE, "done")]
                history += [(OperationKind.REDEPLOY, "done")] * rng.choice((0, 0, 1, 2))
                last = {"provisioning": (OperationKind.CREATE, "running"),
                        "pending": (OperationKind.CREATE, "queued"),
                        "failed": (OperationKind.CREATE, "failed"),
                        "updating": (OperationKind.REDEPLOY, "running"),
                        "destroying": (OperationKind.DESTROY, "running"),
                        "destroyed": (OperationKind.DESTROY, "done")}.get(row.status)
                if last and last[0] == OperationKind.CREATE:
                    history = [last]
                elif last:
                    history.append(last)
                at = row.created_at
                for kind, state in history:
                    status = {"done": "succeeded", "running": "running", "queued": "queued",
                              "failed": "failed"}[state]
                    finished = state in {"done", "failed"}
                    operation = Operation(
                        staging=row, kind=kind, status=status, requested_by=row.owner,
                        created_at=at, started_at=at if state != "queued" else None,
                        finished_at=at + timedelta(minutes=12) if finished else None,
                        heartbeat_at=now if state == "running" else None,
                        error="Start the web service failed (ecs:CreateService): ..."
                        if state == "failed" else "",
                    )
                    operations.append((operation, state))
                    at += timedelta(hours=rng.uniform(0.5, 20))
            Operation.objects.bulk_create([operation for operation, _ in operations])

            steps: list[Step] = []
            for operation, state in operations:
                if state == "queued":
                    continue
                plan = self._plan(operation)
                done_until = len(plan) if state == "done" else rng.randrange(1, len(plan))
                at = operation.started_at
                for position, spec in enumerate(plan):
                    finished = position < done_until
                    running = not finished and position == done_until and state == "running"
                    failed = not finished and position == done_until and state == "failed"
                    took = timedelta(seconds=rng.uniform(1, 400 if spec.key == "database" else 60))
                    steps.append(Step(
                        operation=operation, key=spec.key, label=spec.label, position=position,
                        state="done" if finished else "running" if running else
                        "failed" if failed else "pending",
                        attempts=1 if finished or running or failed else 0,
                        started_at=at if finished or running or failed else None,
                        finished_at=at + took if finished or failed else None,
                        detail=f"{spec.key} ok" if finished else "",
                        error_code="InvalidParameterException" if failed else "",
                        outputs={"arn": f"arn:aws:ecs:us-east-1:123456789012:service/host/"
                                        f"ds-{operation.staging.name}-web"}
                        if finished and spec.key == "web_service" else {},
                    ))
                    at += took / 3
            Step.objects.bulk_create(steps, batch_size=5000)


def seed(rng: random.Random, destroyed: int = DESTROYED, live: int = LIVE_COUNT) -> list[int]:
    """The stagings, operations, steps and a warm pool; returns the live stagings' ids."""
    from provisioning.models import PoolDatabase, PoolStatus

    builder = Builder(rng, make_people())
    builder.destroyed(destroyed)
    live_ids = builder.live(live)
    for source in SOURCES[1:]:
        for status in (PoolStatus.READY, PoolStatus.RESTORING):
            PoolDatabase.objects.create(instance_id=f"dsp-{source}-{status}", source=source,
                                        snapshot_id="snap", status=status)
    return live_ids


def bench_client():
    from django.contrib.auth import get_user_model
    from django.test import Client

    client = Client(SERVER_NAME="127.0.0.1")
    # force_login: django-axes refuses an authenticate() that comes without a request.
    client.force_login(get_user_model().objects.get(username="bench"))
    return client


def polled_pages(live: list[int]) -> dict[str, tuple[str, dict]]:
    """What an open dashboard polls: label -> (path, headers)."""
    from provisioning.models import Staging

    busy = Staging.objects.filter(pk__in=live, status="provisioning").first().pk
    ready = Staging.objects.filter(pk__in=live, status="ready").first().pk
    return {"/fleet/table/": ("/fleet/table/", HTMX),
            "progress (creating)": (f"/stagings/{busy}/progress/", HTMX),
            "progress (ready)": (f"/stagings/{ready}/progress/", HTMX)}


HTMX = {"HTTP_HX_REQUEST": "true"}


def unchanged_fleet_poll(client) -> tuple[str, dict] | None:
    """The fleet table asked again with the version it answered (If-None-Match), when the
    dashboard answers with one."""
    etag = client.get("/fleet/table/", **HTMX).headers.get("ETag")
    return ("/fleet/table/", HTMX | {"HTTP_IF_NONE_MATCH": etag}) if etag else None


def measure(client, pages: dict[str, tuple[str, dict]],
            runs: int = 1) -> dict[str, tuple[float, int, int]]:
    """label -> (median milliseconds, SQL queries, status) of ``runs`` requests each, in
    process, after one request that fills what a first request fills; every AWS client is
    refused (a polled view that called AWS would fail here)."""
    from statistics import median
    from unittest import mock

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    found = {}
    with mock.patch("provisioning.aws.base.client", side_effect=AssertionError("AWS call")):
        for label, (path, headers) in pages.items():
            client.get(path, **headers)
            times = []
            for _ in range(runs):
                with CaptureQueriesContext(connection) as queries:
                    began = time.perf_counter()
                    response = client.get(path, **headers)
                    times.append((time.perf_counter() - began) * 1000)
                assert response.status_code in {200, 286, 304}, (path, response.status_code)
            found[label] = (median(times), len(queries), response.status_code)
    return found


def queries_per_poll(live: list[int]) -> dict[str, int]:
    client = bench_client()
    pages = polled_pages(live)
    unchanged = unchanged_fleet_poll(client)
    if unchanged:
        pages["/fleet/table/ (unchanged)"] = unchanged
    return {label: queries for label, (_, queries, _) in measure(client, pages).items()}


def page_set(live: list[int]) -> dict[str, tuple[str, dict]]:
    """The pages the sizes mode times: the polled partials, the last page of the history and
    the fleet page."""
    from dashboard.views import HISTORY_PAGE_SIZE
    from provisioning.models import Staging

    destroyed = Staging.objects.filter(status="destroyed").count()
    last = max((destroyed + HISTORY_PAGE_SIZE - 1) // HISTORY_PAGE_SIZE, 1)
    pages = polled_pages(live)
    del pages["progress (ready)"]
    return pages | {"history, last page": (f"/history/?page={last}", {}),
                    "history, first page": ("/history/", {}),
                    "fleet page": ("/", {})}


TARGETS_MS = {"progress (creating)": 10, "/fleet/table/": 15, "history, last page": 20,
              "history, first page": 20, "fleet page": 100}


def sizes_mode(sizes: list[int], live_count: int, runs: int) -> None:
    """Each size built on the last one (more destroyed stagings with their history), then
    every page timed with Django's test client: medians, no server."""
    from provisioning.models import Operation, PoolDatabase, PoolStatus, Step

    builder = Builder(random.Random(5), make_people())
    live = builder.live(live_count)
    PoolDatabase.objects.create(instance_id="dsp-pool-ready", source=SOURCES[1],
                                snapshot_id="snap", status=PoolStatus.READY)
    made = 0
    print(f"{'destroyed':>10}{'steps':>10}{'build s':>9}  " + "".join(
        f"{label:>22}" for label in TARGETS_MS))
    for size in sizes:
        started = time.monotonic()
        builder.destroyed(size - made)
        made = size
        built = time.monotonic() - started
        client = bench_client()
        found = measure(client, page_set(live), runs)
        # Its version taken right before: it changes once a minute.
        unchanged = unchanged_fleet_poll(client) or page_set(live)["/fleet/table/"]
        found |= measure(client, {"/fleet/table/ (unchanged)": unchanged}, runs)
        cells = "".join(f"{found[label][0]:>13.1f} ms {found[label][1]:>2}q  "
                        for label in TARGETS_MS)
        print(f"{size:>10}{Step.objects.count():>10}{built:>9.1f}  {cells}", flush=True)
        if size == sizes[-1]:
            print(f"  (operations {Operation.objects.count()}; {live_count} live; median of "
                  f"{runs} requests each; q: SQL queries per request)")
            extra = found["/fleet/table/ (unchanged)"]
            print(f"  fleet table asked with its own version: {extra[0]:.1f} ms, "
                  f"{extra[1]} queries, HTTP {extra[2]}")
            print("  targets: " + ", ".join(
                f"{label} <= {limit} ms: {found[label][0]:.1f} "
                f"{'ok' if found[label][0] <= limit else 'MISSED'}"
                for label, limit in TARGETS_MS.items()))


# --- serving and driving -------------------------------------------------------------------------


def login(base: str) -> str:
    """Log in through the login form like a browser; the session cookie."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    opener.open(f"{base}/login/").read()
    token = next(c.value for c in jar if c.name == "csrftoken")
    body = urllib.parse.urlencode({"username": "bench", "password": PASSWORD,
                                   "csrfmiddlewaretoken": token}).encode()
    request = urllib.request.Request(f"{base}/login/", data=body,
                                     headers={"Referer": f"{base}/login/"})
    opener.open(request).read()
    session = next((c.value for c in jar if c.name == "sessionid"), "")
    if not session:
        sys.exit("logging in failed")
    return session


def wait_for(base: str, server: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit("gunicorn exited; see gunicorn.log")
        try:
            urllib.request.urlopen(f"{base}/login/", timeout=2).read()
            return
        except OSError:
            time.sleep(0.3)
    sys.exit("gunicorn did not answer")


def server_cpu_seconds(pid: int) -> float:
    """CPU time of a process and its children so far (0 once it is gone)."""
    import psutil  # comes with locust

    try:
        main = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for process in [main, *main.children(recursive=True)]:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(len(ordered) * fraction), len(ordered) - 1)]


def server_times(lines: list[str]) -> dict[str, list[float]]:
    """Milliseconds per polled page (and all of them) from gunicorn's access log."""
    pages: dict[str, list[float]] = {"/fleet/table/": [], UNCHANGED: [],
                                     "/stagings/<pk>/progress/": []}
    for line in lines:
        method, path, status, micros = line.split()
        page = (UNCHANGED if status == "304" else "/fleet/table/") if path == "/fleet/table/" \
            else "/stagings/<pk>/progress/" if path.endswith("/progress/") else None
        if method == "GET" and page:
            pages[page].append(int(micros) / 1000)
    pages["Aggregated"] = [t for times in pages.values() for t in times]
    return {page: times for page, times in pages.items() if times}


def paced_threads(port: int, session: str, live: list[int],
                  args) -> dict[str, tuple[list[float], int]]:
    """The locust load again from plain threads: what a client sees, without the load
    generator's own overhead (see README "Benchmarks")."""
    import http.client
    import threading

    pace = args.pace or 2.0
    found: dict[str, tuple[list[float], list[int]]] = {
        "/fleet/table/": ([], [0]), UNCHANGED: ([], [0]), "/stagings/<pk>/progress/": ([], [0])}
    headers = {"HX-Request": "true", "Cookie": f"sessionid={session}"}
    lock = threading.Lock()

    def client(seed: int) -> None:
        rng = random.Random(seed)
        version = ""  # the fleet table's ETag, sent back as the page's poll does
        time.sleep(rng.uniform(0, pace))
        end = time.monotonic() + args.seconds
        while time.monotonic() < end:
            began = time.perf_counter()
            page = rng.choice(["/stagings/<pk>/progress/"] * 3 + ["/fleet/table/"] * 2)
            path = page.replace("<pk>", str(rng.choice(live)))
            sent = headers | ({"If-None-Match": version}
                              if version and page == "/fleet/table/" else {})
            status = 0
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                connection.request("GET", path, headers=sent)
                response = connection.getresponse()
                response.read()
                connection.close()
                status = response.status
                failed = status not in {200, 286, 304}
                version = response.getheader("ETag") or version if page == "/fleet/table/" \
                    else version
            except OSError:
                failed = True
            took = time.perf_counter() - began
            if status == 304:
                page = UNCHANGED
            with lock:
                found[page][0].append(took * 1000)
                found[page][1][0] += failed
            time.sleep(max(pace - took, 0))

    threads = [threading.Thread(target=client, args=(seed,)) for seed in range(args.users)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result = {page: (times, errors[0]) for page, (times, errors) in found.items() if times}
    result["Aggregated"] = ([t for times, _ in result.values() for t in times],
                            sum(errors for _, errors in result.values()))
    return result


def read_stats(prefix: Path) -> list[dict[str, str]]:
    with open(f"{prefix}_stats.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=50, help="concurrent clients (default 50)")
    parser.add_argument("--seconds", type=int, default=30, help="how long they poll")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn worker processes")
    parser.add_argument("--pace", type=float, default=2.0,
                        help="seconds between one client's polls (default 2, as the progress "
                             "partial polls; 0: as fast as each client can)")
    parser.add_argument("--destroyed", type=int, default=DESTROYED,
                        help=f"destroyed stagings, each with its history (default {DESTROYED})")
    parser.add_argument("--live", type=int, default=None,
                        help=f"live stagings (default {LIVE_COUNT}; 50 with --sizes)")
    parser.add_argument("--sizes", default="",
                        help="e.g. 1000,10000,50000: no server; build each number of destroyed "
                             "stagings in turn and time the pages with Django's test client")
    parser.add_argument("--runs", type=int, default=15,
                        help="requests per page and size with --sizes (the median is shown)")
    parser.add_argument("--keep", action="store_true", help="keep the state directory (logs)")
    args = parser.parse_args()
    sizes = sorted(int(size) for size in args.sizes.split(",") if size.strip())
    if not sizes:
        for tool in ("gunicorn", "locust"):
            if not (BIN / tool).exists():
                sys.exit(f"{tool} is missing: .venv/bin/pip install -e '.[bench]'")

    state_dir = Path(tempfile.mkdtemp(prefix="ds-pages-"))
    for inherited in ("DS_SANDBOX", "DATABASE_URL", "DS_REDIS_URL", "AWS_PROFILE"):
        os.environ.pop(inherited, None)
    os.environ.update({
        "DJANGO_SETTINGS_MODULE": "dashboard.settings",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "page-load-benchmark-only",
        "DS_SQLITE_PATH": str(state_dir / "db.sqlite3"),
        "DS_SNAPSHOT_SOURCES": ",".join(SOURCES),
        "DS_POOL_SIZES": f"{SOURCES[1]}=2",
        "DS_LISTENER_ARN": "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/x",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{closed_port()}",
        "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "none", "AWS_SECRET_ACCESS_KEY": "none",
    })
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    started = time.monotonic()
    call_command("migrate", interactive=False, verbosity=0)
    try:
        if sizes:
            sizes_mode(sizes, 50 if args.live is None else args.live, args.runs)
        else:
            serve_and_poll(args, state_dir, started)
    finally:
        if args.keep:
            print(f"state kept in {state_dir}", file=sys.stderr)
        else:
            shutil.rmtree(state_dir, ignore_errors=True)


def serve_and_poll(args, state_dir: Path, started: float) -> None:
    live = seed(random.Random(5), args.destroyed,
                LIVE_COUNT if args.live is None else args.live)
    from provisioning.models import Operation, Staging, Step

    print(f"page_load: {Staging.objects.exclude(status='destroyed').count()} live and "
          f"{Staging.objects.filter(status='destroyed').count()} destroyed stagings, "
          f"{Operation.objects.count()} operations, {Step.objects.count()} steps "
          f"(made in {time.monotonic() - started:.1f} s)")
    counts = queries_per_poll(live)
    print("SQL queries per poll:", ", ".join(f"{page} {count}" for page, count in
                                             counts.items()),
          "(no AWS call: every AWS client refused)")
    queries = {"/fleet/table/": counts["/fleet/table/"],
               UNCHANGED: counts.get("/fleet/table/ (unchanged)", ""),
               "/stagings/<pk>/progress/": max(counts["progress (creating)"],
                                               counts["progress (ready)"])}

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [str(BIN / "gunicorn"), "dashboard.wsgi:application", "--bind", f"127.0.0.1:{port}",
         "--workers", str(args.workers), "--log-level", "warning",
         # Each request's own time in the worker, in microseconds: the server's share of what
         # a client measures.
         "--access-logfile", str(state_dir / "access.log"),
         "--access-logformat", "%(m)s %(U)s %(s)s %(D)s"],
        cwd=ROOT, env=os.environ.copy(), stdout=open(state_dir / "gunicorn.log", "w"),  # noqa: SIM115
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(base, server)
        session = login(base)
        prefix = state_dir / "locust"
        cpu_before, wall_before = server_cpu_seconds(server.pid), time.monotonic()
        logged_before = len((state_dir / "access.log").read_text().splitlines())
        env = os.environ | {"BENCH_SESSION_COOKIE": session, "BENCH_PACE": str(args.pace),
                            "BENCH_STAGINGS": ",".join(map(str, live))}
        driver = subprocess.Popen(
            [str(BIN / "locust"), "-f", str(ROOT / "benchmarks" / "locustfile.py"), "--headless",
             "-u", str(args.users), "-r", str(args.users), "-t", f"{args.seconds}s",
             "--host", base, "--csv", str(prefix), "--only-summary", "--loglevel", "WARNING"],
            cwd=ROOT, env=env, stdout=open(state_dir / "locust.log", "w"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
        )
        driver_cpu = 0.0
        while driver.poll() is None:
            driver_cpu = max(driver_cpu, server_cpu_seconds(driver.pid))
            time.sleep(0.5)
        cpu = server_cpu_seconds(server.pid) - cpu_before
        wall = time.monotonic() - wall_before
        rows = read_stats(prefix)
        logged_after = len((state_dir / "access.log").read_text().splitlines())
        threaded = paced_threads(port, session, live, args)
        logged_end = len((state_dir / "access.log").read_text().splitlines())
    finally:
        server.terminate()
        server.wait(timeout=30)

    print(f"gunicorn: {args.workers} sync workers; locust: {args.users} clients for "
          f"{args.seconds} s, one poll per client every {args.pace:g} s"
          if args.pace else f"gunicorn: {args.workers} sync workers; locust: {args.users} "
          f"clients for {args.seconds} s, polling as fast as they can")
    header = f"{'page':<28}{'requests':>9}{'req/s':>8}{'p50':>7}{'p95':>7}{'p99':>7}{'max':>7}" \
             f"{'errors':>8}"
    print(header)
    print("-" * len(header))
    for row in rows:
        print(f"{row['Name']:<28}{row['Request Count']:>9}{float(row['Requests/s']):>8.1f}"
              f"{row['50%']:>5}ms{row['95%']:>5}ms{row['99%']:>5}ms"
              f"{float(row['Max Response Time']):>5.0f}ms{row['Failure Count']:>8}")
    log = (state_dir / "access.log").read_text().splitlines()
    print()
    print("the same requests as gunicorn timed them (request in, response written):")
    print_server_times(log[logged_before:logged_after], queries)
    print()
    print(f"the same load from {args.users} plain threads (http.client, one poll per client "
          f"every {args.pace or 2:g} s, {args.seconds} s; the fleet table sent back its ETag):")
    print(f"{'page':<28}{'requests':>9}{'p50':>9}{'p95':>9}{'p99':>9}{'errors':>8}"
          f"{'queries':>9}")
    for page, (times, errors) in threaded.items():
        print(f"{page:<28}{len(times):>9}" + "".join(
            f"{percentile(times, q):>7.1f}ms" for q in (0.50, 0.95, 0.99)) + f"{errors:>8}"
            f"{queries.get(page, ''):>9}")
    print("as gunicorn timed those:")
    print_server_times(log[logged_after:logged_end], queries)
    total = rows[-1]
    requests = int(total["Request Count"]) or 1
    print(f"gunicorn CPU: {cpu:.1f} s over {wall:.0f} s ({cpu / wall:.2f} cores), "
          f"{cpu / requests * 1000:.1f} ms per request; locust {driver_cpu:.1f} s; machine "
          f"load average "
          f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    plain_times, plain_errors = threaded["Aggregated"]
    print(f"targets: p95 <= 25 ms: {percentile(plain_times, 0.95):.1f} ms from plain threads, "
          f"{total['95%']} ms as locust measures it; no errors: {plain_errors} and "
          f"{total['Failure Count']} errors")


def print_server_times(lines: list[str], queries: dict) -> None:
    print(f"{'page':<28}{'requests':>9}{'p50':>9}{'p95':>9}{'p99':>9}{'queries':>9}")
    for page, times in server_times(lines).items():
        print(f"{page:<28}{len(times):>9}" + "".join(
            f"{percentile(times, q):>7.1f}ms" for q in (0.50, 0.95, 0.99))
            + f"{queries.get(page, ''):>9}")


if __name__ == "__main__":
    main()
