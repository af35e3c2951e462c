"""Hostile input, generated: every field of the create form, the name preview, the fleet and
history filters, the leftovers form, the ``ds`` command's arguments and the name derivation.

For any input: never a 500 (the test client raises the view's exception), never an invalid AWS
name, and nothing the user typed ever becomes markup: the text is mixed with probes
(``<x-probe>``, attribute breakers, ``<script>``, ``on*=``) and every page that comes back is
parsed to check that none of them became an element or an attribute.

AWS is moto's ``mock_aws`` with the seeded host environment (``host_env``); only
``ecr.find_image`` is replaced, by "every tag has an image", so a hostile branch gets past the
image check and onto the staging and fleet pages. Each generated example runs in a transaction
that is rolled back, so examples do not see each other's stagings.
"""

import io
import re
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from html.parser import HTMLParser
from urllib.parse import quote

import pytest
from django.db import connections, transaction
from django.urls import reverse
from django.utils.html import escape
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from provisioning import operations
from provisioning.aws import ecr
from provisioning.errors import UserError
from provisioning.management.commands.ds import Command as DsCommand
from provisioning.models import Orphan, Staging, StagingStatus
from provisioning.names import (
    InvalidName,
    ResourceNames,
    image_tag_for_branch,
    name_for_branch,
    validate_name,
)
from tests.conftest import DOMAIN
from tests.factories import make_staging
from tests.pages import client_for

pytestmark = pytest.mark.django_db

FEW = settings(max_examples=60, deadline=None,
               suppress_health_check=[HealthCheck.function_scoped_fixture,
                                      HealthCheck.too_slow])
MANY = settings(max_examples=300, deadline=None)

PROBES = [
    "<x-probe>", '"><x-probe x-probe="1">', "'><x-probe x-probe='1'>", "<script>x()</script>",
    '" onmouseover="x()', "' onfocus='x()", "</textarea><x-probe>", "&lt;x-probe&gt;",
    "{{ request }}", "{% csrf_token %}", "javascript:x()", "\\", "%s%n", "\u202e", "é",
    "Ⅻ", "ﬁ", "\U0001f600", "../", "..", "@{", "//", ".lock", "-", "/", ".", "\t", "\x00",
]
hostile_text = st.lists(st.one_of(st.text(max_size=12), st.sampled_from(PROBES)),
                        max_size=6).map("".join)
# Branch-like text that git would often accept, so that creates get through to the pages.
branch_text = st.lists(
    st.one_of(st.sampled_from(["feature/", "fix-", "a", "Z9", "_", ".", "-", "/", "ü"]),
              st.sampled_from([p for p in PROBES if " " not in p and "\t" not in p]),
              st.text(max_size=6)),
    min_size=1, max_size=6,
).map("".join)

# AWS's own naming rules for what a staging name becomes (from the AWS API references).
AWS_NAME_RULES = {
    "target group": (lambda n: n.target_group,
                     re.compile(r"^(?!-)(?!internal-)[A-Za-z0-9-]{1,32}(?<!-)$")),
    "RDS instance": (lambda n: n.db_instance,
                     re.compile(r"^[A-Za-z](?!.*--)[A-Za-z0-9-]{0,62}(?<!-)$")),
    "web service": (lambda n: n.web_service, re.compile(r"^[A-Za-z0-9_-]{1,255}$")),
    "worker service": (lambda n: n.worker_service, re.compile(r"^[A-Za-z0-9_-]{1,255}$")),
    "web family": (lambda n: n.web_family, re.compile(r"^[A-Za-z0-9_-]{1,255}$")),
    "worker family": (lambda n: n.worker_family, re.compile(r"^[A-Za-z0-9_-]{1,255}$")),
    "host label": (lambda n: n.staging, re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")),
    "secret": (lambda n: n.login_secret, re.compile(r"^[A-Za-z0-9/_+=.@-]{1,512}$")),
}
DOCKER_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


def assert_valid_aws_names(name: str) -> None:
    assert validate_name(name) == name
    names = ResourceNames(name, DOMAIN)
    for what, (derive, rule) in AWS_NAME_RULES.items():
        assert rule.match(derive(names)), (what, derive(names))
    assert len(names.host) <= 253


class Markup(HTMLParser):
    """Collects what in a page could run or was injected."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []

    def handle_starttag(self, tag, attrs):
        names = {name for name, _ in attrs}
        if tag == "x-probe" or (tag == "script" and "src" not in names):
            self.found.append(f"<{tag}>")
        self.found += [f"{tag}[{name}]" for name in names
                       if name == "x-probe" or name.startswith("on")]


def assert_no_injection(response) -> None:
    assert response.status_code < 500
    parser = Markup()
    parser.feed(response.content.decode())
    parser.close()
    assert parser.found == []


def test_the_probe_detector_sees_injected_markup():
    class Page:
        def __init__(self, html):
            self.status_code, self.content = 200, html.encode()

    for raw in PROBES[:6]:
        quote = "'" if raw.startswith("'") else '"'
        with pytest.raises(AssertionError):
            assert_no_injection(Page(f"<p title={quote}{raw}{quote}>{raw}</p>"))
        assert_no_injection(Page(f"<p title={quote}{escape(raw)}{quote}>{escape(raw)}</p>"))


@contextmanager
def rolled_back():
    with transaction.atomic():
        yield
        transaction.set_rollback(True)


@pytest.fixture
def every_tag_has_an_image(host_env, monkeypatch, enqueued):
    found = ecr.find_image(registry_id=host_env.registry.split(".", 1)[0], repository="app",
                           tag="main")
    monkeypatch.setattr(ecr, "find_image", lambda *, registry_id, repository, tag: found)


# --- names --------------------------------------------------------------------------------------

@MANY
@given(branch=hostile_text | branch_text, name=st.none() | hostile_text)
@example(branch="<script>x()</script>", name=None)
@example(branch="9-", name=None)
@example(branch="ÅÄÖ", name=None)
@example(branch="-", name="a" * 28)
def test_a_derived_or_given_name_is_always_a_valid_aws_name(branch, name):
    try:
        derived = operations.derive_name(branch, name)
    except UserError as exc:
        assert exc.field in {"branch", "name"} and exc.message
        return
    assert_valid_aws_names(derived)
    if not name:
        assert DOCKER_TAG.match(image_tag_for_branch(branch))
        assert derived == name_for_branch(branch)


@MANY
@given(name=hostile_text)
def test_validate_name_lets_through_only_valid_aws_names(name):
    try:
        validate_name(name)
    except InvalidName:
        return
    assert_valid_aws_names(name)


# --- the create form ----------------------------------------------------------------------------

# Weighted towards what passes, so that a good share of examples reach the staging's pages.
@FEW
@given(branch=st.one_of(branch_text, branch_text, hostile_text),
       name=st.one_of(st.just(""), st.just(""), st.just(""), hostile_text),
       source=st.one_of(*[st.just("host-db")] * 4, st.just("qa-db"), hostile_text),
       db_mode=st.one_of(*[st.sampled_from(["dedicated", "shared"])] * 4, hostile_text))
@example(branch="feature/<script>x()</script>", name="", source="host-db", db_mode="shared")
@example(branch='x"><x-probe>', name="", source="qa-db", db_mode="dedicated")
def test_the_create_form_takes_anything(every_tag_has_an_image, alice, branch, name, source,
                                        db_mode):
    client = client_for(alice)
    form = {"branch": branch, "name": name, "source": source, "db_mode": db_mode}
    with rolled_back():
        response = client.post(reverse("create"), form)
        assert_no_injection(response)
        if response.status_code == 200:
            assert not Staging.objects.exists()
            event("refused with a sentence")
            return
        event("created")
        assert response.status_code == 302
        staging = Staging.objects.get()
        # The form trims surrounding whitespace, as pasted branch names often carry some.
        assert staging.branch == branch.strip()
        assert_valid_aws_names(staging.name)
        assert DOCKER_TAG.match(staging.image_tag)
        page = client.get(response["Location"])
        assert_no_injection(page)
        assert f'<code class="branch">{escape(branch.strip())}</code>' in page.content.decode()
        assert_no_injection(client.get("/"))
        assert_no_injection(client.get(reverse("fleet_partial"), HTTP_HX_REQUEST="true"))


def git_accepts(branch: str) -> bool:
    try:
        operations.validate_branch(branch)
    except UserError:
        return False
    return True


# Branch names git accepts (no space, no "..", "~^:?*[\\", ...) can still carry markup.
GIT_PROBES = ["<x-probe>", '"><x-probe/x-probe="1">', "'><x-probe/x-probe='1'>",
              "<script>x()</script>", '"/onmouseover="x()', "</code><x-probe>", "&amp;", "&lt;"]
git_component = st.lists(
    st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zs", "Zl", "Zp"),
                          blacklist_characters="~^:?*[\\ ./@"), min_size=1, max_size=8)
    | st.sampled_from(GIT_PROBES),
    min_size=1, max_size=3,
).map("".join)
git_branch = st.lists(git_component, min_size=1, max_size=3).map("/".join).filter(git_accepts)


@FEW
@given(branch=git_branch,
       db_mode=st.sampled_from(["dedicated", "shared"]))
@example(branch="<script>x()</script>", db_mode="shared")
@example(branch="a'><x-probe/x-probe='1'>\"", db_mode="dedicated")
def test_any_branch_git_accepts_makes_a_staging_shown_escaped(every_tag_has_an_image, alice,
                                                              branch, db_mode):
    client = client_for(alice)
    with rolled_back():
        response = client.post(reverse("create"), {"branch": branch, "name": "",
                                                   "source": "host-db", "db_mode": db_mode})
        assert response.status_code == 302, response.content.decode()
        staging = Staging.objects.get()
        assert staging.branch == branch
        assert_valid_aws_names(staging.name)
        assert DOCKER_TAG.match(staging.image_tag)
        page = client.get(response["Location"])
        assert_no_injection(page)
        assert f'<code class="branch">{escape(branch)}</code>' in page.content.decode()
        assert_no_injection(client.get("/"))
        assert_no_injection(client.get(reverse("fleet_partial"), HTTP_HX_REQUEST="true"))


@FEW
@given(branch=hostile_text, name=hostile_text, extra=hostile_text)
@example(branch="", name="", extra="")
@example(branch="<x-probe>", name='"><x-probe x-probe="1">', extra="")
def test_the_name_preview_takes_anything(every_tag_has_an_image, alice, branch, name, extra):
    response = client_for(alice).get(reverse("name_preview"),
                                    {"branch": branch, "name": name, extra: extra},
                                    HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert_no_injection(response)
    shown = re.search(r'<strong class="derived-name">([^<]*)</strong>', response.content.decode())
    if shown:
        assert_valid_aws_names(shown.group(1))


# --- filters, paths and the leftovers form --------------------------------------------------

@FEW
@given(params=st.dictionaries(st.sampled_from(["owner", "status", "page", "next"])
                              | hostile_text, hostile_text, max_size=4),
       htmx=st.booleans())
@example(params={"owner": "<x-probe>", "status": '"><x-probe x-probe="1">'}, htmx=False)
@example(params={"page": "-1"}, htmx=False)
@example(params={"page": "9" * 30}, htmx=False)
def test_fleet_and_history_filters_take_anything(alice, params, htmx):
    client = client_for(alice)
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    for url in ("/", reverse("fleet_partial"), reverse("history"), reverse("leftovers")):
        response = client.get(url, params, **headers)
        assert response.status_code in {200, 286, 302}, url
        assert_no_injection(response)


@FEW
@given(path=hostile_text)
def test_any_path_is_a_page_or_a_404(alice, path):
    # Sent as a browser would: percent-encoded, and never "//" (which the test client, unlike
    # a server, would read as a host name).
    response = client_for(alice).get("/" + quote(path.lstrip("/"), safe="/"))
    assert response.status_code in {200, 301, 302, 404, 405}
    assert_no_injection(response)


@FEW
@given(chosen=st.lists(hostile_text | st.integers().map(str), max_size=4))
def test_the_leftovers_form_takes_anything(admin, monkeypatch, chosen):
    queued = []
    monkeypatch.setattr("provisioning.tasks.async_task", lambda *args, **kw: queued.append(args))
    with rolled_back():
        item = Orphan.objects.create(arn="arn:aws:ecs:us-east-1:1:service/c/ds-x-web",
                                     kind="ecs:service")
        response = client_for(admin).post(reverse("delete_leftovers"), {"orphan": chosen},
                                         follow=True)
        assert response.status_code == 200
        assert_no_injection(response)
        if queued:
            assert queued == [("provisioning.tasks.delete_orphans_task", [item.pk], admin.pk)]
            assert set(chosen) == {str(item.pk)}


# --- the ds command -----------------------------------------------------------------------------

WORDS = ["create", "list", "show", "destroy", "redeploy", "sweep", "--name", "--source",
         "--shared-db", "--json", "--all", "--tag", "--delete", "-h", "main", "shop"]
argument = hostile_text.filter(lambda text: "\x00" not in text)  # no argv holds a NUL
create_option = st.one_of(
    st.just(["--json"]), st.just(["--shared-db"]),
    st.tuples(st.just("--name"), argument).map(list),
    st.tuples(st.just("--source"), st.sampled_from(["host-db", "qa-db"]) | argument).map(list),
)
ds_arguments = st.one_of(
    st.builds(lambda branch, options: ["create", branch, *sum(options, [])],
              branch_text.filter(lambda text: "\x00" not in text),
              st.lists(create_option, max_size=3)),
    st.builds(lambda action, name, options: [action, name, *options],
              st.sampled_from(["show", "destroy", "redeploy"]), st.just("shop") | argument,
              st.lists(st.sampled_from(["--json", "--tag", "main"]) | argument, max_size=2)),
    st.lists(st.sampled_from(WORDS) | argument, max_size=6),
)


def run_ds(args: list[str]) -> tuple[int, str]:
    """The command as from a shell: its exit code and what it wrote to stderr."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            DsCommand().run_from_argv(["manage.py", "ds", *args])
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
        else:
            code = 0
    return code, err.getvalue()


@FEW
@given(args=ds_arguments)
@example(args=["create", "feature/<x-probe>", "--json"])
@example(args=["create", "--name", "Bad Name", "main"])
@example(args=["show", "shop", "--json"])
@example(args=["destroy", "shop"])
@example(args=["sweep", "--json"])
def test_the_ds_command_takes_anything(every_tag_has_an_image, alice, monkeypatch, args):
    # run_from_argv closes the connections when done: not the test's own, in its transaction.
    monkeypatch.setattr(connections, "close_all", lambda: None)
    # --wait (or an abbreviation of it) would wait for a worker these tests do not run.
    monkeypatch.setattr(DsCommand, "_wait", lambda self, operation: operation)
    with rolled_back():
        make_staging(alice, name="shop", status=StagingStatus.READY)
        code, stderr = run_ds(args)
        event(f"exit {code}" + (" after a create" if Staging.objects.count() > 1 else ""))
        for name in Staging.objects.values_list("name", flat=True):
            assert_valid_aws_names(name)
    assert code in {0, 1, 2}, (code, stderr)
    assert "Traceback" not in stderr
    if code:
        assert stderr.strip(), "a failure says why"


# --- invisible characters -----------------------------------------------------------------------

INVISIBLE = {
    "\u202e": "U+202E RIGHT-TO-LEFT OVERRIDE",
    "\u200b": "U+200B ZERO WIDTH SPACE",
    "\u2066": "U+2066 LEFT-TO-RIGHT ISOLATE",
    "\ufeff": "U+FEFF ZERO WIDTH NO-BREAK SPACE",
    "\u2028": "U+2028 LINE SEPARATOR",
    "\u2029": "U+2029 PARAGRAPH SEPARATOR",
    "\x85": "U+0085 control character",
    "\x1b": "U+001B control character",
    "\x00": "U+0000 control character",
}


@pytest.mark.parametrize(("char", "described"), INVISIBLE.items())
def test_a_branch_with_an_invisible_character_is_refused_in_one_line(char, described):
    with pytest.raises(UserError) as raised:
        operations.validate_branch(f"feature/log{char}in")
    assert raised.value.field == "branch"
    assert raised.value.message == (
        f"The branch name contains an invisible or control character ({described}); "
        "remove it.")
    assert raised.value.message.isprintable()


@pytest.mark.parametrize(("char", "described"), INVISIBLE.items())
def test_a_name_with_an_invisible_character_is_refused_in_one_line(char, described):
    with pytest.raises(UserError) as raised:
        operations.derive_name("feature/login", f"login{char}page")
    assert raised.value.field == "name"
    assert described in raised.value.message
    assert raised.value.message.isprintable()


def test_visible_unicode_in_a_branch_is_still_fine():
    assert operations.validate_branch("feature/über-ß-Ⅻ") == "feature/über-ß-Ⅻ"


def test_the_create_form_says_so_next_to_the_branch(every_tag_has_an_image, alice):
    response = client_for(alice).post(reverse("create"), {
        "branch": "feature/\u202etxt.exe", "name": "", "source": "host-db",
        "db_mode": "shared"})
    assert response.status_code == 200
    assert not Staging.objects.exists()
    assert ("The branch name contains an invisible or control character "
            "(U+202E RIGHT-TO-LEFT OVERRIDE); remove it.") in response.content.decode()
