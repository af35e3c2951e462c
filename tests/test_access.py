"""Who may reach what: every URL needs a login (but the login page), acting on a staging is for
its owner and staff, the leftovers' buttons for staff, every POST needs its CSRF token, every
response carries a Content-Security-Policy that no template needs to loosen, and production
settings pass ``manage.py check --deploy`` without a single warning.

The URL walk reads the patterns from the resolver, so a new URL fails here until it says which
rules apply to it.
"""

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from dashboard.checks import cookie_unquoting_is_quadratic
from dashboard.middleware import CONTENT_SECURITY_POLICY
from dashboard.settings import env_secret
from provisioning import engine
from provisioning.models import ApiToken, Orphan, Staging
from tests.factories import make_listed_staging
from tests.inline_code import inline_code

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = ROOT / "templates"

# What each URL is, by name. "post" views answer 405 to a GET; "owner" views are for the
# staging's owner and staff; "staff" views for staff only; "signed" views need no login nor
# CSRF token but a request signature instead (Slack's).
URLS = {
    "home": set(),
    "fleet_partial": set(),
    "history": set(),
    "create": set(),
    "name_preview": set(),
    "staging": set(),
    "staging_progress": set(),
    "destroy": {"owner"},
    "redeploy": {"owner", "post"},
    "recreate": {"owner", "post"},
    "reveal_login": {"owner", "post"},
    "extend": {"owner", "post"},
    "keep": {"staff", "post"},
    "leftovers": set(),
    "sweep_now": {"staff", "post"},
    "delete_leftovers": {"staff", "post"},
    "setup": {"staff"},
    "api_tokens": set(),
    "revoke_api_token": {"owner", "post"},
    "login": {"public"},
    # Logging out needs no login: it only ever ends a session (POST), and GET is refused.
    "logout": {"public", "post"},
    # Signing in with the identity provider (the login page while none is configured), and
    # the admin's login, which sends the browser to ours.
    "oidc_authentication_init": {"public"},
    "oidc_authentication_callback": {"public"},
    "admin_login": {"public"},
    "notifications": set(),
    "notifications_read": {"post"},
    "slack_commands": {"signed", "post"},
    "slack_interactions": {"signed", "post"},
}


def walk(patterns, prefix=""):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            # The admin has its own login (staff only), the JSON API its bearer tokens (see
            # tests/test_api_access.py); nothing else may hide in an include.
            assert entry.app_name == "admin" or entry.namespace == "api-v1", (
                f"unexpected include: {entry}")
            continue
        assert isinstance(entry, URLPattern)
        yield entry


def url_names() -> list[str]:
    return [entry.name for entry in walk(get_resolver().url_patterns)]


def url_for(name: str, staging: Staging) -> str:
    entry = next(e for e in walk(get_resolver().url_patterns) if e.name == name)
    kwargs = {key: _object_for(name, staging).pk for key in entry.pattern.converters}
    return reverse(name, kwargs=kwargs)


def _object_for(name: str, staging: Staging):
    """What a URL's <pk> names: an API token for the token URLs, else the staging."""
    if name == "revoke_api_token":
        return ApiToken.objects.filter(user=staging.owner).first() or engine.issue_token(
            staging.owner, name="for the access tests").token
    return staging


@pytest.fixture
def staging(alice):
    return make_listed_staging(alice, "shop")


@pytest.fixture(autouse=True)
def no_aws(monkeypatch, enqueued):
    """Every view that would reach AWS or the queue, answered at our own wrappers."""
    monkeypatch.setattr(engine, "request_redeploy", lambda staging, user: None)
    monkeypatch.setattr(engine, "list_sources", lambda: [])
    monkeypatch.setattr("dashboard.forms.branch_suggestions", lambda: ([], None))
    monkeypatch.setattr("provisioning.engine.reveal_login", lambda staging: "pw")
    monkeypatch.setattr("provisioning.sweep.sweep", lambda delete=False, actor=None: [])
    monkeypatch.setattr("provisioning.tasks.async_task", lambda *args, **kwargs: None)


def test_every_url_is_classified():
    assert sorted(url_names()) == sorted(URLS)


@pytest.mark.parametrize("name", [n for n in URLS if not URLS[n] & {"public", "signed"}])
def test_every_url_needs_a_login(client, staging, name):
    url = url_for(name, staging)
    for method in (client.get, client.post):
        response = method(url)
        assert response.status_code == 302, (method, url)
        assert response["Location"] == f"{reverse('login')}?next={url}"
    assert staging.operations.count() == 0


def test_the_login_page_is_public_and_logout_only_ends_a_session(client, alice):
    assert client.get(reverse("login")).status_code == 200
    assert client.get(reverse("logout")).status_code == 405
    client.force_login(alice)
    response = client.post(reverse("logout"))
    assert response["Location"] == reverse("login")
    assert client.get("/").status_code == 302  # logged out


def test_the_admin_has_its_own_login(client, alice):
    response = client.get("/admin/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    client.force_login(alice)  # not staff
    assert client.get("/admin/").status_code == 302


@pytest.mark.parametrize("name", [n for n in URLS if "owner" in URLS[n]])
def test_acting_on_a_staging_is_for_its_owner_and_staff(staging, alice, bob, admin, name):
    url = url_for(name, staging)
    methods = ["post"] if "post" in URLS[name] else ["get", "post"]
    for method in methods:
        bobs = Client()
        bobs.force_login(bob)
        response = getattr(bobs, method)(url)
        assert response.status_code == 403, (method, url)
        assert "owner or an admin" in response.content.decode()
    assert staging.operations.count() == 0
    for user in (alice, admin):
        allowed = Client()
        allowed.force_login(user)
        assert getattr(allowed, methods[-1])(url).status_code in {200, 302}


@pytest.mark.parametrize("name", [n for n in URLS if "staff" in URLS[n]])
def test_sweeping_is_for_staff(staging, alice, bob, admin, name):
    item = Orphan.objects.create(arn="arn:aws:ecs:us-east-1:1:service/c/ds-x-web", kind="ecs")
    url = url_for(name, staging)
    for user in (alice, bob):
        client = Client()
        client.force_login(user)
        response = client.post(url, {"orphan": [item.pk]})
        assert response.status_code == 403
        assert "Only an admin" in response.content.decode()
    client = Client()
    client.force_login(admin)
    assert client.post(url, {"orphan": [item.pk]}).status_code == 302


@pytest.mark.parametrize("name", [n for n in URLS if "post" in URLS[n]])
def test_post_only_urls_refuse_get(staging, admin, name):
    client = Client()
    client.force_login(admin)
    assert client.get(url_for(name, staging)).status_code == 405


def test_no_page_fails_for_a_colleague(staging, bob):
    client = Client()
    client.force_login(bob)
    for name in URLS:
        response = client.get(url_for(name, staging))
        assert response.status_code in {200, 302, 403, 405}, name


@pytest.mark.parametrize("name", [n for n in URLS if "signed" in URLS[n]])
def test_a_signed_url_refuses_an_unsigned_post(staging, settings, name):
    """With or without stagingbot configured, and whoever is logged in."""
    settings.DS_SLACK_SIGNING_SECRET = ""
    assert Client().post(url_for(name, staging), {"text": "destroy shop"}).status_code == 503
    settings.DS_SLACK_SIGNING_SECRET = "configured"
    client = Client(enforce_csrf_checks=True)
    client.force_login(staging.owner)
    assert client.post(url_for(name, staging), {"text": "destroy shop"}).status_code == 401
    assert staging.operations.count() == 0


@pytest.mark.parametrize("name", [*(n for n in URLS if "signed" not in URLS[n]), "admin:index",
                                  "admin:login"])
def test_every_post_needs_the_csrf_token(staging, alice, admin, name):
    url = reverse(name) if name.startswith("admin:") else url_for(name, staging)
    client = Client(enforce_csrf_checks=True)
    if name != "login":
        client.force_login(admin)
    response = client.post(url, {"orphan": ["1"], "username": "admin"})
    assert response.status_code == 403, url
    assert "CSRF verification failed" in response.content.decode()
    assert staging.operations.count() == 0


@pytest.mark.parametrize("name", ["reveal_login", "sweep_now", "destroy"])
def test_a_post_with_the_token_goes_through(staging, admin, name):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin)
    page = client.get(reverse("staging", args=[staging.pk])).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    response = client.post(url_for(name, staging), {"csrfmiddlewaretoken": token})
    assert response.status_code in {200, 302}


# --- Content-Security-Policy ------------------------------------------------------------------

def test_policy_forbids_inline_code():
    directives = dict(d.split(" ", 1) for d in CONTENT_SECURITY_POLICY.split("; "))
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert directives["default-src"] == "'self'" and directives["object-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in CONTENT_SECURITY_POLICY


def test_every_response_carries_the_policy(client, staging, admin):
    for url in ("/login/", "/no-such-page/", "/admin/login/"):
        assert client.get(url)["Content-Security-Policy"] == CONTENT_SECURITY_POLICY, url
    client.force_login(admin)
    for name in URLS:
        response = client.get(url_for(name, staging))
        assert response["Content-Security-Policy"] == CONTENT_SECURITY_POLICY, name
    response = client.post(url_for("reveal_login", staging), HTTP_HX_REQUEST="true")
    assert response["Content-Security-Policy"] == CONTENT_SECURITY_POLICY


def test_no_template_has_inline_code():
    templates = sorted(TEMPLATES.rglob("*.html"))
    assert len(templates) >= 10
    found = {str(t.relative_to(ROOT)): inline_code(t.read_text()) for t in templates}
    assert {name: what for name, what in found.items() if what} == {}


def test_the_scan_would_see_inline_code():
    for bad in ('<script>alert(1)</script>', '<a onclick="x()">', '<p style="color:red">',
                '<button hx-on:click="x()">', '<a href="javascript:x()">', "<style>p{}</style>"):
        assert inline_code(bad), bad
    assert not inline_code('<script src="/static/js/app.js" defer></script>')


def test_rendered_pages_have_no_inline_code(staging, admin):
    """Form widgets and included partials too, not only what the templates spell out."""
    client = Client()
    client.force_login(admin)
    for name in URLS:
        response = client.get(url_for(name, staging), HTTP_HX_REQUEST="true")
        if response.status_code in {200, 286}:
            assert inline_code(response.content.decode()) == [], name


def test_htmx_is_told_not_to_inject_styles(client):
    page = client.get(reverse("login")).content.decode()
    assert """<meta name="htmx-config" content='{"includeIndicatorStyles": false}'>""" in page
    assert re.search(r'<script src="/static/django_htmx/htmx[-.\w]*\.js" defer></script>', page)


# --- production settings ----------------------------------------------------------------------

def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("DJANGO_", "DS_")) and k not in {"DATABASE_URL"}}
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT,
                          env=clean | {"DJANGO_SETTINGS_MODULE": "dashboard.settings"} | env,
                          capture_output=True, text=True, timeout=120)


def production_env(tmp_path) -> dict[str, str]:
    return {
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(64),
        "DJANGO_ALLOWED_HOSTS": "stagings.example.com",
        "DJANGO_SECURE": "1",
        "DJANGO_BEHIND_PROXY": "1",
        "DS_SQLITE_PATH": str(tmp_path / "db.sqlite3"),
    }


def test_production_settings_pass_check_deploy(tmp_path):
    result = manage("check", "--deploy", "--fail-level", "WARNING", **production_env(tmp_path))
    if cookie_unquoting_is_quadratic():
        # Nothing in our settings can fix the interpreter: the one warning left says so.
        assert result.returncode == 1
        assert re.findall(r"\(([\w.]+)\)", result.stderr) == ["dashboard.W001"], result.stderr
        assert "identified 1 issue" in result.stderr + result.stdout
        return
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "System check identified no issues (0 silenced)."
    assert result.stderr == ""


def test_without_the_switch_check_deploy_complains(tmp_path):
    env = production_env(tmp_path)
    del env["DJANGO_SECURE"]
    result = manage("check", "--deploy", "--fail-level", "WARNING", **env)
    assert result.returncode == 1
    for check in ("W004", "W008", "W012", "W016"):
        assert f"security.{check}" in result.stderr


def test_the_sandbox_still_works_over_http(client, settings):
    assert not settings.SECURE_SSL_REDIRECT and not settings.SESSION_COOKIE_SECURE
    response = client.get(reverse("login"))
    assert response.status_code == 200
    assert "Strict-Transport-Security" not in response


def test_account_api_token_from_a_file(tmp_path, monkeypatch):
    token_file = tmp_path / "token"
    token_file.write_text("from-the-file\n")
    monkeypatch.setenv("DS_ACCOUNT_API_TOKEN", "from-the-env")
    assert env_secret("DS_ACCOUNT_API_TOKEN") == "from-the-env"
    monkeypatch.setenv("DS_ACCOUNT_API_TOKEN_FILE", str(token_file))
    assert env_secret("DS_ACCOUNT_API_TOKEN") == "from-the-file"

    result = manage("shell", "-c", "from django.conf import settings; "
                    "print(settings.DS_ACCOUNT_API_TOKEN == 'from-the-file')",
                    DS_ACCOUNT_API_TOKEN_FILE=str(token_file),
                    DS_SQLITE_PATH=str(tmp_path / "db.sqlite3"), DJANGO_SECRET_KEY="k" * 50)
    assert result.stdout.strip().splitlines()[-1] == "True", result.stderr


# --- the secret key -----------------------------------------------------------------------------

def test_outside_the_sandbox_a_missing_secret_key_refuses_to_start(tmp_path):
    result = manage("check", DS_SQLITE_PATH=str(tmp_path / "db.sqlite3"))
    assert result.returncode != 0
    assert "ImproperlyConfigured: DJANGO_SECRET_KEY is not set" in result.stderr
    assert "DJANGO_SECRET_KEY_FILE" in result.stderr


def test_checking_the_migrations_needs_no_secret_key(tmp_path):
    """It signs nothing: a fresh checkout may check its migrations without one."""
    result = manage("makemigrations", "--check", "--dry-run",
                    DS_SQLITE_PATH=str(tmp_path / "db.sqlite3"))
    assert result.returncode == 0, result.stderr
    assert "No changes detected" in result.stdout


def test_an_empty_secret_key_is_missing_too(tmp_path):
    result = manage("check", DJANGO_SECRET_KEY="  ", DS_SQLITE_PATH=str(tmp_path / "db.sqlite3"))
    assert "ImproperlyConfigured: DJANGO_SECRET_KEY is not set" in result.stderr


def print_secret_key(tmp_path, **env) -> str:
    result = manage("shell", "-c", "from django.conf import settings; print(settings.SECRET_KEY)",
                    DS_SQLITE_PATH=str(tmp_path / "db.sqlite3"), **env)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def test_the_secret_key_from_a_file(tmp_path):
    key_file = tmp_path / "key"
    key_file.write_text("from-a-mounted-secret-" + "x" * 40 + "\n")
    assert print_secret_key(tmp_path, DJANGO_SECRET_KEY_FILE=str(key_file)) == (
        "from-a-mounted-secret-" + "x" * 40)


def test_the_sandbox_makes_one_key_and_keeps_it(tmp_path):
    state = tmp_path / "sandbox"
    first = print_secret_key(tmp_path, DS_SANDBOX="1", DS_SANDBOX_STATE_DIR=str(state))
    second = print_secret_key(tmp_path, DS_SANDBOX="1", DS_SANDBOX_STATE_DIR=str(state))
    assert first == second and len(first) >= 50
    (key_file,) = state.iterdir()
    assert key_file.read_text() == first
    assert key_file.stat().st_mode & 0o777 == 0o600
    other = print_secret_key(tmp_path, DS_SANDBOX="1", DS_SANDBOX_STATE_DIR=str(tmp_path / "b"))
    assert other != first


def test_an_exported_key_wins_in_the_sandbox(tmp_path):
    assert print_secret_key(tmp_path, DS_SANDBOX="1", DS_SANDBOX_STATE_DIR=str(tmp_path / "s"),
                            DJANGO_SECRET_KEY="exported-" + "k" * 50) == "exported-" + "k" * 50


# --- the database file --------------------------------------------------------------------------

def test_the_sqlite_file_is_made_readable_by_its_owner_only(tmp_path):
    database = tmp_path / "var" / "db.sqlite3"
    old_umask = os.umask(0o022)
    try:
        result = manage("migrate", "-v0", DJANGO_SECRET_KEY="k" * 50,
                        DS_SQLITE_PATH=str(database))
    finally:
        os.umask(old_umask)
    assert result.returncode == 0, result.stderr
    made = [p for p in database.parent.iterdir() if p.name.startswith("db.sqlite3")]
    assert database in made
    for path in made:
        assert path.stat().st_mode & 0o777 == 0o600, path


def test_an_existing_sqlite_file_is_tightened_on_connect(tmp_path):
    database = tmp_path / "db.sqlite3"
    database.touch(mode=0o644)
    database.chmod(0o644)
    result = manage("migrate", "-v0", DJANGO_SECRET_KEY="k" * 50, DS_SQLITE_PATH=str(database))
    assert result.returncode == 0, result.stderr
    assert database.stat().st_mode & 0o777 == 0o600


def test_the_test_database_is_private_too():
    from django.db import connection

    connection.ensure_connection()
    assert Path(connection.settings_dict["NAME"]).stat().st_mode & 0o777 == 0o600
