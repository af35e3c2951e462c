"""Expiry: every staging has an end unless an admin keeps it.

* ``expires_at`` is DS_TTL_HOURS (or the TTL its create asked for, at most DS_MAX_TTL_HOURS)
  after its create or its last redeploy: a push that redeploys it keeps it alive.
* An extension sets it to now + N hours (default DS_TTL_HOURS), never past now +
  DS_MAX_TTL_HOURS: a longer wish is cut to that, and the answer says so.
* A kept staging has no expiry (``expires_at`` is None) until an admin stops keeping it; it
  then gets a fresh TTL from that moment.
* The every-minute check (tasks.expire_stagings) announces the warning windows
  (DS_EXPIRY_WARN_HOURS, the ``expiry_warning`` signal, once per window) and starts the
  destroy of each expired staging, as "system: expiry", when it is settled with nothing in
  flight. Each start is a conditional update on the expiry that was read, so two nodes running
  the check start one destroy, and a redeploy or extension meanwhile wins.

Who may extend or keep, and from which statuses, is the lifecycle registry's (ROW_CHANGES).
"""

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from . import audit, lifecycle, signals
from .config import EngineConfig, load_config
from .errors import NotAllowed, Refusal, UserError
from .models import AuditAction, Operation, OperationKind, OperationStatus, Staging

EXPIRY = "expiry"  # the audit trail's actor: "system: expiry"


def parse_hours(value: str | float | None, *, what: str = "TTL", field_name: str = "ttl"
                ) -> float | None:
    """A number of hours a user typed (fractions allowed), or None when left empty."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        hours = float(value)
    except (TypeError, ValueError):
        hours = math.nan
    if not math.isfinite(hours) or hours <= 0:
        raise UserError(f"The {what} must be a number of hours above 0 (for example 72 or "
                        f"0.5), not {str(value).strip()[:40]!r}.", field=field_name)
    return hours


def ttl_for_create(value: str | float | None, config: EngineConfig | None = None
                   ) -> float | None:
    """The TTL a create asks for (None: DS_TTL_HOURS); above DS_MAX_TTL_HOURS is refused."""
    config = config or load_config()
    hours = parse_hours(value)
    if hours is not None and hours > config.max_ttl_hours:
        raise UserError(f"A TTL of {hours:g} hours is above the most allowed, "
                        f"{config.max_ttl_hours:g} hours (DS_MAX_TTL_HOURS).", field="ttl")
    return hours


def lifetime_hours(staging_ttl: float | None, config: EngineConfig) -> float:
    """How long a staging lives after its create or redeploy: the TTL its create asked for
    (never more than today's maximum), else DS_TTL_HOURS."""
    return min(staging_ttl or config.ttl_hours, config.max_ttl_hours)


def expiry_after(start: datetime, staging_ttl: float | None,
                 config: EngineConfig | None = None) -> datetime:
    return start + timedelta(hours=lifetime_hours(staging_ttl, config or load_config()))


def restart_life(staging: Staging, now: datetime) -> bool:
    """A redeploy: the staging lives a full TTL from now (unless kept: it has no end)."""
    return bool(Staging.objects.filter(pk=staging.pk, kept=False).update(
        expires_at=expiry_after(now, staging.ttl_hours), expiry_warned_hours=None,
        updated_at=now))


def utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


# --- extend and keep ------------------------------------------------------------------------

@dataclass(frozen=True)
class Extension:
    expires_at: datetime
    hours: float  # what was granted
    asked: float
    capped: bool  # the wish went past DS_MAX_TTL_HOURS and was cut to it

    def sentence(self, name: str) -> str:
        said = (f"{name} now expires at {utc_text(self.expires_at)}, in {self.hours:g} hours")
        if self.capped:
            said += (f" (capped: {self.asked:g} hours asked, the most allowed is "
                     f"{self.hours:g}, DS_MAX_TTL_HOURS)")
        return said + "."


_DONE_WORD = {lifecycle.RowChange.EXTEND: "extended", lifecycle.RowChange.KEEP: "kept"}


def _check_allowed(change: str, user: AbstractBaseUser, staging: Staging, who: str) -> None:
    rules = lifecycle.row_change(change)
    if not rules.may_start(user, staging):
        raise NotAllowed(f"Only {who} may {change} {staging.name}.")
    if not rules.accepts(staging):
        raise UserError(f"{staging.name} is {staging.status}: it cannot be "
                        f"{_DONE_WORD[change]} now.", code=Refusal.WRONG_STATUS)


def extend(staging: Staging, *, user: AbstractBaseUser, hours: str | float | None = None,
           now: datetime | None = None, channel: audit.Channel = audit.WEB) -> Extension:
    """Set the expiry to now + ``hours`` (default DS_TTL_HOURS), capped at now +
    DS_MAX_TTL_HOURS. A kept staging does not expire: nothing to extend."""
    config = load_config()
    now = now or timezone.now()
    _check_allowed(lifecycle.RowChange.EXTEND, user, staging, "its owner or an admin")
    if staging.kept:
        raise UserError(f"{staging.name} is kept: it does not expire, so there is nothing to "
                        "extend.", code=Refusal.WRONG_STATUS)
    asked = parse_hours(hours, what="extension", field_name="hours") or config.ttl_hours
    granted = min(asked, config.max_ttl_hours)
    extension = Extension(now + timedelta(hours=granted), granted, asked,
                          capped=asked > config.max_ttl_hours)
    starts_from = sorted(lifecycle.row_change(lifecycle.RowChange.EXTEND).starts_from)
    with transaction.atomic():
        if not Staging.objects.filter(pk=staging.pk, kept=False,
                                      status__in=starts_from).update(
                expires_at=extension.expires_at, expiry_warned_hours=None, updated_at=now):
            raise UserError(f"{staging.name} changed meanwhile (kept, or being destroyed): "
                            "look again.", code=Refusal.WRONG_STATUS)
        audit.record(AuditAction.EXTEND, actor=user, staging=staging, channel=channel,
                     detail=f"until {utc_text(extension.expires_at)} ({granted:g} h"
                            f"{', capped at DS_MAX_TTL_HOURS' if extension.capped else ''})")
    staging.expires_at, staging.expiry_warned_hours = extension.expires_at, None
    return extension


def set_kept(staging: Staging, *, user: AbstractBaseUser, kept: bool = True,
             now: datetime | None = None) -> bool:
    """Keep the staging without expiry (admins only), or stop keeping it: it then expires a
    full TTL from now. False when it already was as asked (nothing recorded)."""
    now = now or timezone.now()
    _check_allowed(lifecycle.RowChange.KEEP, user, staging, "an admin")
    fields = ({"kept": True, "expires_at": None} if kept
              else {"kept": False, "expires_at": expiry_after(now, staging.ttl_hours)})
    starts_from = sorted(lifecycle.row_change(lifecycle.RowChange.KEEP).starts_from)
    with transaction.atomic():
        if not Staging.objects.filter(pk=staging.pk, kept=not kept,
                                      status__in=starts_from).update(
                expiry_warned_hours=None, updated_at=now, **fields):
            return False
        detail = ("no expiry" if kept else f"expires at {utc_text(fields['expires_at'])}")
        audit.record(AuditAction.KEEP if kept else AuditAction.KEEP_OFF, actor=user,
                     staging=staging, detail=detail)
    staging.kept, staging.expires_at = fields["kept"], fields["expires_at"]
    return True


# --- what the pages show ------------------------------------------------------------------

@dataclass(frozen=True)
class ExpiryView:
    """A staging's end as a page shows it: a countdown, and the warning window it is in."""

    kept: bool
    expires_at: datetime | None
    seconds_left: float | None
    warning_hours: float | None  # the smallest DS_EXPIRY_WARN_HOURS window it is inside

    @property
    def warned(self) -> bool:
        return self.warning_hours is not None


def warning_window(expires_at: datetime | None, now: datetime,
                   windows: tuple[float, ...]) -> float | None:
    """The smallest warning window (hours) the time left is inside, or None."""
    if expires_at is None:
        return None
    hours_left = (expires_at - now).total_seconds() / 3600
    inside = [window for window in windows if hours_left <= window]
    return min(inside) if inside else None


def expiry_of(staging: Staging, now: datetime | None = None,
              config: EngineConfig | None = None) -> ExpiryView | None:
    """None for a destroyed staging (it has no end to count down to)."""
    if not staging.is_live:
        return None
    now = now or timezone.now()
    windows = (config or load_config()).expiry_warn_hours
    expires_at = None if staging.kept else staging.expires_at
    left = (expires_at - now).total_seconds() if expires_at else None
    return ExpiryView(staging.kept, expires_at, left, warning_window(expires_at, now, windows))


# --- the every-minute check ---------------------------------------------------------------

@dataclass
class ExpiryCheck:
    """What one run of the check did, by staging name."""

    destroying: list[str] = field(default_factory=list)
    busy: list[str] = field(default_factory=list)  # expired, an operation in flight
    failed_destroy: list[str] = field(default_factory=list)  # expired, last destroy failed
    warned: list[str] = field(default_factory=list)
    given_expiry: int = 0  # live stagings found without one (made before expiry existed)

    def summary(self) -> str:
        parts = []
        if self.destroying:
            parts.append(f"destroying {len(self.destroying)} expired: "
                         + ", ".join(self.destroying))
        if self.busy:
            parts.append("expired but busy until their operation ends: " + ", ".join(self.busy))
        if self.failed_destroy:
            parts.append("expired, last destroy failed (destroy by hand): "
                         + ", ".join(self.failed_destroy))
        if self.warned:
            parts.append("warned: " + ", ".join(self.warned))
        if self.given_expiry:
            parts.append(f"gave {self.given_expiry} staging(s) without one an expiry")
        return "; ".join(parts) or "nothing expired"


def give_missing_expiry(now: datetime, config: EngineConfig) -> int:
    """Stagings made before expiry existed have none: they get DS_TTL_HOURS from now."""
    return Staging.objects.live().filter(kept=False, expires_at__isnull=True).update(
        expires_at=now + timedelta(hours=lifetime_hours(None, config)), updated_at=now)


def announce_warnings(now: datetime, config: EngineConfig) -> list[str]:
    """Send ``expiry_warning`` for each staging that entered a warning window it was not
    warned of yet (the smallest it is in: a check that missed the 24-hour mark and finds one
    hour left sends only that one). A conditional update per staging: once, on one node."""
    windows = config.expiry_warn_hours
    if not windows:
        return []
    due = Staging.objects.live().filter(
        kept=False, expires_at__gt=now, expires_at__lte=now + timedelta(hours=max(windows)))
    warned = []
    for pk, name, expires_at, already in due.values_list(
            "pk", "name", "expires_at", "expiry_warned_hours"):
        window = warning_window(expires_at, now, windows)
        if window is not None and announce_window(pk, expires_at, already, window):
            warned.append(name)
    return warned


def announce_window(staging_id: int, expires_at: datetime, already: float | None,
                    window: float) -> bool:
    """Mark the window announced and send the signal, if the row still is as it was read
    (``already``: the window announced before): so once, whichever node gets there first."""
    if already is not None and already <= window:
        return False
    unchanged = (Q(expiry_warned_hours__isnull=True) if already is None
                 else Q(expiry_warned_hours=already))
    if not Staging.objects.filter(unchanged, pk=staging_id, expires_at=expires_at).update(
            expiry_warned_hours=window):
        return False
    signals.expiry_warned(staging_id=staging_id, window_hours=window, expires_at=expires_at)
    return True


def _last_destroy_failed(staging: Staging) -> bool:
    """The expiry's own destroy (or anyone's) failed: trying again every minute would only
    pile up failed destroys; the staging's page shows what failed."""
    last = staging.latest_operation()
    return bool(last and last.kind == OperationKind.DESTROY
                and last.status == OperationStatus.FAILED)


def destroy_expired(now: datetime, result: ExpiryCheck) -> None:
    from .operations import request_expiry_destroy

    destroy = lifecycle.rules_for(OperationKind.DESTROY)
    expired = (Staging.objects.live().filter(kept=False, expires_at__lte=now)
               .order_by("expires_at", "pk"))
    for staging in expired:
        if staging.status not in destroy.starts_from:
            continue
        in_flight = Operation.objects.unfinished().filter(staging=staging).exists()
        if staging.is_busy or in_flight:
            result.busy.append(staging.name)
        elif _last_destroy_failed(staging):
            result.failed_destroy.append(staging.name)
        elif request_expiry_destroy(staging, system=EXPIRY, now=now):
            result.destroying.append(staging.name)


def check(now: datetime | None = None) -> ExpiryCheck:
    """One run of the every-minute check (tasks.expire_stagings)."""
    now = now or timezone.now()
    config = load_config()
    result = ExpiryCheck()
    result.given_expiry = give_missing_expiry(now, config)
    result.warned = announce_warnings(now, config)
    destroy_expired(now, result)
    return result
