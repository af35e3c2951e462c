"""The staging's dedicated database: take one from the warm pool or restore it, make its
credentials work, remove it.

Credentials, for a source other than the host (README "Dedicated databases"): with a secret
for the source in DS_SOURCE_DB_SECRETS the staging is given the source's own password (see
task_definitions) and nothing is changed on the database. Otherwise the database gets the
host's master password; RDS accepts that change only once the restore is available, so the
services start at that moment and the change runs while their tasks boot: only the web
service's health wait also waits for it. A pool database has the host's password already.
"""

from django.utils import timezone

from .. import pool
from ..aws import rds
from ..credentials import host_master_password
from ..errors import ExternalCallFailed
from ..models import PoolDatabase, Staging
from ..names import staging_tags
from ..stepkit import Skip, StepContext, made_moments_ago


def staging_db_instance(ctx: StepContext) -> str:
    """The staging's DB instance id: the pool database it took, else ``ds-<name>``. Read from
    the database step's output or the row, not from the context's copy of the staging, which
    was loaded before the database step ran."""
    from_step = ctx.output("database").get("db_instance")
    if from_step:
        return from_step
    recorded = Staging.objects.filter(pk=ctx.staging.pk).values_list("db_instance",
                                                                     flat=True).first()
    if recorded:
        return recorded
    # Claimed, but the step stopped before it could note it on the staging.
    taken = pool.claimed_by(ctx.staging)
    return taken.instance_id if taken else ctx.names.db_instance


def _describe(instance_id: str) -> rds.DbInstance | None:
    return rds.describe_instance(instance_id=instance_id)


def _wait_until_gone(ctx: StepContext, instance_id: str, what: str) -> None:
    def gone() -> tuple[bool, str]:
        instance = _describe(instance_id)
        status = instance.status if instance else "gone"
        return instance is None, f"{instance_id}: {status}"

    ctx.wait_until(what, gone, ctx.config.db_wait_seconds)


def _wait_until_available(ctx: StepContext, instance_id: str, what: str,
                          made_at: str | None = None) -> rds.DbInstance:
    """Wait for ``instance_id`` to be available; it must exist, unless this step asked for it
    at ``made_at`` a moment ago (it may not show yet)."""
    seen: list[rds.DbInstance] = []

    def available() -> tuple[bool, str]:
        instance = _describe(instance_id)
        if instance is None:
            if made_moments_ago(made_at):
                return False, f"{instance_id}: not visible yet"
            raise ExternalCallFailed(
                "rds:DescribeDBInstances", "DBInstanceNotFound",
                f"{instance_id} does not exist, so it will never be available: destroy the "
                "staging, or create it again")
        if instance.status == "deleting":
            raise ExternalCallFailed(
                "rds:DescribeDBInstances", "InvalidDBInstanceState",
                f"{instance_id} is being deleted, so it will never be available: destroy the "
                "staging, or create it again")
        seen.append(instance)
        pending = ", pending " + ", ".join(instance.pending_modifications) if (
            instance.pending_modifications) else ""
        return instance.is_available, f"{instance.identifier}: {instance.status}{pending}"

    ctx.wait_until(what, available, ctx.config.db_wait_seconds)
    return seen[-1]


def _take_from_pool(ctx: StepContext) -> dict | None:
    """The pool database this staging holds or can take now, ready to use; None if none."""
    taken = pool.claimed_by(ctx.staging)
    if taken is None and not ctx.staging.db_instance and pool.pool_enabled(ctx.config,
                                                                           ctx.staging.source):
        taken = pool.claim(ctx.staging)
        if taken is not None:
            pool.request_refill()
    while taken is not None:
        ctx.update_staging(db_instance=taken.instance_id, snapshot_id=taken.snapshot_id)
        instance = _describe(taken.instance_id)
        if instance is not None and instance.status != "deleting":
            rds.add_tags(arn=instance.arn, tags=staging_tags(ctx.staging.name))
            if not instance.is_available:
                instance = _wait_until_available(
                    ctx, taken.instance_id, f"rds:DescribeDBInstances {taken.instance_id}")
            ctx.progress(f"{taken.instance_id} from the warm pool ({taken.snapshot_id})")
            return {"db_instance": instance.identifier, "address": instance.address,
                    "pool": True}
        # Deleted behind our back: let it go, try another one, else restore.
        pool.give_up_lost(taken)
        ctx.update_staging(db_instance="")
        taken = pool.claim(ctx.staging)
    return None


def restore_database(ctx: StepContext) -> dict:
    ctx.check_cancelled()
    from_pool = _take_from_pool(ctx)
    if from_pool is not None:
        return from_pool
    instance_id = ctx.names.db_instance
    existing = _describe(instance_id)
    if existing is not None and existing.status == "deleting":
        # A destroyed staging of the same name is still going away: its name frees up soon.
        _wait_until_gone(ctx, instance_id, f"rds:DescribeDBInstances {instance_id} (deleting)")
        existing = None
    restored_at = ctx.recall(RESTORED_AT)
    if existing is None and not restored_at:
        rds.restore_from_snapshot(
            instance_id=instance_id,
            snapshot_id=ctx.staging.snapshot_id,
            instance_class=ctx.config.db_instance_class,
            like=rds.describe_instance(instance_id=ctx.staging.source),
            tags=staging_tags(ctx.staging.name),
        )
        # A later look (this run's or, after a park, the next one's) may not see it yet: it
        # must not restore again, and may wait for it a while (stepkit.PROPAGATION_SECONDS).
        restored_at = timezone.now().isoformat()
        ctx.remember(RESTORED_AT, restored_at)
    ctx.update_staging(db_instance=instance_id)
    instance = _wait_until_available(ctx, instance_id, f"rds:DescribeDBInstances {instance_id}",
                                     made_at=restored_at)
    return {"db_instance": instance.identifier, "address": instance.address}


PASSWORD_SET = "password_set"
RESTORED_AT = "restored_at"


def align_credentials(ctx: StepContext) -> dict:
    """A DB restored from another staging keeps that staging's master password; the cloned
    task definitions carry the host's. Give the restored DB the host's password."""
    if ctx.staging.source == ctx.config.host_db_instance:
        raise Skip("restored from the host's own database: its credentials already match")
    if not ctx.config.needs_host_password(ctx.staging.source):
        raise Skip("the staging uses the source's own password (DS_SOURCE_DB_SECRETS)")
    instance_id = staging_db_instance(ctx)
    if PoolDatabase.objects.filter(instance_id=instance_id, staging=ctx.staging).exists():
        raise Skip("taken from the warm pool with the host's password already set")
    # Once applied, a password change leaves no trace AWS shows: the step remembers it made
    # one, or every look while waiting would start another.
    if not ctx.recall(PASSWORD_SET):
        instance = _describe(instance_id)
        if instance is None or not instance.pending_modifications.get("MasterUserPassword"):
            rds.set_master_password(
                instance_id=instance_id,
                password=host_master_password(ctx.config.host_db_password_secret))
        ctx.remember(PASSWORD_SET, True)
    _wait_until_available(ctx, instance_id, f"rds:ModifyDBInstance {instance_id} (password)")
    return {"master_password": "set to the host's"}


def remove_database(ctx: StepContext) -> dict:
    instance_id = staging_db_instance(ctx)
    if not rds.delete_instance(instance_id=instance_id):
        raise Skip(f"{instance_id} does not exist")
    _wait_until_gone(ctx, instance_id, f"rds:DeleteDBInstance {instance_id}")
    return {"deleted": instance_id}
