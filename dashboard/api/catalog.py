"""``/api/v1/sources`` and ``/api/v1/branches``: what a create may choose from. They read AWS
through the create page's cache (dashboard.forms), so clients polling them cost AWS no more
than reloading that page does."""

from django.http import HttpRequest
from ninja import Router

from dashboard import forms
from provisioning.presenters import source_summary

from .auth import READ
from .errors import ApiError
from .schemas import BranchOut, ErrorOut, SourceOut

router = Router(tags=["catalog"])
ERRORS = {401: ErrorOut, 502: ErrorOut}


@router.get("/sources", response={200: list[SourceOut], **ERRORS}, auth=READ,
            summary="Snapshot sources a dedicated database may be restored from")
def list_sources(request: HttpRequest):
    return [source_summary(source) for source in forms.cached_sources()]


@router.get("/branches", response={200: list[BranchOut], **ERRORS}, auth=READ,
            summary="Branches that have an image, newest push first: each image tag with the "
                    "branch it stands for (as the create form suggests them)")
def list_branches(request: HttpRequest):
    branches, problem = forms.branch_suggestions()
    if problem:
        raise ApiError(502, "aws_error", problem)
    return [{"branch": found.branch, "tag": found.tag} for found in branches]
