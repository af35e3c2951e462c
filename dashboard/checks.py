"""System checks of what the deployment runs on (``manage.py check --deploy``)."""

import http.cookies
import sys
from types import ModuleType

from django.core import checks

# CPython releases whose http.cookies unquotes a cookie value in linear time again
# (CVE-2024-7592, gh-123067): 3.11.10, 3.12.6 and 3.13.0 onwards.
_FIXED_IN = {(3, 11): (3, 11, 10), (3, 12): (3, 12, 6)}


def cookie_unquoting_is_quadratic(version: tuple = sys.version_info,
                                  cookies: ModuleType = http.cookies) -> bool:
    # The fix replaced the two-pattern loop with one substitution (``_unquote_sub``); some
    # distributions backport it without changing the version number.
    if hasattr(cookies, "_unquote_sub"):
        return False
    fixed = _FIXED_IN.get(tuple(version[:2]))
    if fixed is None:
        return tuple(version[:2]) < (3, 11)
    return tuple(version[:3]) < fixed


@checks.register(checks.Tags.security, deploy=True)
def check_cookie_parser(app_configs, **kwargs) -> list[checks.CheckMessage]:
    if not cookie_unquoting_is_quadratic():
        return []
    running = ".".join(map(str, sys.version_info[:3]))
    return [checks.Warning(
        f"Python {running}'s http.cookies unquotes cookie values in quadratic time "
        "(CVE-2024-7592): a crafted Cookie header costs seconds of CPU per request.",
        hint="Run on Python 3.11.10, 3.12.6, 3.13 or newer. Until then the dashboard refuses "
             "Cookie headers above DS_MAX_COOKIE_BYTES (default 8192), which bounds the cost.",
        id="dashboard.W001",
    )]
