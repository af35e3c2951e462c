"""The create form and the fleet table in a real browser, on a phone and a tablet.

* Shared database: "Data from" is disabled as soon as Shared is chosen (it shows the host, as a
  shared database is the host's), back on with Dedicated; the create goes through without it.
* A 300-character branch never widens the page past a 360 px phone: the errors, the preview
  and the offer of a branch's existing staging wrap (document.documentElement.scrollWidth).
* Branch names in the fleet table break after `/`, `-`, `_` or `.`, never inside a word.

The dashboard runs in this process (pytest-django's live server) against moto's in-process AWS
seeded with the host environment. Needs Debian's ``chromium``; skipped without it, except
under ``CI=true``.
"""

import pytest

from provisioning.models import Staging, StagingStatus
from tests.browser.chromium import shoot, signed_in_pages
from tests.conftest import HOST_DB, QA_DB
from tests.factories import make_staging

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PHONE = {"width": 360, "height": 740}
TABLET = {"width": 800, "height": 1000}
LONG_BRANCH = "feature/" + "a-very-long-branch-name-without-end" * 9  # 323 characters
NO_IMAGE_BRANCH = "feature/" + "x" * 240  # valid, no image: the error quotes its tag


@pytest.fixture
def browse(live_server, host_env, alice, monkeypatch, enqueued):
    """``browse(viewport, javascript=True)``: a page logged in as alice."""
    with signed_in_pages(live_server.url, alice, monkeypatch) as open_page:
        yield lambda viewport, *, javascript=True: open_page(
            15_000, viewport=viewport, java_script_enabled=javascript)


def page_width(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


def test_the_source_is_off_while_shared_is_chosen(browse, live_server):
    from playwright.sync_api import expect

    page = browse(PHONE)
    page.goto(live_server.url + "/stagings/new/")
    source = page.locator("select[name=source]")
    expect(source).to_be_enabled()
    source.select_option(QA_DB)
    page.check("input[name=db_mode][value=shared]")
    expect(source).to_be_disabled()
    expect(source).to_have_value(HOST_DB)  # what a shared database uses
    shoot(page, "create-shared-phone")
    page.check("input[name=db_mode][value=dedicated]")
    expect(source).to_be_enabled()
    expect(source).to_have_value(QA_DB)  # the choice comes back

    page.check("input[name=db_mode][value=shared]")
    page.fill("input[name=branch]", "main")
    page.click("button:has-text('Create staging')")
    page.wait_for_url(f"{live_server.url}/stagings/*/")
    staging = Staging.objects.get()
    assert (staging.db_mode, staging.source) == ("shared", HOST_DB)


def test_without_javascript_the_source_stays_and_the_form_explains(browse, live_server):
    from playwright.sync_api import expect

    page = browse(PHONE, javascript=False)
    page.goto(live_server.url + "/stagings/new/")
    page.check("input[name=db_mode][value=shared]")
    expect(page.locator("select[name=source]")).to_be_enabled()
    expect(page.locator(".field:has(select[name=source]) .help")).to_contain_text(
        "Shared uses the host's data")


def test_a_300_character_branch_does_not_widen_a_phone(browse, live_server, alice):
    from playwright.sync_api import expect

    assert len(LONG_BRANCH) >= 300
    page = browse(PHONE)
    create = live_server.url + "/stagings/new/"
    widths = {}

    page.goto(create)
    widths["empty form"] = page_width(page)
    # Typed (the preview answers), then posted: over 255 characters is refused by both.
    page.locator("input[name=branch]").evaluate(
        "(input, value) => { input.removeAttribute('maxlength'); input.value = value; "
        "input.dispatchEvent(new Event('input', {bubbles: true})); }", LONG_BRANCH)
    expect(page.locator("#name-preview")).to_contain_text("at most 255 characters")
    widths["preview of a 300-character branch"] = page_width(page)
    page.click("button:has-text('Create staging')")
    expect(page.locator("#branch-error")).to_be_visible()
    widths["errors of a 300-character branch"] = page_width(page)

    page.goto(create)
    page.fill("input[name=branch]", NO_IMAGE_BRANCH)
    page.click("button:has-text('Create staging')")
    expect(page.locator("#branch-error")).to_contain_text("No image tagged")
    widths["no image for a 248-character branch"] = page_width(page)
    shoot(page, "create-long-branch-phone")

    make_staging(alice, name="long-one", branch=NO_IMAGE_BRANCH, status=StagingStatus.READY)
    page.goto(create)
    page.fill("input[name=branch]", NO_IMAGE_BRANCH)
    expect(page.locator("#name-preview")).to_contain_text("already has a staging")
    widths["its existing staging offered"] = page_width(page)
    shoot(page, "create-long-branch-has-staging-phone")

    page.goto(live_server.url + "/")
    expect(page.locator("tr[data-staging=long-one]")).to_be_visible()
    widths["fleet"] = page_width(page)
    assert widths == dict.fromkeys(widths, PHONE["width"])


def line_breaks(page, selector: str) -> dict[str, list[str]]:
    """Each matched element's text as the browser laid it out, one string per line, by the
    element's title."""
    return dict(page.locator(selector).evaluate_all("""elements => elements.map(element => {
        const lines = [];
        let top = null;
        const walker = document.createTreeWalker(element, NodeFilter.SHOW_TEXT);
        for (let node = walker.nextNode(); node; node = walker.nextNode()) {
            for (let i = 0; i < node.data.length; i++) {
                const range = document.createRange();
                range.setStart(node, i);
                range.setEnd(node, i + 1);
                const rect = range.getClientRects()[0];
                if (!rect) { continue; }
                if (top === null || rect.top > top + 2) { lines.push(""); top = rect.top; }
                lines[lines.length - 1] += node.data[i];
            }
        }
        return [element.title, lines];
    })"""))


def test_fleet_branch_names_break_between_words(browse, live_server, alice, bob):
    from playwright.sync_api import expect

    branches = ["feature/search", "feature/search-results-page", "bugfix/checkout_total.v2",
                "release/2024.10-hotfix", "chore/upgrade-dependencies-python-313"]
    for i, branch in enumerate(branches):
        make_staging(alice if i % 2 else bob, name=f"row-{i}", branch=branch,
                     status=StagingStatus.READY, db_mode="shared")
    page = browse(TABLET)
    page.goto(live_server.url + "/")
    expect(page.locator("code.branch")).to_have_count(len(branches))
    laid_out = line_breaks(page, "code.branch")
    assert sorted(laid_out) == sorted(branches)
    assert any(len(lines) > 1 for lines in laid_out.values()), laid_out  # the column is narrow
    for branch, lines in laid_out.items():
        assert "".join(lines) == branch
        assert all(line[-1] in "/-_." for line in lines[:-1]), (branch, lines)
    assert page_width(page) == TABLET["width"]
    shoot(page, "fleet-branches-tablet")


def test_the_existing_staging_is_offered_once_before_and_after_typing(browse, live_server,
                                                                      alice):
    from playwright.sync_api import expect

    existing = make_staging(alice, name="login-page", branch="feature/Login_Page",
                            status=StagingStatus.READY)
    page = browse(PHONE)
    page.goto(live_server.url + "/stagings/new/")
    page.fill("input[name=branch]", "feature/Login_Page")
    expect(page.locator("#name-preview")).to_contain_text("already has a staging")
    page.click("button:has-text('Create staging')")
    offered = page.locator("text=already has a staging")
    expect(page.locator("#name-error")).to_contain_text("already has a staging")
    expect(offered).to_have_count(1)
    expect(page.locator("#name-preview")).to_be_hidden()  # empty: the error says it
    shoot(page, "create-branch-has-staging-phone")

    # A name of its own: a second staging on purpose, and the refusal above is out of date.
    page.fill("input[name=name]", "second-login")
    expect(page.locator("#name-preview .derived-name")).to_have_text("second-login")
    expect(page.locator("#name-error")).to_have_count(0)
    page.fill("input[name=name]", "")
    expect(page.locator("#name-preview")).to_contain_text("already has a staging")
    expect(offered).to_have_count(1)

    page.click("#name-preview >> text=Redeploy it")
    page.wait_for_url(f"{live_server.url}/stagings/{existing.pk}/")
    expect(page.locator(".message")).to_contain_text("Redeploying login-page")
