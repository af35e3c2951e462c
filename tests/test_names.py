"""Names derived from branches: valid for every AWS resource, and never two branches in one."""

import re
import shutil
import subprocess

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from provisioning.errors import UserError
from provisioning.names import (
    MAX_NAME_LENGTH,
    InvalidName,
    ResourceNames,
    image_tag_for_branch,
    name_for_branch,
    validate_name,
)
from provisioning.operations import derive_name, validate_branch

DOMAIN = "dynamic.staging.example.com"

# The AWS and DNS rules, written down independently of the engine's own pattern.
DNS_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")
TARGET_GROUP = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$")
RDS_IDENTIFIER = re.compile(r"^[A-Za-z][A-Za-z0-9-]*$")
ECS_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
DOCKER_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


def assert_valid_for_aws(name: str) -> None:
    names = ResourceNames(name, DOMAIN)
    assert DNS_LABEL.match(name) and len(name) <= 63, name
    assert all(DNS_LABEL.match(label) and len(label) <= 63 for label in names.host.split("."))
    assert len(names.host) <= 253
    assert TARGET_GROUP.match(names.target_group) and len(names.target_group) <= 32
    db = names.db_instance
    assert RDS_IDENTIFIER.match(db) and "--" not in db and not db.endswith("-") and len(db) <= 63
    for ecs_name in (names.web_family, names.worker_family, names.web_service,
                     names.worker_service):
        assert ECS_NAME.match(ecs_name) and len(ecs_name) <= 255
    assert validate_name(name) == name


# Branch names the way people write them: path components of letters (any script), digits and
# the punctuation git allows, joined by slashes.
_component = st.text(
    alphabet=st.characters(
        codec="utf-8", exclude_categories=("Cc", "Cs", "Zs"),
        exclude_characters="~^:?*[\\/ ",
    ),
    min_size=1, max_size=40,
)
git_like_branches = st.lists(_component, min_size=1, max_size=5).map("/".join)


@pytest.mark.parametrize("branch", [
    "feature/Login_Page",
    "feature-login-page",
    "Feature/login.page",
    "FEATURE/LOGIN-PAGE",
    "fix/café-ñandú",
    "日本語/ブランチ",
    "123-hotfix",
    "release/1.2.3",
    "x" * 200,
    "feature/" + "a_b." * 50,
    "a",
    "-",
    "___",
    "ß",
])
def test_derived_name_is_valid_for_every_resource(branch):
    name = name_for_branch(branch)
    assert len(name) <= MAX_NAME_LENGTH
    assert_valid_for_aws(name)


def test_similar_branches_get_different_names():
    branches = [
        "feature/Login_Page", "feature-login-page", "Feature/login.page", "feature/login_page",
        "feature/login-page", "feature//login-page", "feature/login-page/", "feature/lógin-page",
    ]
    names = [name_for_branch(b) for b in branches]
    assert len(set(names)) == len(branches)
    # The readable part stays recognisable.
    assert all(n.startswith("feature-login-page-") for n in names[:5])


def test_long_branches_differing_only_at_the_end_get_different_names():
    stem = "feature/" + "very-long-description-" * 9
    first, second = name_for_branch(stem + "one"), name_for_branch(stem + "two")
    assert first != second
    assert len(first) <= MAX_NAME_LENGTH and len(second) <= MAX_NAME_LENGTH


def test_name_is_deterministic():
    assert name_for_branch("feature/Login_Page") == name_for_branch("feature/Login_Page")


def test_branch_without_ascii_letters_first_still_starts_with_a_letter():
    assert name_for_branch("123-hotfix").startswith("b-123-hotfix-")
    assert re.match(r"^b-[0-9a-f]{6}$", name_for_branch("日本語"))
    assert name_for_branch("fix/café").startswith("fix-cafe-")


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=1, max_size=300))
@example("é" * 300)
@example("-" * 100)
@example("a-" * 100)
def test_any_text_gives_a_valid_name(branch):
    assert_valid_for_aws(name_for_branch(branch))


@settings(max_examples=300, deadline=None)
@given(git_like_branches)
def test_any_git_like_branch_gives_a_valid_name(branch):
    assert_valid_for_aws(name_for_branch(branch))


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=1, max_size=200), st.text(min_size=1, max_size=200))
@example("feature/Login_Page", "feature-login-page")
@example("feature/Login_Page", "Feature/login.page")
@example("a" * 200, "a" * 199 + "b")
def test_two_different_branches_never_share_a_name(first, second):
    assume(first != second)
    assert name_for_branch(first) != name_for_branch(second)


@settings(max_examples=50, deadline=None)
@given(st.lists(git_like_branches, min_size=2, max_size=30, unique=True))
def test_a_fleet_of_branches_has_unique_names(branches):
    assert len({name_for_branch(b) for b in branches}) == len(branches)


@pytest.mark.parametrize("name", ["a", "abc", "feature-login-2", "a1-b2-c3", "x" * MAX_NAME_LENGTH])
def test_validate_name_accepts(name):
    assert validate_name(name) == name


@pytest.mark.parametrize(("name", "reason"), [
    ("", "empty"),
    ("x" * (MAX_NAME_LENGTH + 1), "longer than"),
    ("Feature", "lower-case"),
    ("1abc", "starts with a letter"),
    ("-abc", "starts with a letter"),
    ("abc-", "does not end with a hyphen"),
    ("a--b", "single hyphens"),
    ("a_b", "lower-case letters"),
    ("a.b", "lower-case letters"),
    ("café", "lower-case letters"),
    ("a b", "lower-case letters"),
])
def test_validate_name_refuses_with_a_reason(name, reason):
    with pytest.raises(InvalidName, match=reason):
        validate_name(name)


def test_derive_name_uses_given_name_or_the_branch():
    assert derive_name("feature/x", "my-name") == "my-name"
    assert derive_name("feature/x") == name_for_branch("feature/x")
    with pytest.raises(UserError) as raised:
        derive_name("feature/x", "Bad_Name")
    assert raised.value.field == "name"


@pytest.mark.parametrize(("branch", "tag"), [
    ("main", "main"),
    ("feature/Login_Page", "feature-Login_Page"),
    ("release/1.2.3", "release-1.2.3"),
    ("fix/café", "fix-caf-"),
    (".hidden", "_hidden"),
    ("-dash", "_dash"),
    ("a" * 200, "a" * 128),
])
def test_image_tag_for_branch(branch, tag):
    assert image_tag_for_branch(branch) == tag


@settings(max_examples=300, deadline=None)
@given(git_like_branches)
def test_image_tag_is_a_valid_docker_tag(branch):
    assert DOCKER_TAG.match(image_tag_for_branch(branch))


VALID_BRANCHES = [
    "main", "feature/Login_Page", "Feature/login.page", "fix/café", "日本語", "a@b",
    "release/1.2.3", "x" * 200, "ab.lockx", "feature/x./y", "a/-b", "user/name+tag",
]
INVALID_BRANCHES = [
    "a..b", "feature/", "/feature", "-feature", "a b", "a\tb", "x~1", "x^", "x:y", "x?", "x*",
    "x[", "x\\y", "x.lock", "a.lock/b", "a@{b", "@", "a//b", "a.", ".a", "feature/.hidden",
    "HEAD", "x\x7f",
]


@pytest.mark.parametrize("branch", VALID_BRANCHES)
def test_validate_branch_accepts_what_git_accepts(branch):
    assert validate_branch(branch) == branch


@pytest.mark.parametrize("branch", [*INVALID_BRANCHES, "", "   ", "x" * 256])
def test_validate_branch_refuses_with_the_branch_field(branch):
    with pytest.raises(UserError) as raised:
        validate_branch(branch)
    assert raised.value.field == "branch"
    assert raised.value.message


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_branch_rules_agree_with_git():
    def git_accepts(branch: str) -> bool:
        result = subprocess.run(["git", "check-ref-format", "--branch", branch],
                                capture_output=True, check=False)
        return result.returncode == 0

    disagreements = [b for b in VALID_BRANCHES if not git_accepts(b)]
    # --branch reads "@" as a shorthand for the current branch, so it is left out here.
    disagreements += [b for b in INVALID_BRANCHES if b != "@" and git_accepts(b)]
    assert disagreements == []
