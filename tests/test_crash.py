"""A qcluster killed (SIGKILL, every process of it) while a create or a destroy waits on the
database, then started again: the operation resumes within a minute or two and ends as it
should, with exactly one of each resource, or none."""

import json
import time

import pytest

from tests.present import staging_resources
from tests.stack import SandboxStack, running_stack

pytestmark = pytest.mark.e2e

# A restore then lasts 18 s and a delete 7 s: time enough to kill the cluster in the middle.
DELAY_SCALE = 0.03
# The stale heartbeat (30 s) plus the scheduler's rounds plus what is left of the work.
RESUME_TIMEOUT = 180


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with running_stack(tmp_path_factory.mktemp("crash"), DELAY_SCALE) as stack:
        yield stack


def latest_step(stack: SandboxStack, name: str, kind: str, key: str) -> tuple[str, int] | None:
    rows = stack.query(
        "SELECT st.state, st.attempts FROM provisioning_step st "
        "JOIN provisioning_operation op ON st.operation_id = op.id "
        "JOIN provisioning_staging s ON op.staging_id = s.id "
        "WHERE s.name = %s AND op.kind = %s AND st.key = %s ORDER BY op.id DESC LIMIT 1",
        name, kind, key,
    )
    return rows[0] if rows else None


def status_of(stack: SandboxStack, name: str) -> str:
    return stack.query("SELECT status FROM provisioning_staging WHERE name = %s "
                       "ORDER BY id DESC LIMIT 1", name)[0][0]


def wait_for(what: str, check, timeout: float, stack: SandboxStack) -> float:
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            pytest.fail(f"{what} not reached within {timeout} s\n{stack.logs()[-6000:]}")
        time.sleep(0.2)
    return time.monotonic() - start


def crash_while(stack: SandboxStack, name: str, kind: str, key: str,
                after: tuple[str, ...] = ()) -> None:
    """Kill every qcluster process while step ``key`` of the ``kind`` operation runs (and
    once the steps ``after`` are done)."""
    def state(step: str) -> str:
        return (latest_step(stack, name, kind, step) or ("",))[0]

    wait_for(f"{kind} step {key} running", lambda: state(key) == "running" and all(
        state(step) == "done" for step in after), 60, stack)
    killed = stack.kill_qclusters()
    assert len(killed) >= 4  # main, sentinel, monitor, pusher and the workers
    assert latest_step(stack, name, kind, key)[0] == "running"  # the dead runner's last word


def test_create_and_destroy_resume_after_the_cluster_is_killed(stack, record_property):
    created = stack.manage("ds", "create", "feature/Login_Page", "--json")
    assert created.returncode == 0, created.stderr
    name = json.loads(created.stdout)["name"]

    crash_while(stack, name, "create", "database", after=("listener_rule",))
    stack.start_qclusters()
    took = wait_for("ready", lambda: status_of(stack, name) in {"ready", "failed"},
                    RESUME_TIMEOUT, stack)
    record_property("create_resumed_to_ready_seconds", round(took, 1))
    print(f"\ncreate: ready {took:.1f} s after the restart ({stack.description})")
    shown = json.loads(stack.manage("ds", "show", name, "--json").stdout)
    assert shown["status"] == "ready", shown
    steps = {s["key"]: s for s in shown["steps"]}
    assert steps["database"]["attempts"] == 2
    # Done before the crash, so not done again.
    assert steps["target_group"]["attempts"] == steps["listener_rule"]["attempts"] == 1

    made = staging_resources(stack, name)
    assert sorted(made["services"]) == [f"ds-{name}-web", f"ds-{name}-worker"]
    assert len(made["task_definitions"]) == 2
    assert made["target_groups"] == [f"ds-{name}"]
    assert len(made["rules"]) == 1
    assert made["databases"] == [f"ds-{name}"]

    destroyed = stack.manage("ds", "destroy", name)
    assert destroyed.returncode == 0, destroyed.stderr
    crash_while(stack, name, "destroy", "database")
    stack.start_qclusters()
    took = wait_for("destroyed", lambda: status_of(stack, name) in {"destroyed", "failed"},
                    RESUME_TIMEOUT, stack)
    record_property("destroy_resumed_seconds", round(took, 1))
    print(f"destroy: destroyed {took:.1f} s after the restart")
    assert status_of(stack, name) == "destroyed"
    assert latest_step(stack, name, "destroy", "database")[1] == 2
    assert staging_resources(stack, name) == {
        "services": [], "task_definitions": [], "target_groups": [], "rules": [],
        "databases": [], "tagged": [],
    }


@pytest.mark.django_db
def test_a_starting_worker_brings_the_resume_schedule_forward():
    from datetime import timedelta

    from django.utils import timezone
    from django_q.models import Schedule

    from provisioning import claims, tasks

    resume = Schedule.objects.get(func="provisioning.tasks.resume_stalled_operations")
    later = timezone.now() + timedelta(minutes=5)
    Schedule.objects.filter(pk=resume.pk).update(next_run=later)
    tasks.resume_after_start(sender="django_q", proc_name="Process-1")
    resume.refresh_from_db()
    stale_at = timezone.now() + claims.STALE_AFTER
    assert stale_at < resume.next_run < stale_at + timedelta(seconds=10)

    # Never put off: a run due sooner stays as it is.
    soon = timezone.now() + timedelta(seconds=3)
    Schedule.objects.filter(pk=resume.pk).update(next_run=soon)
    tasks.resume_after_start(sender="django_q", proc_name="Process-2")
    resume.refresh_from_db()
    assert resume.next_run == soon
    assert Schedule.objects.filter(func=resume.func).count() == 1
