"""``manage.py sandbox``: run the product on a local, seeded moto server instead of AWS.

* ``sandbox run``: everything a new user needs in one foreground command: migrations, a demo
  login, the sandbox AWS, the background workers and the dashboard. Ctrl-C stops it all.
* ``sandbox aws``: only the sandbox AWS (moto with AWS-like delays, the seeded host environment
  and the account API), until SIGTERM or Ctrl-C. Other processes started with ``DS_SANDBOX=1``
  find it through ``<state dir>/env.json``.
* ``sandbox reconcile``: compare the dashboard's records with the running sandbox AWS, both
  ways (provisioning/reconcile.py), and say what it found. ``sandbox run`` runs it as it
  starts, once the sandbox AWS is up and before the dashboard serves.

The sandbox AWS keeps its state in the state directory across restarts (sandbox/persistence.py);
``--fresh`` starts it newly seeded instead.
"""

import os
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

DEMO_USERNAME = "demo"
DEFAULT_DEMO_PASSWORD = "demo-staging-123"


class Command(BaseCommand):
    help = "Run the dashboard on a bundled sandbox AWS (no AWS account needed)."

    def add_arguments(self, parser):
        modes = parser.add_subparsers(dest="mode", required=True)
        aws = modes.add_parser("aws", help="Only the sandbox AWS, until stopped.")
        aws.add_argument("--port", type=int, default=0, help="moto's port (0: any free one)")
        aws.add_argument("--state-dir", type=Path, default=None,
                         help="where env.json goes (default: $DS_SANDBOX_STATE_DIR or "
                              "var/sandbox)")
        run = modes.add_parser("run", help="Sandbox AWS, workers and dashboard together.")
        run.add_argument("--port", type=int, default=8000, help="the dashboard's port")
        run.add_argument("--aws-port", type=int, default=0, help="moto's port (0: any free one)")
        for sub in (aws, run):
            sub.add_argument("--delay-scale", type=float, default=None,
                             help="fraction of real AWS durations (default: "
                                  "$DS_SANDBOX_DELAY_SCALE or 0.07)")
            sub.add_argument("--fresh", action="store_true",
                             help="start from a newly seeded AWS instead of the state the "
                                  "last run saved (that state is kept as aws-state.pickle.old)")
        modes.add_parser("reconcile", help="Compare the dashboard's records with the running "
                                           "sandbox AWS (sandbox run does it as it starts).")

    def handle(self, *args, **options):
        # Imported here: nothing of the sandbox (or moto) loads unless it is asked for.
        from provisioning.sandbox import launcher

        state_dir = Path(options.get("state_dir") or launcher.default_state_dir(settings.BASE_DIR))
        state_dir = state_dir.resolve()
        if options["mode"] == "reconcile":
            # Runs beside the sandbox, which holds the state directory.
            self._reconcile(state_dir)
            return
        try:
            # Everything that could make a second start fail is checked before anything is
            # touched: the state directory's lock, then the ports asked for.
            claim = launcher.StateDirClaim(state_dir)
            try:
                for port in (options.get("port"), options.get("aws_port")):
                    if port:
                        launcher.ensure_port_free(port)
                stop = launcher.stop_requested()
                if options["mode"] == "aws":
                    self._aws(launcher, state_dir, options, stop)
                else:
                    self._run(launcher, state_dir, options, stop)
            finally:
                claim.release()
        except launcher.SandboxError as exc:
            raise CommandError(str(exc)) from exc

    def _start_aws(self, launcher, state_dir: Path, port: int, options):
        sandbox = launcher.start_sandbox_aws(
            state_dir=state_dir, port=port, scale=options["delay_scale"],
            fresh=options["fresh"],
        )
        self.stdout.write(f"sandbox AWS ready at {sandbox.endpoint_url}, {sandbox.origin}")
        self.stdout.flush()
        return sandbox

    def _reconcile(self, state_dir: Path) -> None:
        from provisioning.reconcile import reconcile
        from provisioning.sandbox.environment import NOT_RUNNING, sandbox_is_running

        if not sandbox_is_running(state_dir):
            raise CommandError(NOT_RUNNING)
        found = reconcile()
        for line in found.lines():
            self.stdout.write(f"reconcile: {line}")

    def _aws(self, launcher, state_dir: Path, options, stop) -> None:
        sandbox = self._start_aws(launcher, state_dir, options["port"], options)
        try:
            launcher.wait_until(stop)
        finally:
            sandbox.stop()

    def _run(self, launcher, state_dir: Path, options, stop) -> None:
        call_command("migrate", interactive=False, verbosity=0)
        password = self._ensure_demo_user()
        sandbox = self._start_aws(launcher, state_dir, options["aws_port"], options)
        children, failure = {}, None
        try:
            environment = launcher.app_environment(sandbox, state_dir)
            # Before the dashboard serves: nobody sees a staging as ready whose resources the
            # sandbox AWS does not have.
            launcher.reconcile_records(settings.BASE_DIR, environment)
            children = launcher.start_app(settings.BASE_DIR, options["port"], environment)
            if launcher.wait_for_port(options["port"], children):
                self._greet(options["port"], password, state_dir, launcher)
            else:
                self.stderr.write(f"The dashboard does not answer on port {options['port']}.")
            failure = launcher.supervise(children, stop)
        finally:
            self.stdout.write("Stopping the dashboard, the workers and the sandbox AWS...")
            launcher.stop_app(children)
            sandbox.stop()
        if failure:
            name, code = failure
            raise CommandError(f"{name} exited with code {code}, so the sandbox was stopped.")

    def _ensure_demo_user(self) -> str:
        from django.contrib.auth import get_user_model

        password = os.environ.get("DS_DEMO_PASSWORD") or DEFAULT_DEMO_PASSWORD
        user, _ = get_user_model().objects.get_or_create(username=DEMO_USERNAME)
        # A new hash would sign every browser out (sessions carry a hash of the password):
        # set it only when it is not the demo password already.
        if not user.check_password(password):
            user.set_password(password)
        user.is_staff = True
        user.is_active = True
        user.save()
        return password

    def _greet(self, port: int, password: str, state_dir: Path, launcher) -> None:
        default_dir = launcher.default_state_dir(settings.BASE_DIR).resolve()
        prefix = "" if state_dir == default_dir else f"DS_SANDBOX_STATE_DIR={state_dir} "
        self.stdout.write(self.style.SUCCESS(
            f"Dashboard: http://127.0.0.1:{port}/  login: {DEMO_USERNAME} / {password}"
        ))
        self.stdout.write(
            f"In another terminal: {prefix}DS_SANDBOX=1 .venv/bin/python manage.py ds list"
        )
        self.stdout.write("Press Ctrl-C to stop everything.")

