"""The history page: destroyed stagings only (its paging: test_flat_pages.py)."""

import pytest
from django.urls import reverse

from provisioning.models import StagingStatus
from tests.factories import make_listed_staging
from tests.pages import client_for

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("enqueued", "aws_region")]


def test_history_lists_destroyed_stagings(alice):
    make_listed_staging(alice, "shop")
    make_listed_staging(alice, "gone", status=StagingStatus.DESTROYED)
    page = client_for(alice).get(reverse("history")).content.decode()
    assert ">gone<" in page and ">shop<" not in page
