"""The sandbox AWS keeps its state across a restart (provisioning/sandbox/persistence.py): what
was made is there again, what was under way goes on as if the sandbox had kept running, a
sandbox that is killed keeps what it saved moments before, and a state that cannot be used
is set aside with a fresh seed instead, saying why."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from provisioning.sandbox import clock, persistence
from provisioning.sandbox.latency import scaled
from tests.conftest import CLUSTER, HOST_DB, REPOSITORY, WEB_SERVICE

BASE_DIR = Path(__file__).resolve().parent.parent
SCALE = 0.02
READY = "sandbox AWS ready at"


class RunningSandbox:
    """``manage.py sandbox aws`` on a state directory, as an operator runs it."""

    def __init__(self, state_dir: Path, *extra: str):
        self.state_dir = state_dir
        environment = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        environment.update(DS_SANDBOX="1", DS_SANDBOX_STATE_DIR=str(state_dir),
                           PYTHONUNBUFFERED="1")
        self.log = state_dir / "sandbox.log"
        started_before = self.said().count(READY)
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "manage.py", "sandbox", "aws", "--delay-scale", str(SCALE),
                 "--state-dir", str(state_dir), *extra],
                cwd=BASE_DIR, env=environment, stdout=log, stderr=subprocess.STDOUT)
        # Said once env.json is written (a killed sandbox leaves its old one behind).
        deadline = time.monotonic() + 90
        while self.said().count(READY) == started_before:
            assert self.process.poll() is None, self.said()
            assert time.monotonic() < deadline, "the sandbox did not start"
            time.sleep(0.1)
        self.env = json.loads((state_dir / "env.json").read_text())

    def said(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def client(self, service: str):
        return boto3.session.Session().client(
            service, endpoint_url=self.env["AWS_ENDPOINT_URL"], region_name="us-east-1",
            aws_access_key_id="testing", aws_secret_access_key="testing")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        assert self.process.wait(timeout=30) == 0, self.said()

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()


@pytest.fixture
def state_dir(tmp_path):
    return tmp_path


def newest_host_snapshot(rds) -> str:
    snapshots = rds.describe_db_snapshots(DBInstanceIdentifier=HOST_DB)["DBSnapshots"]
    available = [s for s in snapshots if s["Status"] == "available"]
    return max(available, key=lambda s: s["SnapshotCreateTime"])["DBSnapshotIdentifier"]


def db_status(rds, identifier: str) -> str:
    try:
        return rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0][
            "DBInstanceStatus"]
    except ClientError as exc:
        return exc.response["Error"]["Code"]


def account_api(sandbox: RunningSandbox, method: str, path: str = "", body: dict | None = None):
    request = urllib.request.Request(
        sandbox.env["DS_ACCOUNT_API_URL"] + path, method=method,
        data=json.dumps(body).encode() if body else None,
        headers={"Authorization": f"Bearer {sandbox.env['DS_ACCOUNT_API_TOKEN']}",
                 "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, {}


def make_things(sandbox: RunningSandbox) -> dict:
    """A little of everything a staging has, made the way the engine makes it."""
    env = sandbox.env
    ecs, elbv2, rds = sandbox.client("ecs"), sandbox.client("elbv2"), sandbox.client("rds")
    host = ecs.describe_services(cluster=env["DS_CLUSTER"],
                                 services=[env["DS_WEB_SERVICE"]])["services"][0]
    group = elbv2.create_target_group(
        Name="ds-kept", Protocol="HTTP", Port=8000, VpcId=elbv2.describe_target_groups(
            Names=["host-web"])["TargetGroups"][0]["VpcId"], TargetType="ip",
    )["TargetGroups"][0]["TargetGroupArn"]
    rule = elbv2.create_rule(
        ListenerArn=env["DS_LISTENER_ARN"], Priority=7,
        Conditions=[{"Field": "host-header", "Values": [f"kept.{env['DS_DOMAIN']}"]}],
        Actions=[{"Type": "forward", "TargetGroupArn": group}],
        Tags=[{"Key": "dynamic-staging", "Value": "kept"}],
    )["Rules"][0]["RuleArn"]
    ecs.create_service(cluster=env["DS_CLUSTER"], serviceName="ds-kept-web",
                       taskDefinition=host["taskDefinition"], desiredCount=1,
                       launchType="FARGATE", networkConfiguration=host["networkConfiguration"])
    rds.restore_db_instance_from_db_snapshot(
        DBInstanceIdentifier="ds-kept", DBSnapshotIdentifier=newest_host_snapshot(rds),
        DBInstanceClass="db.t3.micro", BackupRetentionPeriod=0)
    secret = sandbox.client("secretsmanager").create_secret(
        Name="dynamic-stagings/kept/login", SecretString="s3cret")["ARN"]
    status, account = account_api(sandbox, "POST", body={"staging": "kept",
                                                         "host": "kept.example"})
    assert status == 201
    return {"group": group, "rule": rule, "secret": secret, "account": account["account_id"]}


def test_what_the_sandbox_aws_holds_comes_back_after_a_restart(state_dir):
    first = RunningSandbox(state_dir)
    made = make_things(first)
    restored_at = time.monotonic()
    assert db_status(first.client("rds"), "ds-kept") == "creating"
    images = first.client("ecr").describe_images(repositoryName=REPOSITORY)["imageDetails"]
    first.stop()
    assert "newly seeded: no saved state" in first.said()
    assert persistence.state_file(state_dir).exists()

    again = RunningSandbox(state_dir)
    assert "restored from" in again.said()
    ecs, elbv2, rds = again.client("ecs"), again.client("elbv2"), again.client("rds")
    (service,) = ecs.describe_services(cluster=CLUSTER,
                                       services=["ds-kept-web"])["services"]
    assert service["status"] == "ACTIVE" and service["desiredCount"] == 1
    assert [r["RuleArn"] for r in elbv2.describe_rules(RuleArns=[made["rule"]])["Rules"]] == [
        made["rule"]]
    assert elbv2.describe_target_groups(TargetGroupArns=[made["group"]])["TargetGroups"]
    assert again.client("secretsmanager").get_secret_value(
        SecretId=made["secret"])["SecretString"] == "s3cret"
    assert again.client("ecr").describe_images(repositoryName=REPOSITORY)["imageDetails"] == images
    assert newest_host_snapshot(rds)
    # The restore went on while the sandbox was away, on the sandbox's own clock.
    restore_seconds = scaled("rds_restore", SCALE)
    if time.monotonic() - restored_at < restore_seconds - 1:
        assert db_status(rds, "ds-kept") == "creating"
    deadline = restored_at + restore_seconds + 3
    while db_status(rds, "ds-kept") != "available":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert time.monotonic() - restored_at >= restore_seconds - 0.5
    # The account API's accounts came back too: the account is there to be removed.
    assert account_api(again, "DELETE", f"/{made['account']}")[0] == 204
    # The service's deployment goes on: its task is running, its events were kept.
    tasks = ecs.list_tasks(cluster=CLUSTER, serviceName="ds-kept-web")["taskArns"]
    assert tasks
    again.stop()


def test_a_killed_sandbox_keeps_what_it_saved_moments_before(state_dir):
    first = RunningSandbox(state_dir)
    env = first.env
    ecs = first.client("ecs")
    host = ecs.describe_services(cluster=env["DS_CLUSTER"],
                                 services=[env["DS_WEB_SERVICE"]])["services"][0]
    ecs.create_service(cluster=env["DS_CLUSTER"], serviceName="ds-saved-web",
                       taskDefinition=host["taskDefinition"], desiredCount=1,
                       launchType="FARGATE", networkConfiguration=host["networkConfiguration"])
    time.sleep(persistence.SAVE_AFTER_SECONDS + 1.5)
    first.kill()  # no chance to save on the way out

    again = RunningSandbox(state_dir)
    found = again.client("ecs").describe_services(cluster=CLUSTER,
                                                  services=["ds-saved-web"])["services"]
    assert [s["status"] for s in found] == ["ACTIVE"]
    again.stop()


def test_fresh_and_unreadable_states_start_newly_seeded(state_dir):
    first = RunningSandbox(state_dir)
    make_things(first)
    first.stop()

    fresh = RunningSandbox(state_dir, "--fresh")
    assert "newly seeded: asked for a fresh one; the saved state was moved to" in fresh.said()
    rds = fresh.client("rds")
    assert db_status(rds, "ds-kept") == "DBInstanceNotFound"
    assert db_status(rds, HOST_DB) == "available"  # the host is seeded again
    fresh.stop()
    assert (state_dir / (persistence.STATE_FILE_NAME + persistence.SET_ASIDE_SUFFIX)).exists()

    persistence.state_file(state_dir).write_bytes(b"not a pickle")
    unreadable = RunningSandbox(state_dir)
    assert "newly seeded: the saved state could not be used" in unreadable.said()
    assert unreadable.client("ecs").describe_services(
        cluster=CLUSTER, services=[WEB_SERVICE])["services"][0]["status"] == "ACTIVE"
    unreadable.stop()
    assert (state_dir / (persistence.STATE_FILE_NAME + persistence.SET_ASIDE_SUFFIX)
            ).read_bytes() == b"not a pickle"


def test_a_snapshot_is_taken_between_requests():
    gate = persistence.RequestGate()
    order: list[str] = []
    answering, snapshot_waits = threading.Event(), threading.Event()
    finish = threading.Event()

    def slow_request():
        with gate.request():
            answering.set()
            finish.wait(5)
            order.append("first request answered")

    def snapshot():
        with gate.alone():
            order.append("snapshot")

    def next_request():
        with gate.request():
            order.append("next request")

    first = threading.Thread(target=slow_request)
    first.start()
    answering.wait(5)
    taking = threading.Thread(target=lambda: (snapshot_waits.set(), snapshot()))
    taking.start()
    snapshot_waits.wait(5)
    time.sleep(0.1)  # the snapshot now waits for the first request
    following = threading.Thread(target=next_request)
    following.start()
    time.sleep(0.1)
    assert order == []  # neither the snapshot nor the next request got in
    finish.set()
    for thread in (first, taking, following):
        thread.join(5)
    assert order == ["first request answered", "snapshot", "next request"]
    assert gate.called.is_set()


def test_the_clock_goes_on_from_where_it_was_saved(monkeypatch):
    saved = {"clock": 1000.0, "wall": time.time() - 30}
    try:
        clock.resume(saved)
        assert clock.now() == pytest.approx(1030.0, abs=1)
        clock.resume({"clock": 1000.0, "wall": time.time() + 3600})  # the wall clock went back
        assert clock.now() == pytest.approx(1000.0, abs=1)
    finally:
        clock._shift["seconds"] = 0.0
