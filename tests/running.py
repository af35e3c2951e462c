"""Operations requested through the engine and run by the test itself, in this process (no
queue: see the ``enqueued`` fixture)."""

from provisioning.models import Operation, Staging
from provisioning.operations import request_create
from provisioning.runner import run_operation
from tests.conftest import BRANCH


def create(owner, branch: str = BRANCH, **kwargs) -> tuple[Staging, Operation]:
    staging = request_create(branch=branch, owner=owner, **kwargs)
    return staging, staging.latest_operation()


def run(operation: Operation) -> Operation:
    assert run_operation(operation.pk) is True
    operation.refresh_from_db()
    return operation


def steps_of(operation: Operation) -> dict[str, str]:
    return {s.key: s.state for s in operation.steps.all()}
