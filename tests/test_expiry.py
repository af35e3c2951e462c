"""Expiry with a controlled clock: the TTL a create sets and a redeploy resets, extensions and
their cap, keeping (admins only), the warning windows and their once-per-window signal, and
the settings behind them."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured

from provisioning import engine, expiry
from provisioning.config import check_ttl, parse_hours, parse_warn_hours
from provisioning.errors import UserError
from provisioning.models import AuditEvent, Staging, StagingStatus
from provisioning.signals import expiry_warning
from tests.conftest import BRANCH
from tests.factories import make_staging

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def clock(time_machine):
    """The wall clock stands at T0 until a test moves it (``clock.shift``)."""
    time_machine.move_to(T0, tick=False)
    return time_machine


@pytest.fixture
def heard():
    seen: list[dict] = []

    def listen(sender, **kwargs):
        seen.append({k: v for k, v in kwargs.items() if k != "signal"})

    expiry_warning.connect(listen)
    yield seen
    expiry_warning.disconnect(listen)


def ready(owner, name="shop", **fields) -> Staging:
    fields.setdefault("expires_at", T0 + timedelta(hours=72))
    fields.setdefault("status", StagingStatus.READY)
    return make_staging(owner, name=name, **fields)


def events(staging, action):
    return list(AuditEvent.objects.filter(staging=staging, action=action)
                .values_list("actor_name", "detail"))


# --- settings ---------------------------------------------------------------------------------

def test_the_settings_parse_hours_with_fractions_and_refuse_nonsense():
    assert parse_hours("DS_TTL_HOURS", "", 72.0) == 72.0
    assert parse_hours("DS_TTL_HOURS", " 0.5 ", 72.0) == 0.5
    for bad in ("0", "-1", "abc", "nan", "inf", "1e400"):
        with pytest.raises(ImproperlyConfigured, match="DS_TTL_HOURS"):
            parse_hours("DS_TTL_HOURS", bad, 72.0)
    assert parse_warn_hours("24,1") == (24.0, 1.0)
    assert parse_warn_hours("1, 24, 0.25, 1") == (24.0, 1.0, 0.25)
    assert parse_warn_hours("") == ()
    with pytest.raises(ImproperlyConfigured, match="DS_EXPIRY_WARN_HOURS"):
        parse_warn_hours("24,soon")
    with pytest.raises(ImproperlyConfigured, match="above DS_MAX_TTL_HOURS"):
        check_ttl(400.0, 336.0)


def test_the_defaults(settings):
    config = engine.load_config()
    assert (config.ttl_hours, config.max_ttl_hours, config.expiry_warn_hours) == (
        72.0, 336.0, (24.0, 1.0))


# --- the TTL of a create and of a redeploy ----------------------------------------------------

def test_a_create_expires_after_the_default_ttl(host_env, alice, clock, enqueued):
    staging = engine.request_create(branch=BRANCH, owner=alice)
    assert staging.expires_at == T0 + timedelta(hours=72)
    assert (staging.kept, staging.ttl_hours) == (False, None)


def test_a_create_may_ask_for_another_ttl_with_fractions(host_env, alice, clock, enqueued,
                                                         settings):
    settings.DS_TTL_HOURS = 8.0
    staging = engine.request_create(branch=BRANCH, owner=alice, ttl_hours="0.25")
    assert staging.expires_at == T0 + timedelta(minutes=15)
    assert Staging.objects.get(pk=staging.pk).ttl_hours == 0.25
    default = engine.request_create(branch="main", owner=alice)
    assert default.expires_at == T0 + timedelta(hours=8)


@pytest.mark.parametrize("ttl", ["abc", "0", "-3", "nan", "inf", "  1e999 "])
def test_a_bad_ttl_is_refused_before_anything_is_made(host_env, alice, enqueued, ttl):
    with pytest.raises(UserError) as raised:
        engine.request_create(branch=BRANCH, owner=alice, ttl_hours=ttl)
    assert raised.value.field == "ttl"
    assert "number of hours above 0" in raised.value.message
    assert "\n" not in raised.value.message
    assert (Staging.objects.count(), AuditEvent.objects.count(), enqueued) == (0, 0, [])


def test_a_ttl_above_the_maximum_is_refused_naming_it(host_env, alice, enqueued, settings):
    settings.DS_MAX_TTL_HOURS = 100.0
    assert engine.request_create(branch=BRANCH, owner=alice, ttl_hours=100)
    with pytest.raises(UserError) as raised:
        engine.request_create(branch="main", owner=alice, ttl_hours="100.5")
    assert raised.value.message == ("A TTL of 100.5 hours is above the most allowed, "
                                    "100 hours (DS_MAX_TTL_HOURS).")
    assert Staging.objects.count() == 1


def test_a_redeploy_starts_the_ttl_over(host_env, alice, clock, enqueued):
    staging = ready(alice, ttl_hours=10.0, expires_at=T0 + timedelta(hours=10),
                    expiry_warned_hours=24.0)
    clock.shift(timedelta(hours=9))
    engine.request_redeploy(staging, user=alice)
    staging.refresh_from_db()
    assert staging.expires_at == T0 + timedelta(hours=19)
    assert staging.expiry_warned_hours is None  # a new expiry is warned of again


def test_a_redeploy_of_a_kept_staging_gives_it_no_expiry(host_env, alice, clock, enqueued):
    staging = ready(alice, kept=True, expires_at=None)
    engine.request_redeploy(staging, user=alice)
    staging.refresh_from_db()
    assert (staging.kept, staging.expires_at) == (True, None)


def test_a_refused_redeploy_leaves_the_expiry(host_env, alice, clock, enqueued):
    staging = ready(alice, status=StagingStatus.PROVISIONING)
    with pytest.raises(UserError):
        engine.request_redeploy(staging, user=alice)
    assert Staging.objects.get(pk=staging.pk).expires_at == T0 + timedelta(hours=72)


def test_a_lowered_maximum_cuts_a_long_ttl_at_the_next_redeploy(settings):
    settings.DS_MAX_TTL_HOURS = 100.0
    config = engine.load_config()
    assert expiry.expiry_after(T0, 300.0, config) == T0 + timedelta(hours=100)
    assert expiry.expiry_after(T0, None, config) == T0 + timedelta(hours=72)


# --- extend -----------------------------------------------------------------------------------

def test_extend_by_default_gives_the_default_ttl_from_now(alice, clock):
    staging = ready(alice, expires_at=T0 + timedelta(minutes=30), expiry_warned_hours=1.0)
    extension = engine.extend(staging, user=alice)
    assert (extension.expires_at, extension.capped) == (T0 + timedelta(hours=72), False)
    staging.refresh_from_db()
    assert staging.expires_at == T0 + timedelta(hours=72)
    assert staging.expiry_warned_hours is None
    assert extension.sentence("shop") == "shop now expires at 2026-03-05 09:00 UTC, in 72 hours."
    assert events(staging, "extend") == [("alice", "until 2026-03-05 09:00 UTC (72 h)")]


def test_extend_by_some_hours_may_also_shorten(alice, admin, clock):
    staging = ready(alice)
    assert engine.extend(staging, user=admin, hours="2.5").expires_at == T0 + timedelta(
        hours=2.5)
    assert Staging.objects.get(pk=staging.pk).expires_at == T0 + timedelta(hours=2.5)
    assert events(staging, "extend") == [("admin", "until 2026-03-02 11:30 UTC (2.5 h)")]


def test_extend_never_reaches_past_the_maximum_and_says_so(alice, clock, settings):
    settings.DS_MAX_TTL_HOURS = 100.0
    staging = ready(alice)
    extension = engine.extend(staging, user=alice, hours=500)
    assert extension.capped and extension.hours == 100.0
    assert Staging.objects.get(pk=staging.pk).expires_at == T0 + timedelta(hours=100)
    assert "capped: 500 hours asked, the most allowed is 100" in extension.sentence("shop")
    assert events(staging, "extend") == [
        ("alice", "until 2026-03-06 13:00 UTC (100 h, capped at DS_MAX_TTL_HOURS)")]
    exactly = engine.extend(staging, user=alice, hours=100)
    assert not exactly.capped


@pytest.mark.parametrize("hours", ["soon", "0", "-1", "nan"])
def test_extend_refuses_bad_hours_and_changes_nothing(alice, clock, hours):
    staging = ready(alice)
    with pytest.raises(UserError, match="number of hours above 0"):
        engine.extend(staging, user=alice, hours=hours)
    assert Staging.objects.get(pk=staging.pk).expires_at == T0 + timedelta(hours=72)
    assert events(staging, "extend") == []


def test_only_the_owner_or_staff_may_extend(alice, bob, clock):
    staging = ready(alice)
    assert engine.may("extend", alice, staging) and not engine.may("extend", bob, staging)
    with pytest.raises(UserError, match="Only its owner or an admin may extend shop"):
        engine.extend(staging, user=bob, hours=1)
    assert Staging.objects.get(pk=staging.pk).expires_at == T0 + timedelta(hours=72)


@pytest.mark.parametrize("status", [StagingStatus.DESTROYING, StagingStatus.DESTROYED])
def test_a_staging_going_or_gone_is_not_extended(alice, clock, status):
    staging = ready(alice, status=status)
    with pytest.raises(UserError, match=f"shop is {status}: it cannot be extended now"):
        engine.extend(staging, user=alice)
    assert events(staging, "extend") == []


def test_a_kept_staging_has_nothing_to_extend(alice, clock):
    staging = ready(alice, kept=True, expires_at=None)
    with pytest.raises(UserError, match="kept: it does not expire"):
        engine.extend(staging, user=alice)


def test_extend_fails_if_the_staging_changed_since_it_was_read(alice, admin, clock):
    staging = ready(alice)
    Staging.objects.filter(pk=staging.pk).update(kept=True, expires_at=None)  # in between
    with pytest.raises(UserError, match="changed meanwhile"):
        engine.extend(staging, user=alice)
    assert Staging.objects.get(pk=staging.pk).expires_at is None


# --- keep -------------------------------------------------------------------------------------

def test_keep_is_for_admins_and_removes_the_expiry(alice, admin, clock):
    staging = ready(alice)
    assert not engine.may("keep", alice, staging) and engine.may("keep", admin, staging)
    with pytest.raises(UserError, match="Only an admin may keep shop"):
        engine.set_kept(staging, user=alice)
    assert engine.set_kept(staging, user=admin) is True
    staging.refresh_from_db()
    assert (staging.kept, staging.expires_at) == (True, None)
    assert engine.set_kept(staging, user=admin) is False  # already kept: nothing recorded
    assert events(staging, "keep") == [("admin", "no expiry")]


def test_keep_off_gives_a_full_ttl_from_then(alice, admin, clock):
    staging = ready(alice, kept=True, expires_at=None, ttl_hours=5.0)
    clock.shift(timedelta(days=40))
    assert engine.set_kept(staging, user=admin, kept=False) is True
    staging.refresh_from_db()
    assert not staging.kept
    assert staging.expires_at == T0 + timedelta(days=40, hours=5)
    assert events(staging, "keep-off") == [("admin", "expires at 2026-04-11 14:00 UTC")]


def test_a_destroyed_staging_is_not_kept(admin, alice):
    staging = ready(alice, status=StagingStatus.DESTROYED)
    with pytest.raises(UserError, match="cannot be kept now"):
        engine.set_kept(staging, user=admin)


# --- what the pages show, and the warnings ----------------------------------------------------

@pytest.mark.parametrize(("left", "window"), [
    (timedelta(hours=30), None), (timedelta(hours=24), 24.0), (timedelta(hours=5), 24.0),
    (timedelta(minutes=61), 24.0), (timedelta(minutes=60), 1.0), (timedelta(seconds=5), 1.0),
    (-timedelta(minutes=1), 1.0),
])
def test_the_warning_window_is_the_smallest_one_the_time_left_is_in(left, window):
    assert expiry.warning_window(T0 + left, T0, (24.0, 1.0)) == window
    assert expiry.warning_window(T0 + left, T0, ()) is None
    assert expiry.warning_window(None, T0, (24.0, 1.0)) is None


def test_the_view_of_a_staging(alice, clock):
    staging = ready(alice, expires_at=T0 + timedelta(hours=5))
    view = expiry.expiry_of(staging)
    assert (view.seconds_left, view.warning_hours, view.warned) == (5 * 3600, 24.0, True)
    kept = ready(alice, name="kept", kept=True, expires_at=None)
    assert expiry.expiry_of(kept).warned is False
    gone = ready(alice, name="gone", status=StagingStatus.DESTROYED)
    assert expiry.expiry_of(gone) is None


def test_each_window_is_announced_once(alice, clock, heard, settings,
                                       django_capture_on_commit_callbacks):
    settings.DS_EXPIRY_WARN_HOURS = (24.0, 1.0)
    staging = ready(alice, expires_at=T0 + timedelta(hours=30))
    ready(alice, name="kept", kept=True, expires_at=None)
    ready(alice, name="later", expires_at=T0 + timedelta(hours=300))
    config = engine.load_config()
    with django_capture_on_commit_callbacks(execute=True):
        for hours in (0, 5, 6, 7, 29, 29.5):  # hours after T0 at which the check runs
            clock.move_to(T0 + timedelta(hours=hours), tick=False)
            expiry.announce_warnings(T0 + timedelta(hours=hours), config)
    assert heard == [
        {"staging_id": staging.pk, "window_hours": 24.0, "expires_at": T0 + timedelta(hours=30)},
        {"staging_id": staging.pk, "window_hours": 1.0, "expires_at": T0 + timedelta(hours=30)},
    ]
    # An extension starts them over.
    engine.extend(staging, user=alice, hours=2)
    with django_capture_on_commit_callbacks(execute=True):
        expiry.announce_warnings(T0 + timedelta(hours=29.5), config)
    assert [h["window_hours"] for h in heard] == [24.0, 1.0, 24.0]


def test_a_check_that_missed_a_window_announces_only_the_smallest(
        alice, clock, heard, django_capture_on_commit_callbacks):
    staging = ready(alice, expires_at=T0 + timedelta(minutes=30))
    with django_capture_on_commit_callbacks(execute=True):
        assert expiry.announce_warnings(T0, engine.load_config()) == ["shop"]
    assert heard == [{"staging_id": staging.pk, "window_hours": 1.0,
                      "expires_at": T0 + timedelta(minutes=30)}]


def test_two_nodes_announce_a_window_once(alice, clock, heard,
                                          django_capture_on_commit_callbacks):
    """Both nodes read the row before either wrote it: the second one's conditional update
    finds it changed and sends nothing."""
    staging = ready(alice, expires_at=T0 + timedelta(hours=2))
    read = (staging.pk, staging.expires_at, None, 24.0)
    with django_capture_on_commit_callbacks(execute=True):
        assert expiry.announce_window(*read) is True
        assert expiry.announce_window(*read) is False
    assert len(heard) == 1
    # Nor is a wider window announced after a narrower one.
    assert expiry.announce_window(staging.pk, staging.expires_at, 1.0, 24.0) is False


def test_no_windows_no_warnings(alice, clock, heard, settings):
    settings.DS_EXPIRY_WARN_HOURS = ()
    ready(alice, expires_at=T0 + timedelta(minutes=5))
    assert expiry.announce_warnings(T0, engine.load_config()) == []
    assert heard == []
