"""Branch suggestions are branches, and a create given an image tag runs the branch it stands
for: the registry lists `feature-Login_Page`, the branch is `feature/Login_Page`, and picking
the one or typing the other makes one staging, not two.

A branch is known exactly once any staging (live or destroyed) was made for it; a tag no known
branch produces is offered as it is. The seeded registry holds `main`, `feature-Login_Page` and
`release-2026.11`.
"""

import importlib
import io
import json
import re
from unittest import mock

import pytest
from django.apps import apps
from django.core.management import call_command
from django.urls import reverse

from provisioning import engine
from provisioning.models import Staging, StagingStatus
from provisioning.names import image_tag_for_branch, name_for_branch
from tests.conftest import BRANCH, RELEASE_TAG
from tests.factories import make_staging
from tests.pages import client_for

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("enqueued")]
migration = importlib.import_module("provisioning.migrations.0009_staging_branch_tag")
TAG = "feature-Login_Page"


def datalist(page: str) -> dict[str, str]:
    """The create page's suggestions: value -> the label beside it."""
    options = re.search(r'<datalist id="branch-suggestions">(.*?)</datalist>', page, re.S)
    assert options, page
    return dict(re.findall(r'<option value="([^"]*)">([^<]*)</option>', options.group(1)))


def test_a_tag_of_a_known_branch_is_suggested_as_the_branch(host_env, alice):
    make_staging(alice, name="login-page", branch=BRANCH, status=StagingStatus.DESTROYED)
    suggestions = datalist(client_for(alice).get(reverse("create")).content.decode())
    assert suggestions[BRANCH] == f"image {TAG}"
    assert TAG not in suggestions
    # Tags no known branch produces are the best guess at their branch.
    assert suggestions["main"] == "" and suggestions[RELEASE_TAG] == ""


def test_the_newest_known_branch_wins_for_a_tag(host_env, alice):
    make_staging(alice, name="older", branch="feature-Login-Page", status=StagingStatus.DESTROYED)
    make_staging(alice, name="old", branch="feature+Login_Page", status=StagingStatus.DESTROYED)
    make_staging(alice, name="new", branch=BRANCH, status=StagingStatus.DESTROYED)
    assert [(s.branch, s.tag) for s in engine.branch_suggestions([TAG, "main"])] == [
        (BRANCH, TAG), ("main", "main")]


def test_a_picked_tag_creates_the_known_branch(host_env, alice):
    # Nobody knows the branch yet: the tag is the best guess.
    guessed = engine.request_create(branch=TAG, owner=alice, db_mode="shared")
    assert (guessed.branch, guessed.name) == (TAG, name_for_branch(TAG))
    Staging.objects.update(status=StagingStatus.DESTROYED, branch=BRANCH)

    staging = engine.request_create(branch=TAG, owner=alice, db_mode="shared")
    assert staging.branch == BRANCH
    assert staging.name == name_for_branch(BRANCH)
    assert staging.image_tag == TAG


def test_picking_the_tag_then_typing_the_branch_is_refused_as_a_second_staging(host_env, alice):
    make_staging(alice, name="login-page", branch=BRANCH, status=StagingStatus.DESTROYED)
    client = client_for(alice)
    form = {"source": "host-db", "db_mode": "shared", "name": ""}
    assert client.post(reverse("create"), form | {"branch": TAG}).status_code == 302
    page = client.post(reverse("create"), form | {"branch": BRANCH}).content.decode()
    assert "already has a staging" in page
    assert Staging.objects.live().count() == 1
    assert Staging.objects.live().get().branch == BRANCH


def test_a_known_branch_is_never_remapped(host_env, alice):
    make_staging(alice, name="dashed", branch=TAG, status=StagingStatus.DESTROYED)
    make_staging(alice, name="slashed", branch=BRANCH, status=StagingStatus.DESTROYED)
    # Offered as the newest known branch with that tag ...
    assert engine.branch_suggestions([TAG])[0].branch == BRANCH
    # ... but typed as itself, a known branch stays itself.
    assert engine.request_create(branch=TAG, owner=alice, db_mode="shared").branch == TAG


def test_the_preview_says_which_branch_the_tag_stands_for(host_env, alice):
    make_staging(alice, name="login-page", branch=BRANCH, status=StagingStatus.DESTROYED)
    body = client_for(alice).get(reverse("name_preview"), {"branch": TAG}).content.decode()
    assert f"<code>{TAG}</code> is the image of branch <code>{BRANCH}</code>" in body
    assert f'<strong class="derived-name">{name_for_branch(BRANCH)}</strong>' in body


def test_ds_create_resolves_a_tag_the_same_way(host_env, alice, monkeypatch):
    make_staging(alice, name="login-page", branch=BRANCH, status=StagingStatus.DESTROYED)
    monkeypatch.setenv("DS_USER", "alice")
    out, err = io.StringIO(), io.StringIO()
    with mock.patch("sys.stderr", err):
        call_command("ds", "create", TAG, "--shared-db", "--json", stdout=out)
    created = json.loads(out.getvalue())
    assert (created["branch"], created["name"]) == (BRANCH, name_for_branch(BRANCH))
    assert f"{TAG} is the image tag of branch {BRANCH}" in err.getvalue()


def test_every_staging_keeps_its_branch_tag(alice):
    staging = make_staging(alice, name="x", branch="fix/ümlaut.v2")
    assert staging.branch_tag == image_tag_for_branch("fix/ümlaut.v2") == "fix--mlaut.v2"
    Staging.objects.filter(pk=staging.pk).update(branch_tag="")
    migration.fill_branch_tags(apps, None)  # what the migration does to existing rows
    staging.refresh_from_db()
    assert staging.branch_tag == "fix--mlaut.v2"
