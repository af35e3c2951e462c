"""Rows and step contexts built by hand, for tests that run one step at a time."""

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import botocore.session
from botocore.stub import Stubber
from django.utils import timezone

from provisioning.config import load_config
from provisioning.models import DbMode, Operation, OperationKind, Staging, Step
from provisioning.stepkit import Parked, StepContext


def make_staging(owner, *, name: str = "login-page", branch: str = "feature/Login_Page",
                 source: str = "host-db", db_mode: str = DbMode.DEDICATED,
                 **fields) -> Staging:
    return Staging.objects.create(name=name, branch=branch, source=source, db_mode=db_mode,
                                  owner=owner, **fields)


def make_operation(staging: Staging, kind: str = OperationKind.CREATE, **fields) -> Operation:
    return Operation.objects.create(staging=staging, kind=kind, requested_by=staging.owner,
                                    **fields)


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
