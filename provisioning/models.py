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

from .names import image_tag_for_branch


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
    # The tag CI pushes the branch's image under (names.image_tag_for_branch), kept so that a
    # tag in the registry finds the branches it stands for with one indexed lookup. Set on
    # every save from ``branch``.
    branch_tag = models.CharField(max_length=128, blank=True, db_index=True)
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
    # When the expiry check destroys it (provisioning/expiry.py); None while kept. Set at the
    # create, reset by each redeploy, moved by an extension.
    expires_at = models.DateTimeField(null=True, blank=True)
    kept = models.BooleanField(default=False)
    # The TTL asked for at the create (None: DS_TTL_HOURS): a redeploy and a recreate reuse it.
    ttl_hours = models.FloatField(null=True, blank=True)
    # The smallest warning window (hours) already announced for this expiry, so each window is
    # announced once; cleared whenever the expiry moves.
    expiry_warned_hours = models.FloatField(null=True, blank=True)
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
            # The every-minute expiry check: live stagings whose time is up, without reading
            # the destroyed ones (their expiry stays as history).
            models.Index(fields=["status", "expires_at"], name="staging_status_expiry"),
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

    def save(self, *args, **kwargs) -> None:
        self.branch_tag = image_tag_for_branch(self.branch)
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "branch" in update_fields:
            kwargs["update_fields"] = {*update_fields, "branch_tag"}
        super().save(*args, **kwargs)

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
    EXTEND = "extend"
    KEEP = "keep"
    KEEP_OFF = "keep-off"
    TOKEN_CREATE = "token-create"
    TOKEN_REVOKE = "token-revoke"
    SIGN_IN = "sign-in"


class AuditChannel(models.TextChoices):
    """Where a request came from. Blank on what a schedule did on its own, and on events
    recorded before channels were."""

    WEB = "web", "the dashboard"
    CLI = "cli", "the ds command"
    API = "api", "the API"
    SLACK = "slack", "Slack"


class SignInMethod(models.TextChoices):
    """How the actor of an audit event signed in to the dashboard; blank for whoever did not
    sign in there (the command line, a schedule)."""

    OIDC = "oidc", "identity provider"
    PASSWORD = "password", "password"


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
    actor_sign_in = models.CharField(max_length=16, blank=True, choices=SignInMethod.choices)
    action = models.CharField(max_length=16, choices=AuditAction.choices)
    detail = models.TextField(blank=True)
    channel = models.CharField(max_length=8, choices=AuditChannel.choices, blank=True)
    # Which credential of that channel: for the API, the token's name and prefix.
    channel_detail = models.CharField(max_length=150, blank=True)
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


class TokenScope(models.TextChoices):
    READ = "read"
    WRITE = "write"


class ApiToken(models.Model):
    """A bearer token for the JSON API (see provisioning/api_tokens.py). The secret itself is
    shown once when the token is made and never stored: only its SHA-256, and its first
    characters so that people can tell their tokens apart."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    scope = models.CharField(max_length=8, choices=TokenScope.choices, default=TokenScope.READ)
    prefix = models.CharField(max_length=16, db_index=True)
    secret_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    def is_expired(self, now=None) -> bool:
        return self.expires_at <= (now or timezone.now())

    @property
    def is_usable(self) -> bool:
        return not self.is_revoked and not self.is_expired()

    @property
    def state(self) -> str:
        if self.is_revoked:
            return "revoked"
        return "expired" if self.is_expired() else "active"

    @property
    def may_write(self) -> bool:
        return self.scope == TokenScope.WRITE


class IdempotencyKey(models.Model):
    """An ``Idempotency-Key`` a user sent with a create: a retry with the same key (and the
    same request) gets the staging the first one made instead of a second one. ``staging`` is
    empty while the first request is still being worked on."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="+")
    key = models.CharField(max_length=255)
    # SHA-256 of the request the key was first sent with.
    fingerprint = models.CharField(max_length=64)
    staging = models.ForeignKey(Staging, on_delete=models.SET_NULL, null=True, blank=True,
                                related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="unique_idempotency_key_per_user")
        ]

    def __str__(self) -> str:
        return self.key


class NotificationStatus(models.TextChoices):
    PENDING = "pending"
    # Taken by one delivery (a conditional update): no other one sends it. A worker that dies
    # here leaves it so: told at most once rather than twice.
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


class Notification(models.Model):
    """One thing told to one person on one channel (see provisioning/notifications.py).

    ``key`` names what is told ("operation-12-ready"): with the channel it is unique, so a
    second delivery of the same signal, a retry or a second qcluster node finds the row made
    and tells nobody again."""

    key = models.CharField(max_length=128)
    channel = models.CharField(max_length=32)
    # ready, failed, destroyed; other events (expiry warnings) come with their own words.
    event = models.CharField(max_length=32)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    staging = models.ForeignKey(
        Staging, on_delete=models.SET_NULL, null=True, blank=True, related_name="notifications"
    )
    staging_name = models.CharField(max_length=63, blank=True)
    operation = models.ForeignKey(
        Operation, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    text = models.TextField()
    # Where the channel sends it (an e-mail address, a Slack conversation); never a secret.
    target = models.JSONField(default=dict, blank=True)
    status = models.CharField(
        max_length=16, choices=NotificationStatus.choices, default=NotificationStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    # A pending one is delivered by this time at the latest (a lost enqueue, a retry).
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            # A person's list and unread count (on every page), and the deliveries due.
            models.Index(fields=["user", "channel", "read_at"], name="notification_inbox"),
            models.Index(fields=["status", "next_attempt_at"], name="notification_due"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["key", "channel"], name="notification_told_once"),
        ]

    def __str__(self) -> str:
        return f"{self.channel} {self.key}"

    @property
    def is_unread(self) -> bool:
        return self.read_at is None


class SlackRequestStatus(models.TextChoices):
    RECEIVED = "received"
    # Taken by one worker (conditional update): a redelivered task finds it taken.
    WORKING = "working"
    ANSWERED = "answered"


class SlackRequest(models.Model):
    """A slash command or a button press from Slack, answered from the queue
    (provisioning/slack/). What it started is kept, so its end is told where it was asked."""

    kind = models.CharField(max_length=16)  # "command" or "action"
    # The command's text ("create feature/x --shared-db"), or the button's action and value.
    text = models.CharField(max_length=1000)
    slack_user_id = models.CharField(max_length=32)
    slack_team_id = models.CharField(max_length=32, blank=True)
    channel_id = models.CharField(max_length=32, blank=True)
    response_url = models.CharField(max_length=512, blank=True, db_index=True)
    status = models.CharField(max_length=16, choices=SlackRequestStatus.choices,
                              default=SlackRequestStatus.RECEIVED)
    reply = models.TextField(blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+"
    )
    staging = models.ForeignKey(
        Staging, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    operation = models.ForeignKey(
        Operation, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    received_at = models.DateTimeField(default=timezone.now)
    answered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.kind} {self.text[:40]}"


class SlackSignature(models.Model):
    """A request signature already accepted: the same one again within Slack's five-minute
    window is a replay. Rows older than the window are dropped as new ones come."""

    signature = models.CharField(max_length=128, unique=True)
    timestamp = models.BigIntegerField()
    seen_at = models.DateTimeField(default=timezone.now, db_index=True)

    def __str__(self) -> str:
        return self.signature
