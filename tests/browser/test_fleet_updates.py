"""The fleet page in a real browser: a staging somebody else makes shows up without a reload,
and the polls that find nothing changed (304) leave the table as it is.

Needs Debian's ``chromium``; skipped without it, except under ``CI=true``.
"""

import pytest
from django.conf import settings
from django.test import Client

from tests.browser.chromium import launch, require_chromium
from tests.factories import make_listed_staging

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def page(live_server, alice, monkeypatch):
    require_chromium()
    # Playwright's sync API runs an event loop in this thread; the ORM calls here are plain
    # synchronous ones between its calls.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    client = Client()
    client.force_login(alice)
    session = client.cookies[settings.SESSION_COOKIE_NAME].value
    with sync_playwright() as playwright:
        browser = launch(playwright)
        context = browser.new_context()
        context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": session,
                              "url": live_server.url}])
        yield context.new_page()
        browser.close()


def test_others_stagings_appear_and_unchanged_polls_keep_the_table(page, live_server, alice,
                                                                   bob):
    make_listed_staging(alice, "mine")
    statuses = []
    page.on("response", lambda response: statuses.append(response.status)
            if "/fleet/table/" in response.url else None)
    page.goto(live_server.url + "/")
    page.wait_for_selector("tr[data-staging=mine]")

    with page.expect_response(lambda r: "/fleet/table/" in r.url and r.status == 304,
                              timeout=25_000):
        pass
    page.wait_for_timeout(300)  # what a swap of nothing would have done, it would have by now
    assert page.locator("tr[data-staging=mine]").count() == 1
    assert page.locator("#fleet").count() == 1

    make_listed_staging(bob, "theirs")
    page.wait_for_selector("tr[data-staging=theirs]", timeout=25_000)
    assert page.locator("tr[data-staging=mine]").count() == 1
    assert 304 in statuses and 200 in statuses
