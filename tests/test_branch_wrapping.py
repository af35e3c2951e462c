"""Branch names wrap between their words: the fleet table puts a <wbr> after each `/`, `-`,
`_` and `.`, so a narrow column shows `feature/` over `search`, never `feature/searc` over `h`.
How it looks in a real browser: tests/browser/test_create_form.py."""

import pytest
from django.template import Context, Template
from django.test import Client
from django.urls import reverse

from provisioning.models import StagingStatus
from tests.factories import make_staging


def render(text: str) -> str:
    template = Template("{% load dashboard_extras %}{{ text|break_at_separators }}")
    return template.render(Context({"text": text}))


def test_a_break_after_each_separator_only():
    assert render("feature/search-results_v2.1") == (
        "feature/<wbr>search-<wbr>results_<wbr>v2.<wbr>1")
    assert render("main") == "main"
    assert render("ends-") == "ends-"  # nothing to break before


def test_the_name_is_escaped_around_the_breaks():
    assert render("x/<script>&") == "x/<wbr>&lt;script&gt;&amp;"


@pytest.mark.django_db
def test_the_fleet_table_breaks_branches_between_words(alice):
    make_staging(alice, name="search", branch="feature/search-page", status=StagingStatus.READY)
    client = Client()
    client.force_login(alice)
    page = client.get(reverse("fleet_partial"), HTTP_HX_REQUEST="true").content.decode()
    assert ('<code class="branch" title="feature/search-page">feature/<wbr>search-<wbr>page'
            "</code>") in page
