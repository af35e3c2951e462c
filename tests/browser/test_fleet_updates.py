"""The fleet page in a real browser: a staging somebody else makes shows up without a reload,
and the polls that find nothing changed (304) leave the table as it is.

Needs Debian's ``chromium``; skipped without it, except under ``CI=true``.
"""

import pytest

from tests.browser.chromium import signed_in_pages
from tests.factories import make_listed_staging

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def page(live_server, alice, monkeypatch):
    with signed_in_pages(live_server.url, alice, monkeypatch) as open_page:
        yield open_page()


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
