"""The dashboard in a real browser, on the sandbox, with real background workers.

A user's path: log in, create a staging from the form, watch its page reach "ready" without
reloading, ask for the test account's password and copy it, find the staging on the fleet page
with a cost, destroy it with the row's button and the confirmation, see it leave the fleet, and
sweep for leftovers. Screenshots of every page land in test-artifacts/screenshots/. The pages
run under the dashboard's Content-Security-Policy: the browser reports no violation.

Needs Debian's ``chromium`` (``apt-get install -y chromium``); without it these tests are
skipped, except under ``CI=true`` where a missing browser is a failure.
"""

import re
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.browser.chromium import launch, require_chromium, shoot
from tests.stack import MANAGE, ROOT, SandboxStack

USERNAME, PASSWORD = "carol", "carol-browser-123"
BRANCH = "develop"  # the sandbox's ECR holds an image for it
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
# The sandbox runs AWS at 2% of real durations: a create takes some seconds, not minutes.
DELAY_SCALE = 0.02
READY_TIMEOUT_MS = 180_000

pytestmark = pytest.mark.browser


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Stack(SandboxStack):
    """The shared sandbox stack plus a migrated database with a user, a qcluster and
    runserver, each its own process. Always SQLite: the browser pass runs once."""

    def __init__(self, state_dir: Path):
        super().__init__(state_dir, delay_scale=DELAY_SCALE, env_services=False)
        self.env.pop("DJANGO_SETTINGS_MODULE", None)
        self.base_url = ""

    def run(self, *args: str, **env: str) -> None:
        result = self.manage(*args, **env)
        assert result.returncode == 0, f"manage.py {' '.join(args)}:\n{result.stderr}"

    def start(self) -> None:
        self.start_aws(timeout=120)
        self.run("migrate", "--noinput")
        self.run("createsuperuser", "--noinput", "--username", USERNAME,
                 "--email", f"{USERNAME}@example.com", DJANGO_SUPERUSER_PASSWORD=PASSWORD)
        self.start_qcluster()
        port = free_port()
        log_path = self.state_dir / "runserver.log"
        web = subprocess.Popen(
            [*MANAGE, "runserver", f"127.0.0.1:{port}", "--noreload"], env=self.env, cwd=ROOT,
            stdout=open(log_path, "w"), stderr=subprocess.STDOUT,  # noqa: SIM115
        )
        self.processes.append(web)
        self.base_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while not self.answers("/login/"):
            if web.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"runserver did not start:\n{log_path.read_text()}")
            time.sleep(0.2)

    def answers(self, path: str) -> bool:
        try:
            with urllib.request.urlopen(self.base_url + path, timeout=2) as response:
                return response.status == 200
        except OSError:
            return False


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    require_chromium()
    stack = Stack(tmp_path_factory.mktemp("browser-stack"))
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


def watch_console(page) -> list[str]:
    """Console errors (where Chromium reports Content-Security-Policy violations)."""
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text)
            if message.type == "error" else None)
    return errors


def log_in(page, base_url: str) -> None:
    page.goto(base_url + "/")
    assert "/login/" in page.url  # every page needs a login
    page.fill("input[name=username]", USERNAME)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(base_url + "/")


def test_create_watch_find_and_destroy_a_staging(stack, browser):
    from playwright.sync_api import expect

    context = browser.new_context(viewport=DESKTOP)
    context.set_default_timeout(30_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    console_errors = watch_console(page)
    base = stack.base_url

    page.goto(base + "/")
    shoot(page, "login")
    log_in(page, base)
    expect(page.locator("h1")).to_have_text("Fleet")
    shoot(page, "fleet-empty")

    # Create from the form; the derived name shows while typing.
    page.click("text=New staging")
    expect(page.locator("datalist#branch-suggestions option[value='develop']")).to_have_count(1)
    page.fill("input[name=branch]", BRANCH)
    expect(page.locator("#name-preview .derived-name")).to_have_text(re.compile(r"^develop-"))
    name = page.locator("#name-preview .derived-name").inner_text()
    expect(page.locator("select[name=source] option[value='host-db']")).to_contain_text(
        "snapshot")
    shoot(page, "create")
    page.click("button:has-text('Create staging')")
    page.wait_for_url(re.compile(r"/stagings/\d+/$"))
    staging_url = page.url
    expect(page.locator("h1")).to_have_text(name)

    # The page follows the create by itself: no reload, no navigation.
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url)
            if frame == page.main_frame else None)
    expect(page.locator("#staging-status")).to_have_text(
        re.compile("pending|provisioning|ready"))
    expect(page.locator(".step-done").first).to_be_visible(timeout=60_000)
    shoot(page, "staging-progress")
    expect(page.locator("#staging-status")).to_have_text("ready", timeout=READY_TIMEOUT_MS)
    assert navigations == []
    assert page.url == staging_url
    expect(page.locator("#staging-live")).not_to_have_attribute("hx-trigger", re.compile("."))
    expect(page.locator(".progress-text")).to_contain_text(re.compile(r"(\d+) of \1 steps done"))

    # Ready: URL, login with the password kept in AWS until asked for, console links, logs;
    # in the sandbox the URL and the links lead nowhere real, so they are text, said simulated.
    expect(page.locator(".staging-url.simulated")).to_have_text(re.compile(name))
    expect(page.locator("a.staging-url")).to_have_count(0)
    password = page.locator("#login-password")
    expect(password).to_have_count(0)
    shoot(page, "staging-ready-password-hidden")
    page.click("button:has-text('Show password')")
    expect(password).to_be_visible()
    expect(password).to_have_text(re.compile(r"\S{8,}"))
    secret = password.inner_text()
    copy = page.locator("#login-password-box button[data-copy]")
    expect(copy).to_be_visible()  # revealed by app.js after the swap
    expect(copy).to_have_attribute("data-copy", secret)
    copy.click()
    expect(copy).to_have_text("Copied")
    assert navigations == []  # swapped in place
    expect(page.locator(".resources .simulated")).to_have_count(7)
    expect(page.locator("a[href*='console.aws.amazon.com']")).to_have_count(0)
    expect(page.locator(".simulated:has-text('Web service logs')")).to_be_visible()
    shoot(page, "staging-ready")

    # The look at the password is on the audit trail, after the create (shown on a reload:
    # the trail is not part of what polls).
    page.reload()
    trail = page.locator("#audit-trail tbody tr")
    expect(trail).to_have_count(2)
    expect(trail.nth(0)).to_contain_text("showed the password")
    expect(trail.nth(1)).to_contain_text("create")
    expect(trail.nth(1)).to_contain_text(USERNAME)

    # Without JavaScript the same button answers with the page, the password on it.
    nojs = browser.new_context(viewport=DESKTOP, java_script_enabled=False,
                               storage_state=context.storage_state())
    nojs_page = nojs.new_page()
    nojs_page.goto(staging_url)
    nojs_page.click("button:has-text('Show password')")
    expect(nojs_page.locator("#login-password")).to_have_text(secret)
    shoot(nojs_page, "staging-password-nojs")
    nojs.close()

    # The fleet lists it with its cost.
    page.click("nav >> text=Fleet")
    row = page.locator(f"tr[data-staging='{name}']")
    expect(row.locator("[data-label='Status']")).to_have_text("ready")
    expect(row.locator("[data-label='Per hour']")).to_have_text(re.compile(r"^\$0\.\d\d$"))
    expect(row.locator("[data-label='So far']")).to_contain_text("$")
    expect(page.locator(".totals")).to_contain_text("Projection for the month")
    expect(page.locator("svg.chart rect.bar")).to_have_count(30)
    shoot(page, "fleet")

    # Phone-sized views of the same pages.
    phone = browser.new_context(viewport=PHONE, storage_state=context.storage_state())
    phone_page = phone.new_page()
    for shot, path in (("fleet-phone", "/"), ("staging-phone", staging_url[len(base):]),
                       ("create-phone", "/stagings/new/")):
        phone_page.goto(base + path)
        shoot(phone_page, shot)
    phone.close()

    # Destroy from the row, confirm, and watch it leave the fleet.
    row.locator("text=Destroy").click()
    expect(page.locator("h1")).to_have_text(f"Destroy {name}?")
    shoot(page, "destroy-confirm")
    page.click(f"button:has-text('Destroy {name}')")
    page.wait_for_url(base + "/")
    expect(page.locator(".message")).to_contain_text(f"Destroying {name}")
    shoot(page, "fleet-destroying")
    expect(page.locator(f"tr[data-staging='{name}']")).to_have_count(0,
                                                                    timeout=READY_TIMEOUT_MS)
    # Nothing changes any more: polled slowly, for the stagings others make.
    expect(page.locator("#fleet")).to_have_attribute("hx-trigger", "every 10s")
    shoot(page, "fleet-after-destroy")

    # Its page shows the finished teardown; the history keeps it.
    page.goto(staging_url)
    expect(page.locator("#staging-status")).to_have_text("destroyed")
    expect(page.locator(".operation-state")).to_contain_text("Destroy succeeded")
    shoot(page, "staging-destroyed")
    page.click("nav >> text=History")
    expect(page.locator(f"a:has-text('{name}')")).to_have_count(1)
    shoot(page, "history")

    # Nothing left behind: a sweep (staff only) finds no leftovers.
    page.click("nav >> text=Leftovers")
    page.click("button:has-text('Sweep now')")
    expect(page.locator(".message")).to_contain_text("The sweep found nothing left behind")
    expect(page.locator("[data-orphan]")).to_have_count(0)
    shoot(page, "leftovers")
    assert errors == []
    assert [e for e in console_errors if "Content Security Policy" in e] == []
    assert console_errors == []
    context.close()


def test_pages_work_without_javascript(stack, browser):
    from playwright.sync_api import expect

    context = browser.new_context(viewport=DESKTOP, java_script_enabled=False)
    page = context.new_page()
    log_in(page, stack.base_url)

    page.click("text=New staging")
    page.fill("input[name=branch]", "feature/never-pushed")
    page.click("button:has-text('Create staging')")
    expect(page.locator("#branch-error")).to_contain_text("No image tagged")
    # the derived name is shown after the round trip instead of while typing
    expect(page.locator("#name-preview .derived-name")).to_have_text(
        re.compile(r"^feature-never-pushed-"))
    shoot(page, "create-error-nojs")

    page.goto(stack.base_url + "/")
    page.select_option("select[name=owner]", "mine")
    page.click("button:has-text('Filter')")
    assert "owner=mine" in page.url
    expect(page.locator("select[name=owner]")).to_have_value("mine")
    context.close()
