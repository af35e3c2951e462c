"""A redeploy says what it changed: "nothing changed: the image is the same" when the branch's
image has the digest the staging already runs (on the staging page, in ``ds redeploy`` and in
the report step's log), what it deployed otherwise."""

import json

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from provisioning.models import OperationKind, Staging, StepLog
from provisioning.names import name_for_branch
from tests.command_line import ds
from tests.conftest import BRANCH, push_image

pytestmark = pytest.mark.django_db(transaction=True)
TAG = "feature-Login_Page"
NAME = name_for_branch(BRANCH)
NOTHING_CHANGED = "nothing changed: the image is the same"


def ds_succeeds(*args: str) -> str:
    """``ds`` with exit code 0: what it printed."""
    code, out, err = ds(*args)
    assert code == 0, err
    return out


def redeploy_report(staging: Staging):
    return staging.operations.filter(kind=OperationKind.REDEPLOY).first().steps.get(
        key="report")


def staging_page(staging: Staging) -> str:
    client = Client()
    client.force_login(get_user_model().objects.get(username="alice"))
    return client.get(reverse("staging", args=[staging.pk])).content.decode()


def test_a_redeploy_of_the_same_image_says_nothing_changed(host_env, cli_user, run_at_once):
    ds_succeeds("create", BRANCH, "--wait")
    out = ds_succeeds("redeploy", NAME, "--wait")
    assert f"outcome:        {NOTHING_CHANGED} (sha256:" in out

    staging = Staging.objects.get(name=NAME)
    report = redeploy_report(staging)
    assert report.outputs["outcome"].startswith(NOTHING_CHANGED)
    assert any(line.startswith(NOTHING_CHANGED) for line in StepLog.objects.filter(
        step=report).values_list("message", flat=True))
    assert "Redeploy succeeded" in staging_page(staging)
    assert NOTHING_CHANGED in staging_page(staging)

    out = ds_succeeds("show", NAME, "--json")
    assert json.loads(out)["outcome"].startswith(NOTHING_CHANGED)


def test_a_redeploy_of_a_new_image_says_what_it_deployed(host_env, cli_user, run_at_once):
    ds_succeeds("create", BRANCH, "--wait")
    digest = push_image(TAG, layer="a newer build")  # the same tag, pushed again
    out = ds_succeeds("redeploy", NAME, "--wait", "--json")
    data = json.loads(out)
    assert data["outcome"] == f"deployed {digest[:19]}"
    staging = Staging.objects.get(name=NAME)
    assert staging.image.endswith(digest)
    assert NOTHING_CHANGED not in staging_page(staging)
