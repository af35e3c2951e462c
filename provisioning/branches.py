"""Branches as people name them, and the image tags the registry lists instead.

CI pushes a branch's image under a tag made from the branch name (names.image_tag_for_branch),
which loses what a Docker tag cannot hold: `feature/Login_Page` is pushed as
`feature-Login_Page`. The registry so lists tags, not branches, and a tag cannot be turned back
into its branch by rule. What we know exactly are the branches of every staging ever made, live
or destroyed (each keeps its branch's tag, indexed). So:

* a tag that a known branch produces stands for that branch (the newest staging's, should two
  known branches produce the same tag: they run the same image);
* a tag no known branch produces is the best guess at its own branch (most branches hold no
  `/`), and is offered as it is;
* a branch typed or picked as one of those tags resolves to its known branch, so that
  `feature-Login_Page` and `feature/Login_Page` make one staging, not two. A value that is a
  known branch itself is never remapped.
"""

from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Max

from .models import Staging
from .names import image_tag_for_branch


@dataclass(frozen=True)
class BranchSuggestion:
    branch: str  # what to create from: a known branch, else the tag itself
    tag: str  # the image tag in the registry

    @property
    def is_known_branch(self) -> bool:
        """The branch is known from a staging, not guessed from the tag."""
        return self.branch != self.tag


def known_branches_by_tag(tags: Iterable[str]) -> dict[str, list[str]]:
    """For each tag that known branches produce: those branches, the newest used first."""
    rows = (Staging.objects.filter(branch_tag__in=set(tags))
            .values("branch_tag", "branch").annotate(newest=Max("created_at"))
            .order_by("branch_tag", "-newest", "branch"))
    found: dict[str, list[str]] = {}
    for row in rows:
        found.setdefault(row["branch_tag"], []).append(row["branch"])
    return found


def suggestions_for_tags(tags: list[str]) -> list[BranchSuggestion]:
    """One suggestion per tag, in the tags' order (newest push first)."""
    known = known_branches_by_tag(tags)
    return [BranchSuggestion(branch=known[tag][0] if tag in known else tag, tag=tag)
            for tag in tags]


def resolve_branch(typed: str) -> str:
    """The branch a create for ``typed`` is for: the known branch whose image tag ``typed`` is,
    unless ``typed`` is a known branch itself or no known branch has that tag."""
    branches = known_branches_by_tag([typed]).get(typed, [])
    if not branches or typed in branches:
        return typed
    return branches[0]


def live_staging_of_branch(branch: str) -> Staging | None:
    """The newest live staging made for ``branch``, if any."""
    return (Staging.objects.live()
            .filter(branch_tag=image_tag_for_branch(branch), branch=branch)
            .select_related("owner").order_by("-created_at").first())
