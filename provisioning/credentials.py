"""The host database's master password, as the engine gives it to a restored database.

Read from DS_HOST_DB_PASSWORD_SECRET (a bare password or RDS-managed JSON) and refused before
RDS sees it when RDS would refuse it as a master password, with an error naming the secret.
"""

from .aws import rds, secretsmanager


def host_master_password(secret_id: str) -> str:
    password = secretsmanager.read_db_password(secret_id=secret_id).password
    rds.check_master_password(password,
                              origin=f"secret {secret_id} (DS_HOST_DB_PASSWORD_SECRET)")
    return password
