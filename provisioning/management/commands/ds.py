"""The ``ds`` command: create, list, show, destroy and redeploy dynamic stagings, and check the
host they are cloned from (``doctor``).

Exit codes scripts can rely on: 0 success, 1 the operation failed (or AWS refused), 2 a usage
or user error, with a one-line reason on stderr.
"""

import getpass
import json
import os
import sys
import time

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser

from provisioning import doctor
from provisioning.config import load_config
from provisioning.errors import ExternalCallFailed, UserError
from provisioning.models import Operation, Staging, StagingStatus
from provisioning.operations import request_create, request_destroy, request_redeploy
from provisioning.presenters import staging_summary
from provisioning.sweep import sweep

EXIT_FAILED = 1
EXIT_USER_ERROR = 2
WAIT_POLL_SECONDS = 1.0


class Exit(Exception):
    def __init__(self, code: int, message: str = ""):
        super().__init__(message)
        self.code = code
        self.message = message


class Command(BaseCommand):
    help = "Create, list, show, destroy and redeploy dynamic stagings."

    def add_arguments(self, parser: CommandParser) -> None:
        # CommandParser hands its called_from_command_line on to the subparsers itself.
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="create a staging for a branch")
        create.add_argument("branch")
        create.add_argument("--name", help="staging name (default: derived from the branch)")
        create.add_argument("--source", help="RDS instance whose newest snapshot is restored")
        create.add_argument("--shared-db", action="store_true",
                            help="use the host's database instead of a dedicated one")
        create.add_argument("--wait", action="store_true", help="wait until ready or failed")
        create.add_argument("--json", action="store_true", help="print the staging as JSON")
        listing = sub.add_parser("list", help="list live stagings")
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
        sweeping = sub.add_parser("sweep", help="list (or delete) what no live staging owns")
        sweeping.add_argument("--delete", action="store_true", help="delete what is found")
        sweeping.add_argument("--json", action="store_true")
        checking = sub.add_parser("doctor", help="check the host against what a create needs")
        checking.add_argument("--json", action="store_true",
                              help='print a list of {"check", "status", "found", "fix"}')

    def execute(self, *args, **options):
        try:
            return super().execute(*args, **options)
        except Exit as exit_:
            if exit_.message:
                sys.stderr.write(exit_.message.replace("\n", " ") + "\n")
            sys.exit(exit_.code)

    def handle(self, *args, action: str, **options) -> None:
        try:
            getattr(self, f"do_{action}")(**options)
        except UserError as exc:
            raise Exit(EXIT_USER_ERROR, f"error: {exc.message}") from exc
        except ExternalCallFailed as exc:
            raise Exit(EXIT_FAILED, f"error: {exc}") from exc

    # --- actions --------------------------------------------------------------------------

    def do_create(self, *, branch, name, source, shared_db, wait, json: bool, **_) -> None:
        staging = request_create(
            branch=branch, owner=self._cli_user(), name=name, source=source,
            db_mode="shared" if shared_db else "dedicated",
        )
        self._finish(staging, wait=wait, as_json=json)

    def do_list(self, *, json: bool, all: bool, **_) -> None:
        stagings = Staging.objects.select_related("owner")
        if not all:
            stagings = stagings.exclude(status=StagingStatus.DESTROYED)
        summaries = [staging_summary(s) for s in stagings]
        if json:
            self._print_json(summaries)
            return
        for s in summaries:
            self.stdout.write(f"{s['name']:<30} {s['status']:<13} {s['db_mode']:<10} "
                              f"{s['branch']:<30} {s['url']}")

    def do_show(self, *, name: str, json: bool, **_) -> None:
        staging = self._staging(name)
        if json:
            self._print_json(staging_summary(staging, with_steps=True))
            return
        self._print_human(staging)

    def do_destroy(self, *, name: str, wait: bool, json: bool, **_) -> None:
        staging = self._staging(name)
        request_destroy(staging, user=self._cli_user())
        self._finish(staging, wait=wait, as_json=json)

    def do_redeploy(self, *, name: str, tag: str | None, wait: bool, json: bool, **_) -> None:
        staging = self._staging(name)
        request_redeploy(staging, user=self._cli_user(), tag=tag)
        self._finish(staging, wait=wait, as_json=json)

    def do_sweep(self, *, delete: bool, json: bool, **_) -> None:
        rows = sweep(delete=delete, actor=self._cli_user())
        if json:
            self._print_json([
                {"arn": r.arn, "kind": r.kind, "staging": r.staging_name,
                 "first_seen_at": r.first_seen_at, "deleted_at": r.deleted_at, "error": r.error}
                for r in rows
            ])
        else:
            for r in rows:
                state = "deleted" if r.deleted_at else (f"error: {r.error}" if r.error else "")
                self.stdout.write(f"{r.kind:<36} {r.staging_name or '-':<28} {r.arn} {state}")
            self.stderr.write(f"{len(rows)} orphaned resource(s)")
        if delete and any(r.error for r in rows):
            raise Exit(EXIT_FAILED, "error: some orphaned resources could not be deleted")

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

    def _cli_user(self):
        """Stagings made from the command line belong to DS_USER (default: the OS user)."""
        try:
            username = os.environ.get("DS_USER") or getpass.getuser() or "cli"
        except (KeyError, OSError):  # a container's uid without a name
            username = "cli"
        user, _ = get_user_model().objects.get_or_create(username=username)
        return user

    def _staging(self, name: str) -> Staging:
        staging = (
            Staging.objects.filter(name=name).exclude(status=StagingStatus.DESTROYED).first()
            or Staging.objects.filter(name=name).first()
        )
        if staging is None:
            raise UserError(f"No staging named {name!r}.")
        return staging

    def _finish(self, staging: Staging, *, wait: bool, as_json: bool) -> None:
        operation = Operation.objects.filter(staging=staging).first()
        if wait:
            operation = self._wait(operation)
        staging.refresh_from_db()
        if as_json:
            self._print_json(staging_summary(staging, with_steps=wait))
        else:
            self._print_human(staging)
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

    def _print_json(self, data) -> None:
        self.stdout.write(json.dumps(data, indent=2, default=str))

    def _print_human(self, staging: Staging) -> None:
        summary = staging_summary(staging, with_steps=True)
        for key in ("name", "status", "url", "branch", "image_tag", "source", "db_mode",
                    "owner", "login_username", "error"):
            if summary.get(key):
                self.stdout.write(f"{key + ':':<16}{summary[key]}")
        for step in summary.get("steps", []):
            error = f"  {step['error_code']}: {step['error_message']}" if step["error_code"] else ""
            self.stdout.write(f"  [{step['state']:>7}] {step['label']} {step['detail']}{error}")
