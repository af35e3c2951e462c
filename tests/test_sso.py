"""Signing in to the dashboard with an OpenID provider (dashboard/sso.py), through
mozilla-django-oidc's real views and backend against a local provider on a real HTTP server
(tests/oidc_provider.py): authorization code with PKCE, state and nonce, a signed ID token.

Who comes in: a verified e-mail of an allowed domain; the same e-mail is the same user (a local
one included); staff follows the groups claim at every sign-in. Every refusal is a page that
says why. Password logins only while DS_LOCAL_LOGIN allows them. The re-check with the provider
never touches /api/, /slack/ or /github/.
"""

from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.test import Client
from django.urls import reverse

from dashboard.middleware import CONTENT_SECURITY_POLICY
from dashboard.sso import EXEMPT_PREFIXES, SIGN_IN_BACKEND
from provisioning.config import check_sign_in_settings, load_config
from provisioning.models import AuditAction, AuditEvent, Staging, StagingStatus
from provisioning.oidc import forget_provider_metadata
from tests.oidc_provider import CLIENT_ID, CLIENT_SECRET, FakeProvider, person

pytestmark = pytest.mark.django_db

User = get_user_model()


@pytest.fixture
def provider(httpserver, settings):
    forget_provider_metadata()
    fake = FakeProvider(httpserver).install()
    settings.DS_OIDC_ISSUER = fake.issuer
    settings.DS_OIDC_CLIENT_ID = CLIENT_ID
    settings.DS_OIDC_CLIENT_SECRET = CLIENT_SECRET
    settings.DS_OIDC_PROVIDER_NAME = "Example SSO"
    settings.DS_OIDC_ALLOWED_DOMAINS = ["example.com"]
    settings.DS_OIDC_STAFF_GROUPS = ["staging-admins"]
    yield fake
    forget_provider_metadata()


def start(client: Client, next_url: str = "") -> str:
    """Press "Sign in with ...": the redirect to the provider's authorization endpoint."""
    url = reverse("oidc_authentication_init") + (f"?next={next_url}" if next_url else "")
    response = client.get(url)
    assert response.status_code == 302
    return response["Location"]


def sign_in(client: Client, provider: FakeProvider, claims: dict, next_url: str = ""):
    callback = provider.authorize(start(client, next_url), claims)
    return client.get(callback)


def signed_in_user(client: Client):
    response = client.get(reverse("home"))
    if response.status_code != 200:
        return None
    return response.wsgi_request.user


# --- the happy path ----------------------------------------------------------------------------


def test_a_first_sign_in_makes_the_user_from_the_verified_email(client, provider):
    location = start(client, next_url="/history/")
    query = parse_qs(urlsplit(location).query)
    assert query["code_challenge_method"] == ["S256"] and query["code_challenge"][0]
    assert query["nonce"][0] and query["state"][0]
    assert "openid" in query["scope"][0].split()

    response = client.get(provider.authorize(location, person("Ada@Example.com")))

    assert response.status_code == 302 and response["Location"] == "/history/"
    user = User.objects.get(email__iexact="ada@example.com")
    assert user.username == "ada@example.com"
    assert not user.has_usable_password() and not user.is_staff
    assert signed_in_user(client) == user
    # The provider checked the PKCE verifier against the challenge (tests/oidc_provider.py).
    assert provider.token_requests[-1]["code_verifier"]
    event = AuditEvent.objects.get(action=AuditAction.SIGN_IN)
    assert (event.actor, event.actor_sign_in, event.detail) == (user, "oidc", "with Example SSO")


def test_the_same_email_signs_in_the_existing_local_user(client, provider, alice):
    sign_in(client, provider, person("ALICE@example.com"))
    assert signed_in_user(client) == alice
    assert User.objects.count() == 1


def test_staff_follows_the_groups_at_every_sign_in(provider):
    claims = person("grace@example.com", groups=("staging-admins", "eng"))
    first = Client()
    sign_in(first, provider, claims)
    assert User.objects.get(email="grace@example.com").is_staff
    assert first.get(reverse("setup")).status_code != 403

    second = Client()
    sign_in(second, provider, person("grace@example.com", groups=("eng",)))
    grace = User.objects.get(email="grace@example.com")
    assert not grace.is_staff
    assert second.get(reverse("setup")).status_code == 403

    sign_in(Client(), provider, person("grace@example.com", groups=("staging-admins",)))
    assert User.objects.get(pk=grace.pk).is_staff


def test_without_staff_groups_an_admin_decides_who_is_staff(client, provider, settings, admin):
    settings.DS_OIDC_STAFF_GROUPS = []
    sign_in(client, provider, person("admin@example.com", groups=()))
    assert signed_in_user(client) == admin and User.objects.get(pk=admin.pk).is_staff


# --- refusals: a page that says why, nobody signed in ------------------------------------------


def assert_refused(response, status: int, words: str):
    assert response.status_code == status
    page = response.content.decode()
    assert "Not signed in" in page and words in page, page
    assert "Traceback" not in page


def test_an_email_outside_the_allowed_domains_is_refused(client, provider):
    response = sign_in(client, provider, person("mallory@elsewhere.org"))
    assert_refused(response, 403, "mallory@elsewhere.org is not an address of example.com")
    assert signed_in_user(client) is None and not User.objects.exists()
    # Not a loop: the page links to the login page, which does not send anyone anywhere.
    assert client.get(reverse("login")).status_code == 200


def test_an_unverified_email_is_refused(client, provider):
    response = sign_in(client, provider, person("ada@example.com", verified=False))
    assert_refused(response, 403, "has not verified the e-mail address ada@example.com")
    assert signed_in_user(client) is None and not User.objects.exists()


def test_a_callback_with_a_forged_state_is_refused(client, provider):
    callback = provider.authorize(start(client), person("ada@example.com"))
    forged = callback.replace("state=", "state=forged")
    assert_refused(client.get(forged), 400, "could not be verified")
    assert signed_in_user(client) is None
    assert provider.token_requests == []  # the code was never even traded


def test_a_callback_this_browser_did_not_start_is_refused(provider):
    callback = provider.authorize(start(Client()), person("ada@example.com"))
    other_browser = Client()
    assert_refused(other_browser.get(callback), 400, "was not started in this browser")
    assert signed_in_user(other_browser) is None


def test_a_callback_replayed_is_refused(client, provider):
    callback = provider.authorize(start(client), person("ada@example.com"))
    client.get(callback)
    assert_refused(client.get(callback), 400, "could not be verified")
    assert len(provider.token_requests) == 1


@pytest.mark.parametrize(("tamper", "what"), [
    ({"nonce": "forged-nonce"}, "nonce"),
    ({"aud": "another-client"}, "audience"),
    ({"iss": "https://evil.example"}, "issuer"),
    ({"exp": 1_000_000}, "expired"),
])
def test_an_id_token_that_is_not_ours_is_refused(client, provider, tamper, what):
    provider.tamper = tamper
    assert_refused(sign_in(client, provider, person("ada@example.com")), 400,
                   "could not be verified")
    assert signed_in_user(client) is None and not User.objects.exists(), what


def test_an_id_token_signed_by_another_key_is_refused(client, provider):
    from tests.oidc_provider import _new_key

    provider.signing_key = _new_key()
    assert_refused(sign_in(client, provider, person("ada@example.com")), 400,
                   "could not be verified")
    assert signed_in_user(client) is None


def test_the_provider_saying_no_is_a_page_too(client, provider):
    start(client)
    state = next(iter(client.session["oidc_states"]))
    response = client.get(reverse("oidc_authentication_callback"),
                          {"error": "access_denied", "error_description": "User said no",
                           "state": state})
    assert_refused(response, 400, "did not sign you in (access_denied: User said no)")


def test_an_inactive_user_is_refused(client, provider, alice):
    alice.is_active = False
    alice.save()
    assert_refused(sign_in(client, provider, person("alice@example.com")), 403, "turned off")


def test_two_users_with_the_email_are_refused(client, provider, alice, django_user_model):
    django_user_model.objects.create_user("alice2", "alice@example.com")
    assert_refused(sign_in(client, provider, person("alice@example.com")), 403,
                   "More than one dashboard account")


def test_a_provider_that_does_not_answer_is_a_page(client, settings):
    forget_provider_metadata()
    settings.DS_OIDC_ISSUER, settings.DS_OIDC_CLIENT_ID = "http://127.0.0.1:9", CLIENT_ID
    page = client.get(reverse("login"))
    assert page.status_code == 200 and "Sign in with 127.0.0.1" in page.content.decode()
    assert_refused(client.get(reverse("oidc_authentication_init")), 502, "did not answer")


# --- local passwords ---------------------------------------------------------------------------


def test_with_a_provider_password_logins_are_off_by_default(client, provider, alice):
    page = client.get(reverse("login")).content.decode()
    assert "Sign in with Example SSO" in page and 'name="password"' not in page
    response = client.post(reverse("login"), {"username": "alice",
                                              "password": "alice-password"})
    assert response.status_code == 403
    assert "Logging in with a password is turned off" in response.content.decode()
    assert signed_in_user(client) is None
    # The admin's form is no way around it.
    assert client.get("/admin/login/?next=/admin/")["Location"] == "/login/?next=/admin/"
    client.post("/admin/login/", {"username": "alice", "password": "alice-password"})
    assert signed_in_user(client) is None


def test_a_password_session_ends_when_password_logins_are_turned_off(client, settings, alice):
    client.force_login(alice)
    assert signed_in_user(client) == alice
    settings.DS_LOCAL_LOGIN = False
    assert signed_in_user(client) is None


def test_break_glass_password_login_beside_the_provider(client, provider, settings, admin):
    settings.DS_LOCAL_LOGIN = True
    page = client.get(reverse("login")).content.decode()
    assert "Sign in with Example SSO" in page and 'name="password"' in page
    response = client.post(reverse("login"), {"username": "admin",
                                              "password": "admin-password"})
    assert response.status_code == 302 and signed_in_user(client) == admin
    event = AuditEvent.objects.get(action=AuditAction.SIGN_IN)
    assert (event.actor_sign_in, event.detail) == ("password", "with a password")


def test_without_a_provider_passwords_are_the_way_in(client, alice):
    config = load_config()
    assert not config.oidc_enabled and config.local_login
    page = client.get(reverse("login")).content.decode()
    assert "Sign in with" not in page and 'name="password"' in page
    assert client.get(reverse("oidc_authentication_init"))["Location"] == reverse("login")


# --- the audit trail says how each actor signed in ---------------------------------------------


def test_each_audit_event_says_how_its_actor_signed_in(provider, settings, alice, bob):
    settings.DS_OIDC_RECHECK_MINUTES = 0  # a forced login has no ID token to re-check
    staging = Staging.objects.create(
        name="shop", branch="feature/shop", source="host-db", owner=alice,
        status=StagingStatus.READY, url="https://shop.dynamic.test")
    via_provider = Client()
    via_provider.force_login(bob, backend=SIGN_IN_BACKEND)
    assert via_provider.post(reverse("reveal_login", args=[staging.pk])).status_code == 403
    refused = AuditEvent.objects.get(action=AuditAction.REVEAL_REFUSED)
    assert (refused.actor, refused.actor_sign_in) == (bob, "oidc")
    page = via_provider.get(reverse("staging", args=[staging.pk])).content.decode()
    assert "(identity provider)" in page


# --- the re-check never touches the API and the webhooks ---------------------------------------


@pytest.fixture
def due_for_recheck(provider, client):
    sign_in(client, provider, person("ada@example.com"))
    session = client.session
    session["oidc_id_token_expiration"] = 0
    session.save()
    return client


def test_a_page_request_is_sent_to_the_provider_when_the_recheck_is_due(due_for_recheck,
                                                                        provider):
    response = due_for_recheck.get(reverse("history"))
    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert location.path == "/authorize" and "prompt=none" in location.query


@pytest.mark.parametrize("path", ["/api/v1/stagings", "/slack/commands", "/github/webhook"])
def test_api_and_webhooks_are_never_redirected(due_for_recheck, path):
    assert path.startswith(EXEMPT_PREFIXES)
    for method in (due_for_recheck.get, due_for_recheck.post):
        response = method(path)
        assert response.status_code != 302, (method, path, response.get("Location"))


def test_an_htmx_poll_is_not_redirected(due_for_recheck):
    response = due_for_recheck.get(reverse("fleet_partial"), headers={"HX-Request": "true"})
    assert response.status_code == 200


def test_a_provider_session_that_ended_means_signing_in_again(due_for_recheck, provider):
    location = due_for_recheck.get(reverse("history"))["Location"]
    state = parse_qs(urlsplit(location).query)["state"][0]
    response = due_for_recheck.get(reverse("oidc_authentication_callback"),
                                   {"error": "login_required", "state": state})
    assert response["Location"] == reverse("login")
    assert signed_in_user(due_for_recheck) is None


# --- logout ------------------------------------------------------------------------------------


def test_logout_ends_the_provider_session_too(client, provider):
    sign_in(client, provider, person("ada@example.com"))
    response = client.post(reverse("logout"))
    location = urlsplit(response["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == provider.url("/logout")
    query = parse_qs(location.query)
    assert query["post_logout_redirect_uri"] == ["http://testserver/login/"]
    assert query["client_id"] == [CLIENT_ID] and query["id_token_hint"][0]
    assert signed_in_user(client) is None
    # The logout form may send the browser there (CSP form-action).
    policy = client.get(reverse("login"))["Content-Security-Policy"]
    assert f"form-action 'self' {provider.issuer}" in policy


def test_logout_of_a_password_user_stays_here(client, provider, settings, alice):
    settings.DS_LOCAL_LOGIN = True
    client.force_login(alice)
    assert client.post(reverse("logout"))["Location"] == reverse("login")
    assert client.get(reverse("login"))["Content-Security-Policy"] != CONTENT_SECURITY_POLICY


def test_logout_without_end_session_endpoint_stays_here(client, httpserver, settings):
    forget_provider_metadata()
    fake = FakeProvider(httpserver).install(end_session=False)
    settings.DS_OIDC_ISSUER, settings.DS_OIDC_CLIENT_ID = fake.issuer, CLIENT_ID
    settings.DS_OIDC_CLIENT_SECRET, settings.DS_OIDC_ALLOWED_DOMAINS = CLIENT_SECRET, []
    sign_in(client, fake, person("ada@anywhere.example"))
    assert signed_in_user(client) is not None
    assert client.post(reverse("logout"))["Location"] == reverse("login")
    forget_provider_metadata()


# --- settings ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("issuer", "client_id", "staging_auth", "words"), [
    ("https://login.example.com", "", "", "DS_OIDC_CLIENT_ID is not"),
    ("", "dashboard", "", "DS_OIDC_ISSUER is not"),
    ("login.example.com", "dashboard", "", "is not a URL"),
    ("", "", "cognito", "DS_STAGING_AUTH"),
])
def test_half_a_provider_stops_the_start(issuer, client_id, staging_auth, words):
    with pytest.raises(ImproperlyConfigured, match=words):
        check_sign_in_settings(issuer=issuer, client_id=client_id, staging_auth=staging_auth)
