"""The staging's two buttons: destroy (asked on a page of its own, then queued) and redeploy."""

import re

import pytest
from django.test import Client
from django.urls import reverse

from provisioning import engine
from provisioning.errors import ExternalCallFailed, UserError
from provisioning.models import OperationKind, StagingStatus
from tests.factories import make_listed_staging
from tests.pages import client_for

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("enqueued", "aws_region")]


# --- destroy --------------------------------------------------------------------------------------

def test_destroy_asks_then_destroys(alice, enqueued, django_capture_on_commit_callbacks):
    staging = make_listed_staging(alice)
    client = client_for(alice)
    page = client.get(reverse("destroy", args=[staging.pk]))
    assert page.status_code == 200
    assert "Destroy shop?" in page.content.decode()
    assert not staging.operations.exists()

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("destroy", args=[staging.pk]))
    assert response.status_code == 302
    assert response["Location"] == reverse("staging", args=[staging.pk])
    operation = staging.operations.get()
    assert operation.kind == OperationKind.DESTROY
    assert enqueued == [operation.pk]


def test_staff_may_destroy_anyones_staging(alice, admin):
    staging = make_listed_staging(alice)
    response = client_for(admin).post(reverse("destroy", args=[staging.pk]))
    assert response.status_code == 302
    assert staging.operations.get().kind == OperationKind.DESTROY


def test_destroy_from_the_fleet_returns_to_the_fleet(alice):
    staging = make_listed_staging(alice)
    response = client_for(alice).post(reverse("destroy", args=[staging.pk]),
                                      {"next": "/?owner=mine"})
    assert response["Location"] == "/?owner=mine"


def test_destroy_ignores_a_foreign_next(alice):
    staging = make_listed_staging(alice)
    response = client_for(alice).post(reverse("destroy", args=[staging.pk]),
                                      {"next": "https://evil.example/"})
    assert response["Location"] == reverse("staging", args=[staging.pk])


def test_destroy_of_a_destroyed_staging_says_so(alice):
    staging = make_listed_staging(alice, status=StagingStatus.DESTROYED)
    client = client_for(alice)
    response = client.post(reverse("destroy", args=[staging.pk]), follow=True)
    assert "already destroyed" in response.content.decode()
    assert not staging.operations.exists()


def test_csrf_is_enforced_on_destroy_and_redeploy(alice, monkeypatch):
    monkeypatch.setattr(engine, "request_redeploy", lambda staging, user: None)
    staging = make_listed_staging(alice)
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    for name in ("destroy", "redeploy"):
        assert client.post(reverse(name, args=[staging.pk])).status_code == 403
    assert not staging.operations.exists()

    page = client.get(reverse("destroy", args=[staging.pk])).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    response = client.post(reverse("destroy", args=[staging.pk]),
                           {"csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert staging.operations.get().kind == OperationKind.DESTROY


# --- redeploy -------------------------------------------------------------------------------------

def test_redeploy_starts_an_operation(alice, monkeypatch):
    staging = make_listed_staging(alice)
    seen = []
    monkeypatch.setattr(engine, "request_redeploy",
                        lambda staging, user: seen.append((staging.pk, user.username)))
    response = client_for(alice).post(reverse("redeploy", args=[staging.pk]), follow=True)
    assert seen == [(staging.pk, "alice")]
    assert "Redeploying shop" in response.content.decode()


def test_redeploy_refused_is_a_sentence(alice, monkeypatch):
    staging = make_listed_staging(alice)

    def refuse(staging, user):
        raise UserError("No image tagged 'feature-shop' in repository 'app'.", field="branch")

    monkeypatch.setattr(engine, "request_redeploy", refuse)
    response = client_for(alice).post(reverse("redeploy", args=[staging.pk]), follow=True)
    assert response.status_code == 200
    assert "No image tagged" in response.content.decode()


def test_redeploy_aws_failure_is_not_a_500(alice, monkeypatch):
    staging = make_listed_staging(alice)

    def fail(staging, user):
        raise ExternalCallFailed("ecr:DescribeImages", "ThrottlingException", "Rate exceeded")

    monkeypatch.setattr(engine, "request_redeploy", fail)
    response = client_for(alice).post(reverse("redeploy", args=[staging.pk]), follow=True)
    assert response.status_code == 200
    assert "ThrottlingException" in response.content.decode()
