"""Requests: everything a user can get wrong is a UserError naming the form field, found before
any AWS resource is made or any row written."""

from datetime import UTC, datetime
from unittest import mock

import boto3
import pytest

from provisioning.aws import rds
from provisioning.errors import UserError
from provisioning.models import (
    DbMode,
    Operation,
    OperationKind,
    OperationStatus,
    Staging,
    StagingStatus,
)
from provisioning.names import name_for_branch
from provisioning.operations import (
    may_act,
    request_create,
    request_destroy,
    request_redeploy,
)
from tests.conftest import BRANCH, CLUSTER, QA_DB, RELEASE_TAG
from tests.factories import make_operation, make_staging

pytestmark = pytest.mark.django_db


def aws_inventory() -> dict:
    """Everything a create could make, as AWS lists it."""
    ecs = boto3.client("ecs")
    elb = boto3.client("elbv2")
    return {
        "tagged": sorted(
            m["ResourceARN"] for m in boto3.client("resourcegroupstaggingapi").get_resources(
                TagFilters=[{"Key": "managed-by", "Values": ["dynamic-stagings"]}]
            )["ResourceTagMappingList"]
        ),
        "target_groups": sorted(
            g["TargetGroupName"] for g in elb.describe_target_groups()["TargetGroups"]),
        "services": sorted(ecs.list_services(cluster=CLUSTER)["serviceArns"]),
        "task_definitions": sorted(ecs.list_task_definitions()["taskDefinitionArns"]),
        "db_instances": sorted(
            i["DBInstanceIdentifier"]
            for i in boto3.client("rds").describe_db_instances()["DBInstances"]),
    }


@pytest.fixture
def nothing_made(host_env):
    """Checks, after the test, that AWS holds exactly what it held before."""
    before = aws_inventory()
    rows = Staging.objects.count(), Operation.objects.count()
    yield
    assert aws_inventory() == before
    assert (Staging.objects.count(), Operation.objects.count()) == rows


def refused(field: str | None, **kwargs) -> UserError:
    with pytest.raises(UserError) as raised:
        request_create(**kwargs)
    assert raised.value.field == field
    assert raised.value.message and "\n" not in raised.value.message
    return raised.value


# --- bad input ----------------------------------------------------------------------------------

def test_name_already_in_use(host_env, alice, bob):
    make_staging(alice, name="login-page", status=StagingStatus.READY)
    before = aws_inventory()
    error = refused("name", branch=BRANCH, owner=bob, name="login-page")
    assert "taken" in error.message
    assert Staging.objects.count() == 1
    assert aws_inventory() == before


def test_derived_name_already_in_use(host_env, alice, bob):
    make_staging(alice, name=name_for_branch(BRANCH), status=StagingStatus.FAILED)
    refused("name", branch=BRANCH, owner=bob)


def test_a_destroyed_stagings_name_may_be_used_again(host_env, alice):
    make_staging(alice, name="login-page", status=StagingStatus.DESTROYED)
    staging = request_create(branch=BRANCH, owner=alice, name="login-page")
    assert staging.status == StagingStatus.PENDING


def test_the_unique_constraint_catches_a_race_for_a_name(host_env, alice, bob):
    make_staging(alice, name="login-page", status=StagingStatus.PROVISIONING)
    with mock.patch("provisioning.operations._check_name_free"):
        error = refused("name", branch=BRANCH, owner=bob, name="login-page")
    assert "taken" in error.message


def test_unknown_snapshot_source(nothing_made, alice, settings):
    error = refused("source", branch=BRANCH, owner=alice, source="prod-db")
    assert "prod-db" in error.message
    assert ", ".join(settings.DS_SNAPSHOT_SOURCES) in error.message


def test_source_without_an_available_snapshot(nothing_made, alice, settings):
    # moto snapshots a new instance at once; real RDS may still be taking the first one.
    taking = rds.Snapshot(identifier="new-db-first", instance_id="new-db",
                          created_at=datetime.now(UTC), status="creating", kind="automated")
    settings.DS_SNAPSHOT_SOURCES = ["host-db", QA_DB, "new-db"]
    with mock.patch("provisioning.aws.rds.list_snapshots", return_value=[taking]) as listed:
        error = refused("source", branch=BRANCH, owner=alice, source="new-db")
    listed.assert_called_once_with(instance_id="new-db")
    assert "no available snapshot" in error.message


def test_source_that_no_longer_exists(nothing_made, alice, settings):
    settings.DS_SNAPSHOT_SOURCES = ["host-db", QA_DB, "gone-db"]
    error = refused("source", branch=BRANCH, owner=alice, source="gone-db")
    assert "no available snapshot" in error.message


def test_branch_without_image(nothing_made, alice):
    error = refused("branch", branch="feature/not-pushed-yet", owner=alice)
    assert "feature-not-pushed-yet" in error.message and "push an image" in error.message


@pytest.mark.parametrize("branch", ["", "  ", "feature/", "a..b", "-x", "has space", "x.lock",
                                    "feature/.hidden", "a~1", "x" * 256])
def test_invalid_branch(nothing_made, alice, branch):
    refused("branch", branch=branch, owner=alice)


@pytest.mark.parametrize("name", ["Login", "login_page", "-login", "login-", "a--b", "x" * 29])
def test_invalid_name(nothing_made, alice, name):
    refused("name", branch=BRANCH, owner=alice, name=name)


def test_unknown_db_mode(nothing_made, alice):
    refused("db_mode", branch=BRANCH, owner=alice, db_mode="replica")


def test_shared_database_comes_only_from_the_host(nothing_made, alice):
    refused("source", branch=BRANCH, owner=alice, db_mode=DbMode.SHARED, source=QA_DB)


# --- a good request -----------------------------------------------------------------------------

def test_a_good_request_writes_rows_and_enqueues_but_makes_nothing(
        host_env, alice, enqueued, django_capture_on_commit_callbacks):
    before = aws_inventory()
    with django_capture_on_commit_callbacks(execute=True):
        staging = request_create(branch=BRANCH, owner=alice, source=QA_DB)
    assert staging.name == name_for_branch(BRANCH)
    assert (staging.status, staging.db_mode, staging.owner) == (
        StagingStatus.PENDING, DbMode.DEDICATED, alice)
    assert staging.snapshot_id == host_env.qa_snapshot
    assert staging.image_tag == "feature-Login_Page"
    assert staging.image.startswith(f"{host_env.registry}/app@sha256:")
    operation = staging.latest_operation()
    assert (operation.kind, operation.status, operation.requested_by) == (
        OperationKind.CREATE, OperationStatus.QUEUED, alice)
    assert enqueued == [operation.pk]
    assert aws_inventory() == before


def test_shared_mode_needs_no_snapshot(host_env, alice):
    staging = request_create(branch=BRANCH, owner=alice, db_mode=DbMode.SHARED)
    assert (staging.source, staging.snapshot_id) == ("host-db", "")


# --- redeploy and destroy requests --------------------------------------------------------------

def test_redeploy_only_a_ready_staging(host_env, alice):
    staging = make_staging(alice, status=StagingStatus.PROVISIONING)
    with pytest.raises(UserError, match="provisioning"):
        request_redeploy(staging, user=alice)


def test_redeploy_after_a_failed_redeploy_is_allowed(host_env, alice):
    staging = make_staging(alice, status=StagingStatus.FAILED)
    make_operation(staging, OperationKind.REDEPLOY, status=OperationStatus.FAILED)
    operation = request_redeploy(staging, user=alice, tag=RELEASE_TAG)
    assert operation.params == {"tag": RELEASE_TAG}


def test_redeploy_of_a_tag_without_image(host_env, alice):
    staging = make_staging(alice, status=StagingStatus.READY)
    with pytest.raises(UserError) as raised:
        request_redeploy(staging, user=alice, tag="no-such-tag")
    assert raised.value.field == "branch"
    assert not staging.operations.exists()


def test_redeploy_while_busy_is_refused(host_env, alice):
    staging = make_staging(alice, status=StagingStatus.READY)
    make_operation(staging, OperationKind.REDEPLOY)  # still queued
    with pytest.raises(UserError, match="busy"):
        request_redeploy(staging, user=alice)


def test_two_destroy_requests_make_one_operation(host_env, alice, admin):
    staging = make_staging(alice, status=StagingStatus.READY)
    first = request_destroy(staging, user=alice)
    assert request_destroy(staging, user=admin) == first
    assert staging.operations.filter(kind=OperationKind.DESTROY).count() == 1


def test_destroy_supersedes_a_queued_create(host_env, alice):
    staging = make_staging(alice)
    create_op = make_operation(staging, OperationKind.CREATE)
    destroy = request_destroy(staging, user=alice)
    create_op.refresh_from_db()
    assert create_op.status == OperationStatus.FAILED
    assert "Superseded" in create_op.error
    assert destroy.status == OperationStatus.QUEUED


def test_a_destroyed_staging_cannot_be_destroyed_again(host_env, alice):
    staging = make_staging(alice, status=StagingStatus.DESTROYED)
    with pytest.raises(UserError, match="already destroyed"):
        request_destroy(staging, user=alice)


def test_only_the_owner_and_staff_may_act(alice, bob, admin):
    staging = make_staging(alice)
    assert may_act(alice, staging)
    assert may_act(admin, staging)
    assert not may_act(bob, staging)
