"""Secrets Manager: read a secret the operator keeps (the host DB's master password).

IAM: secretsmanager:GetSecretValue.
"""

from .base import client, translated_errors


def read_secret(*, secret_id: str) -> str:
    with translated_errors("secretsmanager:GetSecretValue"):
        return client("secretsmanager").get_secret_value(SecretId=secret_id)["SecretString"]
