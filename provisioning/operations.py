"""Requests to create, redeploy, destroy or recreate a staging: validate, write the rows,
enqueue.

Everything a user can get wrong is checked here, before any AWS resource is made, and comes
back as a UserError with one sentence (and the form field it is about).

Each request is recorded on the audit trail with the channel it came through: the dashboard's
pages unless the entry point says otherwise (the ``ds`` command, the JSON API).
"""

import re
from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from . import audit, expiry, lifecycle, tasks
from .aws import elbv2, rds
from .branches import live_staging_of_branch, resolve_branch
from .config import EngineConfig, load_config
from .errors import BranchHasStaging, NotAllowed, Refusal, UserError
from .models import (
    AuditAction,
    DbMode,
    Operation,
    OperationKind,
    OperationStatus,
    PoolDatabase,
    PoolStatus,
    Staging,
    StagingStatus,
)
from .names import (
    InvalidName,
    ResourceNames,
    invisible_character,
    name_for_branch,
    validate_name,
)
from .runner import stop_waiting_steps
from .steps.image import resolve_image

MAX_BRANCH_LENGTH = 255
# What `git check-ref-format --branch` refuses, in one pattern: control characters, space and
# ~^:?*[\, "..", "@{", "//", a leading "-" or "/", a trailing "/" or ".", a path component that
# starts with "." or ends with ".lock", and "HEAD".
_BAD_BRANCH = re.compile(
    r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{|//|^[-/]|/$|\.$|(?:^|/)\.|\.lock(?:/|$)|^HEAD$"
)


@dataclass(frozen=True)
class SourceInfo:
    instance_id: str
    is_host: bool
    newest_snapshot: rds.Snapshot | None

    @property
    def snapshot_taken_at(self) -> datetime | None:
        return self.newest_snapshot.created_at if self.newest_snapshot else None


def validate_branch(branch: str) -> str:
    if not branch or not branch.strip():
        raise UserError("Give a branch name.", field="branch")
    if len(branch) > MAX_BRANCH_LENGTH:
        raise UserError(f"A branch name has at most {MAX_BRANCH_LENGTH} characters.",
                        field="branch")
    if invisible := invisible_character(branch):
        raise UserError(f"The branch name contains an invisible or control character "
                        f"({invisible}); remove it.", field="branch")
    if branch == "@" or _BAD_BRANCH.search(branch):
        raise UserError(f"{branch!r} is not a valid git branch name.", field="branch")
    return branch


def derive_name(branch: str, name: str | None = None) -> str:
    """The staging name to use: the given one if valid, else the one derived from the branch."""
    if not name:
        return name_for_branch(validate_branch(branch))
    try:
        return validate_name(name)
    except InvalidName as exc:
        raise UserError(str(exc), field="name") from exc


def _name_taken(name: str) -> UserError:
    return UserError(f"The name {name!r} is taken by a live staging; choose another.",
                     field="name", code=Refusal.NAME_TAKEN)


def _check_name_free(name: str) -> None:
    holder = Staging.objects.holding_names().filter(name=name).only("status").first()
    if holder is not None and holder.is_lost:
        raise UserError(f"The name {name!r} is held by a lost staging (AWS no longer has its "
                        "resources): destroy it first, or recreate it.", field="name",
                        code=Refusal.NAME_TAKEN)
    if holder is not None:
        raise _name_taken(name)


def _check_branch_free(branch: str) -> None:
    """One live staging per branch, unless a second one is named on purpose (the caller
    skips this when a name was given)."""
    if existing := live_staging_of_branch(branch):
        raise BranchHasStaging(branch, existing)


@dataclass(frozen=True)
class CreateAllowance:
    """How much of the caps a person has used: what the create page shows before the form is
    filled, and what a create is refused by."""

    operations: int  # their creates and redeploys under way
    operations_cap: int
    mine: int  # their live stagings
    mine_cap: int
    fleet: int  # everybody's live stagings
    fleet_cap: int

    @property
    def refusal_code(self) -> Refusal:
        if self.fleet >= self.fleet_cap or self.mine >= self.mine_cap:
            return Refusal.LIMIT_REACHED
        return Refusal.TOO_MANY_IN_FLIGHT

    @property
    def refusal(self) -> str | None:
        """Why a create would be refused now, or None."""
        if self.fleet >= self.fleet_cap:
            return (f"There are already {self.fleet_cap} live stagings, the most allowed: "
                    "destroy one first.")
        if self.mine >= self.mine_cap:
            return (f"You already have {self.mine_cap} live stagings, the most allowed per "
                    "person: destroy one first.")
        return _inflight_refusal(self.operations, self.operations_cap)


def _inflight_refusal(running: int, cap: int) -> str | None:
    if running < cap:
        return None
    return (f"You already have {running} operations under way, the most allowed per person "
            f"({cap}): wait until one of them is finished.")


def _operations_under_way(user: AbstractBaseUser) -> int:
    return Operation.objects.unfinished().filter(requested_by_id=user.pk).exclude(
        kind=OperationKind.DESTROY).count()


def create_allowance(user: AbstractBaseUser) -> CreateAllowance:
    config = load_config()
    live = Staging.objects.live()
    return CreateAllowance(
        operations=_operations_under_way(user), operations_cap=config.max_inflight_per_user,
        mine=live.filter(owner_id=user.pk).count(), mine_cap=config.max_live_per_user,
        fleet=live.count(), fleet_cap=config.max_live_stagings,
    )


def _check_caps(owner: AbstractBaseUser) -> None:
    allowance = create_allowance(owner)
    if refusal := allowance.refusal:
        raise UserError(refusal, code=allowance.refusal_code)


def _check_inflight(user: AbstractBaseUser) -> None:
    """One person's operations in flight are bounded, so nobody fills the account's AWS rate
    limits (and the queue) for everyone else. Destroys are never refused: they end costs."""
    if refusal := _inflight_refusal(_operations_under_way(user),
                                    load_config().max_inflight_per_user):
        raise UserError(refusal, code=Refusal.TOO_MANY_IN_FLIGHT)


def _check_source(config: EngineConfig, source: str) -> None:
    if source not in config.snapshot_sources:
        allowed = ", ".join(config.snapshot_sources)
        raise UserError(f"Unknown snapshot source {source!r}; allowed: {allowed}.",
                        field="source")


def source_info(config: EngineConfig, source: str) -> SourceInfo:
    snapshot = rds.newest_available_snapshot(rds.list_snapshots(instance_id=source))
    return SourceInfo(source, source == config.host_db_instance, snapshot)


def list_sources() -> list[SourceInfo]:
    config = load_config()
    return [source_info(config, source) for source in config.snapshot_sources]


def _check_load_balancer_room(config: EngineConfig) -> None:
    """A staging adds one target group and one rule, two with a bypass rule, to the load
    balancer; both quotas are per load balancer (across all its listeners) and cannot be
    raised."""
    usage = elbv2.load_balancer_usage(listener_arn=config.listener_arn)
    needed = config.rules_per_staging
    if usage.rules + needed > elbv2.MAX_RULES_PER_ALB:
        raise UserError(
            f"The load balancer holds {usage.rules} rules across its listeners, a staging "
            f"needs {needed}, and AWS allows {elbv2.MAX_RULES_PER_ALB} (quota \"Rules per "
            "Application Load Balancer\"): destroy a staging first.", code=Refusal.LIMIT_REACHED)
    if usage.target_groups + 1 > elbv2.MAX_TARGET_GROUPS_PER_ALB:
        raise UserError(
            f"The load balancer has {usage.target_groups} target groups, and AWS allows "
            f"{elbv2.MAX_TARGET_GROUPS_PER_ALB} (quota \"Target Groups per Application Load "
            "Balancer\"): destroy a staging first.", code=Refusal.LIMIT_REACHED)


def _check_database_quota(source: str) -> None:
    """A dedicated create restores one more DB instance, unless a warm one is ready for it."""
    if PoolDatabase.objects.filter(source=source, status=PoolStatus.READY).exists():
        return
    quota = rds.instance_quota()
    if quota.used + 1 > quota.maximum:
        raise UserError(
            f"The account already has {quota.used} DB instances in this region, and its quota "
            f"(\"DB instances\") allows {quota.maximum}: destroy a staging with a dedicated "
            "database, choose a shared database, or ask for a higher quota.", field="db_mode",
            code=Refusal.LIMIT_REACHED)


def _check_configuration(config: EngineConfig, source: str, db_mode: str) -> None:
    """Settings without which this create cannot work, named before anything is made."""
    if not config.listener_arn:
        raise UserError("DS_LISTENER_ARN is not set: the dashboard does not know which load "
                        "balancer listener serves the stagings (see `ds doctor`).",
                        code=Refusal.NOT_CONFIGURED)
    if (db_mode == DbMode.DEDICATED and config.needs_host_password(source)
            and not config.host_db_password_secret):
        raise UserError(
            f"A database restored from {source} keeps that source's master password, and "
            "neither DS_HOST_DB_PASSWORD_SECRET (the host's password, given to the database) "
            f"nor a DS_SOURCE_DB_SECRETS entry for {source} is set: ask an operator to set one "
            "(see `ds doctor`).", field="source", code=Refusal.NOT_CONFIGURED)


def _check_staging_sign_in(config: EngineConfig) -> None:
    """DS_STAGING_AUTH=oidc needs its settings and an HTTPS listener: the load balancer
    refuses an authenticate action on any other (it would fail at the rule, after a target
    group was made)."""
    if not config.stagings_need_sign_in:
        return
    missing = config.staging_oidc.missing()
    if missing:
        raise UserError(f"DS_STAGING_AUTH=oidc needs {', '.join(missing)}: ask an operator to "
                        "set them (see `ds doctor`).")
    listener = elbv2.describe_listener(listener_arn=config.listener_arn)
    if listener is not None and listener.protocol != "HTTPS":
        raise UserError(
            f"DS_STAGING_AUTH=oidc signs people in at the load balancer, which it does only on "
            f"an HTTPS listener, and DS_LISTENER_ARN is {listener.protocol}:{listener.port}: "
            "ask an operator to move the stagings to an HTTPS listener (see `ds doctor`).")


def _create_detail(staging: Staging) -> str:
    database = (f"dedicated database from {staging.snapshot_id}"
                if staging.db_mode == DbMode.DEDICATED else "shared database")
    return f"branch {staging.branch}, image {staging.image_tag}, {database}"


def _save_new_staging(staging: Staging, user: AbstractBaseUser, *, named: bool,
                      action: str = AuditAction.CREATE, detail: str = "",
                      channel: audit.Channel = audit.WEB) -> Staging:
    try:
        with transaction.atomic():
            # Again inside the transaction: requests racing past the early check are counted
            # here (SQLite serialises these transactions; on PostgreSQL the owner's row lock
            # serialises one person's requests, the total may overshoot by a racing few).
            get_user_model().objects.select_for_update().filter(pk=user.pk).first()
            _check_caps(user)
            staging.save()
            operation = Operation.objects.create(
                staging=staging, kind=OperationKind.CREATE, requested_by=user
            )
            audit.record(action, actor=user, staging=staging,
                         detail=detail + _create_detail(staging), channel=channel)
            transaction.on_commit(lambda: tasks.enqueue_operation(operation.pk))
    except IntegrityError as exc:
        # A request racing ours for the same branch wrote its row first.
        existing = None if named else live_staging_of_branch(staging.branch)
        if existing:
            raise BranchHasStaging(staging.branch, existing) from exc
        raise _name_taken(staging.name) from exc
    return staging


def request_create(
    *, branch: str, owner: AbstractBaseUser, name: str | None = None,
    source: str | None = None, db_mode: str = DbMode.DEDICATED,
    ttl_hours: str | float | None = None, channel: audit.Channel = audit.WEB,
) -> Staging:
    """``ttl_hours``: how long it lives after this create and each redeploy (None:
    DS_TTL_HOURS); more than DS_MAX_TTL_HOURS is refused."""
    return _create(branch=branch, owner=owner, name=name, source=source, db_mode=db_mode,
                   ttl_hours=ttl_hours, channel=channel)


def _create(
    *, branch: str, owner: AbstractBaseUser, name: str | None, source: str | None,
    db_mode: str, ttl_hours: str | float | None, action: str = AuditAction.CREATE,
    detail: str = "", channel: audit.Channel = audit.WEB,
) -> Staging:
    config = load_config()
    ttl = expiry.ttl_for_create(ttl_hours, config)
    branch = resolve_branch(validate_branch(branch))
    named = bool(name)
    name = derive_name(branch, name)
    if db_mode not in DbMode.values:
        raise UserError(f"Unknown DB mode {db_mode!r}; use dedicated or shared.", field="db_mode")
    source = source or config.host_db_instance
    if db_mode == DbMode.SHARED and source != config.host_db_instance:
        raise UserError("A shared database is the host's own; choose a dedicated database to "
                        "restore from another source.", field="source")
    _check_source(config, source)
    _check_configuration(config, source, db_mode)
    if not named:
        _check_branch_free(branch)
    _check_name_free(name)
    _check_caps(owner)
    snapshot_id = ""
    if db_mode == DbMode.DEDICATED:
        snapshot_id = _newest_snapshot(config, source)
        _check_database_quota(source)
    image = resolve_image(config, branch=branch)
    _check_staging_sign_in(config)
    _check_load_balancer_room(config)
    now = timezone.now()
    staging = Staging(name=name, branch=branch, source=source, snapshot_id=snapshot_id,
                      db_mode=db_mode, owner=owner, image=image.uri, image_tag=image.tag,
                      created_at=now, ttl_hours=ttl,
                      expires_at=expiry.expiry_after(now, ttl, config))
    return _save_new_staging(staging, owner, named=named, action=action, detail=detail,
                             channel=channel)


@dataclass(frozen=True)
class CreatePreview:
    """What a create with this branch and name would make, or why it would be refused, read
    from our own records only (it answers as the user types)."""

    typed_branch: str
    branch: str = ""  # what the create is for: the typed one, or the known branch it stands for
    name: str = ""
    host: str = ""
    existing: Staging | None = None  # the branch's live staging this create would duplicate
    name_taken: bool = False
    error: str = ""

    @property
    def resolved_from_tag(self) -> bool:
        return bool(self.branch) and self.branch != self.typed_branch


def preview_create(branch: str, name: str | None = None) -> CreatePreview:
    typed, name = branch.strip(), (name or "").strip() or None
    try:
        resolved = resolve_branch(validate_branch(typed)) if typed or not name else typed
        derived = derive_name(resolved, name)
    except UserError as exc:
        return CreatePreview(typed_branch=typed, error=exc.message)
    existing = None if name or not resolved else live_staging_of_branch(resolved)
    return CreatePreview(
        typed_branch=typed, branch=resolved, name=derived,
        host=ResourceNames(derived, load_config().domain).host, existing=existing,
        name_taken=existing is None and Staging.objects.live().filter(name=derived).exists(),
    )


def _start(staging: Staging, kind: str, user: AbstractBaseUser | None, params: dict, *,
           channel: audit.Channel | None = None, system: str = "",
           detail: str = "") -> Operation:
    """Write the operation, its audit event and the staging's working status, and enqueue
    it once committed. ``system`` names the check that asked when no person did."""
    with transaction.atomic():
        operation = Operation.objects.create(
            staging=staging, kind=kind, requested_by=user, params=params
        )
        audit.record(kind, actor=user, staging=staging, system=system, channel=channel,
                     detail=detail or (f"image {params['tag']}" if params.get("tag") else ""))
        # Show the change at once, not only when a worker picks the operation up.
        Staging.objects.filter(pk=staging.pk).update(
            status=lifecycle.rules_for(kind).working_status, updated_at=timezone.now()
        )
        transaction.on_commit(lambda: tasks.enqueue_operation(operation.pk))
    return operation


def _check_may_start(kind: str, user: AbstractBaseUser, staging: Staging) -> None:
    if not lifecycle.rules_for(kind).may_start(user, staging):
        raise NotAllowed(f"Only the owner of {staging.name} ({staging.owner.get_username()}) "
                         f"or an admin may {kind} it.")


def request_redeploy(staging: Staging, *, user: AbstractBaseUser, tag: str | None = None,
                     channel: audit.Channel = audit.WEB) -> Operation:
    _check_may_start(OperationKind.REDEPLOY, user, staging)
    last = staging.latest_operation()
    if not lifecycle.rules_for(OperationKind.REDEPLOY).accepts(staging, last and last.kind):
        raise UserError(f"{staging.name} is {staging.status}; only a ready staging (or one "
                        "whose redeploy failed) can be redeployed.", code=Refusal.WRONG_STATUS)
    _check_inflight(user)
    image = resolve_image(load_config(), branch=staging.branch, tag=tag or None)
    try:
        with transaction.atomic():
            operation = _start(staging, OperationKind.REDEPLOY, user, {"tag": image.tag},
                               channel=channel)
            # A push (or a person) redeploying it shows it is in use: its life starts over.
            expiry.restart_life(staging, timezone.now())
            return operation
    except IntegrityError as exc:
        raise UserError(f"{staging.name} is busy with another operation.",
                        code=Refusal.WRONG_STATUS) from exc


def _newest_snapshot(config: EngineConfig, source: str) -> str:
    info = source_info(config, source)
    if info.newest_snapshot is None:
        raise UserError(f"The source {source!r} has no available snapshot yet.", field="source")
    return info.newest_snapshot.identifier


def _recreate_lost(staging: Staging, *, user: AbstractBaseUser,
                   channel: audit.Channel) -> Staging:
    """Make a lost staging again in place: a create of the same row (its name, branch,
    source and database mode) with the branch's image and, for a dedicated database, the
    source's newest available snapshot as they are now. Checked like a create."""
    config = load_config()
    _check_source(config, staging.source)
    _check_configuration(config, staging.source, staging.db_mode)
    live = Staging.objects.live()
    if live.count() >= config.max_live_stagings:
        raise UserError(f"There are already {config.max_live_stagings} live stagings, the "
                        "most allowed: destroy one first.", code=Refusal.LIMIT_REACHED)
    if live.filter(owner_id=staging.owner_id).count() >= config.max_live_per_user:
        raise UserError(f"{staging.owner.get_username()} already has "
                        f"{config.max_live_per_user} live stagings, the most allowed per "
                        "person: destroy one first.", code=Refusal.LIMIT_REACHED)
    _check_inflight(user)
    snapshot_id = ""
    if staging.db_mode == DbMode.DEDICATED:
        snapshot_id = _newest_snapshot(config, staging.source)
        _check_database_quota(staging.source)
    image = resolve_image(config, branch=staging.branch)
    _check_load_balancer_room(config)
    rules = lifecycle.rules_for(OperationKind.CREATE)
    with transaction.atomic():
        # What belonged to the lost resources goes; the account id stays, so the account step
        # removes that account before it makes a new one.
        reset = Staging.objects.filter(pk=staging.pk, status=StagingStatus.LOST).update(
            status=rules.working_status, image=image.uri, image_tag=image.tag,
            snapshot_id=snapshot_id, db_instance="", url="", error="", ready_at=None,
            lost_at=None, login_username="", login_url="", login_secret_arn="",
            updated_at=timezone.now())
        if not reset:
            raise UserError(f"{staging.name} changed meanwhile; look again.",
                            code=Refusal.WRONG_STATUS)
        staging.refresh_from_db()
        operation = Operation.objects.create(staging=staging, kind=OperationKind.CREATE,
                                             requested_by=user)
        audit.record(AuditAction.RECREATE, actor=user, staging=staging, channel=channel,
                     detail="in place, its resources lost; " + _create_detail(staging))
        transaction.on_commit(lambda: tasks.enqueue_operation(operation.pk))
    return staging


def request_destroy(staging: Staging, *, user: AbstractBaseUser,
                    channel: audit.Channel = audit.WEB) -> Operation:
    """Start a teardown, superseding a create or redeploy still running. A destroy already
    under way is returned as it is: two clicks make one teardown."""
    _check_may_start(OperationKind.DESTROY, user, staging)
    if staging.status == StagingStatus.DESTROYED:
        raise UserError(f"{staging.name} is already destroyed.", code=Refusal.WRONG_STATUS)
    unfinished = Operation.objects.unfinished().filter(staging=staging)
    running_destroy = unfinished.filter(kind=OperationKind.DESTROY).first()
    if running_destroy:
        # Another click on the same teardown: nothing new was asked, so nothing to record.
        return running_destroy
    superseded = list(unfinished.exclude(kind=OperationKind.DESTROY).values_list("pk", flat=True))
    unfinished.filter(pk__in=superseded).update(
        status=OperationStatus.FAILED, error="Superseded by a destroy.",
        finished_at=timezone.now(), wake_at=None,
    )
    for operation_id in superseded:
        stop_waiting_steps(operation_id)
    try:
        return _start(staging, OperationKind.DESTROY, user, {}, channel=channel)
    except IntegrityError:
        existing = unfinished.filter(kind=OperationKind.DESTROY).first()
        if existing is None:
            raise
        return existing


def may_act(user: AbstractBaseUser, staging: Staging) -> bool:
    """Whether ``user`` may redeploy or destroy the staging (the lifecycle registry's rule)."""
    return lifecycle.rules_for(OperationKind.DESTROY).may_start(user, staging)


def may_redeploy(user: AbstractBaseUser, staging: Staging) -> bool:
    """Whether a redeploy by ``user`` would be accepted now (who, and from which status)."""
    rules = lifecycle.rules_for(OperationKind.REDEPLOY)
    if not rules.may_start(user, staging):
        return False
    last = staging.latest_operation()
    return rules.accepts(staging, last and last.kind)


def request_expiry_destroy(staging: Staging, *, system: str, now: datetime) -> Operation | None:
    """The expiry check's destroy of a staging it read as expired, settled and idle. Only if
    that still holds when written: one conditional update on the status and expiry that were
    read (a redeploy or an extension meanwhile wins; a second node running the check finds
    nothing to do), and the one-unfinished-operation constraint against a request racing it.
    None when it did not start."""
    try:
        with transaction.atomic():
            if not Staging.objects.filter(
                    pk=staging.pk, status=staging.status, kept=False,
                    expires_at=staging.expires_at, expires_at__lte=now).update(updated_at=now):
                return None
            if Operation.objects.unfinished().filter(staging=staging).exists():
                raise _StartedMeanwhile
            return _start(staging, OperationKind.DESTROY, None, {}, system=system,
                          detail=f"expired at {expiry.utc_text(staging.expires_at)}")
    except (IntegrityError, _StartedMeanwhile):
        return None


class _StartedMeanwhile(Exception):
    """Another operation was requested between the check's read and its write."""


def request_recreate(staging: Staging, *, user: AbstractBaseUser,
                     channel: audit.Channel = audit.WEB) -> Staging:
    """A staging made again with its branch (newest image), source (newest snapshot), DB mode
    and name: a lost one in place (it keeps its owner), a destroyed one as a new staging of
    its name and TTL, owned by whoever asks."""
    rules = lifecycle.row_change(lifecycle.RowChange.RECREATE)
    if not rules.may_start(user, staging):
        raise NotAllowed(f"Only the owner of {staging.name} or an admin may recreate it.")
    if not rules.accepts(staging):
        raise UserError(f"{staging.name} is {staging.status}: only a destroyed or lost staging "
                        "can be recreated.", code=Refusal.WRONG_STATUS)
    if staging.is_lost:
        return _recreate_lost(staging, user=user, channel=channel)
    live = Staging.objects.live().filter(name=staging.name).select_related("owner").first()
    if live is not None:
        raise UserError(f"The name {staging.name!r} is live again (a staging of "
                        f"{live.owner.get_username()}, {live.status}): open that one, or "
                        "destroy it first.", code=Refusal.NAME_TAKEN)
    config = load_config()
    ttl = None if staging.ttl_hours is None else min(staging.ttl_hours, config.max_ttl_hours)
    return _create(branch=staging.branch, owner=user, name=staging.name,
                   source=staging.source, db_mode=staging.db_mode, ttl_hours=ttl,
                   action=AuditAction.RECREATE, channel=channel,
                   detail=f"again as staging #{staging.pk} was; ")
