"""A shared database is the host's own: the create form's "Data from" does not apply to it.

With JavaScript the select is disabled when Shared is chosen (tests/browser/test_create_form.py),
and a disabled select is not posted: the server takes that as the host. Without JavaScript the
select stays on; the form says that Shared uses the host's data, and a shared create from
another source is refused with a sentence, as before.
"""

import re

import pytest
from django.urls import reverse

from provisioning.models import Staging
from tests.conftest import HOST_DB, QA_DB
from tests.pages import client_for

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("enqueued")]


def test_a_shared_create_without_a_source_uses_the_hosts(host_env, alice):
    response = client_for(alice).post(reverse("create"), {
        "branch": "main", "db_mode": "shared", "name": ""})  # the disabled select sends nothing
    assert response.status_code == 302, response.content.decode()
    staging = Staging.objects.get()
    assert (staging.db_mode, staging.source, staging.snapshot_id) == ("shared", HOST_DB, "")


def test_a_dedicated_create_still_needs_a_source(host_env, alice):
    page = client_for(alice).post(reverse("create"), {
        "branch": "main", "db_mode": "dedicated", "name": ""}).content.decode()
    assert re.search(r'id="source-error">Choose the database whose snapshot is restored', page)
    assert not Staging.objects.exists()


def test_without_javascript_the_form_explains_and_refuses_clearly(host_env, alice):
    page = client_for(alice).get(reverse("create")).content.decode()
    assert "Shared uses the host&#x27;s data" in page
    select = re.search(r"<select [^>]*>", page).group(0)
    assert 'name="source"' in select and f'data-shared-uses="{HOST_DB}"' in select

    page = client_for(alice).post(reverse("create"), {
        "branch": "main", "db_mode": "shared", "source": QA_DB, "name": ""}).content.decode()
    assert re.search(r'id="source-error">A shared database is the host', page.replace(
        "&#x27;", "'"))
    assert not Staging.objects.exists()
