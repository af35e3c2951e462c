"""Warm pool: databases restored ahead of time from each source's newest snapshot, so that a
create takes one at once instead of waiting the ten-odd minutes of a restore.

* ``DS_POOL_SIZES`` says how many per source; none by default, since every waiting database
  costs its instance and storage by the hour (the fleet page shows what the pool costs).
* ``refill_pools()`` runs every minute (the django-q2 schedule of migration 0004) and right
  after each claim. It watches the pool's databases with one describe call; marks a restored one
  ready once AWS says it is available (for a source whose staging must use the host's master
  password, only once that password is applied too, so a create that takes it waits for
  nothing); restores the missing ones from the source's newest available snapshot; and retires
  (deletes) unclaimed ones of an older snapshot as soon as enough newer ones are ready to take
  their place, so the pool never runs dry while it is renewed.
* ``claim()`` hands a ready database to one create only: a conditional update from ready to
  claimed. The staging then owns it (``Staging.db_instance``, tag ``dynamic-staging=<name>``)
  and its destroy deletes it like a database restored for it.

Pool databases are tagged ``managed-by=dynamic-stagings`` and ``dynamic-staging-pool=<source>``;
the sweep counts one as owned while a PoolDatabase row that is not claimed names it.
"""

import logging
import re
import secrets
from dataclasses import dataclass, field

from django.db.models import Q
from django.utils import timezone

from .aws import rds
from .config import EngineConfig, load_config
from .credentials import host_master_password
from .errors import ExternalCallFailed
from .models import PoolDatabase, PoolStatus, Staging
from .names import pool_tags

log = logging.getLogger(__name__)

# Set once the host's master password is applied: RDS cannot tell whether it was.
PASSWORD_TAG_KEY = "dynamic-staging-password"
PASSWORD_TAG_VALUE = "host"
INSTANCE_PREFIX = "dsp-"
# RDS identifiers have at most 63 characters: prefix + source + "-" + 8 hex digits fit.
SOURCE_PART_LENGTH = 40
WAITING = [PoolStatus.RESTORING, PoolStatus.READY]
WATCHED = [PoolStatus.RESTORING, PoolStatus.READY, PoolStatus.RETIRING]



def new_instance_id(source: str) -> str:
    """``dsp-<source>-<random>``: a valid RDS identifier (a letter first, letters, digits and
    single hyphens, no hyphen last, <= 63 characters) whatever the source is called."""
    part = re.sub(r"[^a-z0-9]+", "-", source.lower()).strip("-")[:SOURCE_PART_LENGTH].strip("-")
    return f"{INSTANCE_PREFIX}{part + '-' if part else ''}{secrets.token_hex(4)}"


def pool_enabled(config: EngineConfig, source: str) -> bool:
    """Whether creates from ``source`` take their database from the pool. The step graph asks
    this too: the task definitions then wait for the database step to know the instance id."""
    return config.pool_size(source) > 0


# --- claiming ------------------------------------------------------------------------------------


def claimed_by(staging: Staging) -> PoolDatabase | None:
    return PoolDatabase.objects.filter(staging=staging, status=PoolStatus.CLAIMED).first()


def claim(staging: Staging) -> PoolDatabase | None:
    """Take a ready database of the staging's source (the newest first) for it, or None.
    Two creates never get the same one: only the one whose update finds it still ready wins,
    the other tries the next."""
    while True:
        candidate = (PoolDatabase.objects.filter(source=staging.source, status=PoolStatus.READY)
                     .order_by("-created_at", "-pk").first())
        if candidate is None:
            return None
        taken = PoolDatabase.objects.filter(pk=candidate.pk, status=PoolStatus.READY).update(
            status=PoolStatus.CLAIMED, staging=staging, claimed_at=timezone.now()
        )
        if taken:
            candidate.refresh_from_db()
            return candidate


def give_up_lost(database: PoolDatabase) -> None:
    """A claimed database that AWS no longer has: the next refill forgets the row."""
    PoolDatabase.objects.filter(pk=database.pk).update(status=PoolStatus.RETIRING)


def request_refill() -> None:
    """Refill soon rather than at the next minute's schedule (after a claim)."""
    from . import tasks

    tasks.enqueue_pool_refill()


# --- refilling -----------------------------------------------------------------------------------


@dataclass
class RefillResult:
    restored: list[str] = field(default_factory=list)
    ready: list[str] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)
    forgotten: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        done = [f"{what} {', '.join(ids)}" for what, ids in (
            ("restoring", self.restored), ("ready", self.ready), ("retiring", self.retired),
            ("forgot", self.forgotten)) if ids]
        return "; ".join(done) or "nothing to do"


def refill_pools(config: EngineConfig | None = None) -> RefillResult:
    config = config or load_config()
    result = RefillResult()
    try:
        _watch(config, result)
    except ExternalCallFailed as exc:
        result.errors.append(str(exc))
        log.warning("warm pool: could not watch the pool's databases: %s", exc)
        return result
    for source in sorted(set(config.pool_sizes) - set(config.snapshot_sources)):
        result.errors.append(f"DS_POOL_SIZES names {source!r}, which is not one of "
                             f"DS_SNAPSHOT_SOURCES ({', '.join(config.snapshot_sources)})")
        log.warning("warm pool: %s", result.errors[-1])
    live_sources = PoolDatabase.objects.filter(status__in=WAITING).values_list("source",
                                                                              flat=True)
    for source in sorted(set(config.pool_sizes) | set(live_sources)):
        try:
            _refill_source(config, source, result)
        except ExternalCallFailed as exc:
            result.errors.append(f"{source}: {exc}")
            log.warning("warm pool of %s: %s", source, exc)
    return result


def _watch(config: EngineConfig, result: RefillResult) -> None:
    rows = list(PoolDatabase.objects.filter(status__in=WATCHED))
    if not rows:
        return
    instances = rds.describe_instances(instance_ids=[row.instance_id for row in rows])
    for row in rows:
        instance = instances.get(row.instance_id)
        if row.status == PoolStatus.RETIRING:
            if instance is None:
                PoolDatabase.objects.filter(pk=row.pk, status=PoolStatus.RETIRING).delete()
                result.forgotten.append(row.instance_id)
            elif instance.status != "deleting":
                _delete(row, result)
        elif row.status == PoolStatus.READY:
            if instance is None:  # deleted behind our back: nothing left to hand out
                PoolDatabase.objects.filter(pk=row.pk, status=PoolStatus.READY).delete()
                result.forgotten.append(row.instance_id)
        elif instance is None:
            _restore(config, row, result)
        elif instance.is_available:
            _finish_restoring(config, row, instance, result)


def _finish_restoring(config: EngineConfig, row: PoolDatabase, instance: rds.DbInstance,
                      result: RefillResult) -> None:
    if (config.needs_host_password(row.source)
            and instance.tags.get(PASSWORD_TAG_KEY) != PASSWORD_TAG_VALUE):
        rds.set_master_password(instance_id=row.instance_id,
                                password=host_master_password(config.host_db_password_secret))
        # Tagged only after AWS took the change: it shows as pending until applied, and the
        # database is not available (so not ready) before that.
        rds.add_tags(arn=instance.arn, tags={PASSWORD_TAG_KEY: PASSWORD_TAG_VALUE})
        return
    if PoolDatabase.objects.filter(pk=row.pk, status=PoolStatus.RESTORING).update(
        status=PoolStatus.READY, ready_at=timezone.now()
    ):
        result.ready.append(row.instance_id)


def _restore(config: EngineConfig, row: PoolDatabase, result: RefillResult) -> None:
    source = rds.describe_instance(instance_id=row.source)
    try:
        rds.restore_from_snapshot(
            instance_id=row.instance_id,
            snapshot_id=row.snapshot_id,
            instance_class=config.db_instance_class,
            like=source,
            tags=pool_tags(row.source),
        )
    except ExternalCallFailed as exc:
        if exc.code == "DBInstanceAlreadyExists":  # a refill running beside us restored it
            return
        # Forget the row: the next refill plans again, from the newest snapshot then.
        PoolDatabase.objects.filter(pk=row.pk, status=PoolStatus.RESTORING).delete()
        result.errors.append(f"{row.instance_id}: {exc}")
        log.warning("warm pool: restoring %s failed: %s", row.instance_id, exc)
        return
    result.restored.append(row.instance_id)


def _delete(row: PoolDatabase, result: RefillResult) -> None:
    try:
        rds.delete_instance(instance_id=row.instance_id)
    except ExternalCallFailed as exc:
        # E.g. still being created: RDS refuses until it is available; the next refill retries.
        log.info("warm pool: %s not deleted yet: %s", row.instance_id, exc)


def _retire(row: PoolDatabase, result: RefillResult) -> None:
    if PoolDatabase.objects.filter(pk=row.pk, status__in=WAITING).update(
        status=PoolStatus.RETIRING
    ):
        result.retired.append(row.instance_id)
        _delete(row, result)


def _refill_source(config: EngineConfig, source: str, result: RefillResult) -> None:
    size = config.pool_size(source) if source in config.snapshot_sources else 0
    snapshot = (rds.newest_available_snapshot(rds.list_snapshots(instance_id=source))
                if size else None)
    waiting = list(PoolDatabase.objects.filter(source=source, status__in=WAITING)
                   .order_by("-created_at", "-pk"))
    newest = [row for row in waiting if snapshot and row.snapshot_id == snapshot.identifier]
    older = [row for row in waiting if row not in newest]
    # More of the newest than wanted (the size went down, or two refills ran at once): the
    # ones still restoring go first, then the longest waiting.
    by_value = sorted(newest, key=lambda row: (row.status == PoolStatus.READY, row.created_at))
    surplus = by_value[:max(len(newest) - size, 0)]
    kept = [row for row in newest if row not in surplus]
    # Older ones keep serving creates until as many newer ones are ready.
    ready_newest = sum(1 for row in kept if row.status == PoolStatus.READY)
    older_ready = [row for row in older if row.status == PoolStatus.READY]
    serving = older_ready[:max(size - ready_newest, 0)]
    for row in surplus + [row for row in older if row not in serving]:
        _retire(row, result)
    if snapshot is None:
        return
    for _ in range(size - len(kept)):
        row = PoolDatabase.objects.create(
            instance_id=new_instance_id(source), source=source,
            snapshot_id=snapshot.identifier, status=PoolStatus.RESTORING,
        )
        _restore(config, row, result)


# --- what the fleet page shows -------------------------------------------------------------------


def waiting_databases() -> list[PoolDatabase]:
    """Every pool database that costs money and belongs to no staging (one query)."""
    return list(PoolDatabase.objects.filter(status__in=WATCHED).order_by("source", "created_at"))


def owned_instance_ids() -> set[str]:
    """Instance ids the pool owns (for anyone asking what an RDS instance belongs to)."""
    return set(PoolDatabase.objects.filter(~Q(status=PoolStatus.CLAIMED))
               .values_list("instance_id", flat=True))
