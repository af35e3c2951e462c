"""Names derived from a branch, and the AWS resource names derived from a staging name.

The rules (also in README "Names"):

* A staging name is a DNS label: lower-case ASCII letters, digits and single hyphens, starting
  with a letter, at most ``MAX_NAME_LENGTH`` characters. That one alphabet satisfies every
  resource we name after it: DNS labels (<= 63), ALB target groups (<= 32, alphanumerics and
  hyphens, the ``ds-`` prefix included), RDS identifiers (a letter first, no double or trailing
  hyphen, <= 63), ECS service and task-definition family names.
* From a branch: accents are folded to ASCII, everything else outside ``[a-z0-9]`` becomes a
  hyphen, runs of hyphens collapse, the slug is cut to fit, and a short hash of the *whole*
  branch name is appended. Two different branches therefore never derive the same name, however
  similar, long or non-ASCII they are (up to a 1 in 16 million hash collision, which the unique
  constraint on live names still turns into a clear "name taken" error).
* The image tag of a branch follows the usual CI convention: characters a Docker tag does not
  allow become ``-`` and the tag is cut to 128 characters.
"""

import hashlib
import re
import unicodedata
from dataclasses import dataclass

MAX_NAME_LENGTH = 28
HASH_LENGTH = 6
RESOURCE_PREFIX = "ds-"
NAME_PATTERN = re.compile(r"^[a-z](?:[a-z0-9]|-(?=[a-z0-9]))*$")
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")
_NOT_TAG_CHAR = re.compile(r"[^A-Za-z0-9_.-]")
# Control, format (bidi overrides, zero-width spaces) and line/paragraph separators: invisible
# or reordering on a page and in a terminal, so a name could look like another one.
INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})


class InvalidName(ValueError):
    """A user-supplied staging name breaks the naming rules."""


def invisible_character(text: str) -> str | None:
    """``U+XXXX NAME`` of the first control or format character in ``text``, if any."""
    for char in text:
        if unicodedata.category(char) in INVISIBLE_CATEGORIES:
            return f"U+{ord(char):04X} {unicodedata.name(char, 'control character')}"
    return None


def branch_hash(branch: str) -> str:
    return hashlib.sha256(branch.encode("utf-8")).hexdigest()[:HASH_LENGTH]


def slugify_ascii(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return _NOT_ALNUM.sub("-", folded.lower()).strip("-")


def name_for_branch(branch: str) -> str:
    """The default staging name for ``branch``: a readable slug plus a hash of the branch."""
    room = MAX_NAME_LENGTH - HASH_LENGTH - 1
    slug = slugify_ascii(branch)
    if not slug or not slug[0].isalpha():
        slug = f"b-{slug}" if slug else "b"
    slug = slug[:room].rstrip("-")
    return f"{slug}-{branch_hash(branch)}"


def validate_name(name: str) -> str:
    """Return ``name`` if it is a valid staging name, else raise InvalidName with the reason."""
    if not name:
        raise InvalidName("The name is empty.")
    if invisible := invisible_character(name):
        raise InvalidName(f"The name contains an invisible or control character ({invisible}); "
                          "remove it.")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidName(f"The name is longer than {MAX_NAME_LENGTH} characters.")
    if not NAME_PATTERN.match(name):
        raise InvalidName(
            "A name uses lower-case letters, digits and single hyphens, starts with a letter "
            "and does not end with a hyphen."
        )
    return name


def image_tag_for_branch(branch: str) -> str:
    tag = _NOT_TAG_CHAR.sub("-", branch)
    if tag[:1] in {".", "-"}:
        tag = "_" + tag[1:]
    return tag[:128]


@dataclass(frozen=True)
class ResourceNames:
    """Every AWS name a staging uses, derived from its name alone so that any step, a destroy
    or a sweep can find what an earlier attempt made."""

    staging: str
    domain: str

    @property
    def host(self) -> str:
        return f"{self.staging}.{self.domain}"

    @property
    def target_group(self) -> str:
        return f"{RESOURCE_PREFIX}{self.staging}"

    @property
    def db_instance(self) -> str:
        return f"{RESOURCE_PREFIX}{self.staging}"

    @property
    def web_family(self) -> str:
        return f"{RESOURCE_PREFIX}{self.staging}-web"

    @property
    def worker_family(self) -> str:
        return f"{RESOURCE_PREFIX}{self.staging}-worker"

    @property
    def web_service(self) -> str:
        return self.web_family

    @property
    def worker_service(self) -> str:
        return self.worker_family

    @property
    def redis_namespace(self) -> str:
        return self.staging

    @property
    def login_secret(self) -> str:
        return f"dynamic-stagings/{self.staging}/login"

    @property
    def account_api_token_secret(self) -> str:
        return f"dynamic-stagings/{self.staging}/account-api-token"

    @property
    def bypass_token_secret(self) -> str:
        return f"dynamic-stagings/{self.staging}/bypass-token"


# --- tags: how every AWS resource of ours is found again -----------------------------------------

MANAGED_BY_KEY = "managed-by"
MANAGED_BY_VALUE = "dynamic-stagings"
STAGING_TAG_KEY = "dynamic-staging"
POOL_TAG_KEY = "dynamic-staging-pool"


def managed_tags() -> dict[str, str]:
    return {MANAGED_BY_KEY: MANAGED_BY_VALUE}


def staging_tags(staging: str) -> dict[str, str]:
    return {STAGING_TAG_KEY: staging, **managed_tags()}


def pool_tags(source: str) -> dict[str, str]:
    return {**managed_tags(), POOL_TAG_KEY: source}
