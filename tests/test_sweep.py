"""The orphan sweep against moto: what a staging left behind after our records lost it (marked
destroyed without a teardown) is found, and deleted on request, and nothing of a live staging
or of the host is touched."""

import contextlib
import json

import boto3
import pytest
from django.core.management import call_command

from provisioning import sweep as sweep_module
from provisioning.aws import secretsmanager
from provisioning.models import (
    AuditEvent,
    DbMode,
    Orphan,
    PoolDatabase,
    PoolStatus,
    Staging,
    StagingStatus,
)
from provisioning.operations import request_create
from provisioning.runner import run_operation
from provisioning.sweep import delete_orphans, sweep
from tests.conftest import CLUSTER, DOMAIN
from tests.factories import make_staging, run_tagged_task
from tests.footprint import assert_everything_made, assert_host_untouched, assert_nothing_left

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("enqueued")]

EXPECTED_KINDS = sorted([
    "ecs:service", "ecs:service", "ecs:task-definition", "ecs:task-definition",
    "elasticloadbalancing:listener-rule", "elasticloadbalancing:targetgroup", "rds:db",
])


def make_ready(owner, branch: str, **kwargs) -> Staging:
    staging = request_create(branch=branch, owner=owner, **kwargs)
    assert run_operation(staging.latest_operation().pk)
    staging.refresh_from_db()
    assert staging.status == StagingStatus.READY, staging.error
    return staging


def forget(staging: Staging) -> None:
    """Our records say destroyed; AWS still holds everything (a lost or hand-edited row)."""
    Staging.objects.filter(pk=staging.pk).update(status=StagingStatus.DESTROYED)


def kinds(rows) -> list[str]:
    return sorted(row.kind for row in rows)


def test_sweep_finds_and_deletes_exactly_what_a_forgotten_staging_left(host_env, alice, admin):
    lost = make_ready(alice, "feature/Login_Page")
    live = make_ready(alice, "main", db_mode=DbMode.SHARED)
    forget(lost)

    found = sweep()
    assert kinds(found) == EXPECTED_KINDS
    assert {row.staging_name for row in found} == {lost.name}
    assert all(row.deleted_at is None and row.error == "" for row in found)
    assert Orphan.objects.filter(deleted_at__isnull=True).count() == len(found)
    # A scheduled sweep that finds something new leaves a trace, by "system".
    event = AuditEvent.objects.get(action="sweep")
    assert event.actor is None and f"{len(found)} orphaned resource(s)" in event.detail

    # Seen again: same rows, last_seen_at moves, no second audit event for nothing new.
    first_seen = {row.arn: row.first_seen_at for row in found}
    again = sweep()
    assert {row.arn: row.first_seen_at for row in again} == first_seen
    assert AuditEvent.objects.filter(action="sweep").count() == 1

    deleted = sweep(delete=True, actor=admin)
    assert kinds(deleted) == EXPECTED_KINDS
    assert all(row.deleted_at is not None and row.error == "" for row in deleted), [
        (row.arn, row.error) for row in deleted]
    assert_nothing_left(lost.name, host_env.listener_arn)
    assert_everything_made(live.name, host_env.listener_arn, dedicated=False)
    assert_host_untouched()

    trail = AuditEvent.objects.filter(action="sweep-delete")
    assert trail.count() == len(EXPECTED_KINDS)
    assert {e.staging_id for e in trail} == {lost.pk}
    assert {e.actor_name for e in trail} == {"admin"}

    assert sweep() == []
    assert not Orphan.objects.filter(deleted_at__isnull=True).exists()


def test_a_proper_destroy_leaves_nothing_for_the_sweep(host_env, alice):
    """Deleted ECS services stay tagged while INACTIVE and deleted task definitions linger:
    neither counts as an orphan."""
    from provisioning.operations import request_destroy

    staging = make_ready(alice, "feature/Login_Page")
    assert run_operation(request_destroy(staging, user=alice).pk)
    assert sweep() == []
    assert not AuditEvent.objects.filter(action="sweep").exists()


def test_rows_of_resources_gone_otherwise_are_closed(host_env, alice):
    lost = make_ready(alice, "feature/Login_Page", db_mode=DbMode.SHARED)
    forget(lost)
    assert len(sweep()) == 6
    # Someone removed the rule by hand.
    rule = Orphan.objects.get(kind="elasticloadbalancing:listener-rule")
    boto3.client("elbv2").delete_rule(RuleArn=rule.arn)
    assert len(sweep()) == 5
    rule.refresh_from_db()
    assert rule.deleted_at is not None


def test_untagged_rules_under_the_domain_only(host_env, alice):
    """Rules carry no tags in the tagging API: a rule for a host under our domain that no
    live staging has is an orphan; a rule for any other host belongs to someone else."""
    elbv2 = boto3.client("elbv2")
    group = elbv2.create_target_group(Name="hand-made", Protocol="HTTP", Port=80,
                                      VpcId=host_env.vpc_id, TargetType="ip")
    group_arn = group["TargetGroups"][0]["TargetGroupArn"]

    def rule(host: str, priority: int) -> str:
        return elbv2.create_rule(
            ListenerArn=host_env.listener_arn, Priority=priority,
            Conditions=[{"Field": "host-header", "HostHeaderConfig": {"Values": [host]}}],
            Actions=[{"Type": "forward", "TargetGroupArn": group_arn}],
        )["Rules"][0]["RuleArn"]

    stray = rule(f"gone-long-ago.{DOMAIN}", 7)
    rule("admin.example.org", 8)
    rule(f"a.b.{DOMAIN}", 9)
    live = make_ready(alice, "main", db_mode=DbMode.SHARED)

    found = sweep()
    assert [(row.arn, row.staging_name) for row in found] == [(stray, "gone-long-ago")]
    sweep(delete=True)
    hosts = [c["HostHeaderConfig"]["Values"][0]
             for r in elbv2.describe_rules(ListenerArn=host_env.listener_arn)["Rules"]
             for c in r["Conditions"] if c["Field"] == "host-header"]
    assert sorted(hosts) == sorted(["admin.example.org", f"a.b.{DOMAIN}",
                                    f"{live.name}.{DOMAIN}"])


def test_pool_databases_are_owned_by_their_pool_rows(host_env, alice):
    rds = boto3.client("rds")

    def pool_db(instance_id: str) -> None:
        rds.restore_db_instance_from_db_snapshot(
            DBInstanceIdentifier=instance_id, DBSnapshotIdentifier=host_env.host_snapshot,
            DBInstanceClass="db.t3.micro",
            Tags=[{"Key": "managed-by", "Value": "dynamic-stagings"},
                  {"Key": "dynamic-staging-pool", "Value": "host-db"}],
        )

    for instance_id in ("pool-ready", "pool-lost", "pool-claimed-live", "pool-claimed-gone"):
        pool_db(instance_id)
    PoolDatabase.objects.create(instance_id="pool-ready", source="host-db",
                                snapshot_id=host_env.host_snapshot, status=PoolStatus.READY)
    user = make_ready(alice, "main", db_mode=DbMode.SHARED)
    Staging.objects.filter(pk=user.pk).update(db_instance="pool-claimed-live")
    # Claimed by a staging that is destroyed since: nobody owns it any more.
    destroyed = make_staging(alice, name="was-here", status=StagingStatus.DESTROYED)
    PoolDatabase.objects.create(instance_id="pool-claimed-gone", source="host-db",
                                snapshot_id=host_env.host_snapshot,
                                status=PoolStatus.CLAIMED, staging=destroyed)

    found = sweep()
    assert sorted(row.arn.rsplit(":", 1)[-1] for row in found) == [
        "pool-claimed-gone", "pool-lost"]
    assert {row.kind for row in found} == {"rds:db"}


def test_delete_orphans_deletes_only_what_is_chosen_and_still_orphaned(host_env, alice, admin):
    first = make_ready(alice, "feature/Login_Page", db_mode=DbMode.SHARED)
    second = make_ready(alice, "main", db_mode=DbMode.SHARED)
    forget(first)
    forget(second)
    found = sweep()
    chosen = [row.pk for row in found if row.staging_name == first.name]
    # Meanwhile the second name is live again: its rows must not be deleted even if chosen.
    Staging.objects.filter(pk=second.pk).update(status=StagingStatus.READY)
    chosen += [row.pk for row in found if row.staging_name == second.name][:1]

    done = delete_orphans(chosen, admin)
    assert {row.staging_name for row in done} == {first.name}
    assert all(row.deleted_at and not row.error for row in done)
    assert_nothing_left(first.name, host_env.listener_arn)
    assert_everything_made(second.name, host_env.listener_arn, dedicated=False)


def test_a_failed_delete_keeps_the_row_open_with_the_error(host_env, alice, monkeypatch):
    from provisioning.aws.base import AwsError

    lost = make_ready(alice, "feature/Login_Page", db_mode=DbMode.SHARED)
    forget(lost)

    def refuse(*, arn):
        raise AwsError("elasticloadbalancing:DeleteTargetGroup", "AccessDenied", "injected")

    monkeypatch.setattr("provisioning.aws.elbv2.delete_target_group", refuse)
    rows = {row.kind: row for row in sweep(delete=True)}
    group = rows["elasticloadbalancing:targetgroup"]
    assert group.deleted_at is None
    assert "AccessDenied" in group.error and "DeleteTargetGroup" in group.error
    # Everything else went, in order: the rule and services before the group.
    assert all(row.deleted_at for kind, row in rows.items() if kind != group.kind)


def test_ds_sweep_command(host_env, alice, monkeypatch, capsys):
    monkeypatch.setenv("DS_USER", "carol")
    lost = make_ready(alice, "feature/Login_Page", db_mode=DbMode.SHARED)
    forget(lost)
    call_command("ds", "sweep", "--json")
    listed = json.loads(capsys.readouterr().out)["orphans"]
    assert sorted(item["kind"] for item in listed) == sorted(
        kind for kind in EXPECTED_KINDS if kind != "rds:db")
    assert {item["staging"] for item in listed} == {lost.name}
    assert AuditEvent.objects.get(action="sweep").actor_name == "carol"

    call_command("ds", "sweep", "--delete")
    out = capsys.readouterr().out
    assert out.count("deleted") == 6
    assert_nothing_left(lost.name, host_env.listener_arn)


def test_scheduled_task_counts(host_env, alice):
    from provisioning.tasks import sweep_orphans

    lost = make_ready(alice, "feature/Login_Page", db_mode=DbMode.SHARED)
    forget(lost)
    assert len(sweep_orphans().orphans) == 6
    assert sweep_module.find_orphans() != []  # the schedule never deletes


@pytest.mark.usefixtures("tasks_keep_running")
def test_stopped_tasks_and_secrets_being_deleted_are_not_orphans(host_env, alice, admin,
                                                                 settings):
    """The tagging API lists them long after they went: they are asked of their service."""
    settings.DS_SERVICE_WAIT_SECONDS = 0.2
    stopped, running = run_tagged_task("gone-before"), run_tagged_task("gone-before")
    ecs = boto3.client("ecs")
    for task in (stopped, running):
        definition = ecs.describe_tasks(cluster=CLUSTER, tasks=[task])["tasks"][0][
            "taskDefinitionArn"]
        ecs.deregister_task_definition(taskDefinition=definition)
        ecs.delete_task_definitions(taskDefinitions=[definition])
    ecs.stop_task(cluster=CLUSTER, task=stopped, reason="service deleted")
    secrets = boto3.client("secretsmanager")
    secret = secrets.create_secret(Name="dynamic-stagings/gone-before/login", SecretString="pw",
                                   Tags=[{"Key": "dynamic-staging", "Value": "gone-before"},
                                         {"Key": "managed-by", "Value": "dynamic-stagings"}])
    secrets.delete_secret(SecretId=secret["ARN"], RecoveryWindowInDays=7)

    found = sweep()
    assert [(row.kind, row.arn) for row in found] == [("ecs:task", running)]
    # The engine starts tasks only through services: one that outlives the sweep's deletes is
    # left to a person, with the reason.
    [row] = sweep(delete=True, actor=admin)
    assert row.deleted_at is None and "still exists" in row.error


def test_a_type_the_sweep_does_not_know_is_reported_not_ignored(host_env, alice, admin):
    boto3.client("sqs").create_queue(QueueName="ds-gone-before", tags={
        "dynamic-staging": "gone-before", "managed-by": "dynamic-stagings"})
    [row] = sweep()
    assert row.kind == "sqs:ds-gone-before" and row.staging_name == "gone-before"
    [row] = sweep(delete=True, actor=admin)
    assert row.deleted_at is None and "remove it by hand" in row.error


@pytest.mark.usefixtures("aws_secret_rules")
def test_every_destroy_step_run_again_after_the_destroy_is_harmless(host_env, alice):
    """Stopped tasks and the deleted task definitions listed, the login secret's name not free
    yet: a destroy resumed (or run again) from any step finds its work done."""
    from provisioning.operations import request_destroy
    from provisioning.stepkit import Skip
    from provisioning.steps import destroy_plan
    from tests.factories import step_context

    staging = make_ready(alice, "feature/Login_Page")
    secretsmanager.store_secret(name=f"dynamic-stagings/{staging.name}/login", value="pw",
                                tags={"dynamic-staging": staging.name,
                                      "managed-by": "dynamic-stagings"})
    operation = request_destroy(staging, user=alice)
    assert run_operation(operation.pk)
    assert secretsmanager.find_secret_arn(name=f"dynamic-stagings/{staging.name}/login") is None
    for spec in destroy_plan(operation):
        with contextlib.suppress(Skip):
            spec.run(step_context(operation, spec.key))
    assert sweep() == []
