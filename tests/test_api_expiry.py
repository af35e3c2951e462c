"""The JSON API's part of expiry: ``ttl_hours`` on a create and ``POST .../extend``, with the
engine's rules (the cap, who may extend) and its audit trail."""

from datetime import timedelta

import pytest
from django.utils import timezone

from provisioning.models import AuditEvent, Staging, StagingStatus
from tests.api_calls import call, token_for
from tests.factories import make_staging

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("enqueued")]


def hours_from_now(moment) -> float:
    return (moment - timezone.now()).total_seconds() / 3600


def test_a_create_with_its_own_ttl(host_env, alice):
    response = call("post", "stagings", token_for(alice),
                    {"branch": "main", "db_mode": "shared", "ttl_hours": 2.5})
    assert response.status_code == 202, response.content
    staging = Staging.objects.get(name=response.json()["name"])
    assert staging.ttl_hours == 2.5
    assert 2.4 < hours_from_now(staging.expires_at) <= 2.5
    assert response.json()["expires_at"].startswith(staging.expires_at.strftime("%Y-%m-%dT%H"))


def test_a_ttl_above_the_most_allowed_is_refused_naming_it(host_env, alice, settings):
    settings.DS_MAX_TTL_HOURS = 48
    response = call("post", "stagings", token_for(alice),
                    {"branch": "main", "db_mode": "shared", "ttl_hours": 100})
    assert response.status_code == 422
    assert "48" in response.json()["detail"]
    assert not Staging.objects.exists()


@pytest.mark.parametrize("ttl", [0, -1, "soon"])
def test_a_ttl_that_is_no_number_of_hours_is_a_bad_request(host_env, alice, ttl):
    response = call("post", "stagings", token_for(alice),
                    {"branch": "main", "db_mode": "shared", "ttl_hours": ttl})
    assert response.status_code == 400
    assert not Staging.objects.exists()


def test_extend_moves_the_expiry_and_is_audited_with_the_token(alice):
    staging = make_staging(alice, status=StagingStatus.READY,
                           expires_at=timezone.now() + timedelta(hours=1))
    response = call("post", f"stagings/{staging.name}/extend", token_for(alice, name="ci"),
                    {"hours": 10})
    assert response.status_code == 200, response.content
    staging.refresh_from_db()
    assert 9.9 < hours_from_now(staging.expires_at) <= 10
    event = AuditEvent.objects.get(action="extend")
    assert event.channel == "api" and "ci" in event.channel_detail


def test_extend_is_capped_at_the_most_allowed(alice, settings):
    settings.DS_MAX_TTL_HOURS = 24
    staging = make_staging(alice, status=StagingStatus.READY,
                           expires_at=timezone.now() + timedelta(hours=1))
    assert call("post", f"stagings/{staging.name}/extend", token_for(alice),
                {"hours": 500}).status_code == 200
    staging.refresh_from_db()
    assert 23.9 < hours_from_now(staging.expires_at) <= 24


@pytest.mark.parametrize("who, scope, status", [("bob", "write", 403), ("alice", "read", 403)])
def test_extend_needs_the_owner_and_a_write_token(alice, bob, who, scope, status):
    expires = timezone.now() + timedelta(hours=1)
    staging = make_staging(alice, status=StagingStatus.READY, expires_at=expires)
    user = {"alice": alice, "bob": bob}[who]
    response = call("post", f"stagings/{staging.name}/extend", token_for(user, scope), {})
    assert response.status_code == status
    staging.refresh_from_db()
    assert staging.expires_at == expires
