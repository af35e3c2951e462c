"""Logins throttled per user name and per address: after 5 failures, 15 minutes of refusals
(even with the right password), a page that says so, and one audit row per lockout."""

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.test import Client
from django.urls import reverse

from provisioning.models import AuditAction, AuditEvent

pytestmark = pytest.mark.django_db

RIGHT = "alice-password"  # tests/conftest.py


def attempt(username: str, password: str, address: str = "203.0.113.7", **extra):
    client = Client(REMOTE_ADDR=address, **extra)
    response = client.post(reverse("login"), {"username": username, "password": password})
    return response, client


def logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def lockouts() -> list[str]:
    return list(AuditEvent.objects.filter(action=AuditAction.LOGIN_LOCKOUT)
                .values_list("detail", flat=True))


def test_the_right_password_works(alice):
    response, client = attempt("alice", RIGHT)
    assert response.status_code == 302 and logged_in(client)


def test_a_hundred_wrong_passwords_then_the_right_one_is_refused(alice):
    for i in range(100):
        response, _ = attempt("alice", f"guess-{i}")
        assert response.status_code == (200 if i < 4 else 429), i
    response, client = attempt("alice", RIGHT)
    assert response.status_code == 429
    assert not logged_in(client)
    page = response.content.decode()
    assert "Too many failed logins" in page and "15 minutes" in page
    assert "even with the right password" in page
    assert len(lockouts()) == 1


def test_four_failures_do_not_lock(alice):
    for i in range(4):
        attempt("alice", f"guess-{i}")
    response, client = attempt("alice", RIGHT)
    assert response.status_code == 302 and logged_in(client)


def test_per_user_name_whatever_the_address(alice, bob):
    for i in range(5):
        attempt("alice", "wrong", address=f"198.51.100.{i + 1}")
    response, client = attempt("alice", RIGHT, address="192.0.2.200")
    assert response.status_code == 429 and not logged_in(client)
    # The same new address may still log bob in.
    response, client = attempt("bob", "bob-password", address="192.0.2.200")
    assert response.status_code == 302 and logged_in(client)


def test_per_address_whatever_the_user_name(alice):
    for i in range(5):
        attempt(f"nobody-{i}", "wrong", address="198.51.100.9")
    response, client = attempt("alice", RIGHT, address="198.51.100.9")
    assert response.status_code == 429 and not logged_in(client)
    response, client = attempt("alice", RIGHT, address="198.51.100.10")
    assert response.status_code == 302 and logged_in(client)


def test_the_lock_ends_after_the_lockout_time(alice):
    for i in range(5):
        attempt("alice", f"guess-{i}")
    assert attempt("alice", RIGHT)[0].status_code == 429
    AccessAttempt.objects.update(attempt_time=AccessAttempt.objects.get().attempt_time
                                 - timedelta(minutes=14))
    assert attempt("alice", RIGHT)[0].status_code == 429
    AccessAttempt.objects.update(attempt_time=AccessAttempt.objects.get().attempt_time
                                 - timedelta(minutes=2))
    response, client = attempt("alice", RIGHT)
    assert response.status_code == 302 and logged_in(client)


def test_attempts_while_locked_neither_extend_nor_add_rows(alice):
    for i in range(5):
        attempt("alice", f"guess-{i}")
    locked_at = AccessAttempt.objects.get().attempt_time
    for i in range(10):
        attempt("alice", f"more-{i}")
    assert AccessAttempt.objects.get().attempt_time == locked_at
    assert len(lockouts()) == 1


def test_the_lockout_on_the_audit_trail(alice):
    for i in range(5):
        attempt("ali\u202ece\x1bx", f"guess-{i}", address="198.51.100.77")
    (event,) = AuditEvent.objects.filter(action=AuditAction.LOGIN_LOCKOUT)
    assert event.actor is None and event.staging is None
    assert event.detail == ("5 failed logins for user name 'ali?ce?x' or from 198.51.100.77: "
                            "logins locked for 15 minutes")
    assert "guess" not in event.detail


def test_the_limit_and_the_time_are_settings(alice, settings):
    settings.AXES_FAILURE_LIMIT = settings.DS_LOGIN_FAILURE_LIMIT = 2
    settings.DS_LOGIN_LOCKOUT_MINUTES = 3
    settings.AXES_COOLOFF_TIME = timedelta(minutes=3)
    attempt("alice", "wrong")
    attempt("alice", "wrong")
    response, _ = attempt("alice", RIGHT)
    assert response.status_code == 429
    assert "After 2 failed logins" in response.content.decode()
    assert "3 minutes" in response.content.decode()


def test_behind_the_load_balancer_the_appended_address_counts(alice, settings):
    settings.DS_BEHIND_PROXY = True
    # A client cannot escape its lock by sending its own X-Forwarded-For entries.
    for i in range(5):
        attempt(f"nobody-{i}", "wrong", address="10.0.0.2",
                HTTP_X_FORWARDED_FOR=f"192.0.2.{i}, 198.51.100.5")
    response, _ = attempt("alice", RIGHT, address="10.0.0.2",
                          HTTP_X_FORWARDED_FOR="192.0.2.99, 198.51.100.5")
    assert response.status_code == 429
    response, client = attempt("alice", RIGHT, address="10.0.0.2",
                               HTTP_X_FORWARDED_FOR="198.51.100.6")
    assert response.status_code == 302 and logged_in(client)


def test_the_admin_login_is_throttled_too(admin):
    for i in range(5):
        Client(REMOTE_ADDR="198.51.100.50").post(
            reverse("admin:login"), {"username": "admin", "password": f"guess-{i}"})
    client = Client(REMOTE_ADDR="198.51.100.51")
    response = client.post(reverse("admin:login"), {"username": "admin",
                                                    "password": "admin-password"})
    assert response.status_code == 429 and not logged_in(client)
