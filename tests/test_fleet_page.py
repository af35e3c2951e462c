"""The fleet page and its polled table: live stagings with costs, filters without
JavaScript, polling faster while something changes, queries that do not grow with the fleet."""

import re

import pytest
from django.urls import reverse

from provisioning.models import OperationKind, OperationStatus, Staging, StagingStatus
from tests.factories import add_operation, make_fleet, make_listed_staging
from tests.pages import HTMX, client_for, cold_query_count, query_count

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("enqueued", "aws_region")]


def test_fleet_shows_live_stagings_with_costs_and_totals(alice, bob):
    make_listed_staging(alice, "shop")
    make_listed_staging(bob, "cart", db_mode="shared", status=StagingStatus.PROVISIONING)
    make_listed_staging(alice, "gone", status=StagingStatus.DESTROYED)
    page = client_for(alice).get("/").content.decode()
    assert 'href="/stagings/' in page
    assert ">shop<" in page and ">cart<" in page
    assert ">gone<" not in page
    assert "Live stagings" in page and "Fleet cost per hour" in page
    assert "Projection for the month" in page and "Cost so far this month" in page
    assert re.search(r"\$0\.0\d", page), "an hourly cost in dollars"
    assert "status-provisioning" in page
    assert "from host-db" in page  # DB mode and source
    assert "estimates from list prices as of" in page
    assert "<svg" in page and "<rect" in page  # the 30-day chart, drawn on the server


def test_fleet_filters_work_without_javascript(alice, bob):
    make_listed_staging(alice, "shop")
    make_listed_staging(bob, "cart", status=StagingStatus.FAILED)
    client = client_for(alice)
    mine = client.get("/?owner=mine").content.decode()
    assert ">shop<" in mine and ">cart<" not in mine
    failed = client.get("/?status=failed").content.decode()
    assert ">cart<" in failed and ">shop<" not in failed
    # nonsense filters fall back to everything instead of failing
    assert ">cart<" in client.get("/?owner=x&status=nope").content.decode()


def test_fleet_polls_faster_while_something_changes(alice):
    ready = make_listed_staging(alice, "shop")
    client = client_for(alice)
    # Nothing changes: still polled, slowly, so stagings others make show up.
    assert 'hx-trigger="every 10s"' in client.get("/").content.decode()
    partial = client.get(reverse("fleet_partial"), **HTMX)
    assert partial.status_code == 200
    assert 'hx-trigger="every 10s"' in partial.content.decode()

    Staging.objects.filter(pk=ready.pk).update(status=StagingStatus.DESTROYING)
    page = client.get("/").content.decode()
    assert 'hx-get="/fleet/table/"' in page and 'hx-trigger="every 3s"' in page
    partial = client.get(reverse("fleet_partial"), **HTMX)
    assert partial.status_code == 200
    body = partial.content.decode()
    assert body.lstrip().startswith('<div id="fleet"')
    assert "<html" not in body
    assert 'hx-swap="outerHTML"' in body
    assert 'href="/"' in body  # the no-JavaScript refresh beside the hx-get


def test_fleet_polls_while_an_operation_waits_for_a_worker(alice):
    # Still "ready": no worker has picked the destroy up.
    staging = make_listed_staging(alice, "shop")
    add_operation(staging, kind=OperationKind.DESTROY, status=OperationStatus.QUEUED, steps={})
    client = client_for(alice)
    body = client.get(reverse("fleet_partial"), **HTMX)
    assert body.status_code == 200
    text = body.content.decode()
    assert 'hx-trigger="every 3s"' in text and "destroy queued" in text
    assert reverse("destroy", args=[staging.pk]) not in text
    page = client.get(reverse("staging", args=[staging.pk])).content.decode()
    assert "Destroy waiting for a worker" in page
    assert ">Destroy<" not in page and ">Redeploy<" not in page
    assert 'hx-trigger="every 2s"' in page


def test_fleet_partial_keeps_the_filters(alice):
    make_listed_staging(alice, "shop", status=StagingStatus.PROVISIONING)
    body = client_for(alice).get("/fleet/table/?owner=mine&status=provisioning",
                                 **HTMX).content.decode()
    assert 'hx-get="/fleet/table/?owner=mine&amp;status=provisioning"' in body


def test_fleet_partial_without_htmx_goes_to_the_page(alice):
    response = client_for(alice).get("/fleet/table/?owner=mine")
    assert response.status_code == 302
    assert response["Location"] == "/?owner=mine"


def test_fleet_offers_destroy_per_row(alice):
    staging = make_listed_staging(alice)
    page = client_for(alice).get("/").content.decode()
    assert f'href="/stagings/{staging.pk}/destroy/?next=/"' in page


def test_fleet_table_queries_do_not_grow_with_the_fleet(alice, bob):
    client = client_for(alice)
    make_fleet(alice, 5)
    small = cold_query_count(client, reverse("fleet_partial"), **HTMX)
    make_fleet(bob, 45)
    large = cold_query_count(client, reverse("fleet_partial"), **HTMX)
    assert small == large
    # session + user, the live and today's lifetimes, the unfinished operations, the filtered
    # stagings with their owners, and (once a day) the closed days' costs
    assert large <= 6
    assert query_count(client, reverse("fleet_partial"), **HTMX) <= 5
    # the full page also counts the sweep's open leftovers and the unread notifications, once
    assert cold_query_count(client, "/") == cold_query_count(client, "/") <= 8
