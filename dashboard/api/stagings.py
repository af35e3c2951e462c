"""``/api/v1/stagings``: list, create, show, redeploy, extend and destroy stagings.

Each endpoint is the dashboard's action through the same engine calls and the same permission
rule (a staging's owner or staff may act on it), and is recorded on the audit trail with the
channel ``api`` and the token's name. A staging is shown as ``ds list --json`` /
``ds show --json`` show it (provisioning.presenters), with its latest operation's progress as
the staging page estimates it (dashboard.progress).

Not here yet, each one more endpoint on this router once the engine has it:
``POST /{name}/sleep`` and ``/wake``.
"""

from typing import Annotated

from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from ninja import Header, Query, Router, Status

from dashboard.progress import Progress, load_progress
from provisioning import audit, engine
from provisioning.models import Staging, StagingStatus
from provisioning.presenters import staging_summary

from . import idempotency
from .auth import READ, WRITE, token_of
from .errors import ApiError
from .schemas import (
    CreateStagingIn,
    ErrorOut,
    ExtendIn,
    RedeployIn,
    StagingDetailOut,
    StagingOut,
)

router = Router(tags=["stagings"])

DEFAULT_LIMIT = 200
MAX_LIMIT = 1000
# The error answers every endpoint may give, for the OpenAPI document.
READ_ERRORS = {400: ErrorOut, 401: ErrorOut, 404: ErrorOut}
WRITE_ERRORS = {**READ_ERRORS, 403: ErrorOut, 409: ErrorOut, 422: ErrorOut, 429: ErrorOut,
                502: ErrorOut, 503: ErrorOut}


def progress_summary(progress: Progress | None) -> dict | None:
    if progress is None:
        return None
    return {"percent": progress.percent, "done": progress.done, "total": progress.total,
            "finished": progress.is_finished, "seconds_left": progress.seconds_left}


def staging_detail(staging: Staging) -> dict:
    return staging_summary(staging, with_steps=True) | {
        "progress": progress_summary(load_progress(staging)),
    }


def _named(name: str) -> Staging:
    staging = engine.staging_named(name)
    if staging is None:
        raise ApiError(404, "not_found", f"No staging named {name!r}.")
    return staging


def _to_act_on(request: HttpRequest, name: str) -> Staging:
    staging = _named(name)
    if not engine.may_act(request.user, staging):
        raise ApiError(403, "forbidden", "Only the staging's owner or an admin may do this.")
    return staging


def _accepted(request: HttpRequest, response: HttpResponse, staging: Staging):
    staging.refresh_from_db()
    response["Location"] = request.build_absolute_uri(
        reverse("api-v1:staging", args=[staging.name]))
    return Status(202, staging_detail(staging))


@router.get("", response={200: list[StagingOut], **READ_ERRORS}, auth=READ,
            summary="List stagings (live ones unless a status is given)")
def list_stagings(
    request: HttpRequest,
    status: Annotated[StagingStatus | None, Query(
        description="Only stagings in this status (destroyed ones included).")] = None,
    mine: Annotated[bool, Query(description="1: only the token user's stagings.")] = False,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT,
                                description="At most this many, newest first.")] = DEFAULT_LIMIT,
):
    stagings = Staging.objects.select_related("owner")
    stagings = stagings.filter(status=status) if status else stagings.live()
    if mine:
        stagings = stagings.filter(owner=request.user)
    return [staging_summary(staging) for staging in stagings[:limit]]


@router.post("", response={202: StagingDetailOut, **WRITE_ERRORS}, auth=WRITE,
             summary="Create a staging (the work runs in the background)",
             description="Answers 202 with the staging and its address in Location; follow it "
                         "until the status is ready or failed. With an Idempotency-Key, a "
                         "retry gets the staging the first request made.")
def create_staging(request: HttpRequest, response: HttpResponse, payload: CreateStagingIn,
                   idempotency_key: Annotated[str | None, Header(
                       alias="Idempotency-Key",
                       description="Makes a retry return the staging the first request made.",
                   )] = None):
    user = request.user
    if idempotency_key is not None:
        earlier = idempotency.recall_or_claim(user, idempotency_key, payload.model_dump())
        if earlier is not None:
            response["Idempotent-Replayed"] = "true"
            return _accepted(request, response, earlier)
    try:
        staging = engine.request_create(
            branch=payload.branch, owner=user, name=payload.name, source=payload.source,
            db_mode=payload.db_mode, ttl_hours=payload.ttl_hours,
            channel=audit.api_channel(token_of(request)),
        )
    except BaseException:
        if idempotency_key is not None:
            idempotency.release(user, idempotency_key)
        raise
    if idempotency_key is not None:
        idempotency.remember(user, idempotency_key, staging)
    return _accepted(request, response, staging)


@router.get("/{name}", response={200: StagingDetailOut, **READ_ERRORS}, auth=READ,
            url_name="staging", summary="One staging, its latest operation's steps and progress")
def get_staging(request: HttpRequest, name: str):
    return staging_detail(_named(name))


@router.post("/{name}/redeploy", response={202: StagingDetailOut, **WRITE_ERRORS}, auth=WRITE,
             summary="Deploy the branch's newest image (or a given tag)")
def redeploy_staging(request: HttpRequest, response: HttpResponse, name: str,
                     payload: RedeployIn | None = None):
    staging = _to_act_on(request, name)
    engine.request_redeploy(staging, user=request.user, tag=payload.tag if payload else None,
                            channel=audit.api_channel(token_of(request)))
    return _accepted(request, response, staging)


@router.post("/{name}/extend", response={200: StagingDetailOut, **WRITE_ERRORS}, auth=WRITE,
             summary="Move the expiry to now + hours (capped at DS_MAX_TTL_HOURS)")
def extend_staging(request: HttpRequest, name: str, payload: ExtendIn | None = None):
    staging = _to_act_on(request, name)
    engine.extend(staging, user=request.user, hours=payload.hours if payload else None,
                  channel=audit.api_channel(token_of(request)))
    staging.refresh_from_db()
    return staging_detail(staging)


@router.delete("/{name}", response={200: StagingDetailOut, 202: StagingDetailOut,
                                    **WRITE_ERRORS}, auth=WRITE,
               summary="Destroy a staging: 202 while it goes, 200 when it already is")
def destroy_staging(request: HttpRequest, response: HttpResponse, name: str):
    staging = _to_act_on(request, name)
    if staging.status == StagingStatus.DESTROYED:
        # As `ds destroy`: nothing is left, which is what was asked.
        return Status(200, staging_detail(staging))
    engine.request_destroy(staging, user=request.user,
                           channel=audit.api_channel(token_of(request)))
    return _accepted(request, response, staging)
