"""The staging's dedicated database: restore, make its credentials work, remove."""

from ..aws import rds, secretsmanager
from ..aws.base import staging_tags
from ..runner import Skip, StepContext


def _describe(ctx: StepContext) -> rds.DbInstance | None:
    return rds.describe_instance(instance_id=ctx.names.db_instance)


def _wait_until_gone(ctx: StepContext, what: str) -> None:
    def gone() -> tuple[bool, str]:
        instance = _describe(ctx)
        status = instance.status if instance else "gone"
        return instance is None, f"{ctx.names.db_instance}: {status}"

    ctx.wait_until(what, gone, ctx.config.db_wait_seconds)


def _wait_until_available(ctx: StepContext, what: str) -> rds.DbInstance:
    seen: list[rds.DbInstance] = []

    def available() -> tuple[bool, str]:
        instance = _describe(ctx)
        if instance is None:
            return False, f"{ctx.names.db_instance}: not found yet"
        seen.append(instance)
        pending = ", pending " + ", ".join(instance.pending_modifications) if (
            instance.pending_modifications) else ""
        return instance.is_available, f"{instance.identifier}: {instance.status}{pending}"

    ctx.wait_until(what, available, ctx.config.db_wait_seconds)
    return seen[-1]


def restore_database(ctx: StepContext) -> dict:
    ctx.check_cancelled()
    existing = _describe(ctx)
    if existing is not None and existing.status == "deleting":
        # A destroyed staging of the same name is still going away: its name frees up soon.
        _wait_until_gone(ctx, f"rds:DescribeDBInstances {ctx.names.db_instance} (deleting)")
        existing = None
    if existing is None:
        source = rds.describe_instance(instance_id=ctx.staging.source)
        rds.restore_from_snapshot(
            instance_id=ctx.names.db_instance,
            snapshot_id=ctx.staging.snapshot_id,
            instance_class=ctx.config.db_instance_class,
            subnet_group=source.subnet_group if source else "",
            security_group_ids=source.security_group_ids if source else (),
            tags=staging_tags(ctx.staging.name),
        )
    ctx.update_staging(db_instance=ctx.names.db_instance)
    instance = _wait_until_available(ctx, f"rds:DescribeDBInstances {ctx.names.db_instance}")
    return {"db_instance": instance.identifier, "address": instance.address}


def align_credentials(ctx: StepContext) -> dict:
    """A DB restored from another staging keeps that staging's master password; the cloned
    task definitions carry the host's. Give the restored DB the host's password."""
    if ctx.staging.source == ctx.config.host_db_instance:
        raise Skip("restored from the host's own database: its credentials already match")
    instance = _describe(ctx)
    if instance is None or not instance.pending_modifications.get("MasterUserPassword"):
        password = secretsmanager.read_secret(secret_id=ctx.config.host_db_password_secret)
        rds.set_master_password(instance_id=ctx.names.db_instance, password=password)
    _wait_until_available(ctx, f"rds:ModifyDBInstance {ctx.names.db_instance} (password)")
    return {"master_password": "set to the host's"}


def remove_database(ctx: StepContext) -> dict:
    if not rds.delete_instance(instance_id=ctx.names.db_instance):
        raise Skip(f"{ctx.names.db_instance} does not exist")
    _wait_until_gone(ctx, f"rds:DeleteDBInstance {ctx.names.db_instance}")
    return {"deleted": ctx.names.db_instance}
