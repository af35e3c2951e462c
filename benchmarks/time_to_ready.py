"""Time to a ready staging on the sandbox, against the lower bound of each step graph.

    .venv/bin/python benchmarks/time_to_ready.py [--runs 3] [--scale 0.05] [--poll 0.1]
        [--cases other,host,pool,shared,redeploy,destroy,many]

Starts its own sandbox stack (tests/stack.py: moto with the latency profile of
provisioning/sandbox/latency.py scaled by --scale, its own SQLite file and a qcluster), then
measures, --runs times each: a create with a dedicated DB restored from a source other than
the host (other), the same from the host (host), the same from a source with a warm pool
(pool), a create with the shared DB (shared), a redeploy and a destroy (of a staging with a
dedicated DB); then 20 dedicated creates submitted together by seven people (none above
DS_MAX_INFLIGHT_PER_USER) and, while they are in flight, a shared create by somebody else: how
long it takes beside how long it takes alone (many). --cases picks some of them (a redeploy
needs the shared creates, a destroy the other-source ones, many both: they run too).

For each it prints the median of the runs, as
* runner: the operation's own started_at..finished_at (what the step graph takes), and
* submitted: from the request until finished_at (adds the queue's pickup, up to its 0.5 s poll);
beside the critical path of the operation's step graph under the same scaled profile (the
longest chain through the plan's StepSpec.after, each step lasting what its AWS operation takes
in the profile: the physical lower bound of that plan) and the time the article's strictly
sequential order would take under the same profile.

The engine is the one that runs in production, with its default of 4 workers (--workers):
an operation waiting on AWS holds none. One knob differs from its defaults and is printed:
DS_POLL_SECONDS (how often a waiting step asks AWS; 10 s against real AWS, scaled down here
with everything else so a poll does not dwarf a scaled second).
"""

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

NON_HOST_SOURCE = "staging-support-db"
POOL_SOURCE = "staging-marketing-db"
BRANCH = "feature/Login_Page"
SHARED_BRANCH = "develop"
REDEPLOY_TAG = "main"
AWS_SERVICES = ("rds", "ecs", "elbv2", "ecr", "secretsmanager", "resourcegroupstaggingapi")
# Each case, and the cases whose stagings it works on (run before it).
CASES = {"other": (), "host": (), "pool": (), "shared": (), "redeploy": ("shared",),
         "destroy": ("other",), "many": ("other", "shared")}

# Which profile operation each step waits for (provisioning/sandbox/latency.py). Steps not
# listed make calls the sandbox answers at once (create_service, the account API, deletes of
# rules, target groups and task definitions), so they last no time in the lower bound.
STEP_OPERATIONS = {
    "create": {
        "image": "ecr_describe_images",
        "database": "rds_restore",
        "db_credentials": "rds_modify_password",
        "web_task_definition": "ecs_register_task_definition",
        "worker_task_definition": "ecs_register_task_definition",
        "target_group": "elbv2_create_target_group",
        "listener_rule": "elbv2_create_rule",
        "web_healthy": "ecs_service_start_to_healthy",
        "worker_steady": "ecs_task_to_running",
    },
    "redeploy": {
        "image": "ecr_describe_images",
        "web_task_definition": "ecs_register_task_definition",
        "worker_task_definition": "ecs_register_task_definition",
        "web_healthy": "ecs_rolling_update",
        "worker_steady": "ecs_task_to_running",
    },
    "destroy": {
        "web_service": "ecs_service_delete",
        "worker_service": "ecs_service_delete",
        "database": "rds_delete",
    },
}
# A wait for a service counts from the moment its service step made the call, not from when the
# wait step started: the web health wait may start late (it also waits for the password change)
# while the task has been booting since the service was created.
ANCHORS = {"web_healthy": "web_service", "worker_steady": "worker_service"}
# A create that takes a warm database: the claim is a row update, no AWS wait.
POOLED_STEPS = {"database": None, "db_credentials": None}

# The article's order, one thing after another: restore, wait, change the password, wait, the
# web task definition, target group, rule, web service until healthy, the account (an API
# call), then the worker's task definition and service.
_ARTICLE_WEB = ["ecs_register_task_definition", "elbv2_create_target_group", "elbv2_create_rule",
                "ecs_service_start_to_healthy"]
_ARTICLE_WORKER = ["ecs_register_task_definition", "ecs_task_to_running"]
SEQUENTIAL = {
    "other source": ["ecr_describe_images", "rds_restore", "rds_modify_password",
                     *_ARTICLE_WEB, *_ARTICLE_WORKER],
    "host": ["ecr_describe_images", "rds_restore", *_ARTICLE_WEB, *_ARTICLE_WORKER],
    "shared": ["ecr_describe_images", *_ARTICLE_WEB, *_ARTICLE_WORKER],
    # Not in the article: the same steps one after another.
    "redeploy": ["ecr_describe_images", "ecs_register_task_definition", "ecs_rolling_update",
                 "ecs_register_task_definition", "ecs_task_to_running"],
    "destroy": ["ecs_service_delete", "ecs_service_delete", "rds_delete"],
}


# --- the lower bound -----------------------------------------------------------------------------


def critical_path(after: dict[str, tuple[str, ...]], seconds: dict[str, float],
                  anchors: dict[str, str] | None = None) -> tuple[float, list[str]]:
    """Length and steps of the longest chain through the graph (``after``: step -> the steps
    it waits for). A step with an anchor lasts its seconds from the end of the anchor step, or
    until its last dependency is done if that is later."""
    anchors = anchors or {}
    finish: dict[str, tuple[float, list[str]]] = {}

    def later(*found: tuple[float, list[str]]) -> tuple[float, list[str]]:
        return max(found, key=lambda item: item[0])

    def end_of(key: str) -> tuple[float, list[str]]:
        if key not in finish:
            ready = later((0.0, []), *(end_of(dep) for dep in after[key]))
            anchor = anchors.get(key)
            if anchor in after:
                start, chain = end_of(anchor)
                own = (start + seconds.get(key, 0.0), [*chain, key])
                finish[key] = later(own, (ready[0], [*ready[1], key]))
            else:
                finish[key] = (ready[0] + seconds.get(key, 0.0), [*ready[1], key])
        return finish[key]

    return max((end_of(key) for key in after), key=lambda found: (found[0], len(found[1])))


def step_seconds(kind: str, scale: float, pooled: bool = False) -> dict[str, float]:
    from provisioning.sandbox.latency import scaled

    operations = dict(STEP_OPERATIONS[kind])
    if pooled:
        operations.update(POOLED_STEPS)
    return {key: scaled(op, scale) for key, op in operations.items() if op}


def plan_bound(staging, kind: str, scale: float, pooled: bool = False) -> tuple[float, list[str]]:
    from provisioning.lifecycle import plan_for
    from provisioning.models import Operation

    plan = plan_for(Operation(staging=staging, kind=kind))
    return critical_path({spec.key: spec.after for spec in plan},
                         step_seconds(kind, scale, pooled), ANCHORS)


def sequential_seconds(case: str, scale: float) -> float:
    from provisioning.sandbox.latency import scaled

    return sum(scaled(op, scale) for op in SEQUENTIAL[case])


# --- the sandbox's workers ------------------------------------------------------------------------


def warm_worker(services: tuple[str, ...] = AWS_SERVICES) -> None:
    """Run by each qcluster worker before the measurements: a worker makes its AWS clients
    (botocore loads each service model) on its first operation, once per process; a service
    that has been up a while has long paid that."""
    from provisioning.aws.base import client

    for service in services:
        client(service)
    time.sleep(2)  # hold this worker, so the next warm-up goes to another one


def wait_for_warm_workers(count: int, timeout: float = 120) -> None:
    from django_q.models import Task

    deadline = time.monotonic() + timeout
    while Task.objects.filter(func="benchmarks.time_to_ready.warm_worker").count() < count:
        if time.monotonic() > deadline:
            sys.exit("the qcluster workers did not start; see the qcluster log")
        time.sleep(0.5)


# --- measuring -----------------------------------------------------------------------------------


@dataclass
class Measured:
    runner: float
    submitted: float
    steps: dict[str, float]


def wait_finished(operation_id: int, submitted_at: datetime, timeout: float) -> Measured:
    from provisioning.models import Operation

    deadline = time.monotonic() + timeout
    while True:
        operation = Operation.objects.get(pk=operation_id)
        if operation.is_finished:
            break
        if time.monotonic() > deadline:
            sys.exit(f"operation {operation_id} ({operation}) did not finish in {timeout:.0f} s")
        time.sleep(0.1)
    if operation.status != "succeeded":
        sys.exit(f"{operation} failed: {operation.error}")
    steps = {s.key: (s.finished_at - s.started_at).total_seconds()
             for s in operation.steps.all() if s.started_at and s.finished_at}
    return Measured((operation.finished_at - operation.started_at).total_seconds(),
                    (operation.finished_at - submitted_at).total_seconds(), steps)


@dataclass
class Case:
    title: str
    sequential: str
    runs: list[Measured]
    bound: float
    chain: list[str]

    @property
    def runner(self) -> float:
        return statistics.median(m.runner for m in self.runs)

    @property
    def submitted(self) -> float:
        return statistics.median(m.submitted for m in self.runs)


class Bench:
    def __init__(self, args):
        self.args = args
        self.timeout = 60 + 40 * 900 * args.scale  # far above any operation's lower bound
        from django.contrib.auth import get_user_model

        self.user, _ = get_user_model().objects.get_or_create(username="bench")
        self.count = 0

    def _name(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}-{self.count}"

    def create(self, prefix: str, **kwargs):
        from provisioning.operations import request_create

        submitted_at = datetime.now(UTC)
        staging = request_create(owner=self.user, name=self._name(prefix), **kwargs)
        measured = wait_finished(staging.latest_operation().pk, submitted_at, self.timeout)
        staging.refresh_from_db()
        return staging, measured

    def redeploy(self, staging):
        from provisioning.operations import request_redeploy

        submitted_at = datetime.now(UTC)
        operation = request_redeploy(staging, user=self.user, tag=REDEPLOY_TAG)
        return wait_finished(operation.pk, submitted_at, self.timeout)

    def destroy(self, staging):
        from provisioning.operations import request_destroy

        submitted_at = datetime.now(UTC)
        operation = request_destroy(staging, user=self.user)
        return wait_finished(operation.pk, submitted_at, self.timeout)

    def repeat(self, title: str, sequential: str, run: Callable[[], tuple],
               kind: str = "create", pooled: bool = False) -> tuple[Case, list]:
        made, runs = [], []
        for _ in range(self.args.runs):
            staging, measured = run()
            made.append(staging)
            runs.append(measured)
            print(f"  {title}: runner {measured.runner:.2f} s, "
                  f"submitted {measured.submitted:.2f} s", file=sys.stderr)
        bound, chain = plan_bound(made[0], kind, self.args.scale, pooled)
        return Case(title, sequential, runs, bound, chain), made


def fill_pool(size: int, timeout: float) -> float:
    """Refill until ``size`` databases of the pool source are ready (the same refill the
    schedule runs every minute, called here without waiting for the next minute)."""
    from provisioning.models import PoolDatabase, PoolStatus
    from provisioning.pool import refill_pools

    started = time.monotonic()
    while PoolDatabase.objects.filter(source=POOL_SOURCE, status=PoolStatus.READY).count() < size:
        if time.monotonic() - started > timeout:
            sys.exit("the warm pool did not fill up")
        refill_pools()
        time.sleep(0.5)
    return time.monotonic() - started


def _people(count: int) -> list:
    """Enough people that none has more than DS_MAX_INFLIGHT_PER_USER creates in flight."""
    from django.contrib.auth import get_user_model

    from provisioning.config import load_config

    cap = load_config().max_inflight_per_user
    return [get_user_model().objects.get_or_create(username=f"bench-{i}")[0]
            for i in range(-(-count // cap))]


def many_at_once(bench: Bench, count: int):
    """``count`` dedicated creates submitted together from as many threads by several people,
    then a shared create by somebody else while they are in flight. Wall time from the first
    request until the last of the many finished; their runs; the shared one's run."""
    from django.contrib.auth import get_user_model
    from django.db import connection

    from provisioning.models import DbMode, Operation
    from provisioning.operations import request_create

    names = [bench._name("many") for _ in range(count)]
    people = _people(count)
    barrier = threading.Barrier(count)

    def submit(index: int):
        try:
            barrier.wait()
            at = datetime.now(UTC)
            staging = request_create(branch=BRANCH, owner=people[index % len(people)],
                                     name=names[index], source=NON_HOST_SOURCE)
            return staging.latest_operation().pk, at
        finally:
            connection.close()

    started = datetime.now(UTC)
    with ThreadPoolExecutor(count) as pool:
        submitted = list(pool.map(submit, range(count)))
    somebody_else, _ = get_user_model().objects.get_or_create(username="bench-late")
    at = datetime.now(UTC)
    late = request_create(branch=SHARED_BRANCH, owner=somebody_else, name=bench._name("late"),
                          db_mode=DbMode.SHARED)
    late_run = wait_finished(late.latest_operation().pk, at, bench.timeout * 4)
    runs = [wait_finished(pk, at, bench.timeout * 4) for pk, at in submitted]
    last = max(Operation.objects.filter(pk__in=[pk for pk, _ in submitted])
               .values_list("finished_at", flat=True))
    return (last - started).total_seconds(), runs, late_run


# --- output --------------------------------------------------------------------------------------


def report(cases: list[Case], scale: float) -> None:
    header = (f"{'case':<34}{'runner':>9}{'submit':>9}{'crit.path':>11}{'run/cp':>8}"
              f"{'sub/cp':>8}{'sequential':>12}{'run/seq':>9}")
    print(header)
    print("-" * len(header))
    for case in cases:
        seq = sequential_seconds(case.sequential, scale)
        print(f"{case.title:<34}{case.runner:>8.2f}s{case.submitted:>8.2f}s{case.bound:>10.2f}s"
              f"{case.runner / case.bound:>8.3f}{case.submitted / case.bound:>8.3f}"
              f"{seq:>11.2f}s{case.runner / seq:>9.3f}")
    print()
    print("critical paths (profile seconds at full scale; steps on the longest chain):")
    for case in cases:
        print(f"  {case.title:<32}{case.bound / scale:>7.1f} s  {' > '.join(case.chain)}")
    print("runs (runner seconds):")
    for case in cases:
        print(f"  {case.title:<32}" + "  ".join(f"{m.runner:.2f}" for m in case.runs))


def chosen_cases(raw: str) -> list[str]:
    """The named cases and those they need, in the order they run."""
    names = [name.strip() for name in raw.split(",") if name.strip()]
    unknown = [name for name in names if name not in CASES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"{', '.join(unknown) or 'nothing'}: choose from {', '.join(CASES)}")
    wanted = {need for name in names for need in (name, *CASES[name])}
    return [name for name in CASES if name in wanted]


def print_where_time_went(late: Measured, alone: Case) -> None:
    """The shared create under load beside its median alone: the wait for a worker, then each
    step that took longer, so a ratio above target points at its cause."""
    alone_pickup = statistics.median(m.submitted - m.runner for m in alone.runs)
    print(f"    waiting for a worker: {late.submitted - late.runner:.2f} s under load, "
          f"{alone_pickup:.2f} s alone")
    for key, seconds in sorted(late.steps.items(), key=lambda item: -item[1]):
        usual = statistics.median(m.steps.get(key, 0.0) for m in alone.runs)
        print(f"    {key:<28}{seconds:>7.2f} s under load {usual:>7.2f} s alone")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="repetitions of each case")
    parser.add_argument("--scale", type=float, default=0.05,
                        help="fraction of real AWS durations (default 0.05)")
    parser.add_argument("--poll", type=float, default=0.1, help="DS_POLL_SECONDS (default 0.1)")
    parser.add_argument("--workers", type=int, default=4, help="DS_Q_WORKERS (default 4)")
    parser.add_argument("--many", type=int, default=20, help="creates submitted together")
    parser.add_argument("--cases", type=chosen_cases, default=list(CASES),
                        help=f"comma-separated, of {','.join(CASES)} (default all)")
    parser.add_argument("--keep", action="store_true", help="keep the state directory (logs)")
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    from tests.stack import running_stack

    state_dir = Path(tempfile.mkdtemp(prefix="ds-bench-"))
    env = {
        "DS_POLL_SECONDS": str(args.poll),
        "DS_Q_WORKERS": str(args.workers),
        # Only a measured pool is kept warm: a refill behind other cases would load the sandbox.
        "DS_POOL_SIZES": f"{POOL_SOURCE}={args.runs}" if "pool" in args.cases else "",
        # The caps on live stagings must not stop the benchmark (the in-flight cap stays).
        "DS_MAX_LIVE_PER_USER": "1000",
        "DS_MAX_LIVE_STAGINGS": "1000",
        "DJANGO_SETTINGS_MODULE": "dashboard.settings",
        "DJANGO_DEBUG": "0",
        "DS_LOG_LEVEL": "WARNING",
    }
    try:
        with running_stack(state_dir, args.scale, env=env, env_services=False,
                           qcluster_processes=1) as stack:
            stack.use_here()  # this process requests and reads, as the dashboard would
            import django

            django.setup()
            from django_q.tasks import async_task

            for _ in range(args.workers):
                async_task("benchmarks.time_to_ready.warm_worker")
            bench = Bench(args)
            wait_for_warm_workers(args.workers)
            run_cases(bench, args)
    finally:
        if args.keep:
            print(f"state kept in {state_dir}", file=sys.stderr)
        else:
            shutil.rmtree(state_dir, ignore_errors=True)


def run_cases(bench: Bench, args) -> None:
    from provisioning.models import DbMode

    started = time.monotonic()
    ran: dict[str, Case] = {}
    made: dict[str, list] = {}

    def measure(name: str, title: str, sequential: str, run: Callable[[], tuple],
                **options) -> None:
        if name in args.cases:
            ran[name], made[name] = bench.repeat(title, sequential, run, **options)

    measure("other", "create, other source (no pool)", "other source",
            lambda: bench.create("other", branch=BRANCH, source=NON_HOST_SOURCE))
    measure("host", "create, from the host", "host", lambda: bench.create("host", branch=BRANCH))
    fill_seconds = fill_pool(args.runs, bench.timeout * 4) if "pool" in args.cases else 0.0
    measure("pool", "create, other source, warm pool", "other source",
            lambda: bench.create("pool", branch=BRANCH, source=POOL_SOURCE), pooled=True)
    measure("shared", "create, shared DB", "shared",
            lambda: bench.create("shared", branch=SHARED_BRANCH, db_mode=DbMode.SHARED))
    to_redeploy, to_destroy = iter(made.get("shared", [])), iter(made.get("other", []))

    def redeploy_next():
        staging = next(to_redeploy)
        return staging, bench.redeploy(staging)

    def destroy_next():
        staging = next(to_destroy)
        return staging, bench.destroy(staging)

    measure("redeploy", "redeploy", "redeploy", redeploy_next, kind="redeploy")
    measure("destroy", "destroy, dedicated DB", "destroy", destroy_next, kind="destroy")
    many = args.many if "many" in args.cases else 0
    many_wall, many_runs, late = many_at_once(bench, many) if many else (0.0, [], None)

    cases = list(ran.values())
    scale = args.scale
    print(f"time_to_ready: latency profile x{scale}, DS_POLL_SECONDS={args.poll}, "
          f"DS_Q_WORKERS={args.workers}, {args.runs} runs per case, medians; "
          f"{time.monotonic() - started:.0f} s in all")
    print("runner = Operation.started_at..finished_at; submit = request..finished_at "
          "(adds the queue pickup); crit.path = longest chain of the plan under the profile; "
          "sequential = the article's order, one step after another")
    print()
    report(cases, scale)
    print()
    print_targets(ran, made, args, fill_seconds, many_wall, many_runs, late)
    print(json.dumps({"scale": scale, "poll": args.poll, "cases": {
        c.title: {"runner": round(c.runner, 3), "submitted": round(c.submitted, 3),
                  "critical_path": round(c.bound, 3)} for c in cases},
        "many": {"count": many, "wall": round(many_wall, 3),
                 "shared_under_load": round(late.submitted, 3) if late else None}}))


def print_targets(ran: dict[str, Case], made: dict[str, list], args, fill_seconds: float,
                  many_wall: float, many_runs: list, late) -> None:
    """Each target whose cases ran."""
    from provisioning.sandbox.latency import scaled

    scale = args.scale
    seq_other = sequential_seconds("other source", scale)
    print("targets:")
    worst = max(ran.values(), key=lambda c: c.runner / c.bound)
    print(f"  runner / critical path <= 1.10: worst {worst.runner / worst.bound:.3f} "
          f"({worst.title}); submit / critical path worst "
          f"{max(c.submitted / c.bound for c in ran.values()):.3f}")
    if "other" in ran:
        single = ran["other"]
        print(f"  other source >= 40% below sequential: {1 - single.runner / seq_other:.1%} "
              f"below (the plan's lower bound is {1 - single.bound / seq_other:.1%} below; the "
              f"restore alone is {scaled('rds_restore', scale) / seq_other:.0%} of the "
              "sequential time)")
    if "pool" in ran:
        pooled = made["pool"]
        pool_hits = sum(1 for s in pooled if s.db_instance.startswith("dsp-"))
        print(f"  warm pool <= 25% of sequential: {ran['pool'].runner / seq_other:.1%} "
              f"({pool_hits}/{len(pooled)} creates took a pool database; pool of {args.runs} "
              f"filled in {fill_seconds:.1f} s)")
    if many_runs:
        one = ran["other"].submitted
        print(f"  {args.many} creates at once <= 1.15 x one (other source, no pool, "
              f"DS_Q_WORKERS={args.workers}, {len(_people(args.many))} people): wall "
              f"{many_wall:.2f} s = {many_wall / one:.2f} x one create ({one:.2f} s submitted); "
              f"per create runner median {statistics.median(m.runner for m in many_runs):.2f} s, "
              f"max {max(m.runner for m in many_runs):.2f} s")
        alone = ran["shared"].submitted
        print(f"  a shared create while they run <= 1.5 x alone: {late.submitted:.2f} s under "
              f"load, {alone:.2f} s alone = {late.submitted / alone:.2f} x")
        print_where_time_went(late, ran["shared"])


if __name__ == "__main__":
    main()
