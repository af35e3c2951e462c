"""Secrets Manager: the host DB's master password (kept by the operator) and each staging's
test-account password (kept by us, so it is never stored in our database).

A DB password secret holds either the password itself or, as RDS keeps the master passwords it
manages, JSON like ``{"username": "app", "password": "..."}``; both are read (a value that
starts with ``{`` is taken for JSON, so a bare password cannot).

IAM: secretsmanager:GetSecretValue, CreateSecret, PutSecretValue, DescribeSecret,
DeleteSecret, RestoreSecret, TagResource.
"""

import json
from dataclasses import dataclass

from botocore.exceptions import ClientError

from .base import AwsError, as_key_value_list, client, error_code, translated_errors


class NameNotFree(AwsError):
    """A secret of this name is still being deleted (ForceDeleteWithoutRecovery frees the
    name only after a short while): try again a little later."""


DB_PASSWORD_KEY = "password"


def read_secret(*, secret_id: str) -> str:
    with translated_errors("secretsmanager:GetSecretValue"):
        return client("secretsmanager").get_secret_value(SecretId=secret_id)["SecretString"]


@dataclass(frozen=True)
class DbPassword:
    password: str
    # The JSON key holding it ("password"), or "" when the secret is the bare password.
    json_key: str = ""

    def value_from(self, secret_arn: str) -> str:
        """What an ECS task definition's ``valueFrom`` names: the secret, or its JSON key in
        ECS's ``arn:json-key:version-stage:version-id`` form."""
        return f"{secret_arn}:{self.json_key}::" if self.json_key else secret_arn

    def __repr__(self) -> str:  # never the password, in a traceback or a log line
        return f"DbPassword(json_key={self.json_key!r})"


def read_db_password(*, secret_id: str) -> DbPassword:
    return parse_db_password(read_secret(secret_id=secret_id), secret_id=secret_id)


def parse_db_password(value: str, *, secret_id: str) -> DbPassword:
    """The password in a secret's value; an error names the secret, never what it holds."""
    if not value.lstrip().startswith("{"):
        return DbPassword(value)
    try:
        document = json.loads(value)
    except ValueError:
        document = None
    password = document.get(DB_PASSWORD_KEY) if isinstance(document, dict) else None
    if not isinstance(password, str) or not password:
        raise AwsError(
            "secretsmanager:GetSecretValue", "UnreadableSecret",
            f"{secret_id} holds neither a bare password nor a JSON object with a "
            f'"{DB_PASSWORD_KEY}" string (as RDS keeps master passwords)')
    return DbPassword(password, json_key=DB_PASSWORD_KEY)


def _describe(name: str) -> dict | None:
    """DescribeSecret's answer (with DeletedDate for one scheduled for deletion), or None."""
    with translated_errors("secretsmanager:DescribeSecret"):
        try:
            return client("secretsmanager").describe_secret(SecretId=name)
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return None
            raise


def find_secret_arn(*, name: str) -> str | None:
    raw = _describe(name)
    # A secret scheduled for deletion is as good as gone for us.
    return None if raw is None or raw.get("DeletedDate") else raw["ARN"]


def store_secret(*, name: str, value: str, tags: dict[str, str]) -> str:
    """Create the secret, or give the one of that name (restored first when it is scheduled
    for deletion: AWS keeps its name until then) the value and the tags; its ARN. Raises
    NameNotFree while a secret of that name deleted without recovery is still going away."""
    secrets = client("secretsmanager")
    existing = _describe(name)
    if existing is not None:
        arn = existing["ARN"]
        if existing.get("DeletedDate"):
            try:
                with translated_errors("secretsmanager:RestoreSecret"):
                    secrets.restore_secret(SecretId=arn)
            except AwsError as exc:
                # Deleted without recovery: it cannot come back, and its name frees shortly.
                if exc.code in {"InvalidRequestException", "ResourceNotFoundException"}:
                    raise NameNotFree(exc.call, exc.code, exc.message) from exc
                raise
        with translated_errors("secretsmanager:PutSecretValue"):
            secrets.put_secret_value(SecretId=arn, SecretString=value)
            secrets.tag_resource(SecretId=arn, Tags=as_key_value_list(tags))
        return arn
    try:
        with translated_errors("secretsmanager:CreateSecret"):
            raw = secrets.create_secret(Name=name, SecretString=value,
                                        Tags=as_key_value_list(tags))
    except AwsError as exc:
        if exc.code == "InvalidRequestException" and "scheduled for deletion" in exc.message:
            raise NameNotFree(exc.call, exc.code, exc.message) from exc
        raise
    return raw["ARN"]


def delete_secret(*, name: str) -> bool:
    """Delete at once (no recovery window: nothing of a destroyed staging may linger)."""
    with translated_errors("secretsmanager:DeleteSecret"):
        try:
            client("secretsmanager").delete_secret(
                SecretId=name, ForceDeleteWithoutRecovery=True
            )
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return False
            raise
    return True
