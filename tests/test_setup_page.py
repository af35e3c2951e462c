"""The Setup page (staff only) shows ``ds doctor``'s report, kept in the cache; the fleet page
links to it when that report had a failure, and never runs a check itself."""

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from provisioning import doctor
from provisioning.aws import rds
from tests.inline_code import inline_code
from tests.pages import client_for

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def empty_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def runs(monkeypatch):
    """Every report the checks made (the real checks, counted)."""
    made: list[doctor.Report] = []
    real = doctor.run_checks

    def counted(config):
        made.append(real(config))
        return made[-1]

    monkeypatch.setattr(doctor, "run_checks", counted)
    return made


@pytest.fixture
def checked_host(host_env, monkeypatch):
    monkeypatch.setattr(rds, "instance_quota", lambda: rds.Quota(used=3, maximum=40))
    return host_env


def test_login_is_required(client, runs):
    response = client.get(reverse("setup"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    assert runs == []


def test_only_staff_may_see_or_run_it(alice, runs):
    client = client_for(alice)
    for method in (client.get, client.post):
        response = method(reverse("setup"))
        assert response.status_code == 403
        assert "Only an admin" in response.content.decode()
    assert runs == []


def test_staff_see_each_check_with_its_status_found_and_fix(checked_host, admin, settings,
                                                            runs):
    settings.DS_WORKER_SERVICE = "no-such-worker"
    response = client_for(admin).get(reverse("setup"))
    assert response.status_code == 200
    page = response.content.decode()
    assert len(runs) == 1
    assert '<tr data-check="worker service" data-status="fail">' in page
    assert '<span class="badge status-failed">fail</span>' in page
    assert "no-such-worker: not found in cluster" in page
    assert "Set DS_WORKER_SERVICE to the host staging&#x27;s worker service." in page
    assert '<tr data-check="web service" data-status="ok">' in page
    assert '<span class="badge status-ready">ok</span>' in page
    assert '<span class="badge status-destroying">warn</span>' in page
    assert f"{runs[0].failures} problem" in page
    # Stacked cards on a phone, labelled; nothing inline for the CSP.
    assert 'data-label="Found"' in page and 'data-label="Fix"' in page
    assert inline_code(page) == []


def test_the_report_is_kept_a_few_minutes_and_made_again_on_request(checked_host, admin, runs):
    client = client_for(admin)
    client.get(reverse("setup"))
    client.get(reverse("setup"))
    assert len(runs) == 1
    response = client.post(reverse("setup"))
    assert response.status_code == 302 and response["Location"] == reverse("setup")
    assert len(runs) == 2
    assert doctor.last_report() is runs[-1] or doctor.last_report() == runs[-1]
    client.get(reverse("setup"))
    assert len(runs) == 2


def test_check_again_needs_the_csrf_token(checked_host, admin, runs):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin)
    assert client.post(reverse("setup")).status_code == 403
    assert runs == []


def test_the_fleet_page_links_to_setup_after_a_failing_report(checked_host, admin, alice,
                                                            settings, runs):
    settings.DS_WORKER_SERVICE = "no-such-worker"
    settings.DS_LISTENER_ARN = ""
    client = client_for(admin)
    assert "Setup:" not in client.get(reverse("home")).content.decode()
    assert runs == []  # the fleet page never runs the checks
    client.get(reverse("setup"))
    page = client.get(reverse("home")).content.decode()
    failures = runs[0].failures
    assert failures >= 2
    assert f'<a href="{reverse("setup")}">Setup: {failures} problems</a>' in page
    # Only staff may open the Setup page, so only they are sent there.
    assert "Setup:" not in client_for(alice).get(reverse("home")).content.decode()
    assert len(runs) == 1


def test_no_link_when_the_last_report_passed(checked_host, admin, runs):
    client = client_for(admin)
    client.get(reverse("setup"))
    assert runs[0].passed
    assert "Setup:" not in client.get(reverse("home")).content.decode()


def test_the_page_says_when_everything_passed(admin, monkeypatch):
    monkeypatch.setattr(doctor, "run_checks", lambda config: doctor.Report(checks=(
        doctor.Check("cluster", doctor.OK, "host-staging is ACTIVE"),)))
    page = client_for(admin).get(reverse("setup")).content.decode()
    assert "Every check passed." in page
    assert "host-staging is ACTIVE" in page
