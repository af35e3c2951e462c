"""The audit trail: every accepted create, redeploy and destroy (and every look at a test
account's password, and every sweep) leaves one row saying who, what and when, written in the
same transaction as the operation it stands for."""

from unittest import mock

import pytest
from django.core.management import call_command
from django.urls import reverse

from provisioning import audit
from provisioning.errors import UserError
from provisioning.models import (
    AuditAction,
    AuditEvent,
    Operation,
    OperationKind,
    OperationStatus,
    Staging,
    StagingStatus,
)
from provisioning.operations import request_create, request_destroy, request_redeploy
from tests.conftest import QA_DB, RELEASE_TAG
from tests.factories import make_operation, make_staging
from tests.pages import client_for

pytestmark = pytest.mark.django_db


def trail(**filters) -> list[tuple[str, str, str]]:
    """(actor, action, staging name), oldest first."""
    events = AuditEvent.objects.filter(**filters).order_by("created_at", "pk")
    return [(e.actor_name, e.action, e.staging_name) for e in events]


def test_record_keeps_names_that_outlive_the_rows(alice, django_user_model):
    staging = make_staging(alice, name="shop")
    event = audit.record(AuditAction.DESTROY, actor=alice, staging=staging, detail="why")
    assert (event.actor, event.actor_name, event.staging, event.staging_name, event.detail) == (
        alice, "alice", staging, "shop", "why")
    assert event.created_at is not None

    Staging.objects.filter(pk=staging.pk).delete()
    event.refresh_from_db()
    assert (event.staging, event.staging_name) == (None, "shop")


def test_record_without_a_person_is_the_system(alice):
    event = audit.record(AuditAction.SWEEP, actor=None, detail="2 orphaned resource(s)")
    assert (event.actor, event.actor_name, event.staging, event.staging_name) == (
        None, audit.SYSTEM_ACTOR, None, "")
    named = audit.record(AuditAction.SWEEP_DELETE, actor=alice, staging_name="gone-123abc")
    assert named.staging_name == "gone-123abc"


def test_record_refuses_an_unknown_action(alice):
    with pytest.raises(ValueError, match="unknown audit action"):
        audit.record("reboot", actor=alice)
    assert not AuditEvent.objects.exists()


def test_trail_is_newest_first_and_bounded(alice):
    staging = make_staging(alice)
    for _ in range(audit.TRAIL_LENGTH + 5):
        audit.record(AuditAction.REVEAL_LOGIN, actor=alice, staging=staging)
    last = audit.record(AuditAction.DESTROY, actor=alice, staging=staging)
    events = audit.trail_for(staging)
    assert len(events) == audit.TRAIL_LENGTH and events[0] == last


def test_create_is_recorded_with_its_branch_and_data(host_env, alice):
    staging = request_create(branch="main", owner=alice, source=QA_DB)
    event = AuditEvent.objects.get()
    assert (event.actor, event.action, event.staging) == (alice, AuditAction.CREATE, staging)
    assert event.detail == (f"branch main, image main, dedicated database from "
                            f"{host_env.qa_snapshot}")
    shared = request_create(branch=RELEASE_TAG, owner=alice, db_mode="shared")
    assert AuditEvent.objects.get(staging=shared).detail.endswith("shared database")


def test_a_refused_request_records_nothing(host_env, alice):
    with pytest.raises(UserError):
        request_create(branch="feature/never-pushed", owner=alice)
    staging = make_staging(alice, status=StagingStatus.PROVISIONING)
    with pytest.raises(UserError):
        request_redeploy(staging, user=alice)
    assert not AuditEvent.objects.exists()


def test_the_event_and_the_operation_commit_together(host_env, alice):
    """If the event cannot be written, no staging, operation or queue entry is left either."""
    with mock.patch("provisioning.audit.AuditEvent.objects.create",
                    side_effect=RuntimeError("disk full")), \
            mock.patch("provisioning.tasks.enqueue_operation") as enqueue, \
            pytest.raises(RuntimeError):
        request_create(branch="main", owner=alice)
    assert not Staging.objects.exists() and not Operation.objects.exists()
    enqueue.assert_not_called()

    staging = make_staging(alice, status=StagingStatus.READY)
    with mock.patch("provisioning.audit.AuditEvent.objects.create",
                    side_effect=RuntimeError("disk full")), pytest.raises(RuntimeError):
        request_destroy(staging, user=alice)
    staging.refresh_from_db()
    assert staging.status == StagingStatus.READY and not staging.operations.exists()


def test_redeploy_and_destroy_are_recorded(host_env, alice, bob, admin):
    staging = make_staging(alice, branch="main", status=StagingStatus.READY)
    request_redeploy(staging, user=alice, tag=RELEASE_TAG)
    Operation.objects.filter(staging=staging).update(status=OperationStatus.SUCCEEDED)
    request_destroy(staging, user=admin)
    # A second click joins the first teardown: it asks for nothing new, so no row.
    assert request_destroy(staging, user=alice) == request_destroy(staging, user=admin)
    assert trail() == [("alice", "redeploy", "login-page"), ("admin", "destroy", "login-page")]
    details = list(AuditEvent.objects.order_by("created_at", "pk").values_list("detail", flat=True))
    assert details == [f"image {RELEASE_TAG}", ""]
    assert staging.operations.filter(kind=OperationKind.DESTROY).count() == 1


def test_destroy_superseding_a_create_is_recorded(host_env, alice):
    staging = make_staging(alice, status=StagingStatus.PROVISIONING)
    make_operation(staging, status=OperationStatus.RUNNING)
    request_destroy(staging, user=alice)
    assert trail() == [("alice", "destroy", "login-page")]


def test_the_command_line_records_its_user(host_env, monkeypatch):
    monkeypatch.setenv("DS_USER", "carol")
    call_command("ds", "create", "main", "--shared-db", stdout=mock.MagicMock())
    staging = Staging.objects.get()
    call_command("ds", "destroy", staging.name, stdout=mock.MagicMock())
    assert trail() == [("carol", "create", staging.name), ("carol", "destroy", staging.name)]


# --- through the pages ----------------------------------------------------------------------------

def test_a_repeated_destroy_post_adds_no_row(alice):
    staging = make_staging(alice, status=StagingStatus.READY)
    client = client_for(alice)
    url = reverse("destroy", args=[staging.pk])
    for _ in range(3):
        assert client.post(url).status_code == 302
    assert trail() == [("alice", "destroy", "login-page")]
    assert staging.operations.filter(kind=OperationKind.DESTROY).count() == 1


def test_a_refused_password_reveal_is_recorded(alice, bob):
    staging = make_staging(alice, status=StagingStatus.READY,
                           login_secret_arn="arn:aws:secretsmanager:us-east-1:1:secret:x")
    with mock.patch("provisioning.engine.reveal_login") as read:
        response = client_for(bob).post(reverse("reveal_login", args=[staging.pk]))
    assert response.status_code == 403
    read.assert_not_called()
    assert trail() == [("bob", "reveal-refused", "login-page")]
    assert AuditEvent.objects.get().detail == "not the staging's owner or an admin"
    page = client_for(alice).get(reverse("staging", args=[staging.pk])).content.decode()
    assert "was refused the password" in page


def test_a_reveal_of_a_staging_that_does_not_exist_records_nothing(bob):
    assert client_for(bob).post(reverse("reveal_login", args=[999])).status_code == 404
    assert not AuditEvent.objects.exists()
