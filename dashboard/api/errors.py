"""What the API answers when it does not do what was asked: always a JSON object
``{"error": "<code>", "detail": "<one sentence>"}`` (a refused field adds ``"field"``; a
request of the wrong shape adds ``"fields"``), with the status that fits:

* 400 ``bad_request``: not JSON, a missing, unknown or mistyped field, a bad query parameter.
* 401 ``unauthorized``: no token, or one that is unknown, expired or revoked.
* 403 ``insufficient_scope`` (a read token writing) or ``forbidden`` (not the staging's owner
  or staff).
* 404 ``not_found``.
* 409 the engine's ``name_taken``, ``wrong_status`` and ``limit_reached``; also
  ``idempotency_key_in_use`` while the first request with a key is still being worked on.
* 422 the engine's ``invalid`` (a well-formed request whose values it refuses: a bad branch
  name, no image for it, an unknown source), and ``idempotency_key_reused`` (the key came
  with another body), as the IETF draft on the Idempotency-Key header advises.
* 429 ``too_many_in_flight``: the requester's operations under way are at
  DS_MAX_INFLIGHT_PER_USER.
* 502 ``aws_error``: AWS refused a call made while checking the request.
* 503 ``not_configured``: a setting or the host is missing; for an operator.

The engine's refusals are mapped by their code (provisioning.errors.Refusal), never by their
sentence.
"""

from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

from provisioning.errors import ExternalCallFailed, Refusal, UserError

REFUSAL_STATUS = {
    Refusal.INVALID: 422,
    Refusal.NAME_TAKEN: 409,
    Refusal.WRONG_STATUS: 409,
    Refusal.LIMIT_REACHED: 409,
    Refusal.TOO_MANY_IN_FLIGHT: 429,
    Refusal.NOT_CONFIGURED: 503,
    Refusal.BRANCH_HAS_STAGING: 409,
    Refusal.NOT_ALLOWED: 403,
}
CHALLENGE = 'Bearer realm="dynamic-stagings"'
NO_TOKEN = ("Send a token in the header Authorization: Bearer TOKEN; make one on the "
            "dashboard's API tokens page or with `manage.py ds token create`.")


class ApiError(Exception):
    def __init__(self, status: int, code: str, detail: str, *,
                 headers: dict[str, str] | None = None, **extra):
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra


def unauthorized(detail: str, *, token_given: bool) -> ApiError:
    # RFC 6750: name the problem in the challenge only when a token was sent.
    challenge = f'{CHALLENGE}, error="invalid_token"' if token_given else CHALLENGE
    return ApiError(401, "unauthorized", detail, headers={"WWW-Authenticate": challenge})


def error_body(code: str, detail: str, **extra) -> dict:
    return {"error": code, "detail": detail, **extra}


def _answer(api: NinjaAPI, request: HttpRequest, error: ApiError) -> HttpResponse:
    response = api.create_response(request, error_body(error.code, error.detail, **error.extra),
                                   status=error.status)
    for header, value in error.headers.items():
        response[header] = value
    return response


def _field_errors(exc: ValidationError) -> list[dict]:
    found = []
    for error in exc.errors:
        where, *path = [str(part) for part in error.get("loc", ())] or ["body"]
        # The body's parameter name is ours, not the client's: leave it out of the path.
        path = path[1:] if where == "body" and path else path
        found.append({"in": where, "field": ".".join(path), "message": error.get("msg", "")})
    return found


def _shape_problem(fields: list[dict]) -> str:
    parts = [f"{f['field'] or 'the ' + f['in']}: {f['message']}" for f in fields]
    return "The request does not match the API: " + "; ".join(parts) + "."


def install(api: NinjaAPI) -> None:
    """Every failure an endpoint can meet, answered in the one shape above."""

    def api_error(request, exc: ApiError):
        return _answer(api, request, exc)

    def user_error(request, exc: UserError):
        extra = {"field": exc.field} if exc.field else {}
        return _answer(api, request, ApiError(REFUSAL_STATUS[exc.code], exc.code, exc.message,
                                              **extra))

    def aws_error(request, exc: ExternalCallFailed):
        return _answer(api, request, ApiError(
            502, "aws_error", f"AWS did not answer as expected ({exc.call}: {exc.code}: "
                              f"{exc.message}); nothing was started. Try again in a minute."))

    def shape_error(request, exc: ValidationError):
        fields = _field_errors(exc)
        return _answer(api, request, ApiError(400, "bad_request", _shape_problem(fields),
                                              fields=fields))

    def no_token(request, exc: AuthenticationError):
        return _answer(api, request, unauthorized(NO_TOKEN, token_given=False))

    def http_error(request, exc: HttpError):
        if exc.status_code == 400:
            # ninja's only 400 of its own: a body it could not parse.
            return _answer(api, request, ApiError(400, "bad_request",
                                                  "The request body is not valid JSON."))
        return _answer(api, request, ApiError(exc.status_code, "error", str(exc)))

    def not_found(request, exc: Http404):
        return _answer(api, request, ApiError(404, "not_found", str(exc) or "Not found."))

    api.add_exception_handler(ApiError, api_error)
    api.add_exception_handler(UserError, user_error)
    api.add_exception_handler(ExternalCallFailed, aws_error)
    api.add_exception_handler(ValidationError, shape_error)
    api.add_exception_handler(AuthenticationError, no_token)
    api.add_exception_handler(HttpError, http_error)
    api.add_exception_handler(Http404, not_found)
