"""A sandbox restart as a user does it: ``sandbox run`` (what ``make run`` starts), a staging
made with ``ds``, Ctrl-C (SIGTERM here), and ``sandbox run`` again on the same state directory.

* Restarted as it is, the sandbox AWS comes back with the staging's resources: the staging
  is intact (a redeploy works, the destroy leaves nothing) and the reconcile says all is in
  order.
* Restarted ``--fresh`` (as a sandbox without saved state did before), the reconcile marks the
  stagings lost as the sandbox starts, ``ds list`` and ``ds sweep`` tell, and a destroy or a
  recreate finishes them.
* A wait for a service that was deleted behind the engine's back fails at once.
"""

import json
import signal
import socket
import subprocess
import time

import pytest

from tests.present import staging_resources
from tests.stack import MANAGE, ROOT, SandboxStack, stop

pytestmark = pytest.mark.e2e

SCALE = 0.01
DASHBOARD_LINE = "Dashboard: http://127.0.0.1:"


def record_timing(what: str, seconds: float) -> None:
    """Shown with ``pytest -s``: what a restart costs on this machine."""
    print(f"\ntiming: {what}: {seconds:.1f}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RestartableSandbox:
    """``manage.py sandbox run`` on one state directory and database, started and stopped at
    will; ``stack`` runs ``ds`` and asks AWS as the other e2e tests do."""

    def __init__(self, stack: SandboxStack):
        self.stack = stack
        self.process: subprocess.Popen | None = None
        self.log = stack.state_dir / "sandbox-run.log"
        self.runs = 0

    def start(self, *extra: str) -> tuple[float, str]:
        """Seconds until the dashboard answered, and what this run said up to then."""
        self.runs += 1
        marker = f"--- run {self.runs}\n"
        with open(self.log, "a") as log:
            log.write(marker)
        started = time.monotonic()
        with open(self.log, "a") as log:
            self.process = subprocess.Popen(
                [*MANAGE, "sandbox", "run", "--port", str(free_port()),
                 "--delay-scale", str(SCALE), *extra],
                env=self.stack.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        deadline = started + 180
        while DASHBOARD_LINE not in self.said(marker):
            assert self.process.poll() is None, self.said(marker)
            assert time.monotonic() < deadline, self.said(marker)
            time.sleep(0.2)
        self.stack.aws_env = json.loads((self.stack.state_dir / "env.json").read_text())
        return time.monotonic() - started, self.said(marker)

    def said(self, marker: str) -> str:
        return self.log.read_text().rsplit(marker, 1)[-1]

    def stop(self) -> float:
        """Ctrl-C: seconds until everything stopped (and the AWS state was saved)."""
        started = time.monotonic()
        self.process.send_signal(signal.SIGINT)
        assert self.process.wait(timeout=120) == 0, self.log.read_text()[-3000:]
        return time.monotonic() - started

    def close(self) -> None:
        if self.process is not None:
            stop(self.process)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    stack = SandboxStack(tmp_path_factory.mktemp("restart"), delay_scale=SCALE,
                         env_services=False)
    running = RestartableSandbox(stack)
    try:
        yield running
    finally:
        running.close()
        stack.close()


def ds(sandbox: RestartableSandbox, *args: str) -> subprocess.CompletedProcess:
    return sandbox.stack.manage("ds", *args)


def ds_json(sandbox: RestartableSandbox, *args: str):
    done = ds(sandbox, *args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def same(found: dict[str, list[str]], expected: dict[str, list[str]]) -> bool:
    return {k: sorted(v) for k, v in found.items()} == {k: sorted(v) for k, v in
                                                          expected.items()}


def login_secret_value(sandbox: RestartableSandbox, name: str) -> str:
    return sandbox.stack.client("secretsmanager").get_secret_value(
        SecretId=f"dynamic-stagings/{name}/login")["SecretString"]


def test_a_staging_survives_a_restart_of_the_sandbox(sandbox):
    first_start, said = sandbox.start()
    assert "newly seeded" in said
    created = ds_json(sandbox, "create", "feature/Login_Page", "--wait")
    name = created["name"]
    assert created["status"] == "ready"
    made = staging_resources(sandbox.stack, name)
    password = login_secret_value(sandbox, name)
    stopping = sandbox.stop()

    restart, said = sandbox.start()
    assert "restored from" in said
    assert "reconcile: in order: 1 staging(s) have their resources" in said
    assert ds_json(sandbox, "show", name)["status"] == "ready"
    assert same(staging_resources(sandbox.stack, name), made)
    assert login_secret_value(sandbox, name) == password
    swept = ds_json(sandbox, "sweep")
    assert swept == {"orphans": [], "lost": [], "still_lost": [], "incomplete": []}

    # It works as before: a redeploy waits for its web service to be healthy again.
    redeployed = ds(sandbox, "redeploy", name, "--tag", "develop", "--wait", "--json")
    assert redeployed.returncode == 0, redeployed.stderr
    assert ds_json(sandbox, "destroy", name, "--wait")["status"] == "destroyed"
    left = staging_resources(sandbox.stack, name)
    assert left["services"] == left["target_groups"] == left["rules"] == []
    assert left["databases"] == [] and left["tagged"] == []
    record_timing("sandbox run: first start, seconds", first_start)
    record_timing("sandbox run: Ctrl-C to stopped and saved, seconds", stopping)
    record_timing("sandbox run: restart with a saved state, seconds", restart)
    sandbox.stop()


def test_a_fresh_sandbox_marks_the_stagings_lost_and_tells(sandbox):
    sandbox.start()
    kept = ds_json(sandbox, "create", "main", "--shared-db", "--wait")
    gone = ds_json(sandbox, "create", "develop", "--shared-db", "--wait")
    sandbox.stop()

    restart, said = sandbox.start("--fresh")
    assert "newly seeded: asked for a fresh one" in said
    for name in (kept["name"], gone["name"]):
        assert f"reconcile: lost: {name}: web service ds-{name}-web, target group ds-{name} " \
               "gone; marked lost" in said
    listed = ds(sandbox, "list")
    assert listed.returncode == 0
    assert "2 staging(s) lost" in listed.stderr
    assert all(f"{name}" in listed.stdout for name in (kept["name"], gone["name"]))
    assert ds_json(sandbox, "show", gone["name"])["status"] == "lost"
    swept = ds(sandbox, "sweep")
    assert swept.returncode == 0, swept.stderr
    assert swept.stdout.count("lost earlier") == 2

    recreated = ds_json(sandbox, "recreate", kept["name"], "--wait")
    assert recreated["status"] == "ready"
    assert staging_resources(sandbox.stack, kept["name"])["target_groups"] == [
        f"ds-{kept['name']}"]
    assert ds_json(sandbox, "destroy", gone["name"], "--wait")["status"] == "destroyed"

    # Its web service deleted behind the engine's back: the redeploy's wait fails at once.
    name = kept["name"]
    ecs = sandbox.stack.client("ecs")
    cluster = sandbox.stack.aws_env["DS_CLUSTER"]
    ecs.delete_service(cluster=cluster, service=f"ds-{name}-web", force=True)
    while ecs.describe_services(cluster=cluster, services=[f"ds-{name}-web"])["services"][0][
            "status"] != "INACTIVE":
        time.sleep(0.1)  # drained: the redeploy finds nothing to update
    started = time.monotonic()
    redeployed = ds(sandbox, "redeploy", name, "--wait")
    failed_after = time.monotonic() - started
    assert redeployed.returncode == 1
    assert "ServiceNotFoundException" in redeployed.stderr
    assert failed_after < 30, failed_after
    assert ds_json(sandbox, "destroy", name, "--wait")["status"] == "destroyed"
    record_timing("sandbox run: restart --fresh with the reconcile, seconds", restart)
    record_timing("redeploy of a deleted service: request to failure, seconds", failed_after)
    sandbox.stop()
