"""One live staging per branch, unless a second one is named on purpose.

A create for a branch that has a live staging is refused with "BRANCH already has a staging",
and that staging is offered (open it, redeploy it), once on the page, not "the name is taken"
under the field and again in the preview. The command line says the same with its own verbs.
"""

import io
import re
from unittest import mock

import pytest
from django.core.management import call_command
from django.urls import reverse

from provisioning import engine
from provisioning.errors import BranchHasStaging, UserError
from provisioning.models import OperationKind, OperationStatus, Staging, StagingStatus
from provisioning.names import name_for_branch
from tests.conftest import BRANCH
from tests.factories import make_staging
from tests.pages import client_for

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("enqueued")]
NAME = name_for_branch(BRANCH)
FORM = {"branch": BRANCH, "source": "host-db", "db_mode": "shared", "name": ""}


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", html)).replace("&#x27;", "'")


def test_a_second_create_of_a_branch_is_refused_with_the_first(host_env, alice):
    first = engine.request_create(branch=BRANCH, owner=alice, db_mode="shared")
    with pytest.raises(BranchHasStaging) as refused:
        engine.request_create(branch=BRANCH, owner=alice, db_mode="shared")
    assert refused.value.staging == first
    assert refused.value.message.startswith(f"{BRANCH} already has a staging, {NAME} (pending)")
    assert refused.value.field == "name"
    assert Staging.objects.count() == 1

    # A name given on purpose makes a second one ...
    second = engine.request_create(branch=BRANCH, owner=alice, db_mode="shared", name="second")
    assert (second.branch, second.name) == (BRANCH, "second")
    # ... and a name given on purpose that is taken is "taken", whatever its branch.
    with pytest.raises(UserError, match="'second' is taken by a live staging") as taken:
        engine.request_create(branch=BRANCH, owner=alice, db_mode="shared", name="second")
    assert not isinstance(taken.value, BranchHasStaging)

    # Destroyed stagings do not count.
    Staging.objects.update(status=StagingStatus.DESTROYED)
    assert engine.request_create(branch=BRANCH, owner=alice, db_mode="shared").name == NAME


def test_whoever_asks_and_whatever_its_name(host_env, alice, bob):
    make_staging(alice, name="by-hand", branch=BRANCH, status=StagingStatus.FAILED)
    with pytest.raises(BranchHasStaging, match="already has a staging, by-hand"):
        engine.request_create(branch=BRANCH, owner=bob, db_mode="shared")


def test_a_racing_create_of_the_same_branch_is_told_the_same(host_env, alice, bob):
    """Both passed the checks before either wrote its row: the unique name decides, and the
    loser hears about the branch's staging, not about a name it never chose."""
    make_staging(alice, name=NAME, branch=BRANCH, status=StagingStatus.PENDING)
    with mock.patch("provisioning.operations._check_branch_free"), \
            mock.patch("provisioning.operations._check_name_free"), \
            pytest.raises(BranchHasStaging, match="already has a staging"):
        engine.request_create(branch=BRANCH, owner=bob, db_mode="shared")


def test_the_form_offers_the_staging_once(host_env, alice):
    client = client_for(alice)
    assert client.post(reverse("create"), FORM).status_code == 302
    first = Staging.objects.get()
    response = client.post(reverse("create"), FORM)
    assert response.status_code == 200
    page = response.content.decode()
    assert text_of(page).count("already has a staging") == 1
    assert "is taken" not in page and "already has this name" not in page
    error = re.search(r'<p class="field-error" id="name-error">(.*?)</p>', page, re.S).group(1)
    assert f'<a href="/stagings/{first.pk}/">{NAME}</a>' in error
    assert f'<a class="button small" href="/stagings/{first.pk}/">Open it</a>' in error
    # Not ready yet: nothing to redeploy.
    assert "Redeploy it" not in error
    assert Staging.objects.count() == 1


def test_a_ready_stagings_owner_may_redeploy_it_from_the_form(host_env, alice):
    client = client_for(alice)
    client.post(reverse("create"), FORM)
    first = Staging.objects.get()
    Staging.objects.filter(pk=first.pk).update(status=StagingStatus.READY)
    first.operations.update(status=OperationStatus.SUCCEEDED)
    page = client.post(reverse("create"), FORM).content.decode()
    redeploy = f'formaction="/stagings/{first.pk}/redeploy/" formmethod="post"'
    assert text_of(page).count("Redeploy it") == 1 and redeploy in page
    # The button posts the create form (its CSRF token included) to the redeploy address.
    response = client.post(reverse("redeploy", args=[first.pk]), FORM)
    assert response.status_code == 302
    assert first.latest_operation().kind == OperationKind.REDEPLOY


def test_a_colleague_may_open_it_but_not_redeploy_it(host_env, alice, bob):
    staging = make_staging(alice, name=NAME, branch=BRANCH, status=StagingStatus.READY)
    page = client_for(bob).post(reverse("create"), FORM).content.decode()
    assert f"({staging.status}, alice's)" in text_of(page)
    assert "Open it" in page and "Redeploy it" not in page


def test_the_preview_offers_it_while_typing(host_env, alice):
    staging = make_staging(alice, name="by-hand", branch=BRANCH, status=StagingStatus.READY)
    client = client_for(alice)
    body = client.get(reverse("name_preview"), {"branch": BRANCH}).content.decode()
    assert body.startswith('<p id="name-preview"')
    assert "already has a staging" in body and f'href="/stagings/{staging.pk}/"' in body
    assert "Redeploy it" in body
    # With a name of its own it is a second staging on purpose: no offer.
    body = client.get(reverse("name_preview"), {"branch": BRANCH, "name": "other"}).content
    assert b"already has a staging" not in body and b"It will be called" in body


def test_ds_create_says_so_with_its_own_verbs(host_env, alice, monkeypatch):
    make_staging(alice, name=NAME, branch=BRANCH, status=StagingStatus.READY)
    monkeypatch.setenv("DS_USER", "alice")
    err = io.StringIO()
    with mock.patch("sys.stderr", err), pytest.raises(SystemExit) as exited:
        call_command("ds", "create", BRANCH, "--shared-db", stdout=io.StringIO())
    assert exited.value.code == 2
    assert err.getvalue() == (
        f"error: {BRANCH} already has a staging, {NAME} (ready): `ds show {NAME}` or "
        f"`ds redeploy {NAME}`; to run a second one on purpose, give it a --name.\n")
