"""``manage.py sandbox``: run the product on a local, seeded moto server instead of AWS.

* ``sandbox run``: everything a new user needs in one foreground command: migrations, a demo
  login, the sandbox AWS, an identity provider to sign in with (unless DS_OIDC_ISSUER names
  another), the background workers and the dashboard. Ctrl-C stops it all.
* ``sandbox aws``: only the sandbox AWS (moto with AWS-like delays, the seeded host environment,
  the account API and a fake Slack), until SIGTERM or Ctrl-C. Other processes started with
  ``DS_SANDBOX=1`` find it through ``<state dir>/env.json``.
* ``sandbox slack "/staging create feature/x" [--user demo]``: type a slash command as Slack
  would send it to the running dashboard, and print what comes back.
* ``sandbox reconcile``: compare the dashboard's records with the running sandbox AWS, both
  ways (provisioning/reconcile.py), and say what it found. ``sandbox run`` runs it as it
  starts, once the sandbox AWS is up and before the dashboard serves.

The sandbox AWS keeps its state in the state directory across restarts (sandbox/persistence.py);
``--fresh`` starts it newly seeded instead.
"""

from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from provisioning.config import load_config


class Command(BaseCommand):
    help = "Run the dashboard on a bundled sandbox AWS (no AWS account needed)."

    def add_arguments(self, parser):
        modes = parser.add_subparsers(dest="mode", required=True)
        aws = modes.add_parser("aws", help="Only the sandbox AWS, until stopped.")
        aws.add_argument("--port", type=int, default=0, help="moto's port (0: any free one)")
        aws.add_argument("--state-dir", type=Path, default=None,
                         help="where env.json goes (default: $DS_SANDBOX_STATE_DIR or "
                              "var/sandbox)")
        aws.add_argument("--sign-in-for", default="", metavar="DASHBOARD_URL",
                         help="also run the identity provider, with the dashboard at this URL "
                              "registered as its client")
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
        slack = modes.add_parser("slack", help="Send a signed slash command to the dashboard "
                                               "and print what comes back.")
        slack.add_argument("typed", help='what is typed in Slack, e.g. "/staging list"')
        slack.add_argument("--user", default=None,
                           help="the dashboard user typing it (default: the demo user)")
        slack.add_argument("--url", default=None,
                           help="the dashboard (default: $DS_DASHBOARD_URL or "
                                "http://127.0.0.1:8000)")
        slack.add_argument("--timeout", type=float, default=900,
                           help="seconds to wait for what the command started (default 900)")

    def handle(self, *args, **options):
        if options["mode"] == "slack":
            self._slack(options)
            return
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

    def _slack(self, options) -> None:
        from provisioning.sandbox import slack_command

        typed = slack_command.split_typed(options["typed"])
        config = load_config()
        options["user"] = options["user"] or config.demo_username
        url = options["url"] or config.dashboard_url or "http://127.0.0.1:8000"
        try:
            status, text, response_url, after = slack_command.send(
                typed, username=options["user"], dashboard_url=url)
            self.stdout.write(f"{typed.command} {typed.text}  (as {options['user']})")
            self.stdout.write(f"HTTP {status}: {text}")
            if status != 200:
                raise CommandError(f"The dashboard refused the command (HTTP {status}).")
            done = slack_command.follow(response_url, after, timeout=options["timeout"],
                                        write=lambda line: (self.stdout.write(line),
                                                            self.stdout.flush()))
        except slack_command.SlackSandboxError as exc:
            raise CommandError(str(exc)) from exc
        if not done:
            raise CommandError(f"Still not finished after {options['timeout']:.0f} s.")

    def _start_aws(self, launcher, state_dir: Path, port: int, options, sign_in_for: str = ""):
        sandbox = launcher.start_sandbox_aws(
            state_dir=state_dir, port=port, scale=options["delay_scale"],
            sign_in_for=sign_in_for, fresh=options["fresh"],
        )
        self.stdout.write(f"sandbox AWS ready at {sandbox.endpoint_url}, {sandbox.origin}")
        if sandbox.identity_provider is not None:
            self.stdout.write(f"identity provider at {sandbox.identity_provider.issuer}")
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
        sandbox = self._start_aws(launcher, state_dir, options["port"], options,
                                  options["sign_in_for"])
        try:
            launcher.wait_until(stop)
        finally:
            sandbox.stop()

    def _run(self, launcher, state_dir: Path, options, stop) -> None:
        call_command("migrate", interactive=False, verbosity=0)
        password = self._ensure_demo_user()
        # An operator who points DS_OIDC_ISSUER at a provider of their own keeps it.
        sign_in_for = "" if load_config().oidc_issuer else \
            f"http://127.0.0.1:{options['port']}"
        sandbox = self._start_aws(launcher, state_dir, options["aws_port"], options, sign_in_for)
        children, failure = {}, None
        try:
            environment = launcher.app_environment(sandbox, state_dir)
            # Links in e-mails and Slack messages point at this dashboard.
            environment.setdefault("DS_DASHBOARD_URL", f"http://127.0.0.1:{options['port']}")
            # Before the dashboard serves: nobody sees a staging as ready whose resources the
            # sandbox AWS does not have.
            launcher.reconcile_records(settings.BASE_DIR, environment)
            children = launcher.start_app(settings.BASE_DIR, options["port"], environment)
            if launcher.wait_for_port(options["port"], children):
                self._greet(options["port"], password, state_dir, launcher,
                            signs_in=sandbox.identity_provider is not None)
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

        config = load_config()
        password = config.demo_password
        from provisioning.sandbox.identity import DEMO_EMAIL

        user, _ = get_user_model().objects.get_or_create(username=config.demo_username)
        # The identity provider's demo person has this e-mail: signing in there is this user.
        user.email = DEMO_EMAIL
        # A new hash would sign every browser out (sessions carry a hash of the password):
        # set it only when it is not the demo password already.
        if not user.check_password(password):
            user.set_password(password)
        user.is_staff = True
        user.is_active = True
        user.save()
        return password

    def _greet(self, port: int, password: str, state_dir: Path, launcher,
               signs_in: bool = False) -> None:
        from provisioning.sandbox import identity

        default_dir = launcher.default_state_dir(settings.BASE_DIR).resolve()
        prefix = "" if state_dir == default_dir else f"DS_SANDBOX_STATE_DIR={state_dir} "
        demo = load_config().demo_username
        if signs_in:
            self.stdout.write(self.style.SUCCESS(
                f"Dashboard: http://127.0.0.1:{port}/  press \"Sign in with "
                f"{identity.PROVIDER_NAME}\" and pick {identity.DEMO_EMAIL} (staff)"
            ))
            self.stdout.write(
                f"  also there: {identity.COLLEAGUE_EMAIL} (not staff), "
                f"{identity.OUTSIDER_EMAIL} (another domain: refused); break-glass password "
                f"login: {demo} / {password}"
            )
        else:
            self.stdout.write(self.style.SUCCESS(
                f"Dashboard: http://127.0.0.1:{port}/  login: {demo} / {password}"
            ))
        self.stdout.write(
            f"In another terminal: {prefix}DS_SANDBOX=1 .venv/bin/python manage.py ds list"
        )
        self.stdout.write("Press Ctrl-C to stop everything.")

