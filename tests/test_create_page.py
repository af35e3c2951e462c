"""The create form: branches, sources and modes from the seeded host, errors beside
their field, AWS failures as sentences, the name preview."""

import re

import pytest
from django.urls import reverse

from provisioning import engine, operations
from provisioning.errors import ExternalCallFailed
from provisioning.models import Staging, StagingStatus
from tests.conftest import QA_DB, SEEDED_TAGS
from tests.factories import make_listed_staging
from tests.pages import HTMX, client_for

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("enqueued", "aws_region")]


def test_create_form_offers_branches_sources_and_modes(alice, host_env):
    page = client_for(alice).get(reverse("create")).content.decode()
    assert '<datalist id="branch-suggestions">' in page
    for tag in SEEDED_TAGS:
        assert f'<option value="{tag}">' in page
    assert re.search(r"host-db \(host\): snapshot [^<]*old", page)
    assert f"{QA_DB}: snapshot" in page
    assert 'value="dedicated"' in page and 'value="shared"' in page
    assert 'hx-get="/stagings/new/name/"' in page
    assert "becomes <code>feature-new-login-" in page  # the no-JavaScript hint


def test_create_goes_straight_to_the_staging_page(alice, host_env, enqueued,
                                                  django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(alice).post(reverse("create"), {
            "branch": "main", "source": QA_DB, "db_mode": "dedicated", "name": "",
        })
    staging = Staging.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("staging", args=[staging.pk])
    assert (staging.branch, staging.source, staging.owner) == ("main", QA_DB, alice)
    assert staging.snapshot_id == host_env.qa_snapshot
    assert enqueued == [staging.operations.get().pk]


@pytest.mark.parametrize(("data", "field", "words"), [
    ({"branch": "feature/nothing-pushed"}, "branch", "No image tagged"),
    ({"branch": "bad..branch"}, "branch", "is not a valid git branch name"),
    ({"branch": "main", "name": "Not A Name"}, "name", "lower-case letters"),
    ({"branch": "main", "name": "taken"}, "name", "is taken by a live staging"),
    ({"branch": "main", "source": QA_DB, "db_mode": "shared"}, "source", "shared database"),
])
def test_create_errors_appear_next_to_the_field(alice, host_env, data, field, words):
    make_listed_staging(alice, "taken")
    form = {"source": "host-db", "db_mode": "dedicated", "name": ""} | data
    response = client_for(alice).post(reverse("create"), form)
    assert response.status_code == 200
    page = response.content.decode()
    error = re.search(rf'<p class="field-error" id="{field}-error">(.*?)</p>', page, re.S)
    assert error, page
    assert words in error.group(1).replace("&#x27;", "'")
    assert Staging.objects.filter(status=StagingStatus.PENDING).count() == 0


def test_source_without_snapshot_is_a_source_error(alice, host_env):
    import boto3

    rds = boto3.client("rds")
    for snapshot in rds.describe_db_snapshots(DBInstanceIdentifier=QA_DB)["DBSnapshots"]:
        rds.delete_db_snapshot(DBSnapshotIdentifier=snapshot["DBSnapshotIdentifier"])
    client = client_for(alice)
    assert f"{QA_DB}: no snapshot yet" in client.get(reverse("create")).content.decode()
    page = client.post(reverse("create"), {"branch": "main", "source": QA_DB,
                                           "db_mode": "dedicated"}).content.decode()
    assert re.search(r'id="source-error">[^<]*has no available snapshot', page)


def test_required_branch(alice, monkeypatch):
    _no_aws_on_the_form(monkeypatch)
    page = client_for(alice).post(reverse("create"), {"branch": "", "source": "host-db",
                                                      "db_mode": "dedicated"}).content.decode()
    assert re.search(r'id="branch-error">[^<]*required', page)


def _no_aws_on_the_form(monkeypatch):
    monkeypatch.setattr(engine, "list_sources", lambda: [
        operations.SourceInfo("host-db", True, None)])
    monkeypatch.setattr("dashboard.forms.branch_suggestions", lambda: (["main"], None))


def test_aws_failure_while_validating_is_a_message_not_a_500(alice, monkeypatch):
    _no_aws_on_the_form(monkeypatch)

    def fail(**kwargs):
        raise ExternalCallFailed("ecs:DescribeServices", "AccessDeniedException",
                                 "User is not authorized to perform ecs:DescribeServices")

    monkeypatch.setattr(engine, "request_create", fail)
    response = client_for(alice).post(reverse("create"), {
        "branch": "main", "source": "host-db", "db_mode": "dedicated"})
    assert response.status_code == 200
    page = response.content.decode()
    assert 'class="form-error"' in page
    assert "AccessDeniedException" in page and "Nothing was created" in page


def test_form_still_works_when_aws_cannot_be_read(alice, monkeypatch):
    def fail(**kwargs):
        raise ExternalCallFailed("rds:DescribeDBSnapshots", "Throttling", "slow down")

    monkeypatch.setattr(engine, "list_sources", lambda: fail())
    monkeypatch.setattr("provisioning.engine.read_host_environment", lambda config: fail())
    page = client_for(alice).get(reverse("create"))
    assert page.status_code == 200
    text = page.content.decode()
    assert "Could not read the snapshots" in text and "Could not list the branches" in text
    assert '<option value="host-db"' in text


def test_name_preview_partial(alice, django_assert_max_num_queries):
    client = client_for(alice)
    body = client.get(reverse("name_preview"), {"branch": "feature/Login_Page"},
                      **HTMX).content.decode()
    assert body.startswith('<p id="name-preview"')
    assert re.search(r'<strong class="derived-name">feature-login-page-[0-9a-f]{6}</strong>', body)
    body = client.get(reverse("name_preview"), {"branch": "x", "name": "My Name"}).content
    assert b"lower-case letters" in body
    make_listed_staging(alice, "shop")
    body = client.get(reverse("name_preview"), {"branch": "x", "name": "shop"}).content
    assert b"already has this name" in body
