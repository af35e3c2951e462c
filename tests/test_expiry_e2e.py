"""Expiry end to end on the sandbox: a staging created with a tiny TTL is destroyed by the
every-minute schedule of a real qcluster, as "system: expiry", with nothing left in AWS; then
``ds recreate`` makes it again with the same branch, DB mode and name."""

import json
import time
from datetime import datetime

import pytest

from tests.present import tagged_and_present
from tests.stack import SandboxStack, running_stack

pytestmark = pytest.mark.e2e

# 36 seconds: expired by the time the create is ready or soon after.
TINY_TTL = "0.01"
# The schedule runs every minute; django-q looks at its schedules every 30 s.
EXPIRY_TIMEOUT = 240


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with running_stack(tmp_path_factory.mktemp("expiry-e2e"), 0.01) as stack:
        yield stack


def status_of(stack: SandboxStack, name: str) -> str:
    rows = stack.query("SELECT status FROM provisioning_staging WHERE name = %s "
                       "ORDER BY id DESC", name)
    return rows[0][0] if rows else ""


def left_in_aws(stack: SandboxStack, name: str) -> dict[str, list[str]]:
    """Asked of each service, not from our records."""
    cluster = stack.aws_env["DS_CLUSTER"]
    host = f"{name}.{stack.aws_env['DS_DOMAIN']}"
    services = stack.client("ecs").describe_services(
        cluster=cluster, services=[f"ds-{name}-web", f"ds-{name}-worker"])["services"]
    elbv2 = stack.client("elbv2")
    rules = elbv2.describe_rules(ListenerArn=stack.aws_env["DS_LISTENER_ARN"])["Rules"]
    return {
        "services": [s["serviceName"] for s in services if s["status"] == "ACTIVE"],
        "target_groups": [g["TargetGroupName"] for g in
                          elbv2.describe_target_groups()["TargetGroups"]
                          if g["TargetGroupName"] == f"ds-{name}"],
        "rules": [r["RuleArn"] for r in rules for c in r["Conditions"]
                  if host in c.get("HostHeaderConfig", {}).get("Values", [])],
        "tagged": tagged_and_present(stack, "dynamic-staging", name),
    }


def test_a_tiny_ttl_is_destroyed_by_the_schedule_then_recreated(stack):
    created = stack.manage("ds", "create", "develop", "--shared-db", "--ttl", TINY_TTL,
                           "--wait", "--json")
    assert created.returncode == 0, created.stderr
    staging = json.loads(created.stdout)
    name = staging["name"]
    assert staging["status"] == "ready" and staging["kept"] is False
    assert staging["expires_at"].endswith("Z")

    started = time.monotonic()
    while status_of(stack, name) != "destroyed":
        assert time.monotonic() - started < EXPIRY_TIMEOUT, (status_of(stack, name),
                                                             stack.logs()[-3000:])
        time.sleep(2)
    assert left_in_aws(stack, name) == {
        "services": [], "target_groups": [], "rules": [], "tagged": []}
    trail = stack.query("SELECT action, actor_name, detail FROM provisioning_auditevent "
                        "WHERE staging_name = %s ORDER BY id", name)
    assert [row[:2] for row in trail] == [("create", "alice"), ("destroy", "system: expiry")]
    assert trail[1][2].startswith("expired at ")
    runs = stack.query("SELECT outcome, error FROM provisioning_schedulerun "
                       "WHERE name = 'destroy expired stagings' ORDER BY id")
    assert (f"destroying 1 expired: {name}", "") in runs

    shown = json.loads(stack.manage("ds", "show", name, "--json").stdout)
    assert shown["status"] == "destroyed"
    late = (datetime.fromisoformat(shown["destroyed_at"])
            - datetime.fromisoformat(shown["expires_at"])).total_seconds()
    # At most a minute for the schedule, half a minute for the queue to look, the destroy.
    print(f"expired -> destroyed: {late:.0f} s")
    assert late < 150

    again = stack.manage("ds", "recreate", name, "--wait", "--json")
    assert again.returncode == 0, again.stderr
    recreated = json.loads(again.stdout)
    assert (recreated["name"], recreated["branch"], recreated["db_mode"], recreated["status"]) \
        == (name, "develop", "shared", "ready")
    # Its tiny TTL came with it: one destroy or the other ends it, and nothing is left.
    destroyed = stack.manage("ds", "destroy", name, "--wait")
    assert destroyed.returncode == 0, destroyed.stderr
    started = time.monotonic()
    while status_of(stack, name) != "destroyed":
        assert time.monotonic() - started < EXPIRY_TIMEOUT
        time.sleep(1)
    assert left_in_aws(stack, name) == {
        "services": [], "target_groups": [], "rules": [], "tagged": []}
