"""A step that waits for something AWS does not have fails at once, saying so, instead of
asking again until its timeout: a web or worker service that is MISSING, INACTIVE or DRAINING,
a target group that is not there, a database RDS answers DBInstanceNotFound for. Only what this
very operation made a moment ago may be missing for a while (describe calls are eventually
consistent)."""

import dataclasses
import time
from datetime import timedelta

import boto3
import pytest
from django.utils import timezone

from provisioning.errors import ExternalCallFailed, StepTimedOut
from provisioning.models import OperationKind, Step, StepState
from provisioning.stepkit import PROPAGATION_SECONDS, Parked
from provisioning.steps import database, routing, services, task_definitions
from tests.conftest import CLUSTER, QA_DB
from tests.factories import make_operation, make_staging, run_step, step_context

pytestmark = pytest.mark.django_db

NAME = "login-page"
# Long enough that waiting on would be noticed; the failures below take a few calls.
WAIT_SECONDS = 20.0
AT_ONCE = 5.0


@pytest.fixture
def waits(settings):
    settings.DS_SERVICE_WAIT_SECONDS = WAIT_SECONDS
    settings.DS_DB_WAIT_SECONDS = WAIT_SECONDS


@pytest.fixture
def staging(host_env, alice, waits):
    return make_staging(alice, name=NAME, snapshot_id=host_env.host_snapshot)


@pytest.fixture
def made(staging, host_env):
    """A create that got as far as both services (their outputs, as the runner passes them)."""
    create = make_operation(staging)
    image = {"image": {"image": host_env.image("main"), "tag": "main"}}
    outputs = {
        "target_group": run_step(create, "target_group", routing.create_target_group),
        "web_task_definition": run_step(create, "web_task_definition",
                                        task_definitions.register_web_task_definition, image),
        "worker_task_definition": run_step(create, "worker_task_definition",
                                           task_definitions.register_worker_task_definition,
                                           image),
    }
    outputs["listener_rule"] = run_step(create, "listener_rule", routing.create_listener_rule,
                                        outputs)
    outputs["web_service"] = run_step(create, "web_service", services.create_web_service,
                                      outputs)
    outputs["worker_service"] = run_step(create, "worker_service",
                                         services.create_worker_service, outputs)
    create.status = "succeeded"
    create.save(update_fields=["status"])
    return outputs


def delete_service(name: str) -> None:
    client = boto3.client("ecs")
    client.update_service(cluster=CLUSTER, service=name, desiredCount=0)
    client.delete_service(cluster=CLUSTER, service=name, force=True)


def failing_at_once(run) -> ExternalCallFailed:
    started = time.monotonic()
    with pytest.raises(ExternalCallFailed) as raised:
        run()
    assert not isinstance(raised.value, StepTimedOut), raised.value
    assert time.monotonic() - started < AT_ONCE
    return raised.value


def test_a_redeploy_waiting_for_a_deleted_web_service_fails_at_once(staging, made):
    delete_service(f"ds-{NAME}-web")
    redeploy = make_operation(staging, OperationKind.REDEPLOY)
    failure = failing_at_once(
        lambda: run_step(redeploy, "web_healthy", services.wait_web_healthy))
    assert failure.code == "ServiceNotFoundException"
    assert failure.call == f"ecs:DescribeServices ds-{NAME}-web"
    assert "INACTIVE" in failure.message and "does not exist" in failure.message


def test_a_service_that_never_existed_is_missing(staging, host_env, waits):
    # The target group is there, the worker service never was.
    redeploy = make_operation(staging, OperationKind.REDEPLOY)
    failure = failing_at_once(
        lambda: run_step(redeploy, "worker_steady", services.wait_worker_steady))
    assert failure.code == "ServiceNotFoundException"
    assert "MISSING" in failure.message


def test_a_service_being_deleted_will_not_become_healthy(staging, made, monkeypatch):
    described_by_aws = services._describe

    def described(ctx, name):
        # AWS's answer while somebody else's DeleteService drains it.
        found = described_by_aws(ctx, name)
        return found and dataclasses.replace(found, status="DRAINING")

    monkeypatch.setattr(services, "_describe", described)
    redeploy = make_operation(staging, OperationKind.REDEPLOY)
    failure = failing_at_once(
        lambda: run_step(redeploy, "worker_steady", services.wait_worker_steady))
    assert failure.code == "ServiceNotFoundException" and "DRAINING" in failure.message


def test_a_missing_target_group_fails_the_health_wait_at_once(staging, made):
    routing_op = make_operation(staging, OperationKind.DESTROY, status="succeeded")
    run_step(routing_op, "listener_rule", routing.remove_listener_rules)
    boto3.client("elbv2").delete_target_group(TargetGroupArn=made["target_group"]["arn"])
    redeploy = make_operation(staging, OperationKind.REDEPLOY)
    failure = failing_at_once(
        lambda: run_step(redeploy, "web_healthy", services.wait_web_healthy))
    assert failure.code == "TargetGroupNotFound"
    assert f"ds-{NAME}" in failure.message


def test_a_service_this_operation_just_made_may_not_show_yet(staging, made):
    """Within the propagation time after the step that made it a missing service is 'not
    yet'; after it, 'gone'."""
    delete_service(f"ds-{NAME}-worker")
    operation = make_operation(staging)
    made_it = Step.objects.create(operation=operation, key="worker_service", label="start",
                                  state=StepState.DONE, finished_at=timezone.now())
    context = step_context(operation, "worker_steady")
    with pytest.raises(Parked):
        services.wait_worker_steady(context)
    assert "not visible yet" in context.step.detail

    made_it.finished_at = timezone.now() - timedelta(seconds=PROPAGATION_SECONDS + 1)
    made_it.save(update_fields=["finished_at"])
    failure = failing_at_once(
        lambda: services.wait_worker_steady(step_context(operation, "worker_steady")))
    assert failure.code == "ServiceNotFoundException"


def test_waiting_for_the_password_of_a_vanished_database_fails_at_once(host_env, alice, waits):
    staging = make_staging(alice, name=NAME, source=QA_DB, snapshot_id=host_env.qa_snapshot,
                           db_instance=f"ds-{NAME}")
    operation = make_operation(staging)
    context = step_context(operation, "db_credentials")
    # The password change was made in an earlier run; the database has gone since.
    context.remember(database.PASSWORD_SET, True)
    failure = failing_at_once(lambda: run_step(operation, "db_credentials",
                                               database.align_credentials))
    assert failure.code == "DBInstanceNotFound"
    assert f"ds-{NAME}" in failure.message and "does not exist" in failure.message


def test_a_restore_just_asked_for_may_not_show_yet(staging, monkeypatch):
    """The restore call answered; DescribeDBInstances does not know the instance yet. The step
    neither restores again nor fails: it waits, for at most the propagation time."""
    calls = []
    monkeypatch.setattr(database.rds, "restore_from_snapshot",
                        lambda **kwargs: calls.append(kwargs["instance_id"]))
    operation = make_operation(staging)
    context = step_context(operation, "database")
    with pytest.raises(Parked):
        database.restore_database(context)
    again = step_context(operation, "database")
    with pytest.raises(Parked):
        database.restore_database(again)
    assert calls == [f"ds-{NAME}"]
    assert "not visible yet" in again.step.detail

    memory = again.step.memory
    memory[database.RESTORED_AT] = (
        timezone.now() - timedelta(seconds=PROPAGATION_SECONDS + 1)).isoformat()
    again.step.save(update_fields=["memory"])
    failure = failing_at_once(
        lambda: database.restore_database(step_context(operation, "database")))
    assert failure.code == "DBInstanceNotFound"
