"""``ds`` as scripts use it: a destroy may be repeated, stderr holds only our own lines,
timestamps are ISO 8601, the human listing has a header, no line ends in blanks."""

import json
import logging
from datetime import UTC, datetime

import pytest

from provisioning.models import Staging, StagingStatus
from tests.command_line import ds
from tests.conftest import BRANCH
from tests.factories import make_staging

pytestmark = pytest.mark.django_db


def test_destroying_a_destroyed_staging_succeeds_and_says_so(alice, cli_user):
    make_staging(alice, name="gone", status=StagingStatus.DESTROYED,
                 destroyed_at=datetime(2026, 11, 30, 12, 0, tzinfo=UTC))
    code, out, err = ds("destroy", "gone", "--json")
    assert code == 0
    assert json.loads(out)["status"] == "destroyed"
    assert err == "gone is already destroyed.\n"
    assert Staging.objects.get(name="gone").operations.count() == 0


def test_json_timestamps_are_iso_8601(alice, cli_user):
    make_staging(alice, name="when", status=StagingStatus.READY,
                 created_at=datetime(2026, 11, 30, 12, 0, 5, tzinfo=UTC))
    code, out, _ = ds("show", "when", "--json")
    assert code == 0
    assert json.loads(out)["created_at"] == "2026-11-30T12:00:05Z"


def test_the_listing_has_a_header_and_no_trailing_blanks(alice, cli_user):
    make_staging(alice, name="listed", status=StagingStatus.READY)
    code, out, _ = ds("list")
    lines = out.splitlines()
    assert code == 0
    assert lines[0].split() == ["NAME", "STATUS", "DB", "EXPIRES", "BRANCH", "URL"]
    assert lines[1].startswith("listed ")
    assert all(line == line.rstrip() for line in lines)


def test_show_has_no_trailing_blanks(alice, cli_user):
    staging = make_staging(alice, name="shown", status=StagingStatus.READY)
    operation = staging.operations.create(kind="create", requested_by=alice)
    operation.steps.create(key="image", label="Find the branch's image", state="done")
    code, out, _ = ds("show", "shown")
    assert code == 0 and "Find the branch's image" in out
    assert all(line == line.rstrip() for line in out.splitlines())


def test_the_queue_does_not_log_on_stderr(host_env, cli_user, alice,
                                          django_capture_on_commit_callbacks):
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record):
            seen.append(record)

    keep = Keep(level=logging.DEBUG)
    logging.getLogger("django-q").addHandler(keep)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            code, _, err = ds("create", BRANCH, "--shared-db", "--json")
    finally:
        logging.getLogger("django-q").removeHandler(keep)
    assert code == 0, err
    assert err == ""
    assert not [r for r in seen if r.levelno < logging.WARNING]
