"""Who may call the JSON API: a usable bearer token or nothing. No session, no CSRF token, no
redirect to a login page; 401 for no token or a bad one, 403 for a read token writing; every
refusal in the API's one shape. Also the OpenAPI document and the reference page."""

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from provisioning import engine
from provisioning.models import ApiToken, AuditEvent, Staging, StagingStatus
from tests.api_calls import call, token_for
from tests.factories import make_staging

pytestmark = pytest.mark.django_db

# Every operation of the API, as the OpenAPI document lists it (checked below).
ENDPOINTS = [
    ("get", "stagings"), ("post", "stagings"), ("get", "stagings/shop"),
    ("delete", "stagings/shop"), ("post", "stagings/shop/redeploy"),
    ("post", "stagings/shop/extend"), ("get", "sources"), ("get", "branches"),
]
WRITES = [(method, path) for method, path in ENDPOINTS if method != "get"]


@pytest.fixture(autouse=True)
def nothing_runs(monkeypatch, enqueued):
    """Whatever a request that got through would start, it must not reach AWS or a queue."""
    monkeypatch.setattr(engine, "list_sources", lambda: [])
    monkeypatch.setattr("dashboard.forms.branch_suggestions", lambda: ([], None))


@pytest.fixture
def shop(alice):
    return make_staging(alice, name="shop", status=StagingStatus.READY)


def assert_unauthorized(response, words: str) -> None:
    assert response.status_code == 401, response.content
    assert response.json()["error"] == "unauthorized"
    assert words in response.json()["detail"]
    assert response["WWW-Authenticate"].startswith('Bearer realm="dynamic-stagings"')


def test_the_endpoint_list_is_the_openapi_documents():
    document = Client().get("/api/v1/openapi.json").json()
    listed = sorted((method, path.removeprefix("/api/v1/").replace("{name}", "shop"))
                    for path, item in document["paths"].items() for method in item)
    assert listed == sorted(ENDPOINTS)
    assert document["components"]["securitySchemes"] == {
        "BearerToken": {"type": "http", "scheme": "bearer"}}
    assert all(operation["security"] == [{"BearerToken": []}]
               for item in document["paths"].values() for operation in item.values())


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_no_token_is_401_never_a_login_page(shop, method, path):
    response = call(method, path, body={"branch": "main"} if method == "post" else None)
    assert_unauthorized(response, "Authorization: Bearer TOKEN")
    assert response["WWW-Authenticate"] == 'Bearer realm="dynamic-stagings"'
    assert shop.operations.count() == 0


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_a_dashboard_session_is_not_a_token(shop, alice, method, path):
    client = Client()
    client.force_login(alice)
    response = call(method, path, client=client)
    assert_unauthorized(response, "Authorization: Bearer TOKEN")
    assert shop.operations.count() == 0


@pytest.mark.parametrize(("header", "words"), [
    ("Basic YWxpY2U6YWxpY2UtcGFzc3dvcmQ=", "Authorization: Bearer TOKEN"),
    ("Bearer", "not a token of this dashboard"),
    ("Bearer alice-password", "not a token of this dashboard"),
    ("Token dst_whatever", "Authorization: Bearer TOKEN"),
])
def test_other_credentials_are_401(alice, header, words):
    response = Client().get("/api/v1/stagings", HTTP_AUTHORIZATION=header)
    assert_unauthorized(response, words)


def test_an_unknown_token_is_401_even_with_a_known_prefix(alice):
    real = token_for(alice)
    forged = real[:12] + ("A" if real[12] != "A" else "B") + real[13:]
    response = call("get", "stagings", forged)
    assert_unauthorized(response, "Unknown token")
    assert response["WWW-Authenticate"].endswith('error="invalid_token"')


def test_an_expired_token_is_401_and_says_so(alice):
    token = token_for(alice)
    ApiToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert_unauthorized(call("get", "stagings", token), "This token expired on")


def test_a_revoked_token_is_401_at_once(alice):
    token = token_for(alice)
    assert call("get", "stagings", token).status_code == 200
    engine.revoke_token(ApiToken.objects.get(), by=alice)
    assert_unauthorized(call("get", "stagings", token), "This token was revoked on")


def test_a_deactivated_users_token_is_401(alice):
    token = token_for(alice)
    alice.is_active = False
    alice.save()
    assert_unauthorized(call("get", "stagings", token), "is not active")


@pytest.mark.parametrize(("method", "path"), WRITES)
def test_a_read_token_may_not_write(shop, alice, method, path):
    token = token_for(alice, scope="read", name="dashboard-widget")
    response = call(method, path, token, body={"branch": "main"} if path == "stagings" else None)
    assert response.status_code == 403
    assert response.json()["error"] == "insufficient_scope"
    assert "'dashboard-widget' has the read scope" in response.json()["detail"]
    assert shop.operations.count() == 0 and Staging.objects.count() == 1
    assert not AuditEvent.objects.filter(staging__isnull=False).exists()


@pytest.mark.parametrize("path", ["stagings", "stagings/shop", "sources", "branches"])
def test_a_read_token_may_read(shop, alice, path):
    assert call("get", path, token_for(alice, scope="read")).status_code == 200


def test_a_bearer_call_needs_no_csrf_token_even_beside_a_session(shop, alice, bob):
    """A browser logged in as bob that sends alice's token acts as alice, and the CSRF check,
    which guards the session's pages, does not apply to a call that carries its credential."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(bob)
    response = call("delete", "stagings/shop", token_for(alice), client=client)
    assert response.status_code == 202, response.content
    assert shop.operations.get().requested_by == alice


def test_a_token_acts_as_its_user_and_its_use_is_noted(shop, alice):
    token = token_for(alice)
    assert ApiToken.objects.get().last_used_at is None
    assert [s["owner"] for s in call("get", "stagings?mine=1", token).json()] == ["alice"]
    assert ApiToken.objects.get().last_used_at is not None


def test_an_unknown_address_under_the_api_is_a_json_404():
    for method in ("get", "post", "delete"):
        response = getattr(Client(enforce_csrf_checks=True), method)("/api/v1/stagingz/x")
        assert response.status_code == 404
        assert response.json() == {
            "error": "not_found",
            "detail": f"No endpoint {method.upper()} /api/v1/stagingz/x; see /api/v1/docs."}


def test_the_reference_page_lists_every_endpoint_and_loads_nothing_from_elsewhere():
    response = Client().get("/api/v1/docs")
    assert response.status_code == 200
    page = response.content.decode()
    for method, path in ENDPOINTS:
        shown = "/api/v1/" + path.replace("shop", "{name}")
        assert f"<code>{method.upper()} {shown}</code>" in page, (method, path)
    assert 'href="/api/v1/openapi.json"' in page
    addresses = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert addresses and all(a.startswith(("/", "#")) for a in addresses), addresses
    assert re.findall(r"<script\b[^>]*>", page) == [
        s for s in re.findall(r"<script\b[^>]*>", page) if 'src="/static/' in s]
    assert "swagger" not in page.lower() and "cdn" not in page.lower()
    # The body fields of a create, with what each means.
    create = page[page.index('id="post-api-v1-stagings"'):]
    for field in ("branch", "source", "db_mode", "name", "Idempotency-Key"):
        assert f"<code>{field}</code>" in create.split("</section>")[0]
