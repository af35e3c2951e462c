"""Our records against AWS, both ways (provisioning/reconcile.py), against moto: a staging whose
resources AWS no longer has is marked lost, stops counting as live and in the costs, shows on
the pages and in ``ds list``, and is destroyed (bookkeeping) or recreated; a staging missing
only part of them is reported; one being worked on, or that vanishes only for a moment, is
left alone; what no staging owns is still the sweep's."""

import json
from datetime import timedelta

import boto3
import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from dashboard import fleet as fleet_queries
from provisioning import reconcile, tasks
from provisioning.aws import ecs
from provisioning.costs import Rates
from provisioning.errors import UserError
from provisioning.models import (
    AuditEvent,
    DbMode,
    Operation,
    OperationKind,
    Orphan,
    Staging,
    StagingStatus,
)
from provisioning.operations import request_create, request_destroy, request_recreate
from provisioning.runner import run_operation
from tests.conftest import CLUSTER, HOST_DB
from tests.footprint import assert_everything_made, assert_nothing_left
from tests.pages import client_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("enqueued")]


def no_sleep(seconds: float) -> None:
    pass


def make_ready(owner, branch: str = "feature/Login_Page", **kwargs) -> Staging:
    staging = request_create(branch=branch, owner=owner, **kwargs)
    assert run_operation(staging.latest_operation().pk)
    staging.refresh_from_db()
    assert staging.status == StagingStatus.READY, staging.error
    return staging


def lose(staging: Staging, listener_arn: str, *, database: bool = True, services: bool = True,
         target_group: bool = True) -> None:
    """AWS forgets the staging's resources behind our back (a sandbox restarted without its
    state did exactly this)."""
    elbv2 = boto3.client("elbv2")
    group = elbv2.describe_target_groups(Names=[f"ds-{staging.name}"])["TargetGroups"][0]
    if target_group:
        for rule in elbv2.describe_rules(ListenerArn=listener_arn)["Rules"]:
            if any(group["TargetGroupArn"] == a.get("TargetGroupArn") for a in rule["Actions"]):
                elbv2.delete_rule(RuleArn=rule["RuleArn"])
    if services:
        for suffix in ("web", "worker"):
            boto3.client("ecs").delete_service(cluster=CLUSTER, service=f"ds-{staging.name}-"
                                               f"{suffix}", force=True)
    if target_group:
        elbv2.delete_target_group(TargetGroupArn=group["TargetGroupArn"])
    if database and staging.db_mode == DbMode.DEDICATED:
        boto3.client("rds").delete_db_instance(DBInstanceIdentifier=staging.db_instance,
                                               SkipFinalSnapshot=True)


def test_a_staging_whose_resources_are_gone_is_marked_lost(host_env, alice):
    staging = make_ready(alice)
    kept = make_ready(alice, "main", db_mode=DbMode.SHARED)
    lose(staging, host_env.listener_arn)

    found = reconcile.reconcile(sleep=no_sleep)

    assert [judged.name for judged in found.lost] == [staging.name]
    assert set(found.lost[0].gone) == {
        f"web service ds-{staging.name}-web", f"target group ds-{staging.name}",
        f"database ds-{staging.name}"}
    assert found.judged == 2 and found.incomplete == []
    staging.refresh_from_db()
    assert staging.status == StagingStatus.LOST and staging.lost_at is not None
    assert "AWS no longer has its resources" in staging.error
    assert list(Staging.objects.live()) == [kept]
    assert set(Staging.objects.holding_names()) == {staging, kept}
    event = AuditEvent.objects.get(action="lost")
    assert event.staging == staging and event.actor_name == "system"
    assert f"lost: {staging.name}" in "\n".join(found.lines())
    # What is left of it (task definitions, the login secret if any) is still its own.
    assert not any(staging.name == orphan.staging_name for orphan in found.orphans)

    again = reconcile.reconcile(sleep=no_sleep)
    assert again.lost == [] and again.judged == 1  # judged once, then left to a person


def test_a_staging_missing_part_of_its_resources_is_reported_not_marked(host_env, alice):
    staging = make_ready(alice)
    lose(staging, host_env.listener_arn, services=False, target_group=False)
    found = reconcile.reconcile(sleep=no_sleep)
    assert found.lost == []
    (judged,) = found.incomplete
    assert judged.gone == (f"database ds-{staging.name}",)
    assert f"web service ds-{staging.name}-web" in judged.there
    staging.refresh_from_db()
    assert staging.status == StagingStatus.READY
    assert f"incomplete: {staging.name}: database ds-{staging.name} gone" in found.lines()[0]


def test_stagings_being_worked_on_or_never_ready_are_not_judged(host_env, alice, bob):
    busy = make_ready(alice, db_mode=DbMode.SHARED)
    lose(busy, host_env.listener_arn)
    Operation.objects.create(staging=busy, kind=OperationKind.REDEPLOY, requested_by=alice)
    failed_create = Staging.objects.create(name="never-ready", branch="x", source=HOST_DB,
                                           owner=bob, status=StagingStatus.FAILED)
    found = reconcile.find_lost(sleep=no_sleep)
    assert found.judged == 0 and found.lost == []
    assert Staging.objects.get(pk=busy.pk).status == StagingStatus.READY
    assert Staging.objects.get(pk=failed_create.pk).status == StagingStatus.FAILED


def test_what_shows_again_while_asking_again_is_not_lost(host_env, alice, monkeypatch):
    """Describe calls are eventually consistent: one 'not found' is not enough."""
    staging = make_ready(alice, db_mode=DbMode.SHARED)
    real = ecs.describe_service
    answers = {"first": True}

    def flickering(*, cluster, service):
        if service.endswith("-web") and answers.pop("first", False):
            return None
        return real(cluster=cluster, service=service)

    monkeypatch.setattr(ecs, "describe_service", flickering)
    # And its target group really is gone: only part of it, so nothing is marked.
    lose(staging, host_env.listener_arn, services=False)
    slept = []
    found = reconcile.find_lost(sleep=slept.append)
    assert slept  # it asked again
    assert found.lost == []
    assert [judged.gone for judged in found.incomplete] == [(f"target group ds-{staging.name}",)]


def test_a_request_made_meanwhile_wins(host_env, alice):
    staging = make_ready(alice, db_mode=DbMode.SHARED)
    lose(staging, host_env.listener_arn)
    (judged,) = reconcile.judge([staging], reconcile.load_config(), no_sleep)
    assert judged.is_lost
    request_destroy(staging, user=alice)  # clicked while the reconcile was asking AWS
    assert not reconcile._mark_lost(staging, judged)
    assert Staging.objects.get(pk=staging.pk).status == StagingStatus.DESTROYING


def test_the_sweep_still_finds_what_no_staging_owns(host_env, alice):
    forgotten = make_ready(alice, db_mode=DbMode.SHARED)
    Staging.objects.filter(pk=forgotten.pk).update(status=StagingStatus.DESTROYED)
    found = reconcile.reconcile(sleep=no_sleep)
    assert found.lost == [] and found.judged == 0
    assert {orphan.staging_name for orphan in found.orphans} == {forgotten.name}
    assert Orphan.objects.filter(deleted_at__isnull=True).count() == len(found.orphans)


def test_a_lost_staging_is_destroyed_and_stops_costing_when_it_was_lost(host_env, alice):
    staging = make_ready(alice)
    lose(staging, host_env.listener_arn)
    reconcile.reconcile(sleep=no_sleep)
    staging.refresh_from_db()
    lost_at = staging.lost_at
    assert fleet_queries.lifetime_of(staging).destroyed_at == lost_at
    totals, _ = fleet_queries.fleet_costs(Rates(), fleet_queries.fleet_state())
    assert totals.live == 0 and totals.hourly == 0

    operation = request_destroy(staging, user=alice)
    assert run_operation(operation.pk)
    staging.refresh_from_db()
    assert staging.status == StagingStatus.DESTROYED, staging.error
    assert_nothing_left(staging.name, host_env.listener_arn)
    assert fleet_queries.lifetime_of(staging).destroyed_at == lost_at  # not the destroy's time


def test_a_lost_staging_is_recreated_in_place(host_env, alice):
    staging = make_ready(alice)
    lose(staging, host_env.listener_arn)
    reconcile.reconcile(sleep=no_sleep)
    with pytest.raises(UserError, match="held by a lost staging"):
        request_create(branch=staging.branch, owner=alice)

    again = request_recreate(Staging.objects.get(pk=staging.pk), user=alice)
    assert again.pk == staging.pk  # in place: the same row keeps its history
    operation = again.latest_operation()
    assert operation.kind == OperationKind.CREATE
    assert run_operation(operation.pk)
    again = Staging.objects.get(pk=staging.pk)
    assert again.status == StagingStatus.READY, again.error
    assert again.lost_at is None and again.url
    assert_everything_made(staging.name, host_env.listener_arn)
    assert AuditEvent.objects.filter(action="recreate", staging=staging).count() == 1
    assert reconcile.reconcile(sleep=no_sleep).lost == []
    with pytest.raises(UserError, match="only a destroyed or lost staging"):
        request_recreate(again, user=alice)


def test_ds_list_and_sweep_tell(host_env, alice, monkeypatch, capsys):
    monkeypatch.setenv("DS_USER", "alice")
    staging = make_ready(alice, db_mode=DbMode.SHARED)
    lose(staging, host_env.listener_arn)

    call_command("ds", "sweep")
    captured = capsys.readouterr()
    assert "lost staging" in captured.out and staging.name in captured.out
    assert f"web service ds-{staging.name}-web" in captured.out
    assert "1 newly lost" in captured.err

    call_command("ds", "list")
    captured = capsys.readouterr()
    assert staging.name in captured.out and " lost " in captured.out
    assert "1 staging(s) lost" in captured.err and "ds recreate NAME" in captured.err

    call_command("ds", "sweep", "--json")
    assert json.loads(capsys.readouterr().out) == {
        "orphans": [], "lost": [], "still_lost": [staging.name], "incomplete": []}


def test_the_scheduled_sweep_marks_and_says(host_env, alice):
    staging = make_ready(alice, db_mode=DbMode.SHARED)
    lose(staging, host_env.listener_arn)
    found = tasks.sweep_orphans()
    assert [judged.name for judged in found.lost] == [staging.name]
    run = tasks.recent_runs()[1][1][0]
    assert run.outcome == f"0 leftover(s) found; 1 staging(s) marked lost: {staging.name}"


def test_the_pages_show_a_lost_staging_and_offer_destroy_and_recreate(host_env, alice, bob):
    staging = make_ready(alice, db_mode=DbMode.SHARED)
    lose(staging, host_env.listener_arn)
    reconcile.find_lost(sleep=no_sleep)
    owner, colleague = client_for(alice), client_for(bob)

    fleet = owner.get(reverse("home")).content.decode()
    assert 'aria-labelledby="lost-title"' in fleet and staging.name in fleet
    assert reverse("recreate", args=[staging.pk]) in fleet
    assert reverse("destroy", args=[staging.pk]) in fleet
    assert "No live stagings" in fleet  # it is not live
    assert reverse("recreate", args=[staging.pk]) not in colleague.get(
        reverse("home")).content.decode()

    page = owner.get(reverse("staging", args=[staging.pk])).content.decode()
    assert 'id="lost-notice"' in page and "AWS no longer has its resources" in page
    assert f'action="{reverse("recreate", args=[staging.pk])}"' in page
    assert reverse("destroy", args=[staging.pk]) in page
    assert "Redeploy</button>" not in page

    assert colleague.post(reverse("recreate", args=[staging.pk])).status_code == 403
    response = owner.post(reverse("recreate", args=[staging.pk]), follow=True)
    assert f"Recreating {staging.name}" in response.content.decode()
    assert Staging.objects.get(pk=staging.pk).status == StagingStatus.PROVISIONING


def test_the_lost_stop_counting_in_the_month_from_when_they_were_lost(alice):
    now = timezone.now()
    lost = Staging.objects.create(
        name="gone-one", branch="x", source=HOST_DB, owner=alice, db_mode=DbMode.SHARED,
        status=StagingStatus.LOST, created_at=now - timedelta(days=3),
        lost_at=now - timedelta(days=2))
    lifetime = fleet_queries.lifetime_of(lost)
    assert lifetime.destroyed_at == lost.lost_at
    _, days = fleet_queries.fleet_costs(Rates(), fleet_queries.fleet_state(now))
    by_day = {day.day: day.cost for day in days}
    assert by_day[timezone.localdate(lost.lost_at)] > 0
    assert by_day[timezone.localdate(now - timedelta(days=1))] == 0
