"""A destroyed staging made again from the history: same branch, source, DB mode, name and
TTL, owned by whoever asks; refused clearly when its name is live again or its branch has no
image any more, before anything is made."""

from datetime import UTC, datetime, timedelta

import pytest

from provisioning import engine
from provisioning.errors import UserError
from provisioning.models import AuditEvent, DbMode, Operation, Staging, StagingStatus
from tests.conftest import BRANCH, HOST_DB, QA_DB
from tests.factories import make_staging

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def destroyed(owner, name="shop", **fields) -> Staging:
    fields.setdefault("branch", BRANCH)
    return make_staging(owner, name=name, status=StagingStatus.DESTROYED,
                        destroyed_at=T0 - timedelta(hours=1),
                        expires_at=T0 - timedelta(hours=1), **fields)


def test_recreate_makes_it_again_as_it_was(host_env, alice, enqueued, time_machine,
                                           django_capture_on_commit_callbacks):
    time_machine.move_to(T0, tick=False)
    old = destroyed(alice, source=QA_DB, snapshot_id=f"{QA_DB}-old", ttl_hours=5.0)
    with django_capture_on_commit_callbacks(execute=True):
        again = engine.request_recreate(old, user=alice)
    assert again.pk != old.pk
    assert (again.name, again.branch, again.source, again.db_mode, again.owner) == (
        "shop", BRANCH, QA_DB, DbMode.DEDICATED, alice)
    assert again.status == StagingStatus.PENDING
    assert again.snapshot_id == host_env.qa_snapshot  # the source's newest snapshot now
    assert again.image_tag == "feature-Login_Page"
    assert (again.ttl_hours, again.expires_at) == (5.0, T0 + timedelta(hours=5))
    assert enqueued == [again.latest_operation().pk]
    (event,) = AuditEvent.objects.filter(staging=again)
    assert (event.action, event.actor_name) == ("recreate", "alice")
    assert event.detail.startswith(f"again as staging #{old.pk} was; branch {BRANCH}")
    # The old one stays in the history as it was.
    old.refresh_from_db()
    assert old.status == StagingStatus.DESTROYED


def test_a_shared_one_comes_back_shared(host_env, alice, admin, enqueued):
    old = destroyed(alice, db_mode=DbMode.SHARED)
    again = engine.request_recreate(old, user=admin)  # staff may, and then owns it
    assert (again.db_mode, again.source, again.snapshot_id, again.owner) == (
        DbMode.SHARED, HOST_DB, "", admin)


def test_recreate_is_refused_while_the_name_is_live_again(host_env, alice, bob, enqueued):
    old = destroyed(alice)
    make_staging(bob, name="shop", status=StagingStatus.READY)
    with pytest.raises(UserError) as raised:
        engine.request_recreate(old, user=alice)
    assert raised.value.message == ("The name 'shop' is live again (a staging of bob, ready): "
                                    "open that one, or destroy it first.")
    assert (Staging.objects.count(), Operation.objects.count(), enqueued) == (2, 0, [])


def test_recreate_is_refused_when_the_branch_has_no_image_now(host_env, alice, enqueued):
    old = destroyed(alice, branch="feature/deleted-branch")
    with pytest.raises(UserError, match="No image tagged 'feature-deleted-branch'"):
        engine.request_recreate(old, user=alice)
    assert (Staging.objects.count(), AuditEvent.objects.count(), enqueued) == (1, 0, [])


def test_only_a_destroyed_or_lost_staging_is_recreated(host_env, alice, enqueued):
    live = make_staging(alice, name="shop", status=StagingStatus.READY)
    with pytest.raises(UserError, match="shop is ready: only a destroyed or lost staging can"):
        engine.request_recreate(live, user=alice)


def test_a_colleague_may_not_recreate_it(host_env, alice, bob, enqueued):
    old = destroyed(alice)
    assert not engine.may("recreate", bob, old)
    with pytest.raises(UserError, match="Only the owner of shop or an admin"):
        engine.request_recreate(old, user=bob)
    assert Staging.objects.count() == 1


def test_a_ttl_above_todays_maximum_is_cut_to_it(host_env, alice, enqueued, settings,
                                                 time_machine):
    time_machine.move_to(T0, tick=False)
    settings.DS_MAX_TTL_HOURS = 10.0
    old = destroyed(alice, ttl_hours=200.0)
    again = engine.request_recreate(old, user=alice)
    assert (again.ttl_hours, again.expires_at) == (10.0, T0 + timedelta(hours=10))


def test_the_newest_of_several_destroyed_is_the_one_recreated(alice):
    destroyed(alice, branch="old-branch").save()
    newer = make_staging(alice, name="shop", status=StagingStatus.DESTROYED, branch=BRANCH,
                         destroyed_at=T0)
    assert engine.last_destroyed("shop") == newer
    assert engine.last_destroyed("nothing") is None
