"""Requests to create, redeploy or destroy a staging: validate, write the rows, enqueue.

Everything a user can get wrong is checked here, before any AWS resource is made, and comes
back as a UserError with one sentence (and the form field it is about).
"""

import re
from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from . import audit, lifecycle, tasks
from .aws import elbv2, rds
from .config import EngineConfig, load_config
from .errors import UserError
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
from .names import InvalidName, invisible_character, name_for_branch, validate_name
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


def _check_name_free(name: str) -> None:
    holder = Staging.objects.holding_names().filter(name=name).only("status").first()
    if holder is not None and holder.is_lost:
        raise UserError(f"The name {name!r} is held by a lost staging (AWS no longer has its "
                        "resources): destroy it first, or recreate it.", field="name")
    if holder is not None:
        raise UserError(f"The name {name!r} is taken by a live staging; choose another.",
                        field="name")


def _check_caps(owner: AbstractBaseUser) -> None:
    config = load_config()
    live = Staging.objects.live()
    total_cap = config.max_live_stagings
    if live.count() >= total_cap:
        raise UserError(f"There are already {total_cap} live stagings, the most allowed: "
                        "destroy one first.")
    user_cap = config.max_live_per_user
    if live.filter(owner_id=owner.pk).count() >= user_cap:
        raise UserError(f"You already have {user_cap} live stagings, the most allowed per "
                        "person: destroy one first.")
    _check_inflight(owner)


def _check_inflight(user: AbstractBaseUser) -> None:
    """One person's operations in flight are bounded, so nobody fills the account's AWS rate
    limits (and the queue) for everyone else. Destroys are never refused: they end costs."""
    cap = load_config().max_inflight_per_user
    running = Operation.objects.unfinished().filter(requested_by_id=user.pk).exclude(
        kind=OperationKind.DESTROY).count()
    if running >= cap:
        raise UserError(f"You already have {running} operations under way, the most allowed "
                        f"per person ({cap}): wait until one of them is finished.")


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
    """A staging adds one rule and one target group to the load balancer; both quotas are
    per load balancer (across all its listeners) and cannot be raised."""
    usage = elbv2.load_balancer_usage(listener_arn=config.listener_arn)
    if usage.rules + 1 > elbv2.MAX_RULES_PER_ALB:
        raise UserError(
            f"The load balancer holds {usage.rules} rules across its listeners, and AWS allows "
            f"{elbv2.MAX_RULES_PER_ALB} (quota \"Rules per Application Load Balancer\"): "
            "destroy a staging first.")
    if usage.target_groups + 1 > elbv2.MAX_TARGET_GROUPS_PER_ALB:
        raise UserError(
            f"The load balancer has {usage.target_groups} target groups, and AWS allows "
            f"{elbv2.MAX_TARGET_GROUPS_PER_ALB} (quota \"Target Groups per Application Load "
            "Balancer\"): destroy a staging first.")


def _check_database_quota(source: str) -> None:
    """A dedicated create restores one more DB instance, unless a warm one is ready for it."""
    if PoolDatabase.objects.filter(source=source, status=PoolStatus.READY).exists():
        return
    quota = rds.instance_quota()
    if quota.used + 1 > quota.maximum:
        raise UserError(
            f"The account already has {quota.used} DB instances in this region, and its quota "
            f"(\"DB instances\") allows {quota.maximum}: destroy a staging with a dedicated "
            "database, choose a shared database, or ask for a higher quota.", field="db_mode")


def _check_configuration(config: EngineConfig, source: str, db_mode: str) -> None:
    """Settings without which this create cannot work, named before anything is made."""
    if not config.listener_arn:
        raise UserError("DS_LISTENER_ARN is not set: the dashboard does not know which load "
                        "balancer listener serves the stagings (see `ds doctor`).")
    if (db_mode == DbMode.DEDICATED and config.needs_host_password(source)
            and not config.host_db_password_secret):
        raise UserError(
            f"A database restored from {source} keeps that source's master password, and "
            "neither DS_HOST_DB_PASSWORD_SECRET (the host's password, given to the database) "
            f"nor a DS_SOURCE_DB_SECRETS entry for {source} is set: ask an operator to set one "
            "(see `ds doctor`).", field="source")


def _create_detail(staging: Staging) -> str:
    database = (f"dedicated database from {staging.snapshot_id}"
                if staging.db_mode == DbMode.DEDICATED else "shared database")
    return f"branch {staging.branch}, image {staging.image_tag}, {database}"


def _save_new_staging(staging: Staging, user: AbstractBaseUser) -> Staging:
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
            audit.record(AuditAction.CREATE, actor=user, staging=staging,
                         detail=_create_detail(staging))
            transaction.on_commit(lambda: tasks.enqueue_operation(operation.pk))
    except IntegrityError as exc:
        raise UserError(f"The name {staging.name!r} is taken by a live staging; choose another.",
                        field="name") from exc
    return staging


def request_create(
    *, branch: str, owner: AbstractBaseUser, name: str | None = None,
    source: str | None = None, db_mode: str = DbMode.DEDICATED,
) -> Staging:
    config = load_config()
    branch = validate_branch(branch)
    name = derive_name(branch, name)
    if db_mode not in DbMode.values:
        raise UserError(f"Unknown DB mode {db_mode!r}; use dedicated or shared.", field="db_mode")
    source = source or config.host_db_instance
    if db_mode == DbMode.SHARED and source != config.host_db_instance:
        raise UserError("A shared database is the host's own; choose a dedicated database to "
                        "restore from another source.", field="source")
    _check_source(config, source)
    _check_configuration(config, source, db_mode)
    _check_name_free(name)
    _check_caps(owner)
    snapshot_id = ""
    if db_mode == DbMode.DEDICATED:
        snapshot_id = _newest_snapshot(config, source)
        _check_database_quota(source)
    image = resolve_image(config, branch=branch)
    _check_load_balancer_room(config)
    staging = Staging(name=name, branch=branch, source=source, snapshot_id=snapshot_id,
                      db_mode=db_mode, owner=owner, image=image.uri, image_tag=image.tag)
    return _save_new_staging(staging, owner)


def _start(staging: Staging, kind: str, user: AbstractBaseUser, params: dict) -> Operation:
    with transaction.atomic():
        operation = Operation.objects.create(
            staging=staging, kind=kind, requested_by=user, params=params
        )
        audit.record(kind, actor=user, staging=staging,
                     detail=f"image {params['tag']}" if params.get("tag") else "")
        # Show the change at once, not only when a worker picks the operation up.
        Staging.objects.filter(pk=staging.pk).update(
            status=lifecycle.rules_for(kind).working_status, updated_at=timezone.now()
        )
        transaction.on_commit(lambda: tasks.enqueue_operation(operation.pk))
    return operation


def request_redeploy(staging: Staging, *, user: AbstractBaseUser,
                     tag: str | None = None) -> Operation:
    last = staging.latest_operation()
    if not lifecycle.rules_for(OperationKind.REDEPLOY).accepts(staging, last and last.kind):
        raise UserError(f"{staging.name} is {staging.status}; only a ready staging (or one "
                        "whose redeploy failed) can be redeployed.")
    _check_inflight(user)
    image = resolve_image(load_config(), branch=staging.branch, tag=tag or None)
    try:
        return _start(staging, OperationKind.REDEPLOY, user, {"tag": image.tag})
    except IntegrityError as exc:
        raise UserError(f"{staging.name} is busy with another operation.") from exc


def _newest_snapshot(config: EngineConfig, source: str) -> str:
    info = source_info(config, source)
    if info.newest_snapshot is None:
        raise UserError(f"The source {source!r} has no available snapshot yet.", field="source")
    return info.newest_snapshot.identifier


def request_recreate(staging: Staging, *, user: AbstractBaseUser) -> Operation:
    """Make a lost staging again in place: a create of the same row (its name, branch,
    source and database mode) with the branch's image and, for a dedicated database, the
    source's newest available snapshot as they are now. Checked like a create."""
    if staging.status not in lifecycle.RECREATABLE_STATUSES:
        raise UserError(f"{staging.name} is {staging.status}; only a lost staging can be "
                        "recreated.")
    config = load_config()
    _check_source(config, staging.source)
    _check_configuration(config, staging.source, staging.db_mode)
    live = Staging.objects.live()
    if live.count() >= config.max_live_stagings:
        raise UserError(f"There are already {config.max_live_stagings} live stagings, the "
                        "most allowed: destroy one first.")
    if live.filter(owner_id=staging.owner_id).count() >= config.max_live_per_user:
        raise UserError(f"{staging.owner.get_username()} already has "
                        f"{config.max_live_per_user} live stagings, the most allowed per "
                        "person: destroy one first.")
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
            raise UserError(f"{staging.name} changed meanwhile; look again.")
        staging.refresh_from_db()
        operation = Operation.objects.create(staging=staging, kind=OperationKind.CREATE,
                                             requested_by=user)
        audit.record(AuditAction.RECREATE, actor=user, staging=staging,
                     detail=_create_detail(staging))
        transaction.on_commit(lambda: tasks.enqueue_operation(operation.pk))
    return operation


def request_destroy(staging: Staging, *, user: AbstractBaseUser) -> Operation:
    """Start a teardown, superseding a create or redeploy still running. A destroy already
    under way is returned as it is: two clicks make one teardown."""
    if staging.status == StagingStatus.DESTROYED:
        raise UserError(f"{staging.name} is already destroyed.")
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
        return _start(staging, OperationKind.DESTROY, user, {})
    except IntegrityError:
        existing = unfinished.filter(kind=OperationKind.DESTROY).first()
        if existing is None:
            raise
        return existing


def may_act(user: AbstractBaseUser, staging: Staging) -> bool:
    """Whether ``user`` may redeploy or destroy the staging (the lifecycle registry's rule)."""
    return lifecycle.rules_for(OperationKind.DESTROY).may_start(user, staging)
