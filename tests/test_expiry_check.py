"""The every-minute expiry check (tasks.expire_stagings), with a controlled clock: it destroys
expired stagings as "system: expiry" (in-process against moto, nothing left), leaves kept and
busy ones alone until they settle, never doubles a destroy, and records each run."""

from datetime import UTC, datetime, timedelta

import boto3
import pytest

from provisioning import engine, tasks
from provisioning.expiry import EXPIRY
from provisioning.models import (
    AuditEvent,
    DbMode,
    Operation,
    OperationKind,
    OperationStatus,
    ScheduleRun,
    Staging,
    StagingStatus,
)
from provisioning.operations import request_expiry_destroy
from provisioning.runner import run_operation
from tests.conftest import CLUSTER, DOMAIN
from tests.factories import make_operation, make_staging

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CHECK = tasks.expire_stagings.every.name


@pytest.fixture
def clock(time_machine):
    time_machine.move_to(T0, tick=False)
    return time_machine


def runs() -> list[tuple[str, str]]:
    return list(ScheduleRun.objects.filter(name=CHECK).values_list("outcome", "error"))


def expired(owner, name: str, **fields) -> Staging:
    fields.setdefault("status", StagingStatus.READY)
    fields.setdefault("expires_at", T0 - timedelta(minutes=1))
    return make_staging(owner, name=name, **fields)


def destroys(staging: Staging) -> list[Operation]:
    return list(staging.operations.filter(kind=OperationKind.DESTROY))


# --- in-process against moto: the whole way --------------------------------------------------

def what_aws_holds(name: str, listener_arn: str) -> dict:
    tagging = boto3.client("resourcegroupstaggingapi").get_resources(
        TagFilters=[{"Key": "dynamic-staging", "Values": [name]}])["ResourceTagMappingList"]
    services = boto3.client("ecs").describe_services(
        cluster=CLUSTER, services=[f"ds-{name}-web", f"ds-{name}-worker"])["services"]
    rules = boto3.client("elbv2").describe_rules(ListenerArn=listener_arn)["Rules"]
    return {
        # Deleted services stay listed as INACTIVE for a while, as on AWS.
        "tagged": sorted(m["ResourceARN"] for m in tagging if ":service/" not in m["ResourceARN"]),
        "services": [s["serviceName"] for s in services if s["status"] == "ACTIVE"],
        "rules": [r["RuleArn"] for r in rules for c in r["Conditions"]
                  if f"{name}.{DOMAIN}" in c.get("HostHeaderConfig", {}).get("Values", [])],
        "databases": [d["DBInstanceIdentifier"] for d in
                      boto3.client("rds").describe_db_instances()["DBInstances"]
                      if d["DBInstanceIdentifier"] == f"ds-{name}"],
    }


@pytest.mark.django_db(transaction=True)
def test_an_expired_staging_is_destroyed_with_nothing_left(host_env, alice, enqueued,
                                                           time_machine):
    time_machine.move_to(T0, tick=True)
    staging = engine.request_create(branch="feature/Login_Page", owner=alice, ttl_hours=0.5)
    assert run_operation(enqueued.pop()) is True
    staging.refresh_from_db()
    assert staging.status == StagingStatus.READY
    assert what_aws_holds(staging.name, host_env.listener_arn)["databases"] == [
        f"ds-{staging.name}"]

    time_machine.move_to(T0 + timedelta(minutes=29), tick=True)
    tasks.expire_stagings()
    assert enqueued == []  # not yet
    time_machine.move_to(T0 + timedelta(minutes=31), tick=True)
    result = tasks.expire_stagings()
    assert result.destroying == [staging.name]
    (destroy_id,) = enqueued
    assert run_operation(destroy_id) is True

    staging.refresh_from_db()
    assert staging.status == StagingStatus.DESTROYED and staging.destroyed_at
    assert what_aws_holds(staging.name, host_env.listener_arn) == {
        "tagged": [], "services": [], "rules": [], "databases": []}
    destroy = Operation.objects.get(pk=destroy_id)
    assert (destroy.kind, destroy.status, destroy.requested_by) == (
        OperationKind.DESTROY, OperationStatus.SUCCEEDED, None)
    trail = AuditEvent.objects.filter(staging=staging).order_by("pk")
    assert [(e.action, e.actor_name) for e in trail] == [
        ("create", "alice"), ("destroy", "system: expiry")]
    assert trail.last().detail == "expired at 2026-03-02 09:30 UTC"
    assert runs()[0] == (f"destroying 1 expired: {staging.name}", "")
    assert runs()[1][0] == f"warned: {staging.name}"  # inside the 1-hour window
    # It stays in the history, with its expiry: 30 minutes after its create was asked for.
    assert staging.expires_at - staging.created_at == timedelta(minutes=30)


# --- which stagings, and only once -----------------------------------------------------------


@pytest.mark.django_db
def test_only_expired_live_unkept_stagings_are_destroyed(alice, clock, enqueued,
                                                         django_capture_on_commit_callbacks):
    due = expired(alice, "due")
    failed = expired(alice, "failed-create", status=StagingStatus.FAILED)
    make_operation(failed, status=OperationStatus.FAILED)
    expired(alice, "not-yet", expires_at=T0 + timedelta(seconds=1))
    expired(alice, "kept", kept=True)  # kept wins over a stale expiry
    expired(alice, "gone", status=StagingStatus.DESTROYED)
    with django_capture_on_commit_callbacks(execute=True):
        result = tasks.expire_stagings()
    assert sorted(result.destroying) == ["due", "failed-create"]
    assert len(enqueued) == 2
    for staging in (due, failed):
        staging.refresh_from_db()
        assert staging.status == StagingStatus.DESTROYING
        assert len(destroys(staging)) == 1
    assert Staging.objects.get(name="not-yet").status == StagingStatus.READY
    assert runs() == [("destroying 2 expired: due, failed-create; warned: not-yet", "")]


@pytest.mark.django_db
def test_a_staging_with_an_operation_in_flight_waits_until_it_settles(
        alice, clock, enqueued, django_capture_on_commit_callbacks):
    staging = expired(alice, "busy", status=StagingStatus.UPDATING)
    redeploy = make_operation(staging, kind=OperationKind.REDEPLOY,
                              status=OperationStatus.RUNNING)
    queued = expired(alice, "queued")  # settled status, but an operation waits for a worker
    make_operation(queued, kind=OperationKind.REDEPLOY, status=OperationStatus.QUEUED)
    pending = expired(alice, "pending", status=StagingStatus.PENDING)
    make_operation(pending, status=OperationStatus.QUEUED)

    result = tasks.expire_stagings()
    assert result.destroying == [] and sorted(result.busy) == ["busy", "pending", "queued"]
    assert enqueued == [] and destroys(staging) == []
    assert runs()[0][0] == "expired but busy until their operation ends: busy, queued, pending"

    Operation.objects.filter(pk=redeploy.pk).update(status=OperationStatus.SUCCEEDED)
    Staging.objects.filter(pk=staging.pk).update(status=StagingStatus.READY)
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.expire_stagings().destroying == ["busy"]
    assert len(enqueued) == 1


@pytest.mark.django_db
def test_a_failed_destroy_is_not_tried_again_every_minute(alice, clock, enqueued):
    staging = expired(alice, "stuck", status=StagingStatus.FAILED)
    make_operation(staging, kind=OperationKind.DESTROY, status=OperationStatus.FAILED)
    result = tasks.expire_stagings()
    assert (result.destroying, result.failed_destroy) == ([], ["stuck"])
    assert len(destroys(staging)) == 1
    assert "last destroy failed (destroy by hand): stuck" in runs()[0][0]


@pytest.mark.django_db
def test_two_nodes_checking_at_once_start_one_destroy(alice, clock, enqueued,
                                                      django_capture_on_commit_callbacks):
    """Both read the staging as expired before either wrote: the second one's conditional
    update finds it changed."""
    staging = expired(alice, "twice")
    read_by_second_node = Staging.objects.get(pk=staging.pk)
    with django_capture_on_commit_callbacks(execute=True):
        assert request_expiry_destroy(staging, system=EXPIRY, now=T0) is not None
        assert request_expiry_destroy(read_by_second_node, system=EXPIRY, now=T0) is None
        assert tasks.expire_stagings().destroying == []
    assert len(destroys(staging)) == 1 and len(enqueued) == 1
    assert AuditEvent.objects.filter(staging=staging, action="destroy").count() == 1


@pytest.mark.django_db
def test_a_redeploy_or_extension_after_the_read_wins(host_env, alice, clock, enqueued):
    staging = expired(alice, "pushed", db_mode=DbMode.SHARED)
    as_read = Staging.objects.get(pk=staging.pk)
    engine.request_redeploy(staging, user=alice)  # a push arrives between read and write
    assert request_expiry_destroy(as_read, system=EXPIRY, now=T0) is None

    other = expired(alice, "extended")
    as_read = Staging.objects.get(pk=other.pk)
    engine.extend(other, user=alice, hours=1)
    assert request_expiry_destroy(as_read, system=EXPIRY, now=T0) is None
    assert destroys(staging) == destroys(other) == []


@pytest.mark.django_db
def test_a_staging_from_before_expiry_gets_one(alice, clock, enqueued):
    old = make_staging(alice, name="old", status=StagingStatus.READY)
    assert old.expires_at is None and not old.kept
    result = tasks.expire_stagings()
    assert result.given_expiry == 1 and result.destroying == []
    assert Staging.objects.get(pk=old.pk).expires_at == T0 + timedelta(hours=72)
    assert runs()[0][0] == "gave 1 staging(s) without one an expiry"


@pytest.mark.django_db
def test_the_check_is_declared_every_minute():
    every = tasks.expire_stagings.every
    assert (every.minutes, every.dotted) == (1, "provisioning.tasks.expire_stagings")
    assert every in tasks.SCHEDULES
