"""Who may redeploy or destroy a staging is one rule, the lifecycle registry's, and the engine
applies it whichever entry point asks: the command line refuses what the pages refuse."""

import pytest

from provisioning import engine
from provisioning.errors import NotAllowed
from provisioning.models import Operation, StagingStatus
from tests.command_line import ds
from tests.factories import make_staging

pytestmark = pytest.mark.django_db


@pytest.fixture
def bobs(bob):
    return make_staging(bob, name="bobs-page", status=StagingStatus.READY)


@pytest.mark.parametrize("request_", [
    lambda staging, user: engine.request_destroy(staging, user=user),
    lambda staging, user: engine.request_redeploy(staging, user=user),
], ids=["destroy", "redeploy"])
def test_a_colleague_is_refused_and_nothing_changes(bobs, alice, request_, enqueued):
    with pytest.raises(NotAllowed, match="Only the owner of bobs-page"):
        request_(bobs, alice)
    bobs.refresh_from_db()
    assert bobs.status == StagingStatus.READY
    assert not Operation.objects.filter(staging=bobs).exists()


def test_an_admin_may_destroy_anyones(bobs, admin, enqueued):
    assert engine.request_destroy(bobs, user=admin).kind == "destroy"


@pytest.mark.parametrize("verb", ["destroy", "redeploy"])
def test_ds_refuses_a_colleagues_staging_in_one_line(bobs, alice, monkeypatch, verb,
                                                      enqueued):
    monkeypatch.setenv("DS_USER", "alice")
    code, out, err = ds(verb, "bobs-page")
    assert code != 0 and out == ""
    assert err.strip().splitlines() == [
        f"error: Only the owner of bobs-page (bob) or an admin may {verb} it."]
    assert not Operation.objects.filter(staging=bobs).exists()
