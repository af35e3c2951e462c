"""The create form and the choices it offers (which read AWS, and may fail).

The branch suggestions are branches, not image tags: the engine maps each tag the registry
lists back to the known branch that produces it (see provisioning.branches). Only the tags are
kept in the cache; which branches are known is read afresh, so a staging made a moment ago
already counts.

What the choices read from AWS (the sources' newest snapshots, the branches that have an image)
is kept in Django's cache for ``DS_CREATE_PAGE_CACHE_SECONDS``, one key per lookup: reloading
the page, or posting it, does not ask AWS again, so one user cannot turn page loads into a
stream of AWS calls. A failed lookup is not kept; the next load tries again. A create itself
never uses these: it checks the branch's image and the source afresh.
"""

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from django import forms
from django.core.cache import cache
from django.utils import timezone
from django.utils.timesince import timesince

from provisioning import engine
from provisioning.api_tokens import DEFAULT_DAYS as DEFAULT_TOKEN_DAYS
from provisioning.api_tokens import MAX_DAYS as MAX_TOKEN_DAYS
from provisioning.api_tokens import MAX_NAME_LENGTH as MAX_TOKEN_NAME_LENGTH
from provisioning.config import load_config
from provisioning.errors import BranchHasStaging, ExternalCallFailed, UserError
from provisioning.models import DbMode, TokenScope

# A datalist of thousands of tags helps nobody; the newest pushes are the likely branches.
MAX_BRANCH_SUGGESTIONS = 200
CACHE_PREFIX = "create-page"
T = TypeVar("T")


def _cached(lookup: str, scope: str, read: Callable[[], T]) -> T:
    """``read()``, kept for a while under a key naming the lookup and what it depends on."""
    key = f"{CACHE_PREFIX}:{lookup}:{hashlib.sha256(scope.encode()).hexdigest()[:16]}"
    value = cache.get(key)
    if value is None:
        value = read()
        cache.set(key, value, load_config().create_page_cache_seconds)
    return value


def aws_problem(exc: ExternalCallFailed) -> str:
    """An AWS failure in words a user can act on, with the detail an engineer needs."""
    return (f"AWS did not answer as expected ({exc.call}: {exc.code}: {exc.message}). "
            "Nothing was created; try again in a minute, or ask the platform team if it "
            "keeps happening.")


@dataclass(frozen=True)
class Choices:
    sources: list[tuple[str, str]]
    branches: list[engine.BranchSuggestion]
    problems: list[str]  # what could not be read, as sentences


def _source_label(info: engine.SourceInfo) -> str:
    owner = " (host)" if info.is_host else ""
    if info.snapshot_taken_at is None:
        return f"{info.instance_id}{owner}: no snapshot yet"
    age = timesince(info.snapshot_taken_at, timezone.now()).split(",")[0]
    return f"{info.instance_id}{owner}: snapshot {age} old"


def cached_sources() -> list[engine.SourceInfo]:
    """The allowed snapshot sources and their newest snapshots, read from AWS at most once per
    cache period (ExternalCallFailed when AWS cannot be read)."""
    return _cached("sources", ",".join(load_config().snapshot_sources), engine.list_sources)


def source_choices() -> tuple[list[tuple[str, str]], str | None]:
    """The allowed snapshot sources with the age of their newest snapshot; without the ages
    (and a sentence saying why) when AWS cannot be read."""
    names = load_config().snapshot_sources
    try:
        sources = cached_sources()
    except ExternalCallFailed as exc:
        return [(name, name) for name in names], (
            f"Could not read the snapshots' ages ({exc.call}: {exc.code}).")
    # The ages are worked out at each load, from the kept snapshot times.
    return [(i.instance_id, _source_label(i)) for i in sources], None


def branch_suggestions() -> tuple[list[engine.BranchSuggestion], str | None]:
    config = load_config()

    try:
        tags = _cached("branches", f"{config.cluster}/{config.web_service}",
                       lambda: engine.branch_tags(MAX_BRANCH_SUGGESTIONS))
    except ExternalCallFailed as exc:
        return [], f"Could not list the branches that have an image ({exc.call}: {exc.code})."
    except UserError as exc:
        return [], exc.message
    return engine.branch_suggestions(tags), None


def load_choices() -> Choices:
    sources, source_problem = source_choices()
    branches, branch_problem = branch_suggestions()
    return Choices(sources, branches, [p for p in (source_problem, branch_problem) if p])


class CreateStagingForm(forms.Form):
    branch = forms.CharField(
        max_length=255,
        help_text="The git branch to run. Suggestions are the branches that have an image.",
        widget=forms.TextInput(attrs={
            "list": "branch-suggestions", "autocomplete": "off", "spellcheck": "false",
            "autocapitalize": "off", "placeholder": "feature/my-change",
        }),
    )
    source = forms.ChoiceField(
        label="Data from",
        # Not required: a shared database takes no source (the page's script disables the
        # select then, and a disabled select is not posted).
        required=False,
        help_text="A dedicated database is restored from this database's newest snapshot; "
                  "(host) marks the host staging's own. Shared uses the host's data, "
                  "whatever is chosen here.",
        error_messages={"invalid_choice": "Choose one of the listed sources."},
    )
    db_mode = forms.ChoiceField(
        label="Database",
        choices=[
            (DbMode.DEDICATED, "Dedicated: its own copy of the data (takes about 10 minutes)"),
            (DbMode.SHARED, "Shared: the host's database (ready in a few minutes, but every "
                            "staging sees your changes)"),
        ],
        initial=DbMode.DEDICATED,
        widget=forms.RadioSelect,
    )
    name = forms.CharField(
        required=False,
        max_length=63,
        help_text="It becomes part of the URL. Lower-case letters, digits and hyphens.",
        widget=forms.TextInput(attrs={
            "autocomplete": "off", "spellcheck": "false", "autocapitalize": "off",
        }),
    )

    ttl = forms.CharField(
        label="TTL (hours)",
        required=False,
        max_length=20,
        widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"}),
    )

    def __init__(self, *args, sources: list[tuple[str, str]], **kwargs):
        super().__init__(*args, **kwargs)
        host_db = load_config().host_db_instance
        self.fields["source"].choices = sources
        self.fields["source"].widget.attrs["data-shared-uses"] = host_db
        config = load_config()
        # The engine checks the value (one message for the form and `ds create --ttl`).
        self.fields["ttl"].help_text = (
            f"It is destroyed this long after the create or its last redeploy, unless "
            f"extended. Empty: {config.ttl_hours:g}; at most {config.max_ttl_hours:g}.")
        self.fields["ttl"].widget.attrs["placeholder"] = f"{config.ttl_hours:g}"
        if sources and not self.is_bound:
            self.fields["source"].initial = host_db if host_db in dict(sources) else sources[0][0]
        # The live staging a create was refused for (its branch has one), to offer it.
        self.existing_staging = None

    def clean(self) -> dict:
        data = super().clean()
        if data.get("db_mode") == DbMode.DEDICATED and not data.get("source"):
            self.add_error("source", "Choose the database whose snapshot is restored.")
        return data

    def add_user_error(self, error: UserError) -> None:
        """Put the sentence next to the field it is about, or above the form."""
        if isinstance(error, BranchHasStaging):
            self.existing_staging = error.staging
        self.add_error(error.field if error.field in self.fields else None, error.message)


class DeleteLeftoversForm(forms.Form):
    """Which of the listed leftovers to delete. The posted values are matched against the ids
    of the open orphans as text, so whatever was posted never reaches a query."""

    orphan = forms.TypedMultipleChoiceField(
        coerce=int,
        error_messages={
            "required": "Choose at least one leftover to delete.",
            "invalid_choice": "A chosen leftover is no longer listed: the list has changed, "
                              "look again.",
        },
    )

    def __init__(self, *args, orphans, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["orphan"].choices = [(str(o.pk), o.arn) for o in orphans]

    def first_error(self) -> str:
        return next(iter(error for errors in self.errors.values() for error in errors))


class ApiTokenForm(forms.Form):
    name = forms.CharField(
        max_length=MAX_TOKEN_NAME_LENGTH,
        help_text="What it is for, e.g. the script or the tool that uses it.",
    )
    scope = forms.ChoiceField(
        choices=[
            (TokenScope.READ, "Read: list and look at stagings"),
            (TokenScope.WRITE, "Write: also create, redeploy and destroy them, as you can"),
        ],
        initial=TokenScope.READ,
        widget=forms.RadioSelect,
    )
    days = forms.IntegerField(
        label="Expires after (days)", min_value=1, max_value=MAX_TOKEN_DAYS,
        initial=DEFAULT_TOKEN_DAYS,
        help_text=f"1 to {MAX_TOKEN_DAYS} days; revoke it here at any time.",
    )

    def add_user_error(self, error: UserError) -> None:
        self.add_error(error.field if error.field in self.fields else None, error.message)
