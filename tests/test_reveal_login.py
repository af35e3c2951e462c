"""The test account's password, shown on the staging page only when asked for: to the
owner and staff, escaped, with a copy button, and without JavaScript too."""

import logging
import re

import pytest
from django.apps import apps
from django.urls import reverse

from provisioning.aws import secretsmanager
from provisioning.models import AuditAction, AuditEvent
from tests.factories import add_operation, make_listed_staging
from tests.pages import HTMX, client_for

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("enqueued", "aws_region")]


# Quotes and angle brackets: it must come back escaped, in the text and in the copy button.
PASSWORD = "Pa55\"<b>&'word"


PASSWORD_HTML = "Pa55&quot;&lt;b&gt;&amp;&#x27;word"


@pytest.fixture
def with_secret(aws):
    """A ready staging of alice's whose login password is a real (moto) secret."""

    def make_with_secret(owner, name="shop"):
        arn = secretsmanager.store_secret(name=f"dynamic-stagings/{name}/login", value=PASSWORD,
                                          tags={"dynamic-staging": name})
        staging = make_listed_staging(owner, name, login_secret_arn=arn)
        add_operation(staging)
        return staging

    return make_with_secret


def reveal_url(staging) -> str:
    return reverse("reveal_login", args=[staging.pk])


def test_password_is_not_on_the_page_until_asked(alice, with_secret):
    staging = with_secret(alice)
    page = client_for(alice).get(reverse("staging", args=[staging.pk])).content.decode()
    assert PASSWORD_HTML not in page and "Pa55" not in page
    form = re.search(r'<form method="post" action="([^"]+)" hx-post="([^"]+)"[^>]*>(.*?)</form>',
                     page, re.S)
    assert form.group(1) == form.group(2) == reveal_url(staging)
    assert 'name="csrfmiddlewaretoken"' in form.group(3) and "Show password" in form.group(3)
    # while the page polls (a redeploy), a password shown meanwhile is kept in place
    assert '<span id="login-password-box" class="password" hx-preserve="true">' in page
    assert not AuditEvent.objects.filter(action=AuditAction.REVEAL_LOGIN).exists()


def test_owner_sees_the_password_in_place_with_a_copy_button(alice, with_secret, caplog):
    caplog.set_level(logging.DEBUG, logger="provisioning")
    caplog.set_level(logging.DEBUG, logger="django")
    caplog.set_level(logging.DEBUG, logger="dashboard")
    staging = with_secret(alice)
    response = client_for(alice).post(reveal_url(staging), **HTMX)
    assert response.status_code == 200
    body = response.content.decode()
    assert body.startswith('<span id="login-password-box"') and "<html" not in body
    assert f'<code id="login-password">{PASSWORD_HTML}</code>' in body
    assert f'data-copy="{PASSWORD_HTML}"' in body and "Copy password" in body
    assert PASSWORD not in body and "hx-preserve" not in body
    assert "no-store" in response["Cache-Control"]
    event = AuditEvent.objects.get()
    assert (event.action, event.actor, event.actor_name, event.staging) == (
        AuditAction.REVEAL_LOGIN, alice, "alice", staging)
    # never logged, never kept: not in any log record, nor in any row of any table
    assert PASSWORD not in caplog.text
    for model in apps.get_models():
        for row in model.objects.values():
            assert PASSWORD not in repr(row), model


def test_without_javascript_the_page_comes_back_with_the_password(alice, with_secret):
    staging = with_secret(alice)
    response = client_for(alice).post(reveal_url(staging))
    assert response.status_code == 200
    page = response.content.decode()
    assert "<html" in page and f'<code id="login-password">{PASSWORD_HTML}</code>' in page
    assert "Show password" not in page
    # the look itself is on the trail at once
    trail = re.search(r'<section class="card" id="audit-trail".*?</section>', page, re.S).group(0)
    assert "showed the password" in trail and ">alice<" in trail


def test_staff_may_see_the_password_but_bob_may_not(alice, bob, admin, with_secret, monkeypatch):
    staging = with_secret(alice)
    assert PASSWORD_HTML in client_for(admin).post(reveal_url(staging), **HTMX).content.decode()

    monkeypatch.setattr("provisioning.engine.reveal_login", pytest.fail)
    response = client_for(bob).post(reveal_url(staging), **HTMX)
    assert response.status_code == 403
    page = client_for(bob).get(reverse("staging", args=[staging.pk])).content.decode()
    assert reveal_url(staging) not in page and "Show password" not in page
    # newest first: bob's refused look is on the trail too
    assert list(AuditEvent.objects.values_list("actor_name", "action")) == [
        ("bob", AuditAction.REVEAL_REFUSED), ("admin", AuditAction.REVEAL_LOGIN)]


def test_reveal_needs_post(alice, with_secret):
    staging = with_secret(alice)
    assert client_for(alice).get(reveal_url(staging)).status_code == 405


def test_a_secret_aws_cannot_read_is_a_sentence(alice, aws):
    staging = make_listed_staging(alice)  # its ARN points at no secret
    add_operation(staging)
    response = client_for(alice).post(reveal_url(staging), **HTMX)
    assert response.status_code == 200
    body = response.content.decode()
    assert "Could not read the password from AWS" in body
    assert "secretsmanager:GetSecretValue" in body and "ResourceNotFoundException" in body
    assert "Show password" in body  # to try again
    assert "hx-preserve" not in body  # else htmx would keep the old box instead
    assert not AuditEvent.objects.exists()


def test_no_secret_no_password(alice):
    staging = make_listed_staging(alice, login_secret_arn="")
    add_operation(staging)
    client = client_for(alice)
    assert "Show password" not in client.get(reverse("staging", args=[staging.pk])).content.decode()
    body = client.post(reveal_url(staging), **HTMX).content.decode()
    assert "No password is kept" in body
