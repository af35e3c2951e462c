"""Our records against AWS, both ways.

* What AWS holds that no staging owns: the orphan sweep (sweep.py).
* Stagings whose resources AWS no longer has: a staging that was ready once, and that no
  operation runs for now (lifecycle.JUDGED_STATUSES), is asked about its core resources, each
  of its own service: its web service (DescribeServices: gone when MISSING, INACTIVE or
  DRAINING), its target group (DescribeTargetGroups) and, for a dedicated database, its DB
  instance (DescribeDBInstances: gone when unknown or ``deleting``). When all of them are gone
  it is marked ``lost``: it stops counting as live and in the costs (they end at ``lost_at``),
  keeps its name, and offers a destroy (which removes whatever else is left and finishes the
  bookkeeping) or a recreate. When only some are gone it is reported as incomplete and left
  as it is: it may be being repaired by hand, and a destroy is still the person's call.

A staging being created, changed or destroyed right now legitimately lacks resources, so only
settled stagings are judged, and the decision is the conditional update's: a request that
starts an operation in between wins. Describe calls are eventually consistent: what looks gone
is asked again with backoff for gone.SETTLE_POLLS poll intervals (a minute at the default
DS_POLL_SECONDS, a few seconds in the sandbox), all stagings' together, before anything is
called gone.

Run by ``ds sweep``, the scheduled sweep and the sandbox as it starts (after its AWS is up,
before the dashboard serves); each says what it found.
"""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Exists, OuterRef
from django.utils import timezone

from . import audit, gone, lifecycle
from . import sweep as orphan_sweep
from .aws import ecs, elbv2, rds
from .config import EngineConfig, load_config
from .models import AuditAction, DbMode, Operation, Orphan, Staging, StagingStatus
from .names import ResourceNames

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Judged:
    """One staging's core resources as AWS answered: what is gone, what is still there."""

    name: str
    gone: tuple[str, ...]
    there: tuple[str, ...]

    @property
    def is_lost(self) -> bool:
        return bool(self.gone) and not self.there

    def describe(self) -> str:
        return f"{', '.join(self.gone)} gone" + (
            f" ({', '.join(self.there)} still there)" if self.there else "")


@dataclass
class Reconciled:
    orphans: list[Orphan] = field(default_factory=list)
    lost: list[Judged] = field(default_factory=list)  # marked lost by this run
    incomplete: list[Judged] = field(default_factory=list)
    judged: int = 0  # stagings asked about
    # Lost before this run, still waiting for a destroy or a recreate.
    still_lost: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"{len(self.orphans)} leftover(s) found"]
        if self.lost:
            parts.append(f"{len(self.lost)} staging(s) marked lost: "
                         + ", ".join(j.name for j in self.lost))
        if self.incomplete:
            parts.append(f"{len(self.incomplete)} staging(s) incomplete: "
                         + ", ".join(j.name for j in self.incomplete))
        return "; ".join(parts)

    def lines(self) -> list[str]:
        """What a person reads: one line per finding, or one saying all is in order."""
        found = [f"lost: {j.name}: {j.describe()}; marked lost (destroy it to finish, or "
                 "recreate it)" for j in self.lost]
        found += [f"lost earlier: {name}; destroy it to finish, or recreate it" for name in
                  self.still_lost]
        found += [f"incomplete: {j.name}: {j.describe()}; left as it is" for j in
                  self.incomplete]
        found += [f"leftover: {o.kind} {o.arn}" + (f" ({o.staging_name})" if o.staging_name
                                                  else "") for o in self.orphans]
        if not found:
            found.append(f"in order: {self.judged} staging(s) have their resources, and AWS "
                         "holds nothing no staging owns")
        return found


def _service_there(config: EngineConfig, name: str) -> bool:
    found = ecs.describe_service(cluster=config.cluster, service=name)
    return found is not None and found.status == "ACTIVE"


def _database_there(instance_id: str) -> bool:
    found = rds.describe_instance(instance_id=instance_id)
    return found is not None and found.status != "deleting"


def core_resources(staging: Staging, config: EngineConfig) -> dict[str, Callable[[], bool]]:
    """What a staging cannot be without, by label, each with its "is it there?" question."""
    names = ResourceNames(staging.name, config.domain)
    checks: dict[str, Callable[[], bool]] = {
        f"web service {names.web_service}": lambda: _service_there(config, names.web_service),
        f"target group {names.target_group}": lambda: elbv2.find_target_group(
            name=names.target_group) is not None,
    }
    if staging.db_mode == DbMode.DEDICATED:
        instance = staging.db_instance or names.db_instance
        checks[f"database {instance}"] = lambda: _database_there(instance)
    return checks


def judged_stagings():
    """Settled stagings that were ready once, with no operation under way."""
    running = Operation.objects.unfinished().filter(staging=OuterRef("pk"))
    return (Staging.objects.filter(status__in=sorted(lifecycle.JUDGED_STATUSES),
                                   ready_at__isnull=False)
            .exclude(Exists(running)).order_by("name"))


def _still_gone(suspects: dict[tuple[int, str], Callable[[], bool]], config: EngineConfig,
                sleep: Callable[[float], object]) -> set[tuple[int, str]]:
    """Of what looked gone, what is still gone after asking again with backoff for
    gone.SETTLE_POLLS poll intervals (everything at once, not one staging after another)."""
    left = set(suspects)
    budget = gone.SETTLE_POLLS * config.poll_seconds
    waited, interval = 0.0, config.poll_seconds
    while left and waited < budget:
        pause = min(interval, budget - waited)
        sleep(pause)
        waited += pause
        interval *= 2
        left = {key for key in left if not suspects[key]()}
    return left


def judge(stagings: list[Staging], config: EngineConfig,
          sleep: Callable[[float], object] = time.sleep) -> list[Judged]:
    """Each staging's core resources as AWS answers (what is gone, asked again a while)."""
    checks = {staging.pk: core_resources(staging, config) for staging in stagings}
    suspects = {(pk, label): check for pk, found in checks.items()
                for label, check in found.items() if not check()}
    gone_now = _still_gone(suspects, config, sleep) if suspects else set()
    return [
        Judged(staging.name,
               tuple(label for label in checks[staging.pk] if (staging.pk, label) in gone_now),
               tuple(label for label in checks[staging.pk]
                     if (staging.pk, label) not in gone_now))
        for staging in stagings
    ]


def _mark_lost(staging: Staging, judged: Judged) -> bool:
    """Lost, unless something changed it meanwhile (an operation was requested)."""
    now = timezone.now()
    running = Operation.objects.unfinished().filter(staging=OuterRef("pk"))
    detail = f"AWS no longer has its resources: {judged.describe()}"
    marked = (Staging.objects.filter(pk=staging.pk, status=staging.status)
              .exclude(Exists(running))
              .update(status=StagingStatus.LOST, lost_at=now, updated_at=now, error=detail))
    if marked:
        audit.record(AuditAction.LOST, actor=None, staging=staging, detail=detail)
        log.warning("reconcile: %s marked lost: %s", staging.name, judged.describe())
    return bool(marked)


def find_lost(config: EngineConfig | None = None,
              sleep: Callable[[float], object] = time.sleep) -> Reconciled:
    """Judge the settled stagings and mark the lost ones (no orphan sweep)."""
    config = config or load_config()
    stagings = list(judged_stagings())
    result = Reconciled(judged=len(stagings), still_lost=list(
        Staging.objects.lost().order_by("name").values_list("name", flat=True)))
    by_name = {staging.name: staging for staging in stagings}
    for judged in judge(stagings, config, sleep):
        if judged.is_lost:
            if _mark_lost(by_name[judged.name], judged):
                result.lost.append(judged)
        elif judged.gone:
            result.incomplete.append(judged)
    return result


def reconcile(*, delete: bool = False, actor: AbstractBaseUser | None = None,
              sleep: Callable[[float], object] = time.sleep) -> Reconciled:
    """Both ways: mark the stagings AWS lost, then sweep what no staging owns (a lost
    staging still owns what is left of it: its destroy removes that)."""
    result = find_lost(sleep=sleep)
    result.orphans = orphan_sweep.sweep(delete=delete, actor=actor)
    return result
