"""The ``ds`` command: create, list, show, destroy, redeploy, extend, keep and recreate dynamic
stagings, compare our records with AWS (``sweep``), check the host they are cloned from
(``doctor``), and make, list and revoke API tokens (``token``).

Exit codes scripts can rely on: 0 success, 1 the operation failed (or AWS refused), 2 a usage
or user error, with a one-line reason on stderr.
"""

import getpass
import json
import logging
import os
import sys
import time

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser
from django.core.serializers.json import DjangoJSONEncoder

from provisioning import audit, doctor, engine, expiry, permissions
from provisioning.api_tokens import DEFAULT_DAYS, MAX_DAYS
from provisioning.config import load_config
from provisioning.errors import BranchHasStaging, ExternalCallFailed, UserError
from provisioning.models import ApiToken, Operation, Staging, StagingStatus, TokenScope
from provisioning.presenters import staging_summary
from provisioning.reconcile import reconcile

EXIT_FAILED = 1
EXIT_USER_ERROR = 2
# Verbs that read only our own records: they work without AWS.
READS_ONLY_RECORDS = {"list", "show"}
# Verbs that need neither AWS nor our records.
STANDS_ALONE = {"policy"}
# Verbs about records that say nothing of AWS: they need no sandbox and warn of nothing.
WITHOUT_AWS = {"token"}
WAIT_POLL_SECONDS = 1.0


class Exit(Exception):
    def __init__(self, code: int, message: str = ""):
        super().__init__(message)
        self.code = code
        self.message = message


class Command(BaseCommand):
    help = "Create, list, show, destroy, redeploy, extend, keep and recreate dynamic stagings."

    def add_arguments(self, parser: CommandParser) -> None:
        # CommandParser hands its called_from_command_line on to the subparsers itself.
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="create a staging for a branch")
        create.add_argument("branch")
        create.add_argument("--name", help="staging name (default: derived from the branch)")
        create.add_argument("--source", help="RDS instance whose newest snapshot is restored")
        create.add_argument("--shared-db", action="store_true",
                            help="use the host's database instead of a dedicated one")
        create.add_argument("--ttl", metavar="HOURS",
                            help="hours it lives after its create and each redeploy "
                                 "(default DS_TTL_HOURS, at most DS_MAX_TTL_HOURS)")
        create.add_argument("--wait", action="store_true", help="wait until ready or failed")
        create.add_argument("--json", action="store_true", help="print the staging as JSON")
        listing = sub.add_parser("list", help="list live (and lost) stagings")
        listing.add_argument("--json", action="store_true")
        listing.add_argument("--all", action="store_true", help="include destroyed stagings")
        show = sub.add_parser("show", help="show one staging and its last operation")
        show.add_argument("name")
        show.add_argument("--json", action="store_true")
        destroy = sub.add_parser("destroy", help="remove a staging and all it made")
        destroy.add_argument("name")
        destroy.add_argument("--wait", action="store_true")
        destroy.add_argument("--json", action="store_true")
        redeploy = sub.add_parser("redeploy", help="deploy a new image of the branch")
        redeploy.add_argument("name")
        redeploy.add_argument("--tag", help="image tag to deploy (default: the branch's)")
        redeploy.add_argument("--wait", action="store_true")
        redeploy.add_argument("--json", action="store_true")
        extending = sub.add_parser("extend", help="push a staging's expiry to now + HOURS")
        extending.add_argument("name")
        extending.add_argument("--hours", metavar="N",
                               help="hours from now (default DS_TTL_HOURS, at most "
                                    "DS_MAX_TTL_HOURS)")
        extending.add_argument("--json", action="store_true")
        keeping = sub.add_parser("keep", help="keep a staging without expiry (admins only)")
        keeping.add_argument("name")
        keeping.add_argument("--off", action="store_true",
                             help="stop keeping it: it expires DS_TTL_HOURS from now")
        keeping.add_argument("--json", action="store_true")
        recreate = sub.add_parser("recreate", help="make a destroyed or lost staging again "
                                                   "(same branch, source, DB mode and name)")
        recreate.add_argument("name")
        recreate.add_argument("--wait", action="store_true", help="wait until ready or failed")
        recreate.add_argument("--json", action="store_true")
        sweeping = sub.add_parser(
            "sweep", help="compare our records with AWS: mark the stagings AWS lost, list (or "
                          "delete) what no staging owns")
        sweeping.add_argument("--delete", action="store_true", help="delete what is found")
        sweeping.add_argument("--json", action="store_true")
        checking = sub.add_parser("doctor", help="check the host against what a create needs")
        checking.add_argument("--json", action="store_true",
                              help='print a list of {"check", "status", "found", "fix"}')
        sub.add_parser("policy", help="print the IAM policy the dashboard's role needs")
        self._add_token_arguments(sub.add_parser("token", help="make, list and revoke API tokens"))

    def _add_token_arguments(self, token: CommandParser) -> None:
        verbs = token.add_subparsers(dest="token_action", required=True)
        making = verbs.add_parser("create", help="make a token for a user; printed once")
        making.add_argument("--user", required=True, help="the user the token acts for")
        making.add_argument("--name", default="command line", help="what the token is for")
        making.add_argument("--scope", choices=TokenScope.values, default=TokenScope.READ,
                            help="read: look only; write: also create, redeploy, destroy")
        making.add_argument("--days", type=int, default=DEFAULT_DAYS,
                            help=f"days until it expires (1 to {MAX_DAYS})")
        making.add_argument("--json", action="store_true",
                            help='print {"token", "name", "user", "scope", "prefix", ...}')
        listing = verbs.add_parser("list", help="list tokens that can still be used")
        listing.add_argument("--user", help="only this user's tokens")
        listing.add_argument("--all", action="store_true", help="with revoked and expired ones")
        listing.add_argument("--json", action="store_true")
        revoking = verbs.add_parser("revoke", help="revoke a token at once")
        revoking.add_argument("token", help="its id or its prefix (dst_...) as listed")

    def execute(self, *args, **options):
        # stderr carries our own progress lines only: the queue logs each enqueue at INFO.
        logging.getLogger("django-q").setLevel(logging.WARNING)
        try:
            return super().execute(*args, **options)
        except Exit as exit_:
            if exit_.message:
                sys.stderr.write(exit_.message.replace("\n", " ") + "\n")
            sys.exit(exit_.code)

    def handle(self, *args, action: str, **options) -> None:
        self._check_sandbox(action)
        try:
            getattr(self, f"do_{action}")(**options)
        except UserError as exc:
            raise Exit(EXIT_USER_ERROR, f"error: {exc.message}") from exc
        except ExternalCallFailed as exc:
            raise Exit(EXIT_FAILED, f"error: {exc}") from exc

    # --- actions --------------------------------------------------------------------------

    def do_create(self, *, branch, name, source, shared_db, ttl, wait, json: bool,
                  **_) -> None:
        try:
            staging = engine.request_create(
                branch=branch, owner=self._cli_user(), name=name, source=source,
                db_mode="shared" if shared_db else "dedicated", ttl_hours=ttl,
                channel=audit.CLI,
            )
        except BranchHasStaging as exc:
            existing = exc.staging
            raise UserError(
                f"{exc.branch} already has a staging, {existing.name} ({existing.status}): "
                f"`ds show {existing.name}` or `ds redeploy {existing.name}`; to run a second "
                "one on purpose, give it a --name.") from exc
        if staging.branch != branch:
            sys.stderr.write(f"{branch} is the image tag of branch {staging.branch}: the "
                             "staging runs that branch.\n")
        self._finish(staging, wait=wait, as_json=json)

    def do_list(self, *, json: bool, all: bool, **_) -> None:
        stagings = Staging.objects.select_related("owner")
        if not all:
            stagings = stagings.holding_names()
        summaries = [staging_summary(s) for s in stagings]
        lost = [s["name"] for s in summaries if s["status"] == StagingStatus.LOST]
        if lost:
            sys.stderr.write(f"{len(lost)} staging(s) lost (AWS no longer has their resources): "
                             f"{', '.join(lost)}; `ds destroy NAME` finishes the bookkeeping, "
                             "`ds recreate NAME` makes one again.\n")
        if json:
            self._print_json(summaries)
            return
        rows = [("NAME", "STATUS", "DB", "EXPIRES", "BRANCH", "URL")]
        rows += [(s["name"], s["status"], s["db_mode"], _expires_column(s), s["branch"],
                  s["url"]) for s in summaries]
        for name, status, db_mode, expires, branch, url in rows:
            self.stdout.write(f"{name:<30} {status:<13} {db_mode:<10} {expires:<20} "
                              f"{branch:<30} {url}".rstrip())

    def do_show(self, *, name: str, json: bool, **_) -> None:
        staging = self._staging(name)
        if json:
            self._print_json(staging_summary(staging, with_steps=True))
            return
        self._print_human(staging)

    def do_destroy(self, *, name: str, wait: bool, json: bool, **_) -> None:
        staging = self._staging(name)
        if staging.status == StagingStatus.DESTROYED:
            # Destroy may be run again: the goal (nothing left) is reached, so it succeeds.
            self._show(staging, with_steps=False, as_json=json)
            sys.stderr.write(f"{staging.name} is already destroyed.\n")
            return
        engine.request_destroy(staging, user=self._cli_user(), channel=audit.CLI)
        self._finish(staging, wait=wait, as_json=json)

    def do_redeploy(self, *, name: str, tag: str | None, wait: bool, json: bool, **_) -> None:
        staging = self._staging(name)
        engine.request_redeploy(staging, user=self._cli_user(), tag=tag, channel=audit.CLI)
        self._finish(staging, wait=wait, as_json=json)

    def do_extend(self, *, name: str, hours: str | None, json: bool, **_) -> None:
        staging = self._staging(name)
        extension = engine.extend(staging, user=self._cli_user(), hours=hours)
        sys.stderr.write(extension.sentence(staging.name) + "\n")
        staging.refresh_from_db()
        self._show(staging, with_steps=False, as_json=json)

    def do_keep(self, *, name: str, off: bool, json: bool, **_) -> None:
        staging = self._staging(name)
        changed = engine.set_kept(staging, user=self._cli_user(), kept=not off)
        if off:
            said = "is no longer kept" if changed else "was not kept"
        else:
            said = "is kept: it does not expire" if changed else "is already kept"
        sys.stderr.write(f"{staging.name} {said}.\n")
        staging.refresh_from_db()
        self._show(staging, with_steps=False, as_json=json)

    def do_recreate(self, *, name: str, wait: bool, json: bool, **_) -> None:
        # The staging holding the name if it is lost, else the newest destroyed one.
        holder = engine.live_staging(name)
        chosen = holder if holder is not None and holder.is_lost else (
            engine.last_destroyed(name) or self._staging(name))
        staging = engine.request_recreate(chosen, user=self._cli_user(), channel=audit.CLI)
        self._finish(staging, wait=wait, as_json=json)

    def do_sweep(self, *, delete: bool, json: bool, **_) -> None:
        found = reconcile(delete=delete, actor=self._cli_user())
        rows = found.orphans
        if json:
            self._print_json({
                "orphans": [
                    {"arn": r.arn, "kind": r.kind, "staging": r.staging_name,
                     "first_seen_at": r.first_seen_at, "deleted_at": r.deleted_at,
                     "error": r.error}
                    for r in rows
                ],
                "lost": [{"staging": j.name, "gone": list(j.gone)} for j in found.lost],
                "still_lost": found.still_lost,
                "incomplete": [{"staging": j.name, "gone": list(j.gone), "there": list(j.there)}
                               for j in found.incomplete],
            })
        else:
            for judged in found.lost:
                self.stdout.write(f"{'lost staging':<36} {judged.name:<28} {judged.describe()}")
            for name in found.still_lost:
                self.stdout.write(f"{'lost staging':<36} {name:<28} lost earlier: destroy it "
                                  "to finish, or recreate it")
            for judged in found.incomplete:
                self.stdout.write(f"{'incomplete staging':<36} {judged.name:<28} "
                                  f"{judged.describe()}")
            for r in rows:
                state = "deleted" if r.deleted_at else (f"error: {r.error}" if r.error else "")
                self.stdout.write(f"{r.kind:<36} {r.staging_name or '-':<28} {r.arn} {state}")
            self.stderr.write(f"{len(rows)} orphaned resource(s); {found.judged} staging(s) "
                              f"checked, {len(found.lost)} newly lost, "
                              f"{len(found.incomplete)} incomplete")
        if delete and any(r.error for r in rows):
            raise Exit(EXIT_FAILED, "error: some orphaned resources could not be deleted")

    def do_token(self, *, token_action: str, **options) -> None:
        getattr(self, f"_token_{token_action}")(**options)

    def _token_create(self, *, user: str, name: str, scope: str, days: int, json: bool,
                      **_) -> None:
        owner = get_user_model().objects.filter(username=user).first()
        if owner is None:
            raise UserError(f"No user named {user!r}: they must have logged in once, or be "
                            "made with `manage.py createsuperuser` or the admin.")
        issued = engine.issue_token(owner, name=name, scope=scope, days=days,
                                    actor=self._cli_user(), channel=audit.CLI)
        if json:
            self._print_json({"token": issued.secret, **self._token_summary(issued.token)})
            return
        # The token alone on stdout, so that TOKEN=$(ds token create ...) works.
        self.stdout.write(issued.secret)
        sys.stderr.write(f"Token {issued.token.name!r} for {owner.get_username()}, scope "
                         f"{scope}, expires {issued.token.expires_at:%Y-%m-%d %H:%M} UTC. It is "
                         "shown only now: keep it in a secret store.\n")

    def _token_list(self, *, user: str | None, all: bool, json: bool, **_) -> None:
        tokens = ApiToken.objects.select_related("user")
        if user:
            tokens = tokens.filter(user__username=user)
        summaries = [self._token_summary(t) for t in tokens if all or t.is_usable]
        if json:
            self._print_json(summaries)
            return
        rows = [("ID", "PREFIX", "USER", "SCOPE", "EXPIRES", "LAST USED", "STATE", "NAME")]
        rows += [(str(t["id"]), t["prefix"], t["user"], t["scope"], _minute(t["expires_at"]),
                  _minute(t["last_used_at"]), t["state"], t["name"]) for t in summaries]
        for row in rows:
            self.stdout.write(("{:<6} {:<13} {:<16} {:<6} {:<17} {:<17} {:<8} {}"
                               .format(*row)).rstrip())

    def _token_revoke(self, *, token: str, **_) -> None:
        found = (ApiToken.objects.filter(pk=int(token)) if token.isdecimal()
                 else ApiToken.objects.filter(prefix=token))
        found = list(found.select_related("user")[:2])
        if not found:
            raise UserError(f"No token with the id or prefix {token!r} (see `ds token list`).")
        if len(found) > 1:
            raise UserError(f"Several tokens have the prefix {token!r}: give the id instead.")
        if engine.revoke_token(found[0], by=self._cli_user(), channel=audit.CLI):
            sys.stderr.write(f"Revoked token {found[0].name!r} ({found[0].prefix}).\n")
        else:
            sys.stderr.write(f"Token {found[0].name!r} ({found[0].prefix}) was already "
                             "revoked.\n")

    @staticmethod
    def _token_summary(token: ApiToken) -> dict:
        return {"id": token.pk, "name": token.name, "user": token.user.get_username(),
                "scope": token.scope, "prefix": token.prefix, "created_at": token.created_at,
                "expires_at": token.expires_at, "last_used_at": token.last_used_at,
                "revoked_at": token.revoked_at, "state": token.state}

    def do_policy(self, **_) -> None:
        self.stdout.write(permissions.policy_json(), ending="")

    def do_doctor(self, *, json: bool, **_) -> None:
        report = doctor.run_checks(load_config())
        if json:
            self._print_json(report.as_list())
        else:
            for check in report.checks:
                self.stdout.write(f"{check.status:<4}  {check.check}: {check.found}")
                if check.fix and check.status != doctor.OK:
                    self.stdout.write(f"      fix: {check.fix}")
        if not report.passed:
            raise Exit(EXIT_FAILED, f"error: {report.failures} check(s) failed")

    # --- helpers --------------------------------------------------------------------------

    def _check_sandbox(self, action: str) -> None:
        """With DS_SANDBOX=1 and no sandbox running, AWS calls would go to real endpoints (and
        fail slowly): say so at once; listings say their statuses are as last recorded."""
        if not settings.SANDBOX or action in STANDS_ALONE | WITHOUT_AWS:
            return
        from provisioning.sandbox.environment import NOT_RUNNING, sandbox_is_running
        from provisioning.sandbox.launcher import default_state_dir

        if sandbox_is_running(default_state_dir(settings.BASE_DIR)):
            return
        if action in READS_ONLY_RECORDS:
            sys.stderr.write(f"warning: {NOT_RUNNING}; statuses are as last recorded.\n")
            return
        raise Exit(EXIT_USER_ERROR, f"error: {NOT_RUNNING}")

    def _cli_user(self):
        """Stagings made from the command line belong to DS_USER (default: the OS user)."""
        try:
            username = os.environ.get("DS_USER") or getpass.getuser() or "cli"
        except (KeyError, OSError):  # a container's uid without a name
            username = "cli"
        return engine.acting_user(username)

    def _staging(self, name: str) -> Staging:
        staging = engine.staging_named(name)
        if staging is None:
            raise UserError(f"No staging named {name!r}.")
        return staging

    def _finish(self, staging: Staging, *, wait: bool, as_json: bool) -> None:
        operation = Operation.objects.filter(staging=staging).first()
        if wait:
            operation = self._wait(operation)
        staging.refresh_from_db()
        self._show(staging, with_steps=wait, as_json=as_json)
        if wait and operation.status != "succeeded":
            raise Exit(EXIT_FAILED, f"error: {operation.kind} of {staging.name} failed: "
                                    f"{operation.error or staging.error}")

    def _wait(self, operation: Operation) -> Operation:
        reported: dict[str, str] = {}
        while True:
            operation.refresh_from_db()
            for step in operation.steps.all():
                line = f"{step.state} {step.detail}".strip()
                if reported.get(step.key) != line:
                    reported[step.key] = line
                    sys.stderr.write(f"  [{step.state:>7}] {step.label}: {step.detail}\n")
            if operation.is_finished:
                return operation
            time.sleep(WAIT_POLL_SECONDS)

    def _show(self, staging: Staging, *, with_steps: bool, as_json: bool) -> None:
        if as_json:
            self._print_json(staging_summary(staging, with_steps=with_steps))
        else:
            self._print_human(staging)

    def _print_json(self, data) -> None:
        # ISO 8601 timestamps (with "T", in UTC as stored), like every JSON we give out.
        self.stdout.write(json.dumps(data, indent=2, cls=DjangoJSONEncoder))

    def _print_human(self, staging: Staging) -> None:
        summary = staging_summary(staging, with_steps=True)
        summary["expires"] = _expires_column(summary) if staging.is_live else ""
        for key in ("name", "status", "outcome", "url", "branch", "image_tag", "source",
                    "db_mode", "owner", "expires", "login_username", "error"):
            if summary.get(key):
                self.stdout.write(f"{key + ':':<16}{summary[key]}")
        for step in summary.get("steps", []):
            error = f"  {step['error_code']}: {step['error_message']}" if step["error_code"] else ""
            line = f"  [{step['state']:>7}] {step['label']} {step['detail']}{error}"
            self.stdout.write(line.rstrip())


def _expires_column(summary: dict) -> str:
    if summary["kept"]:
        return "kept"
    expires_at = summary["expires_at"]
    if summary["status"] == StagingStatus.DESTROYED or expires_at is None:
        return "-"
    return expiry.utc_text(expires_at)


def _minute(moment) -> str:
    return f"{moment:%Y-%m-%d %H:%M}" if moment else "-"
