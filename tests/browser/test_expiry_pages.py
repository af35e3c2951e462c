"""Expiry in a real browser: the countdown and the warning badge on the fleet and the staging
page, Extend from a fleet row and from the staging page, and Recreate from a destroyed
staging's page and from the history (AWS in-process: moto with the seeded host).

Needs Debian's ``chromium``; skipped without it, except under ``CI=true``.
"""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from provisioning.models import DbMode, Staging, StagingStatus
from tests.browser.chromium import shoot, signed_in_pages
from tests.factories import make_staging

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def page(live_server, alice, monkeypatch, host_env, enqueued):
    with signed_in_pages(live_server.url, alice, monkeypatch) as open_page:
        yield open_page(15_000, viewport={"width": 1280, "height": 900})


def test_countdown_badge_and_extend(page, live_server, alice):
    from playwright.sync_api import expect

    soon = make_staging(alice, name="soon", status=StagingStatus.READY,
                        expires_at=timezone.now() + timedelta(minutes=40))
    page.goto(live_server.url + "/")
    row = page.locator("tr[data-staging=soon]")
    expect(row.locator("[data-label=Expires] .countdown")).to_have_text(
        re.compile(r"^expires in (39|40) min$"))
    expect(row.locator(".badge.expiry-warning")).to_have_text("within 1 h")
    shoot(page, "fleet-expiry-warning")

    row.locator("button:has-text('Extend')").click()
    page.wait_for_url(live_server.url + "/")
    expect(page.locator(".message")).to_contain_text("soon now expires at")
    expect(row.locator("[data-label=Expires] .countdown")).to_have_text("expires in 3 d")
    expect(row.locator(".badge.expiry-warning")).to_have_count(0)
    expect(row.locator("button:has-text('Extend')")).to_have_count(0)  # not warned any more

    # The staging page: a number of hours of one's own.
    page.click("a.staging-name:has-text('soon')")
    expiry = page.locator("#expiry")
    expect(expiry.locator(".countdown")).to_have_text("expires in 3 d")
    expiry.locator("input[name=hours]").fill("0.5")
    expiry.locator("button:has-text('Extend')").click()
    expect(page.locator(".message")).to_contain_text("in 0.5 hours")
    expect(expiry.locator(".countdown")).to_have_text(re.compile(r"^expires in (29|30) min$"))
    expect(expiry.locator(".badge.expiry-warning")).to_have_text("expires within 1 h")
    shoot(page, "staging-expiry-extended")
    soon.refresh_from_db()
    assert timedelta(minutes=29) < soon.expires_at - timezone.now() <= timedelta(minutes=30)


def test_recreate_from_the_staging_page_and_from_the_history(page, live_server, alice,
                                                              enqueued):
    from playwright.sync_api import expect

    old = make_staging(alice, name="shop", status=StagingStatus.DESTROYED, branch="main",
                       db_mode=DbMode.SHARED, destroyed_at=timezone.now())
    page.goto(f"{live_server.url}/stagings/{old.pk}/")
    expect(page.locator("#staging-status")).to_have_text("destroyed")
    page.click("button:has-text('Recreate shop')")
    page.wait_for_url(re.compile(r"/stagings/\d+/$"))
    again = Staging.objects.live().get(name="shop")
    assert page.url == f"{live_server.url}/stagings/{again.pk}/"
    expect(page.locator(".message")).to_have_text("Recreating shop from main.")
    expect(page.locator("#staging-status")).to_have_text("pending")
    expect(page.locator("#expiry .countdown")).to_have_text("expires in 3 d")
    shoot(page, "staging-recreated")
    assert (again.branch, again.db_mode) == ("main", DbMode.SHARED)
    assert len(enqueued) == 1

    # From the history: refused while the name is live again, with the reason.
    page.goto(live_server.url + "/history/")
    page.locator("tr", has_text="shop").locator("button:has-text('Recreate')").click()
    page.wait_for_url(f"{live_server.url}/stagings/{old.pk}/")
    expect(page.locator(".message")).to_contain_text("The name 'shop' is live again")
    assert Staging.objects.filter(name="shop").count() == 2
