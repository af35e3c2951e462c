"""Signing in through the sandbox's identity provider in a real browser: the real redirects
to the provider's page and back, with password logins off (the default beside a provider).

The demo admin signs in, lands on the fleet, makes a staging and logs out (which ends the
provider's session: the browser goes there and comes back to the login page); a colleague who
is not staff gets 403 on the Setup page; someone of another domain is refused with a page that
says why. No Content-Security-Policy violation on the way.
"""

import re
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from provisioning.sandbox import identity
from tests.browser.chromium import launch, require_chromium, shoot
from tests.stack import MANAGE, ROOT, SandboxStack

DELAY_SCALE = 0.02

pytestmark = pytest.mark.browser


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SignInStack(SandboxStack):
    """The sandbox AWS with its identity provider (the dashboard registered at its URL), a
    migrated database, a qcluster and runserver, with password logins off."""

    def __init__(self, state_dir: Path):
        super().__init__(state_dir, delay_scale=DELAY_SCALE, env_services=False)
        self.env.pop("DJANGO_SETTINGS_MODULE", None)
        self.env["DS_LOCAL_LOGIN"] = "0"
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        log = open(self.state_dir / "sandbox-aws.log", "w")  # noqa: SIM115 (lives with it)
        self.processes.append(subprocess.Popen(
            [*MANAGE, "sandbox", "aws", "--state-dir", str(self.state_dir),
             "--delay-scale", str(self.delay_scale), "--sign-in-for", self.base_url],
            env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT))
        self._wait(lambda: (self.state_dir / "env.json").exists(), "sandbox AWS", 120)
        assert self.manage("migrate", "--noinput").returncode == 0
        self.start_qcluster()
        web_log = open(self.state_dir / "runserver.log", "w")  # noqa: SIM115
        self.processes.append(subprocess.Popen(
            [*MANAGE, "runserver", f"127.0.0.1:{self.port}", "--noreload"], env=self.env,
            cwd=ROOT, stdout=web_log, stderr=subprocess.STDOUT))
        self._wait(lambda: self._answers("/login/"), "runserver", 60)

    def _wait(self, ready, what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            if any(p.poll() is not None for p in self.processes) or \
                    time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start:\n{self.logs()}")
            time.sleep(0.2)

    def _answers(self, path: str) -> bool:
        try:
            with urllib.request.urlopen(self.base_url + path, timeout=2) as response:
                return response.status == 200
        except OSError:
            return False


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    require_chromium()
    stack = SignInStack(tmp_path_factory.mktemp("sign-in-stack"))
    try:
        stack.start()
        yield stack
    finally:
        stack.close()


@pytest.fixture(scope="module")
def browser(stack):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch(playwright)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(30_000)
    page = context.new_page()
    page.errors = []
    page.on("console", lambda message: page.errors.append(message.text)
            if message.type == "error" else None)
    yield page
    context.close()


def csp_violations(page) -> list[str]:
    """What Chromium refused under a Content-Security-Policy (the provider's page loads its
    stylesheet from the internet, which this machine does not reach: not ours to judge)."""
    return [error for error in page.errors if "Content Security Policy" in error]


def sign_in(page, base_url: str, email: str, shots: str = "") -> None:
    """From a page that needs a login, through the provider's page, back."""
    from playwright.sync_api import expect

    page.goto(base_url + "/")
    assert "/login/" in page.url
    expect(page.locator("input[name=password]")).to_have_count(0)  # passwords are off
    if shots:
        shoot(page, f"{shots}-login")
    page.click("text=Sign in with Sandbox SSO")
    page.wait_for_url(re.compile(r"/oauth2/authorize"))
    if shots:
        shoot(page, f"{shots}-provider")
    page.click(f"button[name=sub][value='{email}']")


def test_the_demo_admin_signs_in_creates_a_staging_and_logs_out(stack, page):
    from playwright.sync_api import expect

    base = stack.base_url
    sign_in(page, base, identity.DEMO_EMAIL, shots="sign-in")
    page.wait_for_url(base + "/")
    expect(page.locator("h1")).to_have_text("Fleet")
    expect(page.locator(".topbar .who")).to_have_text(identity.DEMO_EMAIL)
    page.goto(base + "/setup/")
    expect(page.locator("h1")).not_to_have_text("Not allowed")  # staff by group

    page.goto(base + "/stagings/new/")
    page.fill("input[name=branch]", "develop")
    page.click("button:has-text('Create staging')")
    page.wait_for_url(re.compile(r"/stagings/\d+/$"))
    expect(page.locator("#staging-status")).to_have_text(
        re.compile("pending|provisioning|ready"))
    expect(page.locator("#audit-trail")).to_contain_text("(identity provider)")
    shoot(page, "sign-in-staging")

    page.click("button:has-text('Log out')")
    page.wait_for_url(re.compile(r"/oauth2/end_session"))  # the provider's own session ends
    shoot(page, "sign-in-provider-logout")
    page.locator("form button[type=submit]").first.click()
    page.wait_for_url(re.compile(r"/login/$"))
    page.goto(base + "/")
    assert "/login/" in page.url
    assert csp_violations(page) == []


def test_a_colleague_is_not_staff(stack, page):
    from playwright.sync_api import expect

    sign_in(page, stack.base_url, identity.COLLEAGUE_EMAIL)
    page.wait_for_url(stack.base_url + "/")
    response = page.goto(stack.base_url + "/setup/")
    assert response.status == 403
    expect(page.locator("h1")).to_have_text("Not allowed")
    assert csp_violations(page) == []


def test_someone_of_another_domain_is_refused_with_a_page(stack, page):
    from playwright.sync_api import expect

    sign_in(page, stack.base_url, identity.OUTSIDER_EMAIL)
    page.wait_for_url(re.compile(r"/oidc/callback/"))
    expect(page.locator("h1")).to_have_text("Not signed in")
    expect(page.locator("#sign-in-refused")).to_contain_text(
        f"{identity.OUTSIDER_EMAIL} is not an address of {identity.ALLOWED_DOMAIN}")
    shoot(page, "sign-in-refused")
    page.goto(stack.base_url + "/")
    assert "/login/" in page.url  # nobody was signed in
