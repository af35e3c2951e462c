"""Client factory and error translation shared by the per-service wrappers.

Clients retry throttling and 5xx answers with botocore's "standard" retry mode (exponential
backoff with jitter), so no wrapper loops on its own. Region, credentials and endpoint come from
boto3's usual chain (``AWS_REGION``/``AWS_DEFAULT_REGION``, ``AWS_ENDPOINT_URL``, ...).
"""

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from provisioning.errors import ExternalCallFailed

MANAGED_BY_KEY = "managed-by"
MANAGED_BY_VALUE = "dynamic-stagings"
STAGING_TAG_KEY = "dynamic-staging"

_RETRY_CONFIG = Config(retries={"mode": "standard", "max_attempts": 8}, connect_timeout=10)
_clients: dict[tuple, object] = {}
_clients_lock = threading.Lock()


class AwsError(ExternalCallFailed):
    """An AWS call that failed: which call, AWS's error code and its message."""


def client(service: str):
    """A cached boto3 client; boto3's default session is not safe to share across threads."""
    key = (
        service,
        os.environ.get("AWS_ENDPOINT_URL", ""),
        os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION", ""),
    )
    with _clients_lock:
        if key not in _clients:
            _clients[key] = boto3.session.Session().client(service, config=_RETRY_CONFIG)
        return _clients[key]


def reset_clients() -> None:
    """Forget cached clients (tests switch between in-process moto and a moto server)."""
    with _clients_lock:
        _clients.clear()


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


def staging_tags(staging: str) -> dict[str, str]:
    return {STAGING_TAG_KEY: staging, MANAGED_BY_KEY: MANAGED_BY_VALUE}


def as_key_value_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in tags.items()]
