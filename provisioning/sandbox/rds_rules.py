"""RDS rules that moto does not keep, installed inside the sandbox's moto server process.

* A master password (CreateDBInstance, ModifyDBInstance) with ``"``, ``/``, ``@``, a space or
  anything outside printable ASCII is refused with AWS's InvalidParameterValue.
* RestoreDBInstanceFromDBSnapshot takes what the request says even when it is false or 0
  (moto copies the source's Multi-AZ, public access, backups and deletion protection over an
  explicit ``False``/``0``), uses the engine's default parameter group unless
  DBParameterGroupName is given, has no deletion protection unless asked for (the backup
  retention, when not given, is the source's, as on AWS), and with backups off takes no
  automated snapshot.
* DescribeAccountAttributes answers the DBInstances quota (moto does not implement it): Used is
  the instances that exist, Max is ``DS_SANDBOX_RDS_INSTANCE_QUOTA`` (default 40, AWS's default
  quota) read in this process; a create or restore beyond it fails with InstanceQuotaExceeded.

``install`` patches moto for good (the sandbox server); ``applied`` patches for the duration of
a block and restores moto afterwards (tests against moto's in-process mock).
"""

import functools
import os
from collections.abc import Iterator
from contextlib import contextmanager

QUOTA_VARIABLE = "DS_SANDBOX_RDS_INSTANCE_QUOTA"
DEFAULT_INSTANCE_QUOTA = 40
REFUSED_PASSWORD_CHARACTERS = frozenset('"/@ ')
INVALID_PASSWORD_MESSAGE = (
    "The parameter MasterUserPassword is not a valid password. Only printable ASCII characters "
    "besides '/', '@', '\"', ' ' may be used."
)
# Restore parameters whose false or 0 moto drops in favour of the source's value.
FALSY_RESTORE_SETTINGS = (
    "multi_az", "publicly_accessible", "backup_retention_period", "deletion_protection",
)
_MISSING = object()
_state = {"installed": False}


def instance_quota() -> int:
    raw = os.environ.get(QUOTA_VARIABLE, "").strip()
    if not raw:
        return DEFAULT_INSTANCE_QUOTA
    try:
        quota = int(raw)
    except ValueError:
        quota = -1
    if quota < 0:
        raise ValueError(f"{QUOTA_VARIABLE} must be a whole number >= 0, not {raw!r}")
    return quota


def _rds_error(code: str, message: str) -> Exception:
    from moto.rds.exceptions import RDSClientError

    return RDSClientError(code, message)


def _check_password(password) -> None:
    if password is None:
        return
    if any(c in REFUSED_PASSWORD_CHARACTERS or not 32 < ord(c) < 127 for c in str(password)):
        raise _rds_error("InvalidParameterValue", INVALID_PASSWORD_MESSAGE)


def _existing_instances(backend) -> int:
    # Through describe, so that instances whose deletion is over (sandbox delays) are gone.
    return len(list(backend.describe_db_instances()))


def _create(original):
    def wrapper(self, db_kwargs):
        _check_password(db_kwargs.get("master_user_password"))
        quota = instance_quota()
        if _existing_instances(self) >= quota:
            raise _rds_error(
                "InstanceQuotaExceeded",
                f"The DB instance quota of this account ({quota}) has been reached.",
            )
        return original(self, db_kwargs)

    return wrapper


def _modify(original):
    def wrapper(self, db_instance_identifier, db_kwargs):
        _check_password(db_kwargs.get("master_user_password"))
        return original(self, db_instance_identifier, db_kwargs)

    return wrapper


def _restore(original):
    def wrapper(self, from_snapshot_id, overrides):
        instance = original(self, from_snapshot_id, overrides)
        for setting in FALSY_RESTORE_SETTINGS:
            if setting in overrides:
                setattr(instance, setting, overrides[setting])
        if "deletion_protection" not in overrides:  # off unless asked for, whatever the source
            instance.deletion_protection = False
        if not overrides.get("db_parameter_group_name"):
            # Moto then describes the engine version's default group, as AWS restores with.
            instance.db_parameter_group_name = None
        if not instance.backup_retention_period:
            _drop_automated_snapshots(self, instance.db_instance_identifier)
        return instance

    return wrapper


def _drop_automated_snapshots(backend, instance_id: str) -> None:
    for identifier, snapshot in list(backend.database_snapshots.items()):
        if (snapshot.snapshot_type == "automated"
                and snapshot.database.db_instance_identifier == instance_id):
            backend.database_snapshots.pop(identifier, None)


def describe_account_attributes(self):
    from moto.core.responses import ActionResult

    used = _existing_instances(self.backend)
    return ActionResult({"AccountQuotas": [
        {"AccountQuotaName": "DBInstances", "Used": used, "Max": instance_quota()},
    ]})


def _patches() -> list[tuple[type, str, object]]:
    from moto.rds.models import RDSBackend
    from moto.rds.responses import RDSResponse

    def wrapped(cls, name, make_wrapper):
        original = getattr(cls, name)
        return cls, name, functools.wraps(original)(make_wrapper(original))

    return [
        wrapped(RDSBackend, "create_db_instance", _create),
        wrapped(RDSBackend, "modify_db_instance", _modify),
        wrapped(RDSBackend, "restore_db_instance_from_db_snapshot", _restore),
        (RDSResponse, "describe_account_attributes", describe_account_attributes),
    ]


def install() -> None:
    """Patch moto in this process for good (once)."""
    if _state["installed"]:
        return
    instance_quota()  # a bad DS_SANDBOX_RDS_INSTANCE_QUOTA stops the sandbox at start
    for cls, name, patched in _patches():
        setattr(cls, name, patched)
    _state["installed"] = True


@contextmanager
def applied() -> Iterator[None]:
    """The rules for the duration of the block only (moto's in-process mock in tests)."""
    if _state["installed"]:
        yield
        return
    patches = _patches()
    saved = [(cls, name, cls.__dict__.get(name, _MISSING)) for cls, name, _ in patches]
    for cls, name, patched in patches:
        setattr(cls, name, patched)
    try:
        yield
    finally:
        for cls, name, original in saved:
            if original is _MISSING:
                delattr(cls, name)
            else:
                setattr(cls, name, original)
