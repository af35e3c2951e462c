"""The orphan sweep: what AWS holds for dynamic stagings that no live staging owns.

Found:
* every resource tagged ``managed-by=dynamic-stagings`` (Resource Groups Tagging API) whose
  ``dynamic-staging`` tag names no staging that is live or lost (a Staging row not destroyed:
  a lost staging's destroy removes what is left of it); a warm-pool
  database (tagged ``dynamic-staging-pool=<source>``) is owned while a PoolDatabase row names it,
  and any database is owned while a live staging uses it as its ``db_instance``;
* every rule on the dynamic stagings listener whose host header lies under ``DS_DOMAIN`` and
  names no live staging (whether or not the tagging API lists it with its tags).

Left alone, because they are already going away: the tagging API lists much that is gone
(stopped ECS tasks, DRAINING or INACTIVE services, task definitions whose deletion is in
progress, deleted listener rules, secrets scheduled for deletion, databases ``deleting``), so
each candidate is asked of its own service (gone.py), and what still looks present is asked
again with backoff for a while before it is reported. A resource of a type gone.py has no check
for is reported, never ignored.

AWS is listed before our records are read: a staging's row is written before any of its
resources is made, so a create running during a sweep never looks orphaned.

Records: one ``Orphan`` row per ARN, kept as history. A sweep updates ``last_seen_at`` of what
it finds (and clears ``deleted_at`` of a resource that is back); a row whose resource a sweep
no longer finds gets ``deleted_at`` (whoever removed it), so the open orphans are the rows
without ``deleted_at``. Deleting goes in dependency order (rules, services, then the services'
tasks are waited for, target groups, task definitions, secrets, databases last), and AWS is
asked after each delete that the resource is gone; a database counts as gone once AWS reports
it ``deleting`` (that takes minutes more and a failed deletion shows up again at the next
sweep). A failed delete keeps the row open, with the AWS error in ``error``.

Audit: every sweep that a person asks for is recorded (``sweep``), a scheduled one only when it
finds a resource not reported before; every resource deleted is recorded (``sweep-delete``).
"""

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q
from django.utils import timezone

from . import audit, gone
from .aws import ecs, elbv2, rds, secretsmanager, tagging
from .config import EngineConfig, load_config
from .errors import ExternalCallFailed
from .models import (
    AuditAction,
    AuditEvent,
    Orphan,
    PoolDatabase,
    PoolStatus,
    ScheduleRun,
    Staging,
    StagingStatus,
)
from .names import STAGING_TAG_KEY, managed_tags

log = logging.getLogger(__name__)


RULE, SERVICE, TASK = gone.RULE, gone.SERVICE, gone.TASK
TARGET_GROUP, TASK_DEFINITION = gone.TARGET_GROUP, gone.TASK_DEFINITION
SECRET, DATABASE = gone.SECRET, gone.DATABASE
# Dependency order of deletion: nothing is deleted while something later still uses it.
DELETE_ORDER = (RULE, SERVICE, TASK, TARGET_GROUP, TASK_DEFINITION, SECRET, DATABASE)
kind_of = gone.kind_of


@dataclass(frozen=True)
class Found:
    arn: str
    kind: str
    staging_name: str


@dataclass(frozen=True)
class _Owners:
    stagings: frozenset[str]
    databases: frozenset[str]


def _owners() -> _Owners:
    # A lost staging still owns what AWS has left of it: its destroy removes that.
    live = Staging.objects.holding_names()
    databases = set(live.exclude(db_instance="").values_list("db_instance", flat=True))
    # A pool database belongs to the pool until a staging claims it, then to that staging.
    pool = PoolDatabase.objects.exclude(
        Q(status=PoolStatus.CLAIMED)
        & (Q(staging__isnull=True) | Q(staging__status=StagingStatus.DESTROYED))
    )
    databases.update(pool.values_list("instance_id", flat=True))
    return _Owners(frozenset(live.values_list("name", flat=True)), frozenset(databases))


def _is_owned(tags: dict[str, str], kind: str, arn: str, owners: _Owners) -> bool:
    if tags.get(STAGING_TAG_KEY) in owners.stagings:
        return True
    return kind == DATABASE and gone.db_instance_id(arn) in owners.databases


def _still_there(found: Found, config: EngineConfig) -> bool:
    return gone.still_there(found.arn, config)


def _host_staging(host: str, domain: str) -> str | None:
    """The staging name a host header under ``domain`` stands for, or None."""
    suffix = "." + domain.lower()
    if not host.endswith(suffix):
        return None
    label = host[: -len(suffix)]
    return label if label and "." not in label else None


def find_orphans(config: EngineConfig | None = None) -> list[Found]:
    """Ask AWS, then our records, which resources no live staging owns (nothing is written)."""
    config = config or load_config()
    tagged = tagging.tagged_resources(tags=managed_tags())
    rules = elbv2.list_rules(listener_arn=config.listener_arn) if config.listener_arn else []
    owners = _owners()
    candidates: dict[str, Found] = {}
    for resource in tagged:
        kind = kind_of(resource.arn)
        if not _is_owned(resource.tags, kind, resource.arn, owners):
            name = resource.tags.get(STAGING_TAG_KEY, "")
            candidates[resource.arn] = Found(resource.arn, kind, name)
    for rule in rules:
        names = [_host_staging(host, config.domain) for host in rule.hosts]
        names = [name for name in names if name]
        if rule.priority is not None and names and not set(names) & owners.stagings:
            candidates[rule.arn] = Found(rule.arn, RULE, names[0])
    left = set(gone.left_after_settling(candidates, config))
    return [found for arn, found in candidates.items() if arn in left]


# --- deleting ------------------------------------------------------------------------------------


def _wait_gone(found: Found, config: EngineConfig, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while _still_there(found, config):
        if time.monotonic() >= deadline:
            raise ExternalCallFailed(f"{found.kind} (deleting)", "StillThere",
                                     f"{found.arn} still exists after {timeout:.0f} s")
        time.sleep(config.poll_seconds)


def _delete_service(found: Found, config: EngineConfig) -> None:
    ecs.delete_service(cluster=gone.ecs_cluster(found.arn, config), service=found.arn)
    # Its target group may go only once the service has let go of it.
    _wait_gone(found, config, config.service_wait_seconds)


def _wait_for_task(found: Found, config: EngineConfig) -> None:
    # The engine starts tasks only through services: deleting the service (earlier in the
    # order) stops them. One that outlives that was started by hand and is left to a person.
    _wait_gone(found, config, config.service_wait_seconds)


def _delete_task_definition(found: Found, config: EngineConfig) -> None:
    ecs.deregister_task_definition(arn=found.arn)
    gone.raise_refused_deletions(ecs.delete_task_definitions(arns=[found.arn]), config)


DELETERS: dict[str, Callable[[Found, EngineConfig], None]] = {
    RULE: lambda found, config: elbv2.delete_rule(arn=found.arn),
    SERVICE: _delete_service,
    TASK: _wait_for_task,
    TARGET_GROUP: lambda found, config: elbv2.delete_target_group(arn=found.arn),
    TASK_DEFINITION: _delete_task_definition,
    SECRET: lambda found, config: secretsmanager.delete_secret(name=found.arn),
    DATABASE: lambda found, config: rds.delete_instance(
        instance_id=gone.db_instance_id(found.arn)),
}


def _delete_order(found: Found) -> int:
    return DELETE_ORDER.index(found.kind) if found.kind in DELETE_ORDER else len(DELETE_ORDER)


def _delete_one(found: Found, config: EngineConfig) -> str:
    """Delete and check it is gone; the error to keep on the row ('' when it went)."""
    deleter = DELETERS.get(found.kind)
    if deleter is None:
        return f"the sweep does not know how to delete a {found.kind}; remove it by hand"
    try:
        deleter(found, config)
        if _still_there(found, config):
            return "AWS still lists it after the delete"
    except ExternalCallFailed as exc:
        return str(exc)
    return ""


# --- records -------------------------------------------------------------------------------------


def _record_found(found: list[Found]) -> tuple[list[Orphan], list[Orphan]]:
    """Upsert a row per orphan; close the rows of what is gone. (all rows, new ones)."""
    now = timezone.now()
    rows, new = [], []
    for item in found:
        row, created = Orphan.objects.get_or_create(
            arn=item.arn,
            defaults={"kind": item.kind, "staging_name": item.staging_name,
                      "first_seen_at": now, "last_seen_at": now},
        )
        back = not created and row.deleted_at is not None
        if not created:
            row.kind, row.staging_name, row.last_seen_at = item.kind, item.staging_name, now
            if back:  # the same ARN made again and left behind again
                row.deleted_at, row.first_seen_at, row.error = None, now, ""
            row.save(update_fields=["kind", "staging_name", "last_seen_at", "deleted_at",
                                    "first_seen_at", "error"])
        if created or back:
            new.append(row)
        rows.append(row)
    Orphan.objects.filter(deleted_at__isnull=True).exclude(
        arn__in=[item.arn for item in found]).update(deleted_at=now)
    return rows, new


def _staging_named(name: str) -> Staging | None:
    return Staging.objects.filter(name=name).order_by("-created_at").first() if name else None


def _summary(rows: Iterable[Orphan]) -> str:
    rows = list(rows)
    if not rows:
        return "no orphaned resources"
    listed = ", ".join(f"{row.kind} {row.arn}" for row in rows)
    return f"{len(rows)} orphaned resource(s): {listed}"


def _delete_rows(rows: list[Orphan], found: dict[str, Found], config: EngineConfig,
                 actor: AbstractBaseUser | None) -> None:
    for row in sorted(rows, key=lambda r: _delete_order(found[r.arn])):
        error = _delete_one(found[row.arn], config)
        row.error = error
        row.deleted_at = None if error else timezone.now()
        row.save(update_fields=["error", "deleted_at"])
        staging = _staging_named(row.staging_name)
        outcome = f"could not delete {row.kind} {row.arn}: {error}" if error else (
            f"deleted {row.kind} {row.arn}")
        audit.record(AuditAction.SWEEP_DELETE, actor=actor, staging=staging,
                     staging_name=row.staging_name, detail=outcome)
        log.info("sweep: %s", outcome)


def sweep(delete: bool = False, actor: AbstractBaseUser | None = None) -> list[Orphan]:
    """Find (and with ``delete``, remove) what no live staging owns; the rows of this run."""
    config = load_config()
    found = find_orphans(config)
    rows, new = _record_found(found)
    if actor is not None or new:
        audit.record(AuditAction.SWEEP, actor=actor, detail=_summary(rows))
    if delete and rows:
        _delete_rows(rows, {item.arn: item for item in found}, config, actor)
    return rows


def last_sweep_at() -> datetime | None:
    """When a sweep last finished: one a person asked for (its audit event), or a scheduled
    one that did not fail (its ScheduleRun; a scheduled sweep that finds nothing new leaves no
    audit event). None before the first: the leftovers then are not known, not none."""
    from .tasks import sweep_orphans

    asked = (AuditEvent.objects.filter(action=AuditAction.SWEEP).order_by("-created_at")
             .values_list("created_at", flat=True).first())
    scheduled = (ScheduleRun.objects.filter(name=sweep_orphans.every.name, error="",
                                            finished_at__isnull=False)
                 .order_by("-started_at").values_list("finished_at", flat=True).first())
    return max((moment for moment in (asked, scheduled) if moment), default=None)


def delete_orphans(orphan_ids: Iterable[int], actor: AbstractBaseUser | None) -> list[Orphan]:
    """Delete the chosen open orphans that a fresh look still finds orphaned (a staging may
    have taken the name meanwhile). May wait for ECS services to go: run it off a request."""
    wanted = Orphan.objects.filter(pk__in=list(orphan_ids), deleted_at__isnull=True)
    wanted_arns = set(wanted.values_list("arn", flat=True))
    config = load_config()
    found = [item for item in find_orphans(config) if item.arn in wanted_arns]
    now = timezone.now()
    Orphan.objects.filter(arn__in=wanted_arns - {item.arn for item in found},
                          deleted_at__isnull=True).update(deleted_at=now)
    rows = list(Orphan.objects.filter(arn__in=[item.arn for item in found]))
    for row in rows:
        row.last_seen_at = now
        row.save(update_fields=["last_seen_at"])
    _delete_rows(rows, {item.arn: item for item in found}, config, actor)
    return rows
