"""A Content-Security-Policy on every response.

The pages load only our own scripts and styles (htmx from django-htmx's static files, our
app.js and app.css) and no inline code at all: no <script> bodies, no on* attributes, no
style attributes (tests/test_access.py scans the templates). So the policy can forbid
everything inline, and text a user typed that ever slipped through unescaped could still not
run. htmx would inject its indicator styles inline; base.html turns that off with
``includeIndicatorStyles: false`` and app.css carries those rules instead. With an identity
provider, form-action also names its origin: browsers hold a form's redirects to form-action,
and the logout form's answer sends the browser on to the provider to end its session there.
"""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest

from provisioning.config import load_config

from .sso import provider_origin

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "object-src 'none'",
    "base-uri 'self'",
    "frame-ancestors 'none'",
    "form-action 'self'",
])


def content_security_policy(provider_origin: str = "") -> str:
    if not provider_origin:
        return CONTENT_SECURITY_POLICY
    return CONTENT_SECURITY_POLICY.replace(
        "form-action 'self'", f"form-action 'self' {provider_origin}")


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        # A view that needs something else (none does today) sets its own.
        response.headers.setdefault(
            "Content-Security-Policy", content_security_policy(provider_origin(load_config())))
        return response


class CookieSizeLimitMiddleware:
    """Refuse a Cookie header above ``DS_MAX_COOKIE_BYTES`` before anything parses it.

    Our own cookies (session, CSRF token, messages) stay far below a kilobyte. Parsing a huge
    Cookie header costs CPU per byte (quadratically so in CPython's http.cookies before the fix
    for CVE-2024-7592, which Django uses), so it is refused here, first in MIDDLEWARE, while
    ``request.COOKIES`` is still unparsed.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response
        self.limit = load_config().max_cookie_bytes

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if len(request.META.get("HTTP_COOKIE", "")) > self.limit:
            return HttpResponseBadRequest(
                f"The Cookie header is larger than {self.limit} bytes. Clear this site's "
                "cookies in the browser and try again.", content_type="text/plain")
        return self.get_response(request)
