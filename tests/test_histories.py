"""Random histories of creates, redeploys and destroys, with AWS faults and worker crashes
injected, in-process against moto (hypothesis, stateful).

After every step: no two live stagings share a name, and no two rules on the listener share a
host header or a priority. After every history, everything is destroyed and AWS holds nothing
tagged for any staging of it, and the sweep finds nothing either.
"""

import contextlib
from datetime import timedelta

import boto3
import pytest
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from provisioning import claims
from provisioning.errors import UserError
from provisioning.models import DbMode, Operation, OperationStatus, Staging, StagingStatus
from provisioning.operations import request_create, request_destroy, request_redeploy
from provisioning.runner import run_operation
from provisioning.sweep import find_orphans
from tests.conftest import HOST_DB, QA_DB, RELEASE_TAG
from tests.faults import Watch, WorkerKilled, aws_wrappers
from tests.footprint import assert_clean

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("enqueued")]

BRANCHES = ("main", "feature/Login_Page", RELEASE_TAG)
IMAGE_TAGS = ("main", RELEASE_TAG)
HISTORIES = settings(max_examples=15, stateful_step_count=8, deadline=None, database=None,
                     suppress_health_check=[HealthCheck.too_slow])


def live_stagings() -> list[Staging]:
    return list(Staging.objects.exclude(status=StagingStatus.DESTROYED).order_by("pk"))


def calls_of_a_life(owner) -> list[str]:
    """The AWS wrappers a create, a redeploy and a destroy call (what faults are drawn from)."""
    with pytest.MonkeyPatch.context() as patch:
        watch = Watch(patch)
        staging = request_create(branch="main", owner=owner, source=QA_DB)
        for operation in (staging.latest_operation(),
                          lambda: request_redeploy(staging, user=owner, tag=RELEASE_TAG),
                          lambda: request_destroy(staging, user=owner)):
            operation = operation() if callable(operation) else operation
            assert run_operation(operation.pk)
            staging.refresh_from_db()
    assert staging.status == StagingStatus.DESTROYED, staging.error
    return sorted(set(watch.functions()))


def history_machine(owner, listener_arn: str, counts: dict[str, int]):
    wrappers = calls_of_a_life(owner)
    assert set(wrappers) <= set(aws_wrappers())

    class Histories(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            self.names: set[str] = set()
            self.armed: tuple[str, bool] | None = None
            counts["histories"] += 1

        def _run(self, operation_id: int) -> None:
            """Run the operation; an armed fault stays armed until an operation makes the
            call it waits for."""
            if self.armed is None:
                assert run_operation(operation_id)
                return
            wrapper, crash = self.armed
            with pytest.MonkeyPatch.context() as patch:
                watch = Watch(patch, fail=wrapper, crash=crash)
                with contextlib.suppress(WorkerKilled):  # the crash happens, or not
                    assert run_operation(operation_id)
            if watch.injected_in is None:
                return
            self.armed = None
            counts["crashes" if crash else "faults"] += 1
            if crash:
                # The worker died: its operation stays "running" until its heartbeat is stale,
                # then a new runner resumes it.
                operation = Operation.objects.get(pk=operation_id)
                assert operation.status == OperationStatus.RUNNING
                assert operation.steps.filter(key=watch.injected_in, state="running").exists()
                Operation.objects.filter(pk=operation_id).update(
                    heartbeat_at=timezone.now() - claims.STALE_AFTER - timedelta(seconds=1))
                assert run_operation(operation_id)
                operation.refresh_from_db()
                assert operation.status == OperationStatus.SUCCEEDED, operation.error

        @rule(branch=st.sampled_from(BRANCHES), source=st.sampled_from([HOST_DB, QA_DB]),
              shared=st.booleans())
        def create(self, branch: str, source: str, shared: bool) -> None:
            try:
                staging = request_create(
                    branch=branch, owner=owner, source=HOST_DB if shared else source,
                    db_mode=DbMode.SHARED if shared else DbMode.DEDICATED,
                )
            except UserError as exc:
                assert "already has a staging" in exc.message
                return
            self.names.add(staging.name)
            counts["creates"] += 1
            self._run(staging.latest_operation().pk)

        @precondition(lambda self: any(s.status == StagingStatus.READY for s in live_stagings()))
        @rule(data=st.data(), tag=st.sampled_from(IMAGE_TAGS))
        def redeploy(self, data, tag: str) -> None:
            ready = [s for s in live_stagings() if s.status == StagingStatus.READY]
            staging = data.draw(st.sampled_from(ready))
            counts["redeploys"] += 1
            self._run(request_redeploy(staging, user=owner, tag=tag).pk)

        @precondition(lambda self: bool(live_stagings()))
        @rule(data=st.data())
        def destroy(self, data) -> None:
            staging = data.draw(st.sampled_from(live_stagings()))
            counts["destroys"] += 1
            self._run(request_destroy(staging, user=owner).pk)

        @rule(wrapper=st.sampled_from(wrappers))
        def inject_fault(self, wrapper: str) -> None:
            """The next operation that calls ``wrapper`` fails there with AccessDenied."""
            self.armed = (wrapper, False)

        @rule(wrapper=st.sampled_from(wrappers))
        def crash(self, wrapper: str) -> None:
            """The worker of the next operation that calls ``wrapper`` dies there."""
            self.armed = (wrapper, True)

        @invariant()
        def nothing_shared(self) -> None:
            names = [s.name for s in live_stagings()]
            assert len(names) == len(set(names))
            rules = boto3.client("elbv2").describe_rules(ListenerArn=listener_arn)["Rules"]
            hosts = [host for r in rules for c in r["Conditions"]
                     for host in c.get("HostHeaderConfig", {}).get("Values", [])]
            assert len(hosts) == len(set(hosts)), hosts
            priorities = [r["Priority"] for r in rules]
            assert len(priorities) == len(set(priorities)), priorities

        def teardown(self) -> None:
            for staging in live_stagings():
                assert run_operation(request_destroy(staging, user=owner).pk)
                staging.refresh_from_db()
                assert staging.status == StagingStatus.DESTROYED, staging.error
            for name in self.names:
                assert_clean(name, listener_arn)
            assert find_orphans() == []

    return Histories


def test_random_histories_leave_nothing_behind(host_env, alice, record_property):
    counts = dict.fromkeys(
        ("histories", "creates", "redeploys", "destroys", "faults", "crashes"), 0)
    machine = history_machine(alice, host_env.listener_arn, counts)
    run_state_machine_as_test(machine, settings=HISTORIES)
    for key, value in counts.items():
        record_property(key, value)
    print(f"\nrandom histories: {counts}")
    assert counts["histories"] >= 10
