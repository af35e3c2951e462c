"""RDS: snapshots of the sources, the staging's restored instance, its master password, the
account's instance quota.

IAM: rds:DescribeDBInstances, rds:DescribeDBSnapshots, rds:RestoreDBInstanceFromDBSnapshot,
rds:ModifyDBInstance, rds:DeleteDBInstance, rds:AddTagsToResource,
rds:DescribeAccountAttributes.
"""

from dataclasses import dataclass, field
from datetime import datetime

from botocore.exceptions import ClientError

from .base import AwsError, as_key_value_list, client, error_code, translated_errors

# RDS refuses a master password with any of these (InvalidParameterValue).
REFUSED_PASSWORD_CHARACTERS = ('"', "/", "@", " ")
MIN_MASTER_PASSWORD_LENGTH = 8


@dataclass(frozen=True)
class Snapshot:
    identifier: str
    instance_id: str
    created_at: datetime
    status: str
    kind: str  # "automated" or "manual"
    allocated_gb: int = 0


@dataclass(frozen=True)
class DbInstance:
    identifier: str
    status: str
    instance_class: str
    engine: str
    address: str
    port: int
    master_username: str
    allocated_gb: int
    subnet_group: str
    security_group_ids: tuple[str, ...]
    pending_modifications: dict = field(default_factory=dict)
    created_at: datetime | None = None
    arn: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    parameter_group: str = ""
    option_group: str = ""
    storage_type: str = ""
    iops: int = 0
    multi_az: bool = False
    publicly_accessible: bool = False
    backup_retention_days: int = 0
    deletion_protection: bool = False

    @property
    def is_available(self) -> bool:
        return self.status == "available" and not self.pending_modifications


def _instance_from(raw: dict) -> DbInstance:
    endpoint = raw.get("Endpoint") or {}
    return DbInstance(
        identifier=raw["DBInstanceIdentifier"],
        status=raw.get("DBInstanceStatus", ""),
        instance_class=raw.get("DBInstanceClass", ""),
        engine=raw.get("Engine", ""),
        address=endpoint.get("Address", ""),
        port=int(endpoint.get("Port") or 0),
        master_username=raw.get("MasterUsername", ""),
        allocated_gb=int(raw.get("AllocatedStorage") or 0),
        subnet_group=(raw.get("DBSubnetGroup") or {}).get("DBSubnetGroupName", ""),
        security_group_ids=tuple(
            g["VpcSecurityGroupId"] for g in raw.get("VpcSecurityGroups", [])
        ),
        pending_modifications=raw.get("PendingModifiedValues") or {},
        created_at=raw.get("InstanceCreateTime"),
        arn=raw.get("DBInstanceArn", ""),
        tags={t["Key"]: t["Value"] for t in raw.get("TagList") or []},
        parameter_group=next(
            (g["DBParameterGroupName"] for g in raw.get("DBParameterGroups") or []), ""),
        option_group=next(
            (g["OptionGroupName"] for g in raw.get("OptionGroupMemberships") or []), ""),
        storage_type=raw.get("StorageType", ""),
        iops=int(raw.get("Iops") or 0),
        multi_az=bool(raw.get("MultiAZ")),
        publicly_accessible=bool(raw.get("PubliclyAccessible")),
        backup_retention_days=int(raw.get("BackupRetentionPeriod") or 0),
        deletion_protection=bool(raw.get("DeletionProtection")),
    )


def describe_instance(*, instance_id: str) -> DbInstance | None:
    with translated_errors("rds:DescribeDBInstances"):
        try:
            raw = client("rds").describe_db_instances(DBInstanceIdentifier=instance_id)
        except ClientError as exc:
            if error_code(exc) == "DBInstanceNotFound":
                return None
            raise
    return _instance_from(raw["DBInstances"][0])


def describe_instances(*, instance_ids: list[str]) -> dict[str, DbInstance]:
    """The instances of ``instance_ids`` that exist, by id: one call per hundred ids, so a
    pool of databases is watched without spending the account's RDS request rate."""
    found: dict[str, DbInstance] = {}
    with translated_errors("rds:DescribeDBInstances"):
        for start in range(0, len(instance_ids), 100):
            chunk = instance_ids[start:start + 100]
            pages = client("rds").get_paginator("describe_db_instances").paginate(
                Filters=[{"Name": "db-instance-id", "Values": chunk}]
            )
            for page in pages:
                for raw in page["DBInstances"]:
                    instance = _instance_from(raw)
                    found[instance.identifier] = instance
    return found


def add_tags(*, arn: str, tags: dict[str, str]) -> None:
    with translated_errors("rds:AddTagsToResource"):
        client("rds").add_tags_to_resource(ResourceName=arn, Tags=as_key_value_list(tags))


def list_snapshots(*, instance_id: str) -> list[Snapshot]:
    snapshots: list[Snapshot] = []
    with translated_errors("rds:DescribeDBSnapshots"):
        pages = client("rds").get_paginator("describe_db_snapshots").paginate(
            DBInstanceIdentifier=instance_id
        )
        for page in pages:
            for raw in page["DBSnapshots"]:
                if "SnapshotCreateTime" not in raw:  # still being taken
                    continue
                snapshots.append(
                    Snapshot(
                        identifier=raw["DBSnapshotIdentifier"],
                        instance_id=raw["DBInstanceIdentifier"],
                        created_at=raw["SnapshotCreateTime"],
                        status=raw.get("Status", ""),
                        kind=raw.get("SnapshotType", ""),
                        allocated_gb=int(raw.get("AllocatedStorage") or 0),
                    )
                )
    return snapshots


def newest_available_snapshot(snapshots: list[Snapshot]) -> Snapshot | None:
    available = [s for s in snapshots if s.status == "available"]
    return max(available, key=lambda s: s.created_at, default=None)


def restore_from_snapshot(
    *,
    instance_id: str,
    snapshot_id: str,
    instance_class: str,
    like: DbInstance | None,
    tags: dict[str, str],
) -> DbInstance:
    """Restore ``snapshot_id`` configured like the instance ``like`` (the snapshot's source).

    A restore takes the engine's default parameter group, the VPC's default security group and
    the default storage type unless told otherwise, and the app may not work on those (forced
    SSL, a missing shared_preload_libraries): so everything that shapes how the app reaches and
    uses the database is copied from the source.
    """
    kwargs = {
        "DBInstanceIdentifier": instance_id,
        "DBSnapshotIdentifier": snapshot_id,
        "DBInstanceClass": instance_class,
        "MultiAZ": False,
        "PubliclyAccessible": False,
        # A restore with backups on runs a full backup before it is available: minutes lost
        # for a database that lives a few days.
        "BackupRetentionPeriod": 0,
        "DeletionProtection": False,
        "Tags": as_key_value_list(tags),
    }
    if like is not None:
        kwargs.update(_shaped_like(like))
    with translated_errors("rds:RestoreDBInstanceFromDBSnapshot"):
        raw = client("rds").restore_db_instance_from_db_snapshot(**kwargs)
    return _instance_from(raw["DBInstance"])


def _shaped_like(source: DbInstance) -> dict:
    kwargs: dict = {}
    if source.parameter_group:
        kwargs["DBParameterGroupName"] = source.parameter_group
    # Default option groups are named per engine version ("default:postgres-16"); leaving it
    # out gives the restore its own version's default, which naming the source's might not be.
    if source.option_group and not source.option_group.startswith("default:"):
        kwargs["OptionGroupName"] = source.option_group
    if source.subnet_group:
        kwargs["DBSubnetGroupName"] = source.subnet_group
    if source.security_group_ids:
        kwargs["VpcSecurityGroupIds"] = list(source.security_group_ids)
    if source.port:
        kwargs["Port"] = source.port
    if source.storage_type:
        kwargs["StorageType"] = source.storage_type
        # Provisioned-IOPS storage cannot be asked for without its IOPS.
        if source.storage_type in ("io1", "io2") and source.iops:
            kwargs["Iops"] = source.iops
    return kwargs


def master_password_problem(password: str) -> str:
    """Why RDS would refuse ``password`` as a master password, or "" (never the password)."""
    refused = sorted({repr(c) for c in password if c in REFUSED_PASSWORD_CHARACTERS})
    if refused:
        return (f"it contains {', '.join(refused)}, which RDS refuses in a master password "
                "(only printable ASCII characters besides '/', '@', '\"' and ' ')")
    if len(password) < MIN_MASTER_PASSWORD_LENGTH:
        return f"it is shorter than the {MIN_MASTER_PASSWORD_LENGTH} characters RDS asks for"
    return ""


def check_master_password(password: str, *, origin: str) -> None:
    """Refuse, before asking AWS, a password RDS would refuse as a master password; the error
    names ``origin`` (where it was read) and never the password."""
    problem = master_password_problem(password)
    if problem:
        raise AwsError("rds:ModifyDBInstance", "InvalidParameterValue",
                       f"the password in {origin}: {problem}")


def set_master_password(*, instance_id: str, password: str) -> None:
    with translated_errors("rds:ModifyDBInstance"):
        client("rds").modify_db_instance(
            DBInstanceIdentifier=instance_id, MasterUserPassword=password, ApplyImmediately=True
        )


@dataclass(frozen=True)
class Quota:
    used: int
    maximum: int

    @property
    def left(self) -> int:
        return max(self.maximum - self.used, 0)


def instance_quota() -> Quota:
    """How many DB instances the account has in this region, and how many it may have."""
    with translated_errors("rds:DescribeAccountAttributes"):
        raw = client("rds").describe_account_attributes()
    for quota in raw.get("AccountQuotas", []):
        if quota.get("AccountQuotaName") == "DBInstances":
            return Quota(used=int(quota["Used"]), maximum=int(quota["Max"]))
    raise AwsError("rds:DescribeAccountAttributes", "MissingQuota",
                   "the answer carries no DBInstances quota")


def delete_instance(*, instance_id: str) -> bool:
    """Start deleting the instance; False if it does not exist (any more)."""
    with translated_errors("rds:DeleteDBInstance"):
        try:
            client("rds").delete_db_instance(
                DBInstanceIdentifier=instance_id,
                SkipFinalSnapshot=True,
                DeleteAutomatedBackups=True,
            )
        except ClientError as exc:
            if error_code(exc) == "DBInstanceNotFound":
                return False
            if error_code(exc) == "InvalidDBInstanceState" and "already being deleted" in str(
                exc
            ):
                return True
            raise
    return True

