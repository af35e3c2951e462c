"""Client factory and error translation shared by the per-service wrappers.

Clients retry throttling and 5xx answers with botocore's "standard" retry mode (exponential
backoff with jitter), so no wrapper loops on its own. Region, credentials and endpoint come from
boto3's usual chain (``AWS_REGION``/``AWS_DEFAULT_REGION``, ``AWS_ENDPOINT_URL``, ...).

Waiting is different: a step that polls AWS until something is ready asks ``while_polling()``
for clients that do not retry at all. A throttled check then simply means "not yet" to the
waiting loop (runner.StepContext.wait_until), which backs off on its own; botocore's retry quota
(one token bucket per client, shared by every thread using it) stays for the calls that change
something, instead of being drained by many stagings polling at once.

``DS_AWS_ACTION_LOG``: when set (the test suite sets it), every call made through these clients
appends its IAM action (``ecs:CreateService``) to that file, so the tests can check
permissions.py against what the engine really does.
"""

import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from provisioning.errors import ExternalCallFailed

_RETRY_CONFIG = Config(retries={"mode": "standard", "max_attempts": 8}, connect_timeout=10)
_POLLING_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 1},
                         connect_timeout=10)
_clients: dict[tuple, object] = {}
_clients_lock = threading.Lock()
_ENGINE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_SANDBOX_DIR = os.path.join(_ENGINE_DIR, "sandbox") + os.sep
_LIBRARY_DIRS = ("site-packages", "dist-packages")
_polling: ContextVar[bool] = ContextVar("aws_polling", default=False)
# IAM's prefix where it differs from the client's signing name.
_IAM_PREFIX = {"tagging": "tag", "monitoring": "cloudwatch"}
# The codes AWS services use for "slow down" (botocore's own list, plus RDS's and ECR's).
THROTTLING_CODES = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
    "TooManyRequestsException", "ProvisionedThroughputExceededException",
    "TransactionInProgressException", "RequestLimitExceeded", "BandwidthLimitExceeded",
    "LimitExceededException", "RequestThrottled", "SlowDown", "PriorRequestNotComplete",
    "EC2ThrottledException",
})


class AwsError(ExternalCallFailed):
    """An AWS call that failed: which call, AWS's error code and its message."""


def client(service: str):
    """A cached boto3 client; boto3's default session is not safe to share across threads."""
    polling = _polling.get()
    key = (
        service,
        polling,
        os.environ.get("AWS_ENDPOINT_URL", ""),
        os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION", ""),
    )
    with _clients_lock:
        if key not in _clients:
            made = boto3.session.Session(region_name=os.environ.get("AWS_REGION") or None).client(
                service, config=_POLLING_CONFIG if polling else _RETRY_CONFIG)
            _log_actions_of(made)
            _clients[key] = made
        return _clients[key]


@contextmanager
def while_polling() -> Iterator[None]:
    """Calls inside the block are checks of a waiting loop: made once, never retried."""
    token = _polling.set(True)
    try:
        yield
    finally:
        _polling.reset(token)


def is_throttling(exc: BaseException) -> bool:
    return isinstance(exc, AwsError) and exc.code in THROTTLING_CODES


def _log_actions_of(made) -> None:
    path = os.environ.get("DS_AWS_ACTION_LOG", "")
    if not path:
        return
    signing_name = made.meta.service_model.signing_name
    prefix = _IAM_PREFIX.get(signing_name, signing_name)

    def record(model, **_) -> None:
        if _called_by_the_engine():
            with open(path, "a", encoding="utf-8") as log:
                log.write(f"{prefix}:{model.name}\n")

    made.meta.events.register("before-call", record)


def reset_clients() -> None:
    """Forget cached clients (tests switch between in-process moto and a moto server)."""
    with _clients_lock:
        _clients.clear()


def _called_by_the_engine() -> bool:
    """Whether the nearest caller outside boto3 is our code (not a test setting up AWS, nor
    the sandbox seeding it)."""
    frame = sys._getframe(2)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not any(f"{os.sep}{d}{os.sep}" in filename for d in _LIBRARY_DIRS):
            return _ENGINE_DIR in filename and _SANDBOX_DIR not in filename
        frame = frame.f_back
    return False


@contextmanager
def translated_errors(call: str) -> Iterator[None]:
    """Raise AwsError(call, code, message) for anything botocore raises inside the block."""
    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        # A block may make several calls: name the one that failed, with its service prefix.
        failed = f"{call.split(':', 1)[0]}:{exc.operation_name}" if exc.operation_name else call
        raise AwsError(
            failed, error.get("Code", "Unknown"), error.get("Message", str(exc))
        ) from exc
    except BotoCoreError as exc:
        raise AwsError(call, type(exc).__name__, str(exc)) from exc


def error_code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


def current_region() -> str:
    """``AWS_REGION`` (what the other AWS SDKs read, and what a shell usually sets), else
    boto3's own chain (``AWS_DEFAULT_REGION``, the profile's region); "" when none is set.
    boto3 itself does not read ``AWS_REGION``: every client is given this region."""
    return os.environ.get("AWS_REGION") or boto3.session.Session().region_name or ""


def as_key_value_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in tags.items()]
