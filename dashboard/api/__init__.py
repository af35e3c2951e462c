"""The JSON API at ``/api/v1/``: django-ninja, bearer tokens, the engine's public interface.

Like the pages and the ``ds`` command it is an entry point and nothing more: it validates,
asks provisioning.engine, and answers. Its OpenAPI document is at ``/api/v1/openapi.json`` and
a reference page made from it at ``/api/v1/docs``.
"""

from django.http import HttpRequest, JsonResponse
from django.urls import include, path, re_path
from django.views.decorators.csrf import csrf_exempt
from ninja import NinjaAPI

from . import catalog, errors, stagings
from .docs import EndpointList

NAMESPACE = "api-v1"

api = NinjaAPI(
    title="Dynamic stagings API",
    version="1",
    description="Create, inspect, redeploy and destroy dynamic stagings. Send a token in "
                "`Authorization: Bearer TOKEN` (make one on the dashboard's API tokens page).",
    urls_namespace=NAMESPACE,
    docs=EndpointList(),
    docs_url="/docs",
)
api.add_router("/stagings", stagings.router)
api.add_router("/", catalog.router)
errors.install(api)


@csrf_exempt
def no_such_endpoint(request: HttpRequest, rest: str) -> JsonResponse:
    """Under /api/v1/ even a wrong address gets an answer in the API's shape."""
    return JsonResponse(errors.error_body(
        "not_found", f"No endpoint {request.method} {request.path}; see /api/v1/docs."),
        status=404)


def urls():
    patterns, app_name, namespace = api.urls
    return path("api/v1/", include(
        (patterns + [re_path(r"^(?P<rest>.*)$", no_such_endpoint)], app_name),
        namespace=namespace))
