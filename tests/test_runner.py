"""Whole operations through the runner, in-process against moto: create -> ready, redeploy,
destroy -> nothing left; faults half-way, crashes, claims and supersession."""

import threading
import time
from datetime import timedelta
from unittest import mock

import boto3
import pytest
from django.utils import timezone

from provisioning import claims, tasks
from provisioning.aws import ecs, rds, secretsmanager
from provisioning.aws.base import AwsError
from provisioning.lifecycle import plan_for
from provisioning.models import (
    DbMode,
    Operation,
    OperationStatus,
    StagingStatus,
    StepState,
)
from provisioning.operations import request_destroy, request_redeploy
from provisioning.runner import run_operation
from provisioning.steps.account import read_login_password
from tests.conftest import CLUSTER, DOMAIN, QA_DB, push_image
from tests.factories import make_operation, make_staging
from tests.faults import WorkerKilled
from tests.footprint import assert_everything_made, assert_host_untouched, assert_nothing_left
from tests.running import create, run, steps_of

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("enqueued")]

# --- the whole life of a staging -----------------------------------------------------------------

def test_create_redeploy_destroy(host_env, alice, enqueued):
    staging, operation = create(alice)
    assert enqueued == [operation.pk]
    assert staging.status == StagingStatus.PENDING
    assert staging.snapshot_id == host_env.host_snapshot

    operation = run(operation)
    staging.refresh_from_db()
    assert operation.status == OperationStatus.SUCCEEDED, operation.error
    assert staging.status == StagingStatus.READY
    assert staging.url == f"http://{staging.name}.{DOMAIN}"
    assert staging.ready_at is not None and staging.error == ""
    assert steps_of(operation) == {
        "image": "done", "database": "done", "web_task_definition": "done",
        "worker_task_definition": "done", "target_group": "done", "listener_rule": "done",
        "web_service": "done", "worker_service": "done", "web_healthy": "done",
        "worker_steady": "done", "account": "skipped", "report": "done",
    }
    assert all(s.started_at and s.finished_at and s.attempts == 1
               for s in operation.steps.exclude(state="skipped"))
    assert_everything_made(staging.name, host_env.listener_arn)
    first_image = staging.image

    # A new image pushed under the same tag: new revisions, services updated.
    new_digest = push_image("feature-Login_Page", layer="second build")
    redeploy = run(request_redeploy(staging, user=alice))
    staging.refresh_from_db()
    assert redeploy.status == OperationStatus.SUCCEEDED, redeploy.error
    assert staging.status == StagingStatus.READY
    assert staging.image == f"{host_env.registry}/app@{new_digest}" != first_image
    client = boto3.client("ecs")
    for role in ("web", "worker"):
        service = client.describe_services(cluster=CLUSTER,
                                           services=[f"ds-{staging.name}-{role}"])["services"][0]
        assert service["taskDefinition"].endswith(f"ds-{staging.name}-{role}:2")
        task = client.describe_task_definition(
            taskDefinition=service["taskDefinition"])["taskDefinition"]
        assert task["containerDefinitions"][0]["image"] == staging.image

    destroy = run(request_destroy(staging, user=alice))
    staging.refresh_from_db()
    assert destroy.status == OperationStatus.SUCCEEDED, destroy.error
    assert staging.status == StagingStatus.DESTROYED and staging.destroyed_at
    assert steps_of(destroy)["verify"] == "done"
    assert_nothing_left(staging.name, host_env.listener_arn)
    assert_host_untouched()


def test_create_from_another_source_aligns_credentials(host_env, alice):
    staging, operation = create(alice, source=QA_DB)
    assert staging.snapshot_id == host_env.qa_snapshot
    with mock.patch("provisioning.aws.rds.set_master_password",
                    wraps=rds.set_master_password) as set_password:
        operation = run(operation)
    assert operation.status == OperationStatus.SUCCEEDED, operation.error
    assert steps_of(operation)["db_credentials"] == "done"
    set_password.assert_called_once_with(instance_id=f"ds-{staging.name}",
                                         password=host_env.host_db_password)
    assert_everything_made(staging.name, host_env.listener_arn)


def test_shared_database_makes_no_database(host_env, alice):
    staging, operation = create(alice, db_mode=DbMode.SHARED)
    operation = run(operation)
    assert operation.status == OperationStatus.SUCCEEDED, operation.error
    assert "database" not in steps_of(operation)
    assert_everything_made(staging.name, host_env.listener_arn, dedicated=False)
    destroy = run(request_destroy(staging, user=alice))
    assert steps_of(destroy)["database"] == "skipped"
    assert_nothing_left(staging.name, host_env.listener_arn)


def test_account_is_made_and_removed_through_the_api(host_env, alice, settings, httpserver):
    settings.DS_ACCOUNT_API_URL = httpserver.url_for("/api/staging-accounts")
    settings.DS_ACCOUNT_API_TOKEN = "s3cret"
    httpserver.expect_oneshot_request("/api/staging-accounts", method="POST").respond_with_json(
        {"account_id": "42", "username": "qa@example.com", "password": "pw",
         "login_url": "https://x/login"}, status=201)
    httpserver.expect_oneshot_request("/api/staging-accounts/42", method="DELETE"
                                      ).respond_with_data("", status=204)
    staging, operation = create(alice)
    assert run(operation).status == OperationStatus.SUCCEEDED
    staging.refresh_from_db()
    assert (staging.account_id, staging.login_username) == ("42", "qa@example.com")
    # The password lives in Secrets Manager only, never in our database.
    assert "pw" not in [getattr(staging, f.attname) for f in staging._meta.concrete_fields]
    assert read_login_password(staging) == "pw"
    assert run(request_destroy(staging, user=alice)).status == OperationStatus.SUCCEEDED
    staging.refresh_from_db()
    assert staging.login_secret_arn == ""
    assert secretsmanager.find_secret_arn(name=f"dynamic-stagings/{staging.name}/login") is None
    httpserver.check_assertions()
    assert [r.method for r, _ in httpserver.log] == ["POST", "DELETE"]


def test_account_api_served_by_the_staging_waits_for_health(host_env, alice, settings):
    settings.DS_ACCOUNT_API_URL = "https://{host}/api/accounts"
    _, operation = create(alice)
    account = next(s for s in plan_for(operation) if s.key == "account")
    assert account.after == ("web_healthy",)


# --- an AWS error half-way ---------------------------------------------------------------------

def refuse_web_service(**kwargs):
    if kwargs["name"].endswith("-web"):
        raise AwsError("ecs:CreateService", "AccessDeniedException",
                       "User is not authorized to perform: ecs:CreateService")
    return real_create_service(**kwargs)


real_create_service = ecs.create_service


def test_aws_error_half_way_fails_the_staging_and_destroy_cleans_up(host_env, alice):
    staging, operation = create(alice)
    with mock.patch("provisioning.aws.ecs.create_service", side_effect=refuse_web_service):
        operation = run(operation)
    staging.refresh_from_db()
    assert operation.status == OperationStatus.FAILED
    assert staging.status == StagingStatus.FAILED
    step = operation.steps.get(key="web_service")
    assert step.state == StepState.FAILED
    assert (step.error_call, step.error_code) == ("ecs:CreateService", "AccessDeniedException")
    assert "not authorized" in step.error_message
    assert "ecs:CreateService" in staging.error and "AccessDeniedException" in staging.error
    states = steps_of(operation)
    assert states["web_healthy"] == states["report"] == "pending"
    assert states["target_group"] == states["database"] == "done"

    destroy = run(request_destroy(staging, user=alice))
    staging.refresh_from_db()
    assert destroy.status == OperationStatus.SUCCEEDED, destroy.error
    assert staging.status == StagingStatus.DESTROYED
    assert steps_of(destroy)["web_service"] == "skipped"
    assert_nothing_left(staging.name, host_env.listener_arn)


def test_a_failure_stops_the_steps_still_running(host_env, alice):
    """The rule step fails while the database is still being restored: the restore's wait is
    stopped and goes back to pending, nothing after it starts."""
    staging, operation = create(alice)
    real_describe = rds.describe_instance

    def still_creating(*, instance_id):
        found = real_describe(instance_id=instance_id)
        if found and instance_id.startswith("ds-"):
            return rds.DbInstance(**{**found.__dict__, "status": "creating"})
        return found

    with mock.patch("provisioning.aws.rds.describe_instance", side_effect=still_creating), \
            mock.patch("provisioning.aws.elbv2.create_rule",
                       side_effect=AwsError("elasticloadbalancing:CreateRule",
                                            "AccessDenied", "not allowed")):
        operation = run(operation)
    states = steps_of(operation)
    assert states["listener_rule"] == "failed"
    assert states["database"] == "pending"
    assert operation.steps.get(key="database").detail == "stopped before it finished"
    assert states["web_service"] == states["worker_service"] == "pending"
    assert operation.steps.get(key="web_service").attempts == 0
    staging.refresh_from_db()
    assert staging.status == StagingStatus.FAILED
    assert "Add the listener rule failed (elasticloadbalancing:CreateRule)" in staging.error


# --- crashes and claims ------------------------------------------------------------------------

def test_a_run_after_a_crash_resumes_without_redoing_done_steps(host_env, alice):
    staging, operation = create(alice)

    def die(**kwargs):
        if kwargs["name"].endswith("-web"):
            raise WorkerKilled()
        return real_create_service(**kwargs)

    with mock.patch("provisioning.aws.ecs.create_service", side_effect=die), \
            pytest.raises(WorkerKilled):
        run_operation(operation.pk)
    operation.refresh_from_db()
    assert operation.status == OperationStatus.RUNNING
    before = {s.key: s for s in operation.steps.all()}
    assert before["web_service"].state == StepState.RUNNING
    done_before = {k for k, s in before.items() if s.state == StepState.DONE}
    assert {"image", "database", "target_group", "listener_rule",
            "web_task_definition"} <= done_before

    # The dead runner's heartbeat is still fresh: nobody else may take the operation yet.
    assert run_operation(operation.pk) is False

    Operation.objects.filter(pk=operation.pk).update(
        heartbeat_at=timezone.now() - claims.STALE_AFTER - timedelta(seconds=1))
    with mock.patch("provisioning.aws.rds.restore_from_snapshot") as restore, \
            mock.patch("provisioning.aws.elbv2.create_target_group") as create_group, \
            mock.patch("provisioning.aws.elbv2.create_rule") as create_rule, \
            mock.patch("provisioning.aws.ecs.register_task_definition") as register, \
            mock.patch("provisioning.aws.ecr.find_image") as find_image:
        operation = run(operation)
    for never_again in (restore, create_group, create_rule, find_image):
        never_again.assert_not_called()
    if "worker_task_definition" in done_before:
        register.assert_not_called()

    assert operation.status == OperationStatus.SUCCEEDED, operation.error
    after = {s.key: s for s in operation.steps.all()}
    for key in done_before:
        assert after[key].attempts == 1 and after[key].started_at == before[key].started_at
    assert after["web_service"].attempts == 2
    staging.refresh_from_db()
    assert staging.status == StagingStatus.READY
    assert_everything_made(staging.name, host_env.listener_arn)


def test_claim_refused_while_another_runner_is_alive(host_env, alice):
    _, operation = create(alice)
    Operation.objects.filter(pk=operation.pk).update(
        status=OperationStatus.RUNNING, runner_token="other", heartbeat_at=timezone.now())
    assert run_operation(operation.pk) is False
    assert not operation.steps.exists()
    operation.refresh_from_db()
    assert operation.runner_token == "other"


def test_a_finished_operation_is_not_run_again(host_env, alice):
    _, operation = create(alice)
    run(operation)
    with mock.patch("provisioning.aws.ecr.find_image") as find_image:
        assert run_operation(operation.pk) is False
    find_image.assert_not_called()


# --- destroy superseding a create --------------------------------------------------------------

def test_destroy_requested_while_create_is_queued_supersedes_it(host_env, alice, admin):
    staging, create_op = create(alice)
    destroy = request_destroy(staging, user=alice)
    assert request_destroy(staging, user=admin).pk == destroy.pk
    create_op.refresh_from_db()
    assert create_op.status == OperationStatus.FAILED
    assert create_op.error == "Superseded by a destroy."
    assert run_operation(create_op.pk) is False  # the queue may still deliver it

    destroy = run(destroy)
    staging.refresh_from_db()
    assert destroy.status == OperationStatus.SUCCEEDED, destroy.error
    assert staging.status == StagingStatus.DESTROYED
    assert set(steps_of(destroy).values()) <= {"skipped", "done"}
    assert_nothing_left(staging.name, host_env.listener_arn)


def test_destroy_stops_a_running_create_and_removes_what_it_made(host_env, alice, monkeypatch):
    monkeypatch.setattr(claims, "HEARTBEAT_SECONDS", 0.05)
    staging, create_op = create(alice)
    real_describe = ecs.describe_service
    release = threading.Event()

    def never_steady(*, cluster, service):
        found = real_describe(cluster=cluster, service=service)
        if found and service.endswith("-worker") and not release.is_set():
            return ecs.Service(**{**found.__dict__, "running": 0})
        return found

    monkeypatch.setattr("provisioning.aws.ecs.describe_service", never_steady)
    creating = threading.Thread(target=run_operation, args=(create_op.pk,))
    creating.start()
    try:
        deadline = time.monotonic() + 10
        while not create_op.steps.filter(key="worker_steady", state="running").exists():
            assert time.monotonic() < deadline, steps_of(create_op)
            time.sleep(0.02)
        destroy = request_destroy(staging, user=alice)
        destroy = run(destroy)
    finally:
        release.set()
        creating.join(timeout=10)
    assert not creating.is_alive()
    create_op.refresh_from_db()
    assert create_op.status == OperationStatus.FAILED and create_op.runner_token == ""
    assert create_op.steps.get(key="worker_steady").state == StepState.PENDING
    assert destroy.status == OperationStatus.SUCCEEDED, destroy.error
    staging.refresh_from_db()
    assert staging.status == StagingStatus.DESTROYED
    assert_nothing_left(staging.name, host_env.listener_arn)


# --- a destroy that fails half-way, and a second destroy ----------------------------------------

def test_a_failed_destroy_can_be_run_again_and_finishes_the_job(host_env, alice):
    staging, operation = create(alice)
    run(operation)
    refused = AwsError("elasticloadbalancing:DeleteTargetGroup", "ResourceInUse",
                       "Target group is currently in use by a listener or a rule")
    with mock.patch("provisioning.aws.elbv2.delete_target_group", side_effect=refused):
        destroy = run(request_destroy(staging, user=alice))
    staging.refresh_from_db()
    assert destroy.status == OperationStatus.FAILED
    assert staging.status == StagingStatus.FAILED and "ResourceInUse" in staging.error
    states = steps_of(destroy)
    # A destroy goes on with everything that does not depend on the failed step.
    assert states["target_group"] == "failed" and states["verify"] == "pending"
    assert states["database"] == states["task_definitions"] == states["web_service"] == "done"

    again = run(request_destroy(staging, user=alice))
    staging.refresh_from_db()
    assert again.status == OperationStatus.SUCCEEDED, again.error
    assert staging.status == StagingStatus.DESTROYED
    assert steps_of(again)["target_group"] == "done"
    assert steps_of(again)["database"] == "skipped"
    assert_nothing_left(staging.name, host_env.listener_arn)


# --- the queue's safety net --------------------------------------------------------------------

def test_stalled_operations_are_enqueued_again(host_env, alice, bob, enqueued):
    now = timezone.now()
    dead = make_operation(make_staging(alice, name="dead"), status=OperationStatus.RUNNING,
                          heartbeat_at=now - claims.STALE_AFTER - timedelta(seconds=5))
    lost = make_operation(make_staging(alice, name="lost"),
                          created_at=now - tasks.QUEUED_GRACE - timedelta(seconds=5))
    make_operation(make_staging(bob, name="alive"), status=OperationStatus.RUNNING,
                   heartbeat_at=now)
    make_operation(make_staging(bob, name="fresh"))
    make_operation(make_staging(bob, name="done"), status=OperationStatus.SUCCEEDED,
                   heartbeat_at=now - timedelta(hours=1))
    enqueued.clear()
    assert sorted(tasks.resume_stalled_operations()) == sorted([dead.pk, lost.pk])
    assert sorted(enqueued) == sorted([dead.pk, lost.pk])
