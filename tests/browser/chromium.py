"""Debian's Chromium driven by Playwright: where it is, how it starts, what a run without it
does (skip, or fail under ``CI=true``), and where the pages' screenshots go."""

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]


def require_chromium() -> None:
    if CHROMIUM.exists():
        return
    reason = (f"{CHROMIUM} is missing: install Debian's chromium package "
              "(apt-get install -y chromium) to run the browser tests")
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def launch(playwright):
    """A headless Chromium from ``sync_playwright()``."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)


def shoot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


@contextmanager
def signed_in_pages(live_server_url: str, user, monkeypatch) -> Iterator[Callable[..., object]]:
    """``open_page(timeout_ms=None, **context_options)``: new pages of a headless Chromium
    signed in as ``user`` on the test's live server (a session cookie made by Django's test
    client, so no login form is driven)."""
    require_chromium()
    # Playwright's sync API runs an event loop in this thread; the ORM calls the tests make
    # between its calls are plain synchronous ones.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from django.conf import settings
    from django.test import Client
    from playwright.sync_api import sync_playwright

    client = Client()
    client.force_login(user)
    session = client.cookies[settings.SESSION_COOKIE_NAME].value
    with sync_playwright() as playwright:
        browser = launch(playwright)

        def open_page(timeout_ms: int | None = None, **context_options):
            context = browser.new_context(**context_options)
            if timeout_ms is not None:
                context.set_default_timeout(timeout_ms)
            context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": session,
                                  "url": live_server_url}])
            return context.new_page()

        try:
            yield open_page
        finally:
            browser.close()
