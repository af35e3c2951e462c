"""Who an API request acts for: the user of its bearer token, never a session.

The API reads no cookie, so it needs no CSRF token and never redirects to the login page: a
request without a usable token gets 401 (errors.py). A token of the read scope may call the
GET endpoints only; anything that changes something needs the write scope (403 otherwise).
"""

from django.http import HttpRequest
from ninja.security import HttpBearer

from provisioning import engine
from provisioning.models import ApiToken

from .errors import ApiError, unauthorized


class BearerToken(HttpBearer):
    def __init__(self, *, write: bool):
        super().__init__()
        self.write = write

    def authenticate(self, request: HttpRequest, token: str) -> ApiToken:
        try:
            found = engine.authenticate_token(token)
        except engine.TokenRefused as exc:
            raise unauthorized(str(exc), token_given=True) from exc
        if self.write and not found.may_write:
            raise ApiError(403, "insufficient_scope",
                           f"The token {found.name!r} has the read scope; this needs a token "
                           "with the write scope.")
        # What the engine and the logs see as the requester from here on.
        request.user = found.user
        return found


READ = BearerToken(write=False)
WRITE = BearerToken(write=True)


def token_of(request: HttpRequest) -> ApiToken:
    return request.auth
