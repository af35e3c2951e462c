"""API tokens: made with a secret that only its owner ever sees, kept as a hash, expiring,
revocable; the API tokens page (own tokens, staff: everybody's) and ``ds token``."""

import hashlib
import json
import re
from datetime import timedelta
from unittest import mock

import pytest
from django.apps import apps
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from provisioning import api_tokens, audit, engine
from provisioning.errors import UserError
from provisioning.models import ApiToken, AuditEvent
from tests.command_line import ds

pytestmark = pytest.mark.django_db


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def every_stored_value() -> str:
    """Every value of every row of every table, as text."""
    return "\n".join(repr(row) for model in apps.get_models()
                     for row in model._default_manager.values_list())


# --- the secret and what is kept --------------------------------------------------------------

def test_the_database_never_holds_the_token(alice):
    issued = engine.issue_token(alice, name="deploy script", scope="write",
                                channel=audit.WEB)
    secret = issued.secret
    assert re.fullmatch(r"dst_[A-Za-z0-9_-]{43}", secret)
    stored = every_stored_value()
    assert secret not in stored
    # Nor its random part, nor anything of it beyond the prefix shown.
    assert secret[4:] not in stored and secret[12:] not in stored
    token = ApiToken.objects.get()
    assert token.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert token.prefix == secret[:12]


def test_two_tokens_never_share_a_secret(alice):
    secrets = {engine.issue_token(alice, name=f"t{i}").secret for i in range(20)}
    assert len(secrets) == 20


def test_a_token_authenticates_its_user_and_notes_its_use_once_a_minute(alice):
    issued = engine.issue_token(alice, name="ci")
    assert engine.authenticate_token(issued.secret).user == alice
    first = ApiToken.objects.get().last_used_at
    assert first is not None
    engine.authenticate_token(issued.secret)
    assert ApiToken.objects.get().last_used_at == first  # no write within the minute
    ApiToken.objects.update(last_used_at=timezone.now() - timedelta(minutes=2))
    engine.authenticate_token(issued.secret)
    assert ApiToken.objects.get().last_used_at > first


def test_the_hashes_are_compared_in_constant_time(alice):
    issued = engine.issue_token(alice, name="ci")
    with mock.patch("provisioning.api_tokens.hmac.compare_digest",
                    wraps=api_tokens.hmac.compare_digest) as compare:
        engine.authenticate_token(issued.secret)
    compare.assert_called_once_with(ApiToken.objects.get().secret_hash,
                                    hashlib.sha256(issued.secret.encode()).hexdigest())


@pytest.mark.parametrize(("change", "words"), [
    ({"expires_at": timezone.now() - timedelta(seconds=1)}, "expired on"),
    ({"revoked_at": timezone.now()}, "was revoked on"),
])
def test_expired_and_revoked_tokens_are_refused(alice, change, words):
    issued = engine.issue_token(alice, name="ci")
    ApiToken.objects.update(**change)
    with pytest.raises(engine.TokenRefused, match=words):
        engine.authenticate_token(issued.secret)
    assert ApiToken.objects.get().last_used_at is None


def test_a_token_expires_after_its_days(alice):
    before = timezone.now()
    token = engine.issue_token(alice, name="ci", days=7).token
    assert timedelta(days=7) <= token.expires_at - before < timedelta(days=7, seconds=5)


@pytest.mark.parametrize(("fields", "field", "words"), [
    ({"name": "  "}, "name", "Give the token a name"),
    ({"name": "x" * 101}, "name", "at most 100"),
    ({"name": "ci\u202e"}, "name", "RIGHT-TO-LEFT OVERRIDE"),
    ({"scope": "admin"}, "scope", "Unknown scope"),
    ({"days": 0}, "days", "1 to 365 days"),
    ({"days": 366}, "days", "1 to 365 days"),
])
def test_a_token_is_refused_with_the_field_at_fault(alice, fields, field, words):
    with pytest.raises(UserError, match=words) as refused:
        engine.issue_token(alice, **{"name": "ci"} | fields)
    assert refused.value.field == field
    assert not ApiToken.objects.exists()


def test_making_and_revoking_are_on_the_audit_trail(alice, admin):
    token = engine.issue_token(alice, name="ci", scope="write", channel=audit.WEB).token
    assert engine.revoke_token(token, by=admin, channel=audit.CLI)
    assert not engine.revoke_token(token, by=alice)
    events = list(AuditEvent.objects.order_by("pk").values_list(
        "action", "actor_name", "channel", "detail"))
    assert [e[:3] for e in events] == [("token-create", "alice", "web"),
                                       ("token-revoke", "admin", "cli")]
    assert events[0][3].startswith(f"token ci ({token.prefix}…) of alice, scope write")


# --- the page ---------------------------------------------------------------------------------

def test_the_page_is_in_the_navigation(alice):
    page = logged_in(alice).get(reverse("home")).content.decode()
    assert f'href="{reverse("api_tokens")}"' in page


def test_a_new_token_is_shown_once_and_the_answer_is_not_cached(alice):
    client = logged_in(alice)
    response = client.post(reverse("api_tokens"), {"name": "release bot", "scope": "write",
                                                   "days": "30"})
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    secret = re.search(r'<code class="token-secret" id="new-token">([^<]+)</code>',
                       response.content.decode()).group(1)
    token = engine.authenticate_token(secret)
    assert (token.user, token.name, token.scope) == (alice, "release bot", "write")
    assert timedelta(days=29, hours=23) < token.expires_at - timezone.now() <= timedelta(days=30)
    again = client.get(reverse("api_tokens")).content.decode()
    assert secret not in again and token.prefix in again and "release bot" in again


def test_the_form_says_what_is_wrong(alice):
    response = logged_in(alice).post(reverse("api_tokens"), {"name": "", "scope": "root",
                                                             "days": "400"})
    page = response.content.decode()
    assert response.status_code == 200
    for field in ("name", "scope", "days"):
        assert f'id="{field}-error"' in page, field
    assert not ApiToken.objects.exists()


def test_everyone_sees_their_own_tokens_and_staff_see_all(alice, bob, admin):
    engine.issue_token(alice, name="alices-script")
    engine.issue_token(bob, name="bobs-script")
    alices_page = logged_in(alice).get(reverse("api_tokens")).content.decode()
    assert "alices-script" in alices_page and "bobs-script" not in alices_page
    staff_page = logged_in(admin).get(reverse("api_tokens")).content.decode()
    assert "alices-script" in staff_page and "bobs-script" in staff_page
    assert "<th>Owner</th>" in staff_page and "<th>Owner</th>" not in alices_page


def test_the_page_shows_last_use_and_state(alice):
    issued = engine.issue_token(alice, name="ci")
    page = logged_in(alice).get(reverse("api_tokens")).content.decode()
    assert ">never<" in page and ">active<" in page
    engine.authenticate_token(issued.secret)
    engine.revoke_token(issued.token, by=alice)
    page = logged_in(alice).get(reverse("api_tokens")).content.decode()
    assert ">never<" not in page and ">revoked<" in page
    assert reverse("revoke_api_token", args=[issued.token.pk]) not in page


def test_the_owner_and_staff_revoke_and_a_colleague_may_not(alice, bob, admin):
    token = engine.issue_token(alice, name="ci").token
    url = reverse("revoke_api_token", args=[token.pk])
    assert logged_in(bob).post(url).status_code == 403
    token.refresh_from_db()
    assert token.revoked_at is None
    response = logged_in(alice).post(url)
    assert response.status_code == 302 and response["Location"] == reverse("api_tokens")
    token.refresh_from_db()
    assert token.revoked_at is not None
    other = engine.issue_token(alice, name="other").token
    assert logged_in(admin).post(reverse("revoke_api_token", args=[other.pk])).status_code == 302
    other.refresh_from_db()
    assert other.is_revoked


# --- ds token ---------------------------------------------------------------------------------

@pytest.fixture
def operator(monkeypatch):
    monkeypatch.setenv("DS_USER", "ops")


def test_ds_token_create_json_prints_the_token_once(alice, operator):
    code, out, err = ds("token", "create", "--user", "alice", "--name", "ci", "--scope", "write",
                        "--days", "10", "--json")
    assert code == 0, err
    printed = json.loads(out)
    token = engine.authenticate_token(printed["token"])
    assert (token.user, token.name, token.scope) == (alice, "ci", "write")
    assert (printed["user"], printed["scope"], printed["prefix"], printed["state"]) == (
        "alice", "write", token.prefix, "active")
    assert printed["token"] not in every_stored_value()
    event = AuditEvent.objects.get()
    assert (event.action, event.actor_name, event.channel) == ("token-create", "ops", "cli")


def test_ds_token_create_prints_the_bare_token_for_scripts(alice, operator):
    code, out, err = ds("token", "create", "--user", "alice")
    assert code == 0
    token = engine.authenticate_token(out.strip())
    assert (token.name, token.scope) == ("command line", "read")
    assert out.count("\n") == 1 and "shown only now" in err


@pytest.mark.parametrize(("args", "words"), [
    (["--user", "nobody"], "No user named 'nobody'"),
    (["--user", "alice", "--days", "0"], "1 to 365 days"),
])
def test_ds_token_create_refuses_with_exit_2(alice, operator, args, words):
    code, out, err = ds("token", "create", *args)
    assert (code, out) == (2, "")
    assert words in err
    assert not ApiToken.objects.exists()


def test_ds_token_list_and_revoke(alice, bob, operator):
    kept = engine.issue_token(alice, name="kept").token
    gone = engine.issue_token(bob, name="gone").token
    code, out, _ = ds("token", "revoke", gone.prefix)
    assert code == 0
    gone.refresh_from_db()
    assert gone.is_revoked
    assert ds("token", "revoke", gone.prefix)[2].startswith("Token 'gone'")  # already revoked
    code, out, _ = ds("token", "list", "--json")
    assert [t["name"] for t in json.loads(out)] == ["kept"]
    code, out, _ = ds("token", "list", "--all", "--json")
    assert {t["name"]: t["state"] for t in json.loads(out)} == {"kept": "active",
                                                                "gone": "revoked"}
    code, out, _ = ds("token", "list", "--user", "alice")
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["ID", "PREFIX", "USER"]
    assert kept.prefix in lines[1] and len(lines) == 2
    assert ds("token", "revoke", str(kept.pk))[0] == 0
    assert ds("token", "revoke", "dst_nothing")[0] == 2


def test_ds_token_needs_no_sandbox(alice, operator, settings):
    settings.SANDBOX = True
    code, out, err = ds("token", "create", "--user", "alice")
    assert code == 0 and "no sandbox" not in err
