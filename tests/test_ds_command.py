"""The ``ds`` command: exit codes 0/1/2, one-line reasons on stderr, and the --json shapes."""

import json
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest

from provisioning.aws.base import AwsError
from provisioning.models import Staging, StagingStatus
from provisioning.names import name_for_branch
from tests.command_line import ds
from tests.conftest import BRANCH, DOMAIN, QA_DB, RELEASE_TAG
from tests.factories import make_staging

BASE_DIR = Path(__file__).resolve().parent.parent
NAME = name_for_branch(BRANCH)
SUMMARY_KEYS = {"name", "status", "url", "branch", "source", "db_mode"}


def assert_one_line_error(stderr: str, *fragments: str) -> None:
    assert stderr.endswith("\n") and stderr.count("\n") == 1, stderr
    assert stderr.startswith("error: ")
    for fragment in fragments:
        assert fragment in stderr


# --- user errors: exit 2 ------------------------------------------------------------------------

@pytest.mark.django_db
@pytest.mark.parametrize(("args", "fragments"), [
    (["create", BRANCH, "--source", "prod-db"], ["Unknown snapshot source 'prod-db'"]),
    (["create", "feature/not-pushed"], ["No image tagged 'feature-not-pushed'"]),
    (["create", "bad..branch"], ["not a valid git branch name"]),
    (["create", BRANCH, "--name", "Bad_Name"], ["lower-case letters"]),
    (["create", BRANCH, "--shared-db", "--source", QA_DB], ["shared database"]),
    (["show", "nobody"], ["No staging named 'nobody'"]),
    (["destroy", "nobody"], ["No staging named 'nobody'"]),
    (["redeploy", "nobody"], ["No staging named 'nobody'"]),
])
def test_user_errors_exit_2_with_one_line(host_env, cli_user, enqueued, args, fragments):
    code, out, err = ds(*args)
    assert code == 2
    assert_one_line_error(err, *fragments)
    assert out == ""
    assert not Staging.objects.exists()
    assert enqueued == []


@pytest.mark.django_db
def test_name_taken_exits_2(host_env, cli_user, enqueued, alice):
    make_staging(alice, name="login-page", status=StagingStatus.READY)
    code, _, err = ds("create", BRANCH, "--name", "login-page")
    assert code == 2
    assert_one_line_error(err, "'login-page' is taken")


@pytest.mark.django_db
def test_redeploy_of_an_unknown_tag_exits_2(host_env, cli_user, enqueued, alice):
    make_staging(alice, name="login-page", status=StagingStatus.READY)
    code, _, err = ds("redeploy", "login-page", "--tag", "nope")
    assert code == 2
    assert_one_line_error(err, "No image tagged 'nope'")


def test_usage_errors_exit_2_from_the_command_line():
    result = subprocess.run(
        [sys.executable, "manage.py", "ds", "create"], cwd=BASE_DIR, capture_output=True,
        text=True, timeout=60, env={"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE":
                                    "dashboard.settings", "DJANGO_SECRET_KEY": "k" * 50},
    )
    assert result.returncode == 2
    assert "branch" in result.stderr


# --- success without waiting --------------------------------------------------------------------

@pytest.mark.django_db
def test_create_json_without_wait(host_env, cli_user, enqueued,
                                  django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        code, out, err = ds("create", BRANCH, "--source", QA_DB, "--json")
    assert (code, err) == (0, "")
    data = json.loads(out)
    assert isinstance(data, dict) and data.keys() >= SUMMARY_KEYS
    assert data.items() >= {
        "name": NAME, "status": "pending", "url": "", "branch": BRANCH, "source": QA_DB,
        "db_mode": "dedicated", "owner": "alice",
    }.items()
    staging = Staging.objects.get()
    assert enqueued == [staging.latest_operation().pk]


@pytest.mark.django_db
def test_list_and_show_json(host_env, alice, bob):
    make_staging(alice, name="one", status=StagingStatus.READY, url=f"https://one.{DOMAIN}")
    make_staging(bob, name="two", db_mode="shared")
    make_staging(bob, name="gone", status=StagingStatus.DESTROYED)

    code, out, _ = ds("list", "--json")
    assert code == 0
    listed = json.loads(out)
    assert isinstance(listed, list)
    assert sorted(s["name"] for s in listed) == ["one", "two"]
    assert all(s.keys() >= SUMMARY_KEYS for s in listed)
    assert sorted(s["name"] for s in json.loads(ds("list", "--json", "--all")[1])) == [
        "gone", "one", "two"]

    code, out, _ = ds("show", "one", "--json")
    shown = json.loads(out)
    assert code == 0 and isinstance(shown, dict) and shown.keys() >= SUMMARY_KEYS
    assert (shown["name"], shown["status"]) == ("one", "ready")
    assert shown["url"] == f"https://one.{DOMAIN}"
    assert shown["steps"] == []

    code, out, _ = ds("list")
    assert code == 0 and "one" in out and "two" in out and "gone" not in out
    code, out, _ = ds("show", "two")
    assert code == 0 and "two" in out and "shared" in out


# --- waiting: 0 when the operation succeeds, 1 when it fails ------------------------------------

@pytest.mark.django_db(transaction=True)
def test_create_and_destroy_with_wait(host_env, cli_user, run_at_once):
    code, out, err = ds("create", BRANCH, "--wait", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert (data["name"], data["status"], data["url"]) == (
        NAME, "ready", f"http://{NAME}.{DOMAIN}")
    assert {s["key"]: s["state"] for s in data["steps"]}["report"] == "done"
    assert "[   done] Report the URL and login" in err

    code, out, err = ds("show", NAME, "--json")
    assert json.loads(out)["operation"] == "create"

    code, out, err = ds("destroy", NAME, "--wait")
    assert code == 0, err
    assert "destroyed" in out
    assert Staging.objects.get().status == StagingStatus.DESTROYED


@pytest.mark.django_db(transaction=True)
def test_a_failed_operation_exits_1(host_env, cli_user, run_at_once):
    refused = AwsError("ecs:CreateService", "AccessDeniedException", "not authorized")
    with mock.patch("provisioning.aws.ecs.create_service", side_effect=refused):
        code, out, err = ds("create", BRANCH, "--wait", "--json")
    assert code == 1
    assert json.loads(out)["status"] == "failed"
    last_line = err.strip().splitlines()[-1]
    assert last_line.startswith(f"error: create of {NAME} failed: ")
    assert "ecs:CreateService" in last_line and "AccessDeniedException" in last_line

    # The failed staging can still be destroyed from the command line, leaving nothing.
    code, _, err = ds("destroy", NAME, "--wait")
    assert code == 0, err
    assert Staging.objects.get().status == StagingStatus.DESTROYED


@pytest.mark.django_db(transaction=True)
def test_redeploy_with_wait(host_env, cli_user, run_at_once):
    assert ds("create", BRANCH, "--wait")[0] == 0
    code, out, err = ds("redeploy", NAME, "--tag", RELEASE_TAG, "--wait", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert (data["status"], data["image_tag"], data["operation"]) == (
        "ready", RELEASE_TAG, "redeploy")


@pytest.mark.django_db
def test_stagings_belong_to_ds_user_or_the_os_user(host_env, enqueued, monkeypatch):
    monkeypatch.setenv("DS_USER", "carol")
    assert json.loads(ds("create", BRANCH, "--json")[1])["owner"] == "carol"

    monkeypatch.delenv("DS_USER")
    monkeypatch.setattr("getpass.getuser", lambda: "dave")
    assert json.loads(ds("create", "main", "--json")[1])["owner"] == "dave"

    def no_login_name():
        raise OSError("No username set in the environment")  # a container's anonymous uid

    monkeypatch.setattr("getpass.getuser", no_login_name)
    code, out, err = ds("create", "release/2026.11", "--json")
    assert code == 0, err
    assert json.loads(out)["owner"] == "cli"
