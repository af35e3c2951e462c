"""The lifecycle registry: for each operation kind, everything the rest of the product asks
about it, in one place.

* its plan (the step graph, in steps/),
* the staging's status while it runs, after it succeeds and after it fails,
* the statuses it may start from,
* who may start it,
* how long its steps usually take on real AWS (the sandbox's latency profile cites the
  sources), for estimates before this installation has measured its own; ``expected_seconds``
  scales them to the AWS in use (the sandbox runs faster).

Beside the operation kinds, the changes that are a row update rather than a graph of steps
(extend, keep, recreate from the history) have their rules here too: who may make them and
from which statuses (ROW_CHANGES).

Adding an operation kind is one entry here plus its steps module. The runner, the requests
(operations.py), the progress estimate, the fleet, costs and the benchmarks ask this module;
none keeps its own copy of these rules.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

from django.contrib.auth.models import AbstractBaseUser

from .models import Operation, OperationKind, Staging, StagingStatus
from .stepkit import StepSpec
from .steps import create_plan, destroy_plan, redeploy_plan


def owner_or_staff(user: AbstractBaseUser, staging: Staging) -> bool:
    return bool(user.is_authenticated and (user.is_staff or staging.owner_id == user.pk))


def staff_only(user: AbstractBaseUser, staging: Staging) -> bool:
    return bool(user.is_authenticated and user.is_staff)


@dataclass(frozen=True)
class KindRules:
    kind: str
    plan: Callable[[Operation], list[StepSpec]]
    working_status: str
    success_status: str
    failure_status: str
    # Statuses of the staging from which a request of this kind is accepted.
    starts_from: frozenset[str]
    may_start: Callable[[AbstractBaseUser, Staging], bool] = owner_or_staff
    # Also accepted from ``failure_status`` when the staging's last operation was of this kind
    # (a failed redeploy may be tried again; a failed create may not: destroy it).
    retry_after_own_failure: bool = False
    # The staging's timestamp set when the operation succeeds ("ready_at", "destroyed_at").
    success_stamp: str = ""
    # After a failed step: stop the others (a create, a redeploy), or go on with whatever
    # does not depend on it, so as little as possible is left (a destroy).
    stop_on_failure: bool = True
    # Started before every other kind waiting in the queue (see fairness.py): a destroy ends
    # costs and never waits behind somebody's creates.
    jumps_queue: bool = False
    typical_seconds: dict[str, float] = field(default_factory=dict)

    def expected_seconds(self, scale: float) -> dict[str, float]:
        """Each step's usual duration on an AWS that takes ``scale`` times as long as the
        real one (the sandbox's delay scale; 1 on AWS)."""
        return {key: seconds * scale for key, seconds in self.typical_seconds.items()}

    def accepts(self, staging: Staging, last_kind: str | None) -> bool:
        if staging.status in self.starts_from:
            return True
        return (self.retry_after_own_failure and staging.status == self.failure_status
                and last_kind == self.kind)


LIVE_STATUSES = frozenset(set(StagingStatus.values) - {StagingStatus.DESTROYED,
                                                      StagingStatus.LOST})
# A lost staging (AWS no longer has its resources, see reconcile.py) neither costs nor counts
# as live, but keeps its name until a destroy finishes its bookkeeping, or is made again in
# place (a create of the same row: recreate).
NAME_HOLDING_STATUSES = LIVE_STATUSES | {StagingStatus.LOST}
# Made again by a recreate: a lost one in place, a destroyed one as a new staging of its name.
RECREATABLE_STATUSES = frozenset({StagingStatus.LOST, StagingStatus.DESTROYED})
# What the reconcile may find lost: a staging no operation runs for, that was ready once (so
# it had all its resources). A create that failed before that is left to its destroy.
JUDGED_STATUSES = frozenset({StagingStatus.READY, StagingStatus.FAILED})

KINDS: dict[str, KindRules] = {
    OperationKind.CREATE: KindRules(
        kind=OperationKind.CREATE, plan=create_plan,
        working_status=StagingStatus.PROVISIONING, success_status=StagingStatus.READY,
        failure_status=StagingStatus.FAILED, starts_from=frozenset({StagingStatus.PENDING}),
        success_stamp="ready_at",
        typical_seconds={
            "image": 2, "account_token": 2, "database": 600, "db_credentials": 90,
            "web_task_definition": 2, "worker_task_definition": 2, "target_group": 2,
            "listener_rule": 2, "web_service": 5, "worker_service": 5, "web_healthy": 120,
            "worker_steady": 60, "account": 5, "report": 1, "bypass_token": 1,
        },
    ),
    OperationKind.REDEPLOY: KindRules(
        kind=OperationKind.REDEPLOY, plan=redeploy_plan,
        working_status=StagingStatus.UPDATING, success_status=StagingStatus.READY,
        failure_status=StagingStatus.FAILED, starts_from=frozenset({StagingStatus.READY}),
        retry_after_own_failure=True,
        # A rolling update with the stagings' short deregistration delay: 2-3 min.
        typical_seconds={
            "image": 2, "account_token": 2, "web_task_definition": 2,
            "worker_task_definition": 2, "web_service": 5, "worker_service": 5,
            "web_healthy": 150, "worker_steady": 60, "report": 1,
        },
    ),
    OperationKind.DESTROY: KindRules(
        kind=OperationKind.DESTROY, plan=destroy_plan,
        working_status=StagingStatus.DESTROYING, success_status=StagingStatus.DESTROYED,
        failure_status=StagingStatus.FAILED, starts_from=NAME_HOLDING_STATUSES,
        success_stamp="destroyed_at", stop_on_failure=False, jumps_queue=True,
        # A service goes once its task stopped (the stagings' target groups drain in 5 s);
        # a database without a final snapshot in 3-6 min.
        typical_seconds={
            "handover": 5, "account": 5, "listener_rule": 2, "web_service": 30,
            "worker_service": 30, "target_group": 2, "task_definitions": 5, "database": 240,
            "login_secret": 2, "account_token": 2, "bypass_token": 2, "verify": 3,
        },
    ),
}

# A staging in one of these has no operation running for it: where operations end, and
# where the reconcile puts a staging it finds lost.
SETTLED_STATUSES = frozenset(
    status for rules in KINDS.values() for status in (rules.success_status,
                                                        rules.failure_status)
) | {StagingStatus.LOST}


def rules_for(kind: str) -> KindRules:
    return KINDS[kind]


def plan_for(operation: Operation) -> list[StepSpec]:
    return KINDS[operation.kind].plan(operation)


def is_settled(status: str) -> bool:
    return status in SETTLED_STATUSES


class RowChange:
    EXTEND = "extend"
    KEEP = "keep"
    RECREATE = "recreate"


@dataclass(frozen=True)
class RowChangeRules:
    """A change that is one update of the staging's row (or, for a recreate, a new create),
    not an operation with steps."""

    change: str
    may_start: Callable[[AbstractBaseUser, Staging], bool]
    starts_from: frozenset[str]

    def accepts(self, staging: Staging) -> bool:
        return staging.status in self.starts_from

    def allowed(self, user: AbstractBaseUser, staging: Staging) -> bool:
        """Offered to this user now: they may, and the staging's status allows it."""
        return self.accepts(staging) and self.may_start(user, staging)


# A staging being torn down is past extending or keeping.
_STILL_WANTED = LIVE_STATUSES - {KINDS[OperationKind.DESTROY].working_status}

ROW_CHANGES: dict[str, RowChangeRules] = {
    # Owners push their own staging's end further; keeping one without end costs money every
    # month, so an admin decides.
    RowChange.EXTEND: RowChangeRules(RowChange.EXTEND, owner_or_staff, _STILL_WANTED),
    RowChange.KEEP: RowChangeRules(RowChange.KEEP, staff_only, _STILL_WANTED),
    # From the history: the same branch, source, DB mode and name again.
    RowChange.RECREATE: RowChangeRules(RowChange.RECREATE, owner_or_staff,
                                       RECREATABLE_STATUSES),
}


def row_change(change: str) -> RowChangeRules:
    return ROW_CHANGES[change]
