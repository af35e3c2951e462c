"""Rows, step contexts and AWS resources built by hand, for tests that run one step at a time
or look at pages."""

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import boto3
import botocore.session
from botocore.stub import Stubber
from django.utils import timezone

from provisioning.config import load_config
from provisioning.models import (
    DbMode,
    Operation,
    OperationKind,
    OperationStatus,
    Staging,
    StagingStatus,
    Step,
    StepState,
)
from provisioning.names import MANAGED_BY_KEY, MANAGED_BY_VALUE, STAGING_TAG_KEY
from provisioning.stepkit import Parked, StepContext
from tests.conftest import CLUSTER, HOST_DB


def make_staging(owner, *, name: str = "login-page", branch: str = "feature/Login_Page",
                 source: str = "host-db", db_mode: str = DbMode.DEDICATED,
                 **fields) -> Staging:
    return Staging.objects.create(name=name, branch=branch, source=source, db_mode=db_mode,
                                  owner=owner, **fields)


def make_operation(staging: Staging, kind: str = OperationKind.CREATE, **fields) -> Operation:
    return Operation.objects.create(staging=staging, kind=kind, requested_by=staging.owner,
                                    **fields)


# The steps' outputs of a finished create, as the staging page shows them (ARNs in moto's
# account; the pages do not ask AWS about them).
REGION = "us-east-1"
ACCOUNT = "123456789012"
TG_ARN = f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:targetgroup/ds-shop/0123456789abcdef"
RULE_ARN = (f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:listener-rule/app/dynamic/"
            "50dc6c495c0c9188/f2f7dc8efc522ab2/9683b2d02a6cabee")
WEB_SERVICE_ARN = f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/host-staging/ds-shop-web"
WORKER_SERVICE_ARN = f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/host-staging/ds-shop-worker"
WEB_TD_ARN = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/ds-shop-web:3"
WORKER_TD_ARN = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/ds-shop-worker:3"
SECRET_ARN_PREFIX = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:"
CREATE_OUTPUTS = {
    "image": {"image": "registry/app@sha256:abc", "tag": "feature-shop"},
    "database": {"db_instance": "ds-shop", "address": "ds-shop.example.rds.amazonaws.com"},
    "web_task_definition": {"arn": WEB_TD_ARN},
    "worker_task_definition": {"arn": WORKER_TD_ARN},
    "target_group": {"arn": TG_ARN},
    "listener_rule": {"arn": RULE_ARN, "priority": 17},
    "web_service": {"arn": WEB_SERVICE_ARN},
    "worker_service": {"arn": WORKER_SERVICE_ARN},
    "web_healthy": {}, "worker_steady": {}, "account": {}, "report": {"url": "https://x"},
}


def make_listed_staging(owner, name: str = "shop", *, status: str = StagingStatus.READY,
                        db_mode: str = DbMode.DEDICATED, age: timedelta = timedelta(hours=2),
                        destroyed_ago: timedelta = timedelta(minutes=5), **fields) -> Staging:
    """A staging as the pages list it, made ``age`` ago from branch feature/``name``: a ready
    (or updating) one with its URL and login, a destroyed one gone ``destroyed_ago`` ago."""
    now = timezone.now()
    if status == StagingStatus.DESTROYED:
        fields.setdefault("destroyed_at", now - destroyed_ago)
    if status in {StagingStatus.READY, StagingStatus.UPDATING}:
        fields.setdefault("url", f"https://{name}.dynamic.test")
        fields.setdefault("login_username", f"qa+{name}@example.com")
        fields.setdefault("login_secret_arn", f"{SECRET_ARN_PREFIX}dynamic-stagings/{name}/login")
    return Staging.objects.create(
        name=name, branch=f"feature/{name}", source=HOST_DB, db_mode=db_mode, owner=owner,
        status=status, created_at=now - age, image_tag=f"feature-{name}", **fields,
    )


def make_fleet(owner, count: int, start: int = 0) -> None:
    """``count`` stagings of ``owner``'s (every third still provisioning, every second on the
    shared database), each with a finished create."""
    for i in range(start, start + count):
        status = StagingStatus.PROVISIONING if i % 3 == 0 else StagingStatus.READY
        staging = make_listed_staging(owner, f"{owner.username}{i}", status=status,
                                      db_mode=DbMode.SHARED if i % 2 else DbMode.DEDICATED)
        add_operation(staging)


def add_operation(staging: Staging, kind: str = OperationKind.CREATE,
                  status: str = OperationStatus.SUCCEEDED, *, steps: dict | None = None,
                  outputs: dict = CREATE_OUTPUTS, took: timedelta = timedelta(seconds=30),
                  finished_ago: timedelta = timedelta(0)) -> Operation:
    """An operation of ``staging`` that took ``took`` and finished ``finished_ago`` ago (or is
    still going), with one row per step: ``steps`` maps keys to states (default: every step of
    ``outputs`` done), a done step holds its ``outputs``."""
    finished = timezone.now() - finished_ago
    ended = {OperationStatus.SUCCEEDED, OperationStatus.FAILED}
    operation = Operation.objects.create(
        staging=staging, kind=kind, status=status, requested_by=staging.owner,
        started_at=finished - took, finished_at=finished if status in ended else None,
    )
    states = steps if steps is not None else {key: StepState.DONE for key in outputs}
    Step.objects.bulk_create([
        Step(operation=operation, key=key, label=f"Step {key}", position=position, state=state,
             started_at=finished - took if state != StepState.PENDING else None,
             finished_at=finished if state in {StepState.DONE, StepState.FAILED} else None,
             outputs=outputs.get(key, {}) if state == StepState.DONE else {})
        for position, (key, state) in enumerate(states.items())
    ])
    return operation


def step_context(operation: Operation, key: str, outputs: dict | None = None) -> StepContext:
    """A context like the runner gives the step ``key``, with ``outputs`` of earlier steps."""
    step, _ = Step.objects.get_or_create(operation=operation, key=key, defaults={"label": key})
    return StepContext(
        staging=Staging.objects.get(pk=operation.staging_id), operation=operation,
        config=load_config(), step=step, cancelled=threading.Event(), outputs=outputs or {},
    )


def run_step(operation: Operation, key: str, run, outputs: dict | None = None) -> dict:
    """Run one step as the runner would: again each time it parks, once it is due."""
    while True:
        try:
            return run(step_context(operation, key, outputs)) or {}
        except Parked as parked:
            time.sleep(max((parked.until - timezone.now()).total_seconds(), 0))


@contextmanager
def stubbed_client(monkeypatch, wrapper, service: str) -> Iterator[Stubber]:
    """The AWS wrapper module ``wrapper`` talking to a botocore Stubber for ``service``: for
    answers moto cannot give (another account's registry, read-only members it leaves out)."""
    stubbed = botocore.session.get_session().create_client(
        service, region_name="us-east-1", aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    with Stubber(stubbed) as stubber:
        monkeypatch.setattr(wrapper, "client", lambda name: stubbed)
        yield stubber
        stubber.assert_no_pending_responses()


def run_tagged_task(name: str = "login-page") -> str:
    """A task tagged for the staging ``name``, as a service with propagateTags=SERVICE starts
    it. (moto cannot run an awsvpc task, so this definition uses the default network mode.)"""
    client = boto3.client("ecs")
    client.register_task_definition(
        family=f"ds-{name}-oneoff",
        containerDefinitions=[{"name": "app", "image": "app:1", "memory": 512, "cpu": 256}],
    )
    tags = {STAGING_TAG_KEY: name, MANAGED_BY_KEY: MANAGED_BY_VALUE}
    return client.run_task(
        cluster=CLUSTER, taskDefinition=f"ds-{name}-oneoff", launchType="FARGATE",
        tags=[{"key": k, "value": v} for k, v in tags.items()],
    )["tasks"][0]["taskArn"]
