"""The two kinds of failure the product tells apart.

* UserError: the request cannot be done as asked (no image for the branch, name taken, ...).
  Shown as one sentence next to the form field or on stderr; nothing was made.
* ExternalCallFailed: a call to AWS or to the app's account API failed while working. Recorded
  on the step with the call, the error code and the message.
"""


class UserError(Exception):
    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


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
            "redeploy it; to run a second one on purpose, give it a name.", field="name")
        self.branch = branch
        self.staging = staging


class NotAllowed(UserError):
    """The acting user may not start this on that staging (the lifecycle registry's rule),
    whichever entry point asked: the pages, ``ds``, the API or a chat command."""
