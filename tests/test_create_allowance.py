"""The create page shows how much of the per-person caps its user has used before the form is
filled (DS_MAX_INFLIGHT_PER_USER, DS_MAX_LIVE_PER_USER, DS_MAX_LIVE_STAGINGS); at a cap it
says which, and why the Create button is off. The same numbers refuse a create."""

import re

import pytest
from django.test import Client
from django.urls import reverse

from provisioning import engine
from provisioning.errors import UserError
from provisioning.models import Operation, OperationKind, StagingStatus
from tests.factories import make_operation, make_staging

pytestmark = pytest.mark.django_db


def page_for(user) -> str:
    client = Client()
    client.force_login(user)
    return client.get(reverse("create")).content.decode().replace("&#x27;", "'")


def create_button(page: str) -> str:
    return re.search(r'<button type="submit" class="primary"[^>]*>', page).group(0)


@pytest.fixture
def caps(host_env, settings):
    settings.DS_MAX_INFLIGHT_PER_USER = 3
    settings.DS_MAX_LIVE_PER_USER = 10
    settings.DS_MAX_LIVE_STAGINGS = 50


def under_way(owner, count: int) -> None:
    for i in range(count):
        make_operation(make_staging(owner, name=f"busy-{i}", branch=f"b/{i}"))


def test_the_page_says_how_much_is_used(caps, alice, bob):
    under_way(alice, 2)
    make_staging(bob, name="bobs", branch="b/bob", status=StagingStatus.READY)
    page = page_for(alice)
    assert ("You have 2 of 3 operations under way and 2 of 10 live stagings; the fleet has "
            "3 of 50.") in page
    assert "disabled" not in create_button(page)


def test_at_the_operations_cap_the_button_is_off_and_says_why(caps, alice, bob):
    under_way(alice, 3)
    page = page_for(alice)
    assert re.search(r'<p class="notice" id="allowance" role="status">You already have 3 '
                     r"operations under way, the most allowed per person \(3\): wait until one "
                     r"of them is finished\. Until then the Create button is off\.</p>", page)
    assert 'disabled aria-describedby="allowance"' in create_button(page)
    # A destroy is never counted: it ends costs.
    Operation.objects.update(kind=OperationKind.DESTROY)
    assert "disabled" not in create_button(page_for(alice))
    # Somebody else's operations are theirs.
    assert "You have 0 of 3 operations under way" in page_for(bob)


def test_at_the_live_caps(caps, settings, alice, bob):
    settings.DS_MAX_LIVE_PER_USER = 1
    make_staging(alice, name="mine", status=StagingStatus.READY)
    assert "You already have 1 live stagings, the most allowed per person" in page_for(alice)
    settings.DS_MAX_LIVE_STAGINGS = 1
    assert "There are already 1 live stagings, the most allowed" in page_for(bob)


def test_what_the_page_shows_is_what_refuses_a_create(caps, alice):
    under_way(alice, 3)
    refusal = engine.create_allowance(alice).refusal
    with pytest.raises(UserError) as refused:
        engine.request_create(branch="main", owner=alice, db_mode="shared")
    assert refused.value.message == refusal
