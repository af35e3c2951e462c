"""Secrets Manager: the host DB's master password (kept by the operator) and each staging's
test-account password (kept by us, so it is never stored in our database).

IAM: secretsmanager:GetSecretValue, CreateSecret, PutSecretValue, DescribeSecret,
DeleteSecret, TagResource.
"""

from botocore.exceptions import ClientError

from .base import as_key_value_list, client, error_code, translated_errors


def read_secret(*, secret_id: str) -> str:
    with translated_errors("secretsmanager:GetSecretValue"):
        return client("secretsmanager").get_secret_value(SecretId=secret_id)["SecretString"]


def find_secret_arn(*, name: str) -> str | None:
    with translated_errors("secretsmanager:DescribeSecret"):
        try:
            raw = client("secretsmanager").describe_secret(SecretId=name)
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return None
            raise
    # A secret scheduled for deletion is as good as gone for us.
    return None if raw.get("DeletedDate") else raw["ARN"]


def store_secret(*, name: str, value: str, tags: dict[str, str]) -> str:
    """Create the secret, or give an existing one of that name a new value; its ARN."""
    existing = find_secret_arn(name=name)
    if existing:
        with translated_errors("secretsmanager:PutSecretValue"):
            client("secretsmanager").put_secret_value(SecretId=existing, SecretString=value)
        return existing
    with translated_errors("secretsmanager:CreateSecret"):
        raw = client("secretsmanager").create_secret(
            Name=name, SecretString=value, Tags=as_key_value_list(tags)
        )
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
