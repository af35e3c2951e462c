"""Who may see and do what: every page needs a login, a colleague may not act on
someone else's staging, actions need POST."""

import pytest
from django.urls import reverse

from provisioning import engine
from tests.factories import add_operation, make_listed_staging
from tests.pages import client_for

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("enqueued", "aws_region")]


@pytest.mark.parametrize("url", [
    "/", "/fleet/table/", "/history/", "/stagings/new/", "/stagings/new/name/?branch=x",
    "/stagings/1/", "/stagings/1/progress/", "/stagings/1/destroy/",
])
def test_every_page_needs_login(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("url", ["/stagings/1/destroy/", "/stagings/1/redeploy/"])
def test_posts_need_login(client, url):
    response = client.post(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_login_page_logs_in(client, alice):
    page = client.get(reverse("login"))
    assert b'name="username"' in page.content
    response = client.post(reverse("login"), {"username": "alice", "password": "alice-password"})
    assert response.status_code == 302
    assert response["Location"] == reverse("home")


def test_bob_may_not_destroy_alices_staging(alice, bob):
    staging = make_listed_staging(alice)
    client = client_for(bob)
    assert client.get(reverse("destroy", args=[staging.pk])).status_code == 403
    response = client.post(reverse("destroy", args=[staging.pk]))
    assert response.status_code == 403
    assert b"owner" in response.content
    assert not staging.operations.exists()


def test_bob_may_not_redeploy_alices_staging(alice, bob, monkeypatch):
    staging = make_listed_staging(alice)
    monkeypatch.setattr(engine, "request_redeploy", pytest.fail)
    assert client_for(bob).post(reverse("redeploy", args=[staging.pk])).status_code == 403


def test_redeploy_needs_post(alice):
    staging = make_listed_staging(alice)
    assert client_for(alice).get(reverse("redeploy", args=[staging.pk])).status_code == 405


def test_bob_sees_no_action_buttons_on_alices_staging(alice, bob):
    staging = make_listed_staging(alice)
    add_operation(staging)
    page = client_for(bob).get(reverse("staging", args=[staging.pk])).content.decode()
    assert "Destroy" not in page and "Redeploy" not in page
    fleet = client_for(bob).get("/").content.decode()
    assert reverse("destroy", args=[staging.pk]) not in fleet
