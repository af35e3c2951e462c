"""Our own record of every staging and of every step done for it.

The queue's task results are never the source of truth: an operation (create, destroy,
redeploy) and its steps carry their own state, timings and AWS error, so the dashboard can show
progress and a re-run after a crash knows what is already done.
"""

from django.conf import settings
from django.db import models
from django.db.models import Count, F, Q, Window
from django.db.models.functions import RowNumber
from django.utils import timezone


class StagingStatus(models.TextChoices):
    PENDING = "pending"
    PROVISIONING = "provisioning"
    READY = "ready"
    UPDATING = "updating"
    FAILED = "failed"
    # AWS no longer has its resources (found by the reconcile, see reconcile.py): it costs
    # nothing, keeps its name, and waits for a destroy (the bookkeeping) or a recreate.
    LOST = "lost"
    DESTROYING = "destroying"
    DESTROYED = "destroyed"


class StagingQuerySet(models.QuerySet):
    def live(self) -> "StagingQuerySet":
        """Stagings neither destroyed nor lost: they hold AWS resources (or are about to),
        cost money and keep their name. Spelled as the statuses that are live, not "not
        destroyed": an index on status serves ``IN``, while ``<>`` reads every staging there
        ever was."""
        from .lifecycle import LIVE_STATUSES

        return self.filter(status__in=sorted(LIVE_STATUSES))

    def lost(self) -> "StagingQuerySet":
        return self.filter(status=StagingStatus.LOST)

    def holding_names(self) -> "StagingQuerySet":
        """The live stagings and the lost ones: each keeps its name (and owns whatever AWS
        still holds under it) until it is destroyed."""
        from .lifecycle import NAME_HOLDING_STATUSES

        return self.filter(status__in=sorted(NAME_HOLDING_STATUSES))

    def destroyed(self) -> "StagingQuerySet":
        return self.filter(status=StagingStatus.DESTROYED)


class DbMode(models.TextChoices):
    DEDICATED = "dedicated"
    SHARED = "shared"


class Staging(models.Model):
    name = models.CharField(max_length=63)
    branch = models.CharField(max_length=255)
    # The image pinned by digest (so a redeploy of a re-pushed tag really changes something)
    # and the tag it was resolved from.
    image = models.CharField(max_length=512, blank=True)
    image_tag = models.CharField(max_length=128, blank=True)
    source = models.CharField("snapshot source", max_length=63)
    snapshot_id = models.CharField(max_length=255, blank=True)
    db_mode = models.CharField(max_length=16, choices=DbMode.choices, default=DbMode.DEDICATED)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="stagings"
    )
    status = models.CharField(
        max_length=16, choices=StagingStatus.choices, default=StagingStatus.PENDING
    )
    url = models.CharField(max_length=255, blank=True)
    error = models.TextField(blank=True)
    # The dedicated DB's instance id: ds-<name> when restored for this staging, or the id of
    # the warm-pool database it took. Blank for a shared DB.
    db_instance = models.CharField(max_length=63, blank=True)
    account_id = models.CharField(max_length=255, blank=True)
    login_username = models.CharField(max_length=255, blank=True)
    # The password itself is kept in AWS Secrets Manager, never in our database.
    login_secret_arn = models.CharField(max_length=512, blank=True)
    login_url = models.CharField(max_length=512, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    ready_at = models.DateTimeField(null=True, blank=True)
    destroyed_at = models.DateTimeField(null=True, blank=True)
    # When the reconcile found its resources gone: its costs end there.
    lost_at = models.DateTimeField(null=True, blank=True)

    objects = StagingQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # The live fleet (status IN ...), and the history newest first: its pages, its
            # count and the cost window read this index alone, however many stagings were
            # destroyed over the years.
            models.Index(fields=["status", "destroyed_at", "id"], name="staging_status_history"),
            models.Index(fields=["owner", "status", "destroyed_at", "id"],
                         name="staging_owner_history"),
        ]
        constraints = [
            # A name (and so every AWS resource name and host header derived from it) belongs to
            # at most one staging that is not yet destroyed.
            models.UniqueConstraint(
                fields=["name"],
                condition=~Q(status="destroyed"),
                name="unique_live_staging_name",
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_live(self) -> bool:
        from .lifecycle import LIVE_STATUSES

        return self.status in LIVE_STATUSES

    @property
    def is_lost(self) -> bool:
        return self.status == StagingStatus.LOST

    @property
    def is_busy(self) -> bool:
        """An operation is running for it (its status is not one an operation ends in)."""
        from .lifecycle import is_settled

        return not is_settled(self.status)

    def latest_operation(self) -> "Operation | None":
        return self.operations.order_by("-created_at", "-pk").first()


class OperationKind(models.TextChoices):
    CREATE = "create"
    REDEPLOY = "redeploy"
    DESTROY = "destroy"


class OperationStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


FINISHED_OPERATION_STATUSES = frozenset({OperationStatus.SUCCEEDED, OperationStatus.FAILED})
UNFINISHED_OPERATION_STATUSES = frozenset({OperationStatus.QUEUED, OperationStatus.RUNNING})


class OperationQuerySet(models.QuerySet):
    def unfinished(self) -> "OperationQuerySet":
        return self.filter(status__in=UNFINISHED_OPERATION_STATUSES)


class Operation(models.Model):
    staging = models.ForeignKey(Staging, on_delete=models.CASCADE, related_name="operations")
    kind = models.CharField(max_length=16, choices=OperationKind.choices)
    status = models.CharField(
        max_length=16, choices=OperationStatus.choices, default=OperationStatus.QUEUED
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    params = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Set by the runner that holds the operation and renewed while it works; a runner that
    # finds a fresh heartbeat leaves the operation alone (see claims.claim_operation).
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    runner_token = models.CharField(max_length=64, blank=True)
    # A parked operation (every unfinished step waiting on AWS) holds no worker: it is put back
    # on the queue at this time (tasks.wake_parked_operations).
    wake_at = models.DateTimeField(null=True, blank=True, db_index=True)

    objects = OperationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            # The operations in flight (polled by the fleet), and the latest finished ones of a
            # kind (the time-left estimate), without reading the whole history.
            models.Index(fields=["status"], name="operation_status"),
            models.Index(fields=["kind", "finished_at"], name="operation_kind_finished"),
        ]
        constraints = [
            # At most one unfinished operation per staging: a second click or a second worker
            # cannot start a parallel create/destroy of the same resources.
            models.UniqueConstraint(
                fields=["staging"],
                condition=Q(status__in=["queued", "running"]),
                name="one_unfinished_operation_per_staging",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.staging.name}"

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED_OPERATION_STATUSES

    @property
    def duration(self):
        if not self.started_at:
            return None
        return (self.finished_at or timezone.now()) - self.started_at


class StepState(models.TextChoices):
    PENDING = "pending"
    RUNNING = "running"
    # Waiting on AWS with no worker held: looked at again at ``parked_until``.
    WAITING = "waiting"
    DONE = "done"
    SKIPPED = "skipped"
    FAILED = "failed"


class Step(models.Model):
    operation = models.ForeignKey(Operation, on_delete=models.CASCADE, related_name="steps")
    key = models.CharField(max_length=64)
    label = models.CharField(max_length=255)
    position = models.PositiveSmallIntegerField(default=0)
    state = models.CharField(max_length=16, choices=StepState.choices, default=StepState.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    detail = models.CharField(max_length=255, blank=True)
    error_call = models.CharField(max_length=128, blank=True)
    error_code = models.CharField(max_length=128, blank=True)
    error_message = models.TextField(blank=True)
    outputs = models.JSONField(default=dict, blank=True)
    # While waiting: when to look again, and what the step keeps between its runs (the
    # deadline of each wait, its back-off, what it has already done that AWS cannot show).
    parked_until = models.DateTimeField(null=True, blank=True)
    memory = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["position", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["operation", "key"], name="unique_step_per_operation")
        ]

    def __str__(self) -> str:
        return f"{self.operation} / {self.key}"

    @property
    def is_finished(self) -> bool:
        return self.state in {StepState.DONE, StepState.SKIPPED}

    @property
    def duration(self):
        if not self.started_at:
            return None
        return (self.finished_at or timezone.now()) - self.started_at


class AuditAction(models.TextChoices):
    CREATE = "create"
    REDEPLOY = "redeploy"
    DESTROY = "destroy"
    SWEEP = "sweep"
    SWEEP_DELETE = "sweep-delete"
    LOST = "lost"
    RECREATE = "recreate"
    REVEAL_LOGIN = "reveal-login"
    REVEAL_REFUSED = "reveal-refused"
    LOGIN_LOCKOUT = "login-lockout"


class AuditEvent(models.Model):
    """Who asked for what, and when: one row per request, whatever became of it."""

    staging = models.ForeignKey(
        Staging, on_delete=models.SET_NULL, null=True, blank=True, related_name="audit_events"
    )
    staging_name = models.CharField(max_length=63, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    actor_name = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=16, choices=AuditAction.choices)
    detail = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.actor_name} {self.action} {self.staging_name}"


class Orphan(models.Model):
    """An AWS resource marked managed-by=dynamic-stagings (or a rule on our listener) that no
    live staging owns, as the last sweep found it."""

    arn = models.CharField(max_length=512, unique=True)
    kind = models.CharField(max_length=64)
    staging_name = models.CharField(max_length=63, blank=True)
    first_seen_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)
    deleted_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["kind", "arn"]

    def __str__(self) -> str:
        return self.arn


class PoolStatus(models.TextChoices):
    RESTORING = "restoring"
    READY = "ready"
    CLAIMED = "claimed"
    RETIRING = "retiring"


class PoolDatabase(models.Model):
    """A database restored ahead of time from a source's newest snapshot, waiting for a
    create to take it (see provisioning/pool.py)."""

    instance_id = models.CharField(max_length=63, unique=True)
    source = models.CharField(max_length=63)
    snapshot_id = models.CharField(max_length=255)
    status = models.CharField(
        max_length=16, choices=PoolStatus.choices, default=PoolStatus.RESTORING
    )
    staging = models.ForeignKey(
        Staging, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    ready_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["source", "created_at"]

    def __str__(self) -> str:
        return self.instance_id


# A step that waits for an hour and logs each change keeps a bounded log: its newest lines.
LOG_LINES_KEPT_PER_STEP = 200
LOG_LINE_MAX_CHARS = 4000


class StepLogQuerySet(models.QuerySet):
    def write(self, step_id: int, message: str) -> None:
        """Add a line to the step's log and drop what falls beyond the newest
        LOG_LINES_KEPT_PER_STEP (a step writes its lines one after another, so the primary
        key orders them)."""
        self.create(step_id=step_id, message=message[:LOG_LINE_MAX_CHARS])
        boundary = list(self.filter(step_id=step_id).order_by("-pk").values_list("pk", flat=True)
                        [LOG_LINES_KEPT_PER_STEP:LOG_LINES_KEPT_PER_STEP + 1])
        if boundary:
            self.filter(step_id=step_id, pk__lte=boundary[0]).delete()

    def latest_per_step(self, step_ids, limit: int) -> dict[int, "StepLines"]:
        """The last ``limit`` lines of each step, and how many it has, in one query: a polled
        page shows them without loading every line of every step."""
        rows = (self.filter(step_id__in=list(step_ids))
                .annotate(from_end=Window(RowNumber(), partition_by=[F("step_id")],
                                          order_by=[F("pk").desc()]),
                          kept=Window(Count("pk"), partition_by=[F("step_id")]))
                .filter(from_end__lte=limit).order_by("step_id", "pk"))
        found: dict[int, StepLines] = {}
        for row in rows:
            found.setdefault(row.step_id, StepLines(kept=row.kept)).lines.append(row)
        return found

    def attach_to(self, steps, limit: int) -> None:
        """Give each step its ``recent_log`` (StepLines) with one query for all of them."""
        found = self.latest_per_step([step.pk for step in steps if step.pk], limit)
        for step in steps:
            step.recent_log = found.get(step.pk, StepLines())


class StepLines:
    """What a page shows of one step's log: its last lines and how many are kept."""

    def __init__(self, kept: int = 0):
        self.kept = kept
        self.lines: list[StepLog] = []

    @property
    def hidden(self) -> int:
        return self.kept - len(self.lines)


class StepLog(models.Model):
    """One line of what a step did or saw (``Step.detail`` is only the latest, cut short)."""

    step = models.ForeignKey(Step, on_delete=models.CASCADE, related_name="log_lines")
    at = models.DateTimeField(default=timezone.now)
    message = models.TextField()

    objects = StepLogQuerySet.as_manager()

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"{self.at:%H:%M:%S} {self.message}"


class ScheduleRun(models.Model):
    """What one run of a background schedule (provisioning.tasks.SCHEDULES) did: written as it
    starts, so a run that hangs or dies shows as never finished."""

    name = models.CharField(max_length=100)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    outcome = models.TextField(blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at", "-pk"]
        indexes = [models.Index(fields=["name", "-started_at"], name="schedulerun_name_started")]

    def __str__(self) -> str:
        return f"{self.name} {self.started_at:%Y-%m-%d %H:%M:%S}"

    @property
    def duration(self):
        if not self.finished_at:
            return None
        return self.finished_at - self.started_at
