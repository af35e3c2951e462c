"""``ds create --ttl``, ``ds extend``, ``ds keep`` and ``ds recreate``, and the expiry in the
``ds`` JSON: ``expires_at`` (ISO 8601 UTC, null when kept) and ``kept``."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from provisioning.models import AuditEvent, Staging, StagingStatus
from tests.command_line import ds
from tests.factories import make_staging

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def as_alice(monkeypatch, time_machine):
    monkeypatch.setenv("DS_USER", "alice")
    time_machine.move_to(T0, tick=False)


def ready(owner, name="shop", **fields) -> Staging:
    fields.setdefault("expires_at", T0 + timedelta(hours=72))
    return make_staging(owner, name=name, status=StagingStatus.READY, **fields)


def test_create_with_a_ttl_carries_its_expiry_in_the_json(host_env, enqueued):
    code, out, err = ds("create", "feature/Login_Page", "--ttl", "0.5", "--json")
    assert code == 0, err
    staging = json.loads(out)
    assert staging["expires_at"] == "2026-03-02T09:30:00Z"
    assert staging["created_at"] == "2026-03-02T09:00:00Z"  # the same form as the others
    assert staging["kept"] is False


@pytest.mark.parametrize(("ttl", "said"), [
    ("soon", "error: The TTL must be a number of hours above 0 (for example 72 or 0.5), not "
             "'soon'.\n"),
    ("0", "error: The TTL must be a number of hours above 0 (for example 72 or 0.5), not "
          "'0'.\n"),
    ("337", "error: A TTL of 337 hours is above the most allowed, 336 hours "
            "(DS_MAX_TTL_HOURS).\n"),
])
def test_a_bad_ttl_exits_2_with_one_line_and_makes_nothing(host_env, enqueued, ttl, said):
    code, out, err = ds("create", "feature/Login_Page", "--ttl", ttl)
    assert (code, out, err) == (2, "", said)
    assert (Staging.objects.count(), enqueued) == (0, [])


def test_show_and_list_carry_expires_at_and_kept(alice):
    ready(alice)
    ready(alice, name="kept", kept=True, expires_at=None)
    code, out, _ = ds("show", "shop", "--json")
    assert json.loads(out)["expires_at"] == "2026-03-05T09:00:00Z"
    code, out, _ = ds("list", "--json")
    assert {(s["name"], s["expires_at"], s["kept"]) for s in json.loads(out)} == {
        ("shop", "2026-03-05T09:00:00Z", False), ("kept", None, True)}
    code, out, _ = ds("list")
    lines = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert "2026-03-05 09:00 UTC" in lines["shop"] and " kept " in lines["kept"]
    code, out, _ = ds("show", "shop")
    assert "expires:        2026-03-05 09:00 UTC" in out.splitlines()


def test_extend_caps_and_says_so(alice):
    ready(alice, expires_at=T0 + timedelta(minutes=20))
    code, out, err = ds("extend", "shop", "--hours", "500", "--json")
    assert code == 0, err
    assert json.loads(out)["expires_at"] == "2026-03-16T09:00:00Z"  # now + 336 h
    assert err == ("shop now expires at 2026-03-16 09:00 UTC, in 336 hours (capped: 500 "
                   "hours asked, the most allowed is 336, DS_MAX_TTL_HOURS).\n")
    code, _, err = ds("extend", "shop")
    assert (code, err) == (0, "shop now expires at 2026-03-05 09:00 UTC, in 72 hours.\n")


def test_extend_refuses_bad_hours_and_others_stagings(alice, bob):
    ready(alice, name="mine")
    ready(bob)
    code, out, err = ds("extend", "mine", "--hours", "-2")
    assert (code, out) == (2, "")
    assert err.startswith("error: The extension must be a number of hours above 0")
    code, _, err = ds("extend", "shop")
    assert (code, err) == (2, "error: Only its owner or an admin may extend shop.\n")
    assert Staging.objects.get(name="shop").expires_at == T0 + timedelta(hours=72)


def test_keep_is_for_an_admin_user(alice, django_user_model):
    ready(alice)
    code, _, err = ds("keep", "shop")
    assert (code, err) == (2, "error: Only an admin may keep shop.\n")
    django_user_model.objects.filter(username="alice").update(is_staff=True)
    code, out, err = ds("keep", "shop", "--json")
    assert code == 0 and err == "shop is kept: it does not expire.\n"
    assert json.loads(out)["expires_at"] is None and json.loads(out)["kept"] is True
    code, _, err = ds("keep", "shop")
    assert (code, err) == (0, "shop is already kept.\n")
    code, out, err = ds("keep", "shop", "--off", "--json")
    assert code == 0 and err == "shop is no longer kept.\n"
    assert json.loads(out)["expires_at"] == "2026-03-05T09:00:00Z"
    assert list(AuditEvent.objects.values_list("action", flat=True).order_by("pk")) == [
        "keep", "keep-off"]


def test_recreate_a_destroyed_staging(host_env, alice, enqueued):
    make_staging(alice, name="shop", status=StagingStatus.DESTROYED, branch="main",
                 destroyed_at=T0)
    code, out, err = ds("recreate", "shop", "--json")
    assert code == 0, err
    again = json.loads(out)
    assert (again["name"], again["branch"], again["status"]) == ("shop", "main", "pending")
    assert Staging.objects.live().get(name="shop").operations.count() == 1

    code, out, err = ds("recreate", "shop")
    assert (code, out) == (2, "")
    assert err == ("error: The name 'shop' is live again (a staging of alice, pending): open "
                   "that one, or destroy it first.\n")
    code, _, err = ds("recreate", "nothing")
    assert (code, err) == (2, "error: No staging named 'nothing'.\n")
