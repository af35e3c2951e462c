"""The two kinds of failure the product tells apart.

* UserError: the request cannot be done as asked (no image for the branch, name taken, ...).
  Shown as one sentence next to the form field or on stderr; nothing was made. Its ``code``
  says what kind of refusal it is, in a word that does not change when the sentence does, so
  an entry point that answers with codes of its own (the JSON API's HTTP statuses) maps the
  word and never parses the sentence.
* ExternalCallFailed: a call to AWS or to the app's account API failed while working. Recorded
  on the step with the call, the error code and the message.
"""

from enum import StrEnum


class Refusal(StrEnum):
    # The request itself is wrong: a field's value, a name, no image for the branch.
    INVALID = "invalid"
    # A live staging already has that name.
    NAME_TAKEN = "name_taken"
    # The staging's status does not allow this now (busy, destroyed, not ready).
    WRONG_STATUS = "wrong_status"
    # A cap on live stagings or an AWS quota is reached: something must be destroyed first.
    LIMIT_REACHED = "limit_reached"
    # The requester has the most operations under way one person may have.
    TOO_MANY_IN_FLIGHT = "too_many_in_flight"
    # A setting or the host environment is missing or wrong: for an operator to fix.
    NOT_CONFIGURED = "not_configured"
    # The branch already has a live staging (a second one needs a name given on purpose).
    BRANCH_HAS_STAGING = "branch_has_staging"
    # The acting user may not do this to that staging (neither its owner nor an admin).
    NOT_ALLOWED = "not_allowed"


class UserError(Exception):
    def __init__(self, message: str, *, field: str | None = None,
                 code: Refusal = Refusal.INVALID):
        super().__init__(message)
        self.message = message
        self.field = field
        self.code = code


class ExternalCallFailed(Exception):
    def __init__(self, call: str, code: str, message: str):
        super().__init__(f"{call}: {code}: {message}")
        self.call = call
        self.code = code
        self.message = message


class StepTimedOut(ExternalCallFailed):
    """AWS did not reach the state we wait for within the configured time."""

    def __init__(self, what: str, seconds: float, last_seen: str):
        message = f"not reached after {seconds:.0f} s; last seen: {last_seen}"
        super().__init__(what, "Timeout", message)


class OperationCancelled(Exception):
    """The operation was superseded (a destroy was requested) and must stop between calls."""


class BranchHasStaging(UserError):
    """A create without an explicit name for a branch that already has a live staging: one
    live staging per branch, unless a second one is named on purpose. Carries that staging,
    so an entry point can offer to open or redeploy it."""

    def __init__(self, branch: str, staging):
        super().__init__(
            f"{branch} already has a staging, {staging.name} ({staging.status}): open it or "
            "redeploy it; to run a second one on purpose, give it a name.", field="name",
            code=Refusal.BRANCH_HAS_STAGING)
        self.branch = branch
        self.staging = staging


class NotAllowed(UserError):
    """The acting user may not start this on that staging (the lifecycle registry's rule),
    whichever entry point asked: the pages, ``ds``, the API or a chat command."""

    def __init__(self, message: str):
        super().__init__(message, code=Refusal.NOT_ALLOWED)
