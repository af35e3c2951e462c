"""Many requests at once.

In-process (moto, threads on a shared test database): the caps on live stagings, a
double-submitted create makes one staging, two destroys at once make one teardown.
On the sandbox (moto server, real qclusters): twenty creates submitted at once all reach ready
with distinct rule priorities and no "database is locked", and their destroys leave nothing.
"""

import json
import threading
import time

import pytest
from django.db import connection

from provisioning import operations
from provisioning.errors import UserError
from provisioning.models import Operation, OperationKind, OperationStatus, Staging, StagingStatus
from provisioning.operations import request_create, request_destroy
from provisioning.runner import run_operation
from tests.conftest import BRANCH, RELEASE_TAG
from tests.footprint import assert_nothing_left
from tests.present import tagged_and_present
from tests.stack import SandboxStack, running_stack


def at_once(count: int, work) -> list:
    """Run ``work(i)`` in ``count`` threads started together; results (or exceptions)."""
    results: list = [None] * count
    start = threading.Barrier(count)

    def one(index: int) -> None:
        start.wait()
        try:
            results[index] = work(index)
        except Exception as exc:  # the caller checks what each thread got
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def meeting_point(monkeypatch, name: str, parties: int) -> None:
    """Make ``parties`` threads meet inside ``operations.<name>``, so they race past the checks
    before it and into what comes after it together."""
    real = getattr(operations, name)
    barrier = threading.Barrier(parties, timeout=30)

    def meet(*args, **kwargs):
        barrier.wait()
        return real(*args, **kwargs)

    monkeypatch.setattr(operations, name, meet)


# --- caps ---------------------------------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_caps_on_live_stagings_are_checked_before_anything_is_made(
        host_env, alice, bob, settings, enqueued):
    settings.DS_MAX_LIVE_PER_USER = 2
    settings.DS_MAX_LIVE_STAGINGS = 3
    first = request_create(branch="main", owner=alice, db_mode="shared")
    request_create(branch=RELEASE_TAG, owner=alice, db_mode="shared")
    with pytest.raises(UserError, match="You already have 2 live stagings"):
        request_create(branch=BRANCH, owner=alice)
    request_create(branch=BRANCH, owner=bob, db_mode="shared")
    with pytest.raises(UserError, match="There are already 3 live stagings"):
        request_create(branch="develop", owner=bob, name="bobs-second")
    assert Staging.objects.count() == 3  # nothing written for the refused ones

    # A destroyed staging no longer counts.
    Staging.objects.filter(pk=first.pk).update(status=StagingStatus.DESTROYED)
    assert request_create(branch="main", owner=alice, name="again", db_mode="shared")


# --- double submissions -------------------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_a_double_submitted_create_makes_one_staging(host_env, alice, monkeypatch, enqueued):
    # Both requests pass the name check before either writes its row.
    meeting_point(monkeypatch, "resolve_image", 2)
    results = at_once(2, lambda _: request_create(branch=BRANCH, owner=alice))
    made = [r for r in results if isinstance(r, Staging)]
    refused = [r for r in results if isinstance(r, UserError)]
    assert len(made) == 1 and len(refused) == 1, results
    assert "already has a staging" in refused[0].message
    assert Staging.objects.count() == 1
    assert Operation.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_destroys_at_once_make_one_teardown(host_env, alice, bob, admin, monkeypatch,
                                                enqueued):
    staging = request_create(branch=BRANCH, owner=alice)
    assert run_operation(staging.latest_operation().pk)
    staging.refresh_from_db()
    assert staging.status == StagingStatus.READY

    meeting_point(monkeypatch, "_start", 2)
    users = [alice, admin]
    results = at_once(2, lambda i: request_destroy(Staging.objects.get(pk=staging.pk),
                                                   user=users[i]))
    assert all(isinstance(r, Operation) for r in results), results
    assert results[0].pk == results[1].pk
    destroys = Operation.objects.filter(staging=staging, kind=OperationKind.DESTROY)
    assert destroys.count() == 1

    # The queue delivering it twice (or two workers) still makes one teardown.
    ran = at_once(2, lambda _: run_operation(results[0].pk))
    assert sorted(ran) == [False, True]
    assert destroys.get().status == OperationStatus.SUCCEEDED
    assert destroys.get().steps.get(key="database").attempts == 1
    staging.refresh_from_db()
    assert staging.status == StagingStatus.DESTROYED
    assert_nothing_left(staging.name, host_env.listener_arn)


# --- twenty at once on the sandbox ---------------------------------------------------------------

CONCURRENT_CREATES = 20
# Seeded image tags of the sandbox, as branches.
SANDBOX_BRANCHES = ("main", "develop", "feature/Login_Page", "feature/search", "release-2026.11")
# Twenty creates from seven people: none has more than DS_MAX_INFLIGHT_PER_USER (3) in flight.
SANDBOX_USERS = ("alice", "bob", "carol", "dave", "erin", "frank", "grace")
# A restore lasts 12 s, a healthy web service 2 s: the whole run takes a couple of minutes.
DELAY_SCALE = 0.02
# Waiting holds no worker: a handful drives twenty operations in flight.
WORKERS = 4


def create_args(index: int) -> list[str]:
    args = ["ds", "create", SANDBOX_BRANCHES[index % len(SANDBOX_BRANCHES)],
            "--name", f"load-{index:02d}", "--json"]
    if index % 4 == 0:
        args.append("--shared-db")
    elif index % 4 == 1:
        args += ["--source", "staging-support-db"]  # the credentials step too
    return args


def statuses(stack: SandboxStack) -> dict[str, str]:
    return dict(stack.query("SELECT name, status FROM provisioning_staging "
                            "WHERE name LIKE %s AND status <> %s", "load-%", "destroyed"))


def wait_all(stack: SandboxStack, names: list[str], wanted: str, timeout: float) -> float:
    start = time.monotonic()
    while True:
        seen = dict(stack.query("SELECT name, status FROM provisioning_staging "
                                "WHERE name LIKE %s ORDER BY id", "load-%"))
        if all(seen.get(name) in {wanted, "failed"} for name in names):
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            pytest.fail(f"not all {wanted} after {timeout} s: {seen}\n{stack.logs()[-4000:]}")
        time.sleep(0.5)


def submit_all(stack: SandboxStack, argument_lists: list[list[str]]) -> list[str]:
    """Start every command at once, as many people pressing the button together."""
    running = [
        stack.spawn(*args, DS_USER=SANDBOX_USERS[i % len(SANDBOX_USERS)])
        for i, args in enumerate(argument_lists)
    ]
    outputs = []
    for process, args in zip(running, argument_lists, strict=True):
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, (args, err)
        assert "locked" not in err
        outputs.append(out)
    return outputs


@pytest.fixture(scope="module")
def busy_stack(tmp_path_factory):
    def workers(stack: SandboxStack) -> dict:
        # WORKERS in all, shared among the qcluster processes.
        return {"DS_Q_WORKERS": str(max(2, WORKERS // stack.qcluster_processes))}

    with running_stack(tmp_path_factory.mktemp("concurrency"), DELAY_SCALE, workers) as stack:
        yield stack


@pytest.mark.concurrency
def test_twenty_creates_at_once_all_get_ready_and_leave_nothing(busy_stack, record_property):
    stack = busy_stack
    started = time.monotonic()
    outputs = submit_all(stack, [create_args(i) for i in range(CONCURRENT_CREATES)])
    submitted = time.monotonic() - started
    names = [json.loads(out)["name"] for out in outputs]
    assert len(set(names)) == CONCURRENT_CREATES

    wait_all(stack, names, "ready", timeout=360)
    ready_after = time.monotonic() - started
    assert set(statuses(stack).values()) == {"ready"}, statuses(stack)

    domain = stack.aws_env["DS_DOMAIN"]
    rules = stack.client("elbv2").describe_rules(
        ListenerArn=stack.aws_env["DS_LISTENER_ARN"])["Rules"]
    by_host = {c["HostHeaderConfig"]["Values"][0]: r["Priority"] for r in rules
               for c in r["Conditions"] if c["Field"] == "host-header"}
    assert sorted(by_host) == sorted(f"{name}.{domain}" for name in names)
    assert len(set(by_host.values())) == CONCURRENT_CREATES

    destroy_started = time.monotonic()
    submit_all(stack, [["ds", "destroy", name] for name in names])
    wait_all(stack, names, "destroyed", timeout=300)
    destroyed_after = time.monotonic() - destroy_started
    assert statuses(stack) == {}

    errors = stack.query("SELECT error_message FROM provisioning_step WHERE error_message <> ''")
    assert not [e for (e,) in errors if "locked" in e.lower()], errors
    assert "database is locked" not in stack.logs()
    # Every qcluster node took its share of the work.
    for log in stack.qcluster_logs:
        assert "start_next_operation_task" in log.read_text(), log
    assert_sandbox_empty(stack)

    for key, value in {"submitted_seconds": submitted, "all_ready_seconds": ready_after,
                       "all_destroyed_seconds": destroyed_after}.items():
        record_property(key, round(value, 1))
    print(f"\n{CONCURRENT_CREATES} creates ({stack.description}): submitted in "
          f"{submitted:.1f} s, all ready after {ready_after:.1f} s, all destroyed "
          f"{destroyed_after:.1f} s after the destroys were submitted")


def assert_sandbox_empty(stack: SandboxStack) -> None:
    """Ask AWS, service by service, for anything of a dynamic staging."""
    tagged = tagged_and_present(stack, "managed-by", "dynamic-stagings")
    ecs = stack.client("ecs")
    cluster = stack.aws_env["DS_CLUSTER"]
    services = [arn for arn in tagged if ":service/" in arn]
    live = [s["serviceName"] for s in ecs.describe_services(
        cluster=cluster, services=services)["services"] if s["status"] != "INACTIVE"] if (
        services) else []
    assert live == []
    assert [arn for arn in tagged if ":service/" not in arn] == []
    for status in ("ACTIVE", "INACTIVE"):
        assert ecs.list_task_definitions(familyPrefix="ds-load-", status=status)[
            "taskDefinitionArns"] == []
    databases = [d["DBInstanceIdentifier"] for d in stack.client("rds").describe_db_instances()[
        "DBInstances"] if d["DBInstanceIdentifier"].startswith("ds-")]
    assert databases == []
    rules = stack.client("elbv2").describe_rules(
        ListenerArn=stack.aws_env["DS_LISTENER_ARN"])["Rules"]
    assert [r for r in rules if not r["IsDefault"]] == []
