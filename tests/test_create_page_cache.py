"""The create page's AWS lookups are kept a minute, one cache key per lookup, so reloading the
page does not ask AWS again. Counted at our wrappers."""

import time
from types import SimpleNamespace
from unittest import mock

import pytest
from django.urls import reverse

from provisioning.aws import ecr, ecs, rds
from provisioning.errors import ExternalCallFailed
from tests.pages import client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def counted(monkeypatch):
    """Every call of the wrappers the create page reads through, counted."""
    calls: dict[str, int] = {}

    def counting(module, name):
        real = getattr(module, name)

        def wrapper(**kwargs):
            calls[name] = calls.get(name, 0) + 1
            return real(**kwargs)

        monkeypatch.setattr(module, name, wrapper)

    for module, name in [(rds, "list_snapshots"), (ecr, "list_image_tags"),
                         (ecs, "describe_service"), (ecs, "describe_task_definition")]:
        counting(module, name)
    return calls


def test_reloading_the_create_page_does_not_ask_aws_again(host_env, alice, counted):
    client = client_for(alice)
    first = client.get(reverse("create"))
    assert first.status_code == 200
    after_first = dict(counted)
    assert after_first["list_snapshots"] >= 1 and after_first["list_image_tags"] == 1
    for _ in range(5):
        page = client.get(reverse("create"))
        assert page.status_code == 200
    assert counted == after_first
    body = page.content.decode()
    assert "feature-Login_Page" in body and "snapshot" in body


def test_another_user_shares_the_kept_answers(host_env, alice, bob, counted):
    client_for(alice).get(reverse("create"))
    after_first = dict(counted)
    client_for(bob).get(reverse("create"))
    assert counted == after_first


def test_after_a_minute_aws_is_asked_again(host_env, alice, counted):
    client = client_for(alice)
    now = [time.time()]
    clock = SimpleNamespace(time=lambda: now[0])
    # One clock for both: the cache works out an expiry in base, and checks it in locmem (with
    # the real clock for the expiry, a first request slower than a second never expired).
    with mock.patch("django.core.cache.backends.locmem.time", clock), \
            mock.patch("django.core.cache.backends.base.time", clock):
        client.get(reverse("create"))
        after_first = dict(counted)
        now[0] += 59
        client.get(reverse("create"))
        assert counted == after_first
        now[0] += 2
        client.get(reverse("create"))
    assert counted["list_image_tags"] == 2
    assert counted["list_snapshots"] == 2 * after_first["list_snapshots"]


def test_a_failed_lookup_is_not_kept(host_env, alice, monkeypatch):
    client = client_for(alice)
    real = ecr.list_image_tags
    calls = []

    def failing_once(**kwargs):
        calls.append(kwargs)
        if len(calls) == 1:
            raise ExternalCallFailed("ecr:DescribeImages", "ThrottlingException", "slow down")
        return real(**kwargs)

    monkeypatch.setattr(ecr, "list_image_tags", failing_once)
    first = client.get(reverse("create")).content.decode()
    assert "Could not list the branches" in first
    second = client.get(reverse("create")).content.decode()
    assert "Could not list the branches" not in second and "feature-Login_Page" in second
    assert len(calls) == 2


def test_one_key_per_lookup(host_env, alice):
    with mock.patch("dashboard.forms.cache") as cache:
        cache.get.return_value = None
        client_for(alice).get(reverse("create"))
    keys = [call.args[0] for call in cache.set.call_args_list]
    assert len(keys) == len(set(keys)) == 2
    assert {key.split(":")[1] for key in keys} == {"sources", "branches"}
    assert {call.args[2] for call in cache.set.call_args_list} == {60}


def test_a_create_still_checks_the_image_afresh(host_env, alice, counted, monkeypatch):
    client = client_for(alice)
    client.get(reverse("create"))
    monkeypatch.setattr(ecr, "find_image", lambda **kwargs: None)
    response = client.post(reverse("create"), {"branch": "main", "name": "", "source": "host-db",
                                               "db_mode": "shared"})
    assert response.status_code == 200
    assert "image" in response.content.decode().lower()
