"""Expiry on the pages: the countdown and the warning badge on the fleet and the staging page,
kept stagings with what they cost a month, Extend and Keep, the create form's TTL, and Recreate
from a destroyed staging's page and the history. All without JavaScript (plain forms)."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from dashboard.templatetags.dashboard_extras import expires_in
from provisioning.costs import HOURS_PER_MONTH, Rates
from provisioning.models import AuditEvent, DbMode, Staging, StagingStatus
from tests.factories import make_staging
from tests.pages import client_for

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("enqueued")]

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def clock(time_machine):
    time_machine.move_to(T0, tick=False)
    return time_machine


def ready(owner, name, left: timedelta | None = timedelta(hours=72), **fields) -> Staging:
    return make_staging(owner, name=name, status=StagingStatus.READY,
                        expires_at=T0 + left if left is not None else None, **fields)


def row(page: str, name: str) -> str:
    found = re.search(rf'<tr data-staging="{name}">(.*?)</tr>', page, re.S)
    assert found, page
    return found.group(1)


def text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


@pytest.mark.parametrize(("seconds", "said"), [
    (None, ""), (-5, "expired: destroying soon"), (0, "expired: destroying soon"),
    (30, "expires in under a minute"), (61, "expires in 2 min"), (59 * 60, "expires in 59 min"),
    (3600, "expires in 1 h"), (80 * 60, "expires in 1 h 20 min"),
    (5 * 3600 + 1700, "expires in 5 h"),
    (5.6 * 3600, "expires in 6 h"), (47 * 3600, "expires in 47 h"),
    (72 * 3600 - 5, "expires in 3 d"), (75 * 3600, "expires in 3 d 3 h"),
])
def test_the_countdown_reads_naturally(seconds, said):
    assert expires_in(seconds) == said


# --- the fleet ---------------------------------------------------------------------------------

def test_the_fleet_counts_down_and_warns_inside_a_window(alice, bob):
    ready(alice, "soon", timedelta(minutes=40))
    ready(alice, "today", timedelta(hours=5))
    ready(alice, "later", timedelta(hours=72))
    page = client_for(alice).get(reverse("home")).content.decode()
    assert text(row(page, "soon")).count("expires in 40 min within 1 h") == 1
    assert "expires in 5 h within 24 h" in text(row(page, "today"))
    assert "expires in 3 d" in text(row(page, "later"))
    assert "expiry-warning" not in row(page, "later")
    # The owner can extend a warned staging from its row; a colleague cannot.
    assert f'action="/stagings/{Staging.objects.get(name="soon").pk}/extend/"' in row(page,
                                                                                      "soon")
    assert "/extend/" not in row(page, "later")
    assert "/extend/" not in row(client_for(bob).get(reverse("home")).content.decode(), "soon")


def test_a_kept_staging_shows_what_it_costs_a_month(alice):
    ready(alice, "pinned", None, kept=True, db_mode=DbMode.DEDICATED)
    page = client_for(alice).get(reverse("home")).content.decode()
    monthly = Rates().hourly(DbMode.DEDICATED) * HOURS_PER_MONTH
    assert f"kept ${monthly:,.2f} a month" in text(row(page, "pinned"))
    assert "expires in" not in row(page, "pinned")


def test_an_extension_changes_the_fleets_version(alice, clock):
    staging = ready(alice, "shop", timedelta(minutes=30))
    client = client_for(alice)
    first = client.get(reverse("fleet_partial"), HTTP_HX_REQUEST="true")
    assert client.get(reverse("fleet_partial"), HTTP_HX_REQUEST="true",
                      HTTP_IF_NONE_MATCH=first["ETag"]).status_code == 304
    clock.shift(timedelta(seconds=1))  # within the same minute: the minute alone changes nothing
    client.post(reverse("extend", args=[staging.pk]))
    again = client.get(reverse("fleet_partial"), HTTP_HX_REQUEST="true",
                       HTTP_IF_NONE_MATCH=first["ETag"])
    assert again.status_code == 200
    assert "expires in 3 d" in text(row(again.content.decode(), "shop"))


# --- the staging page: Extend and Keep ---------------------------------------------------------

def test_the_staging_page_shows_the_countdown_badge_and_the_forms(alice, bob, admin):
    staging = ready(alice, "shop", timedelta(minutes=50))
    url = reverse("staging", args=[staging.pk])
    page = client_for(alice).get(url).content.decode()
    expiry = re.search(r'<div id="expiry">(.*?)</div>', page, re.S).group(1)
    assert "expires in 50 min" in text(expiry) and "expires within 1 h" in text(expiry)
    assert f'action="{reverse("extend", args=[staging.pk])}"' in expiry
    assert 'name="hours"' in expiry and 'placeholder="72"' in expiry
    assert "/keep/" not in expiry  # admins only
    colleague = client_for(bob).get(url).content.decode()
    assert "expires in 50 min" in colleague and "/extend/" not in colleague
    staff = client_for(admin).get(url).content.decode()
    assert "Keep (no expiry)" in staff and "/extend/" in staff


def test_extend_from_the_page(alice):
    staging = ready(alice, "shop", timedelta(minutes=10))
    client = client_for(alice)
    response = client.post(reverse("extend", args=[staging.pk]), {"hours": "12"}, follow=True)
    assert response.redirect_chain == [(reverse("staging", args=[staging.pk]), 302)]
    assert messages_of(response) == ["shop now expires at 2026-03-02 21:00 UTC, in 12 hours."]
    assert "expires in 12 h" in text(response.content.decode())
    response = client.post(reverse("extend", args=[staging.pk]), {"hours": "1000"}, follow=True)
    assert "capped: 1000 hours asked, the most allowed is 336" in messages_of(response)[0]
    response = client.post(reverse("extend", args=[staging.pk]), {"hours": "later"},
                           follow=True)
    assert messages_of(response)[0].startswith("The extension must be a number of hours")
    assert Staging.objects.get(pk=staging.pk).expires_at == T0 + timedelta(hours=336)


def test_extend_from_the_fleet_goes_back_to_the_fleet(alice):
    staging = ready(alice, "shop", timedelta(minutes=10))
    response = client_for(alice).post(reverse("extend", args=[staging.pk]),
                                      {"next": "/?owner=mine"})
    assert response["Location"] == "/?owner=mine"
    assert Staging.objects.get(pk=staging.pk).expires_at == T0 + timedelta(hours=72)


def test_a_colleague_may_not_extend_nor_keep(alice, bob):
    staging = ready(alice, "shop", timedelta(minutes=10))
    for name in ("extend", "keep"):
        assert client_for(bob).post(reverse(name, args=[staging.pk])).status_code == 403
    assert client_for(alice).post(reverse("keep", args=[staging.pk])).status_code == 403
    assert Staging.objects.get(pk=staging.pk).expires_at == T0 + timedelta(minutes=10)
    assert AuditEvent.objects.count() == 0


def test_keep_and_stop_keeping_from_the_page(alice, admin):
    staging = ready(alice, "shop", timedelta(minutes=10))
    client = client_for(admin)
    response = client.post(reverse("keep", args=[staging.pk]), {"kept": "1"}, follow=True)
    assert messages_of(response) == ["shop is kept: it does not expire."]
    page = response.content.decode()
    assert "kept by an admin" in page and "Stop keeping" in page and "/extend/" not in page
    response = client.post(reverse("keep", args=[staging.pk]), {"kept": "0"}, follow=True)
    assert messages_of(response) == [
        "shop is no longer kept: it expires in 72 hours unless extended."]
    assert Staging.objects.get(pk=staging.pk).expires_at == T0 + timedelta(hours=72)


# --- the create form's TTL ---------------------------------------------------------------------

def test_the_create_form_asks_for_a_ttl(alice, host_env, django_capture_on_commit_callbacks):
    client = client_for(alice)
    page = client.get(reverse("create")).content.decode()
    assert "TTL (hours)" in page and 'name="ttl"' in page
    assert "Empty: 72; at most 336." in page
    response = client.post(reverse("create"), {
        "branch": "main", "source": "host-db", "db_mode": "shared", "ttl": "1.5"})
    assert response.status_code == 302
    assert Staging.objects.get().expires_at == T0 + timedelta(hours=1.5)


@pytest.mark.parametrize(("ttl", "words"), [
    ("forever", "must be a number of hours above 0"),
    ("400", "above the most allowed, 336 hours (DS_MAX_TTL_HOURS)"),
])
def test_a_bad_ttl_shows_next_to_its_field(alice, host_env, ttl, words):
    response = client_for(alice).post(reverse("create"), {
        "branch": "main", "source": "host-db", "db_mode": "shared", "ttl": ttl})
    assert response.status_code == 200
    error = re.search(r'<p class="field-error" id="ttl-error">(.*?)</p>',
                      response.content.decode(), re.S)
    assert error and words in error.group(1).replace("&#x27;", "'")
    assert Staging.objects.count() == 0


# --- Recreate ----------------------------------------------------------------------------------

def destroyed(owner, name="shop", **fields) -> Staging:
    return make_staging(owner, name=name, status=StagingStatus.DESTROYED, branch="main",
                        destroyed_at=T0 - timedelta(hours=1), **fields)


def test_a_destroyed_staging_offers_recreate_to_its_owner(alice, bob):
    old = destroyed(alice)
    url = reverse("staging", args=[old.pk])
    page = client_for(alice).get(url).content.decode()
    assert f'action="{reverse("recreate", args=[old.pk])}"' in page
    assert "Recreate shop" in page and 'id="expiry"' not in page
    assert "/recreate/" not in client_for(bob).get(url).content.decode()
    history = client_for(alice).get(reverse("history")).content.decode()
    assert f'action="{reverse("recreate", args=[old.pk])}"' in history
    assert "/recreate/" not in client_for(bob).get(reverse("history")).content.decode()


def test_recreate_goes_to_the_new_stagings_page(alice, host_env):
    old = destroyed(alice, db_mode=DbMode.SHARED)
    response = client_for(alice).post(reverse("recreate", args=[old.pk]), follow=True)
    again = Staging.objects.live().get(name="shop")
    assert response.redirect_chain == [(reverse("staging", args=[again.pk]), 302)]
    assert messages_of(response) == ["Recreating shop from main."]
    assert (again.branch, again.db_mode, again.owner) == ("main", DbMode.SHARED, alice)


def test_recreate_refused_says_why_on_the_old_page(alice, bob, host_env):
    old = destroyed(alice)
    ready(bob, "shop")
    response = client_for(alice).post(reverse("recreate", args=[old.pk]), follow=True)
    assert response.redirect_chain == [(reverse("staging", args=[old.pk]), 302)]
    assert messages_of(response) == [
        "Cannot recreate shop: The name 'shop' is live again (a staging of bob, ready): open "
        "that one, or destroy it first."]
    assert Staging.objects.count() == 2
