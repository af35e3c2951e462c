"""End to end through the JSON API: the sandbox AWS, a real qcluster and the web server, each
in its own process; a token made with ``ds token create`` creates a staging over HTTP, follows
it until it is ready, destroys it, and AWS is asked what is left."""

import json
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from tests.conftest import BRANCH
from tests.present import tagged_and_present
from tests.stack import MANAGE, ROOT, running_stack

pytestmark = pytest.mark.e2e

SETTLE_SECONDS = 240


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with running_stack(tmp_path_factory.mktemp("api-e2e"), 0.01) as stack:
        made = stack.manage("shell", "-c", "from django.contrib.auth import get_user_model; "
                                           "get_user_model().objects.create_user('carol')")
        assert made.returncode == 0, made.stderr
        port = free_port()
        log = stack.state_dir / "runserver.log"
        web = subprocess.Popen([*MANAGE, "runserver", f"127.0.0.1:{port}", "--noreload"],
                               env=stack.env, cwd=ROOT, stdout=open(log, "w"),  # noqa: SIM115
                               stderr=subprocess.STDOUT)
        stack.processes.append(web)
        stack.base_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while request(stack, "GET", "/api/v1/openapi.json")[0] != 200:
            assert web.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.3)
        yield stack


def request(stack, method: str, path: str, token: str = "", body=None,
            headers: dict | None = None) -> tuple[int, dict, object]:
    """(status, headers, parsed JSON body); status 0 while the server does not answer."""
    data = json.dumps(body).encode() if body is not None else None
    sent = {"Content-Type": "application/json", **(headers or {})}
    if token:
        sent["Authorization"] = f"Bearer {token}"
    call = urllib.request.Request(stack.base_url + path, data=data, method=method, headers=sent)
    try:
        with urllib.request.urlopen(call, timeout=30) as response:
            return response.status, dict(response.headers), json.loads(response.read() or "null")
    except urllib.error.HTTPError as refused:
        return refused.code, dict(refused.headers), json.loads(refused.read() or "null")
    except OSError:
        return 0, {}, None


def follow(stack, token: str, path: str, until: set[str]) -> list[dict]:
    """GET the staging until its status is one of ``until``; every answer seen."""
    seen = []
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        status, _, body = request(stack, "GET", path, token)
        assert status == 200, body
        seen.append(body)
        if body["status"] in until and body["progress"]["finished"]:
            return seen
        assert time.monotonic() < deadline, (body, stack.logs()[-3000:])
        time.sleep(0.5)


def in_aws(stack, name: str) -> dict[str, list[str]]:
    """What AWS holds for the staging, asked per service (the tagging API lists no rules and
    keeps listing what is going away)."""
    domain, cluster = stack.aws_env["DS_DOMAIN"], stack.aws_env["DS_CLUSTER"]
    elbv2, ecs = stack.client("elbv2"), stack.client("ecs")
    rules = elbv2.describe_rules(ListenerArn=stack.aws_env["DS_LISTENER_ARN"])["Rules"]
    services = ecs.describe_services(cluster=cluster, services=[f"ds-{name}-web",
                                                                f"ds-{name}-worker"])
    return {
        "rules": [r["RuleArn"] for r in rules if f"{name}.{domain}" in json.dumps(r["Conditions"])],
        "target_groups": [g["TargetGroupName"] for g in elbv2.describe_target_groups()[
            "TargetGroups"] if g["TargetGroupName"] == f"ds-{name}"],
        "services": [s["serviceName"] for s in services["services"] if s["status"] == "ACTIVE"],
        "tagged": tagged_and_present(stack, "dynamic-staging", name),
    }


def test_a_token_creates_reads_and_destroys_a_staging_leaving_nothing(stack):
    made = stack.manage("ds", "token", "create", "--user", "carol", "--name", "e2e",
                        "--scope", "write", "--json")
    assert made.returncode == 0, made.stderr
    token = json.loads(made.stdout)["token"]

    body = {"branch": BRANCH, "db_mode": "shared"}
    key = {"Idempotency-Key": "e2e-create-1"}
    status, headers, created = request(stack, "POST", "/api/v1/stagings", token, body, key)
    assert status == 202, created
    name = created["name"]
    location = headers["Location"]
    assert location == f"{stack.base_url}/api/v1/stagings/{name}"
    # A retry of the same request (say, after a lost answer) makes nothing new.
    status, _, retried = request(stack, "POST", "/api/v1/stagings", token, body, key)
    assert (status, retried["name"]) == (202, name)

    path = location.removeprefix(stack.base_url)
    seen = follow(stack, token, path, {"ready", "failed"})
    staging = seen[-1]
    assert staging["status"] == "ready", staging
    assert staging["url"] == f"http://{name}.{stack.aws_env['DS_DOMAIN']}"
    assert staging["owner"] == "carol" and staging["db_mode"] == "shared"
    assert {s["state"] for s in staging["steps"]} <= {"done", "skipped"}
    assert staging["progress"] == {"percent": 100, "done": len(staging["steps"]),
                                   "total": len(staging["steps"]), "finished": True,
                                   "seconds_left": None}
    # While it ran, each answer said how long it would still take.
    assert all(s["progress"]["seconds_left"] is not None for s in seen[:-1])
    assert len(seen) > 1
    status, _, listed = request(stack, "GET", "/api/v1/stagings?mine=1", token)
    assert (status, [s["name"] for s in listed]) == (200, [name])
    made_in_aws = in_aws(stack, name)
    assert all(made_in_aws.values()), made_in_aws

    status, _, destroying = request(stack, "DELETE", path, token)
    assert status == 202, destroying
    assert follow(stack, token, path, {"destroyed", "failed"})[-1]["status"] == "destroyed"
    assert in_aws(stack, name) == {"rules": [], "target_groups": [], "services": [],
                                   "tagged": []}
    status, _, live = request(stack, "GET", "/api/v1/stagings", token)
    assert (status, live) == (200, [])

    events = stack.query("SELECT action, channel, channel_detail FROM provisioning_auditevent "
                         "WHERE staging_name = %s ORDER BY id", name)
    assert [(action, channel) for action, channel, _ in events] == [("create", "api"),
                                                                    ("destroy", "api")]
    assert all(detail.startswith("token e2e (dst_") for _, _, detail in events)
    assert stack.query("SELECT COUNT(*) FROM provisioning_staging")[0][0] == 1
