"""A huge Cookie header is refused before anything parses it, and ``check --deploy`` warns
about an interpreter whose cookie parser is quadratic (CVE-2024-7592)."""

import http.cookies
import sys
import time
from types import SimpleNamespace
from unittest import mock

import pytest
from django.core import checks
from django.test import Client
from django.urls import reverse

from dashboard.checks import check_cookie_parser, cookie_unquoting_is_quadratic

pytestmark = pytest.mark.django_db


def cookie_of(size: int) -> str:
    prefix = "junk="
    return prefix + "a" * (size - len(prefix))


def test_a_cookie_header_above_the_limit_is_refused_unparsed(client, settings):
    assert settings.DS_MAX_COOKIE_BYTES == 8192
    with mock.patch("django.core.handlers.wsgi.parse_cookie") as parse:
        response = client.get(reverse("login"), HTTP_COOKIE=cookie_of(8193))
    assert response.status_code == 400
    assert "larger than 8192 bytes" in response.content.decode()
    parse.assert_not_called()


def test_a_cookie_header_at_the_limit_is_served(client):
    response = client.get(reverse("login"), HTTP_COOKIE=cookie_of(8192))
    assert response.status_code == 200


def test_a_logged_in_user_with_a_huge_cookie_is_refused_too(alice):
    client = Client()
    client.force_login(alice)
    session = client.cookies["sessionid"].value
    response = client.get(reverse("home"), HTTP_COOKIE=f"sessionid={session}; "
                          + cookie_of(9000))
    assert response.status_code == 400


def test_the_limit_is_a_setting(client, settings):
    settings.DS_MAX_COOKIE_BYTES = 100
    assert client.get(reverse("login"), HTTP_COOKIE=cookie_of(101)).status_code == 400
    assert client.get(reverse("login"), HTTP_COOKIE=cookie_of(100)).status_code == 200


def test_a_crafted_cookie_costs_little_time(client):
    # The quadratic case: many backslash escapes in one quoted value.
    crafted = 'a="' + "\\\\" * 100_000 + '"'
    started = time.monotonic()
    response = client.get(reverse("login"), HTTP_COOKIE=crafted)
    assert response.status_code == 400
    assert time.monotonic() - started < 0.5


@pytest.mark.parametrize(("version", "quadratic"), [
    ((3, 11, 7), True), ((3, 11, 9), True), ((3, 11, 10), False), ((3, 11, 14), False),
    ((3, 12, 0), True), ((3, 12, 5), True), ((3, 12, 6), False), ((3, 13, 0), False),
    ((3, 14, 1), False), ((3, 10, 20), True),
])
def test_which_interpreters_are_quadratic(version, quadratic):
    unfixed = SimpleNamespace(_OctalPatt=object(), _QuotePatt=object())
    assert cookie_unquoting_is_quadratic(version, unfixed) is quadratic


def test_a_backported_fix_counts_whatever_the_version():
    backported = SimpleNamespace(_unquote_sub=object())
    assert not cookie_unquoting_is_quadratic((3, 11, 2), backported)


def test_the_warning_on_a_quadratic_interpreter():
    with mock.patch("dashboard.checks.cookie_unquoting_is_quadratic", return_value=True):
        (warning,) = check_cookie_parser(None)
    assert warning.id == "dashboard.W001" and warning.level == checks.WARNING
    assert "CVE-2024-7592" in warning.msg and "3.11.10" in warning.hint
    with mock.patch("dashboard.checks.cookie_unquoting_is_quadratic", return_value=False):
        assert check_cookie_parser(None) == []


def test_check_deploy_runs_it_on_this_interpreter():
    found = [m.id for m in checks.run_checks(include_deployment_checks=True)]
    assert ("dashboard.W001" in found) is cookie_unquoting_is_quadratic(sys.version_info,
                                                                      http.cookies)
    assert "dashboard.W001" not in [m.id for m in checks.run_checks()]
