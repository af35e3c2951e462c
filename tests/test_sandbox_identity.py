"""The sandbox's identity provider (provisioning/sandbox/identity.py): a real OpenID provider
on loopback, with the dashboard registered as its client. The dashboard signs its people in
through the real code flow: the demo admin is staff by group, a colleague is not, an outsider's
domain is refused, and a subject typed in (unverified e-mail) is refused too."""

from urllib.parse import urlsplit

import pytest
import requests
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from provisioning.oidc import forget_provider_metadata
from provisioning.sandbox import identity

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def sandbox_provider():
    provider = identity.start_identity_provider(dashboard_url="http://testserver")
    yield provider
    provider.stop()


@pytest.fixture
def signs_in_with_sandbox(sandbox_provider, settings):
    forget_provider_metadata()
    env = sandbox_provider.environment
    settings.DS_OIDC_ISSUER = env["DS_OIDC_ISSUER"]
    settings.DS_OIDC_CLIENT_ID = env["DS_OIDC_CLIENT_ID"]
    settings.DS_OIDC_CLIENT_SECRET = env["DS_OIDC_CLIENT_SECRET"]
    settings.DS_OIDC_PROVIDER_NAME = env["DS_OIDC_PROVIDER_NAME"]
    settings.DS_OIDC_ALLOWED_DOMAINS = [env["DS_OIDC_ALLOWED_DOMAINS"]]
    settings.DS_OIDC_STAFF_GROUPS = [env["DS_OIDC_STAFF_GROUPS"]]
    yield sandbox_provider
    forget_provider_metadata()


def sign_in_as(subject: str) -> tuple[Client, object]:
    """Press the button, pick ``subject`` on the provider's page, follow it back."""
    client = Client()
    authorize = client.get(reverse("oidc_authentication_init"))["Location"]
    picked = requests.post(authorize, data={"sub": subject}, allow_redirects=False, timeout=10)
    assert picked.status_code == 302, picked.text
    back = urlsplit(picked.headers["Location"])
    assert back.netloc == "testserver"
    return client, client.get(f"{back.path}?{back.query}")


def test_the_demo_admin_signs_in_as_the_demo_user_and_is_staff(signs_in_with_sandbox,
                                                                django_user_model):
    demo = django_user_model.objects.create_user("demo", identity.DEMO_EMAIL)
    client, response = sign_in_as(identity.DEMO_EMAIL)
    assert response.status_code == 302 and response["Location"] == "/"
    demo.refresh_from_db()
    assert demo.is_staff
    assert client.get(reverse("setup")).wsgi_request.user == demo


def test_a_colleague_signs_in_and_is_not_staff(signs_in_with_sandbox):
    client, response = sign_in_as(identity.COLLEAGUE_EMAIL)
    assert response.status_code == 302
    sam = get_user_model().objects.get(email=identity.COLLEAGUE_EMAIL)
    assert not sam.is_staff
    assert client.get(reverse("setup")).status_code == 403


@pytest.mark.parametrize(("subject", "words"), [
    (identity.OUTSIDER_EMAIL, "is not an address of example.com"),
    ("typed-in@example.com", "has not verified the e-mail address"),
])
def test_who_the_sandbox_refuses(signs_in_with_sandbox, subject, words):
    client, response = sign_in_as(subject)
    assert response.status_code == 403 and words in response.content.decode()
    assert not get_user_model().objects.exists()


def test_the_client_secret_is_checked(signs_in_with_sandbox, settings):
    settings.DS_OIDC_CLIENT_SECRET = "not-the-registered-secret"
    client, response = sign_in_as(identity.DEMO_EMAIL)
    assert response.status_code == 502
    assert "client settings are fixed" in response.content.decode()
    assert client.get(reverse("home")).status_code == 302  # not signed in


def test_doctor_asks_the_sandbox_provider_about_the_client(sandbox_provider):
    from provisioning.oidc import ACCEPTED, REFUSED, discover, probe_client

    token_endpoint = discover(sandbox_provider.issuer).token_endpoint
    ask = {"token_endpoint": token_endpoint, "client_id": sandbox_provider.client_id,
           "redirect_uri": "http://testserver/oidc/callback/"}
    assert probe_client(client_secret=sandbox_provider.client_secret, **ask).verdict == ACCEPTED
    assert probe_client(client_secret="wrong", **ask).verdict == REFUSED
