"""End to end through the command line: a real qcluster, a moto server, `ds create --wait`
and `ds destroy --wait`, then AWS is asked what exists."""

import json

import pytest

from tests.conftest import BRANCH
from tests.present import staging_resources, tagged_and_present
from tests.stack import running_stack

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with running_stack(tmp_path_factory.mktemp("e2e"), 0.01) as stack:
        yield stack


def test_create_then_destroy_leaves_nothing(stack):
    created = stack.manage("ds", "create", BRANCH, "--source", "staging-marketing-db",
                           "--wait", "--json")
    assert created.returncode == 0, created.stderr
    staging = json.loads(created.stdout)
    name = staging["name"]
    assert staging["status"] == "ready"
    assert staging["url"] == f"http://{name}.{stack.aws_env['DS_DOMAIN']}"
    assert staging["source"] == "staging-marketing-db"
    assert staging["db_mode"] == "dedicated"
    assert staging["login_username"]
    assert {s["state"] for s in staging["steps"]} <= {"done", "skipped"}

    made = staging_resources(stack, name)
    assert sorted(made["services"]) == [f"ds-{name}-web", f"ds-{name}-worker"]
    assert len(made["task_definitions"]) == 2
    assert made["target_groups"] == [f"ds-{name}"]
    assert len(made["rules"]) == 1
    assert made["databases"] == [f"ds-{name}"]
    assert made["tagged"]

    destroyed = stack.manage("ds", "destroy", name, "--wait", "--json")
    assert destroyed.returncode == 0, destroyed.stderr
    assert json.loads(destroyed.stdout)["status"] == "destroyed"
    assert staging_resources(stack, name) == {
        "services": [], "task_definitions": [], "target_groups": [], "rules": [],
        "databases": [], "tagged": [],
    }

    again = stack.manage("ds", "destroy", name)
    assert again.returncode == 0, again.stderr
    assert "already destroyed" in again.stderr


def test_shared_db_create_and_redeploy(stack):
    created = stack.manage("ds", "create", "develop", "--shared-db", "--wait", "--json")
    assert created.returncode == 0, created.stderr
    staging = json.loads(created.stdout)
    assert staging["db_mode"] == "shared"
    assert staging_resources(stack, staging["name"])["databases"] == []

    redeployed = stack.manage("ds", "redeploy", staging["name"], "--tag", "main", "--wait",
                              "--json")
    assert redeployed.returncode == 0, redeployed.stderr
    assert json.loads(redeployed.stdout)["image_tag"] == "main"

    destroyed = stack.manage("ds", "destroy", staging["name"], "--wait")
    assert destroyed.returncode == 0, destroyed.stderr


def test_user_errors_exit_2_before_anything_is_made(stack):
    for args, reason in [
        (["ds", "create", "no/such-branch"], "No image"),
        (["ds", "create", "main", "--source", "nope"], "Unknown snapshot source"),
        (["ds", "show", "nothing-here"], "No staging named"),
    ]:
        result = stack.manage(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert reason in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_the_same_staging_again_right_after_its_destroy(stack):
    """AWS still lists the destroyed staging's stopped tasks, deleted rule and task definitions
    being deleted, and its login secret's name is not free yet: the destroy's check is not
    fooled, the new create reuses the names, and a destroy run twice is harmless."""
    first = stack.manage("ds", "create", "feature/search", "--shared-db", "--wait", "--json")
    assert first.returncode == 0, first.stderr
    name = json.loads(first.stdout)["name"]
    destroyed = stack.manage("ds", "destroy", name, "--wait", "--json")
    assert destroyed.returncode == 0, destroyed.stderr
    assert json.loads(destroyed.stdout)["status"] == "destroyed"
    listed = [m["ResourceARN"] for m in stack.client("resourcegroupstaggingapi").get_resources(
        TagFilters=[{"Key": "dynamic-staging", "Values": [name]}])["ResourceTagMappingList"]]
    assert any(":task/" in arn for arn in listed), listed
    assert tagged_and_present(stack, "dynamic-staging", name) == []

    again = stack.manage("ds", "create", "feature/search", "--shared-db", "--wait", "--json")
    assert again.returncode == 0, again.stderr
    staging = json.loads(again.stdout)
    assert (staging["name"], staging["status"]) == (name, "ready")
    assert staging["login_username"]
    secret = stack.client("secretsmanager").describe_secret(
        SecretId=f"dynamic-stagings/{name}/login")
    assert "DeletedDate" not in secret
    assert {t["Key"]: t["Value"] for t in secret["Tags"]}["dynamic-staging"] == name

    destroyed = stack.manage("ds", "destroy", name, "--wait", "--json")
    assert destroyed.returncode == 0, destroyed.stderr
    assert staging_resources(stack, name) == {
        "services": [], "task_definitions": [], "target_groups": [], "rules": [],
        "databases": [], "tagged": [],
    }
