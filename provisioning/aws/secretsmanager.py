"""Secrets Manager: the host DB's master password (kept by the operator) and each staging's
test-account password (kept by us, so it is never stored in our database).

IAM: secretsmanager:GetSecretValue, CreateSecret, PutSecretValue, DescribeSecret,
DeleteSecret, RestoreSecret, TagResource.
"""

from botocore.exceptions import ClientError

from .base import AwsError, as_key_value_list, client, error_code, translated_errors


class NameNotFree(AwsError):
    """A secret of this name is still being deleted (ForceDeleteWithoutRecovery frees the
    name only after a short while): try again a little later."""


def read_secret(*, secret_id: str) -> str:
    with translated_errors("secretsmanager:GetSecretValue"):
        return client("secretsmanager").get_secret_value(SecretId=secret_id)["SecretString"]


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
