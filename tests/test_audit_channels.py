"""Each entry point records its channel on the audit trail: the pages ``web``, the ``ds``
command ``cli``, the API ``api`` with the token's name; the staging page says which."""

import io

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from provisioning import audit
from provisioning.models import AuditEvent, Staging, StagingStatus
from tests.api_calls import call, token_for
from tests.factories import make_staging

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("enqueued")]


def channels(staging: Staging) -> list[tuple[str, str, str]]:
    return list(AuditEvent.objects.filter(staging=staging).order_by("pk").values_list(
        "action", "channel", "channel_detail"))


def test_the_pages_the_command_and_the_api_each_name_their_channel(host_env, alice,
                                                                    monkeypatch):
    client = Client()
    client.force_login(alice)
    client.post(reverse("create"), {"branch": "main", "source": "host-db",
                                    "db_mode": "shared", "name": ""})
    staging = Staging.objects.get()
    Staging.objects.filter(pk=staging.pk).update(status=StagingStatus.READY)
    staging.operations.update(status="succeeded")
    monkeypatch.setenv("DS_USER", "alice")
    call_command("ds", "redeploy", staging.name, stdout=io.StringIO())
    staging.operations.update(status="succeeded")
    call("delete", f"stagings/{staging.name}", token_for(alice, name="cleanup-job"))
    recorded = channels(staging)
    assert [row[:2] for row in recorded] == [("create", "web"), ("redeploy", "cli"),
                                            ("destroy", "api")]
    assert recorded[2][2].startswith("token cleanup-job (dst_")


def test_the_staging_page_says_through_which_channel(alice):
    staging = make_staging(alice, name="shop", status=StagingStatus.READY)
    audit.record("destroy", actor=alice, staging=staging,
                 channel=audit.Channel("api", "token cleanup-job (dst_abcdefgh…)"))
    audit.record("redeploy", actor=alice, staging=staging)
    client = Client()
    client.force_login(alice)
    page = client.get(reverse("staging", args=[staging.pk])).content.decode()
    assert "via the API, token cleanup-job (dst_abcdefgh…)" in page
    assert page.count("via ") == 1


def test_an_unknown_channel_is_refused(alice):
    with pytest.raises(ValueError, match="unknown audit channel"):
        audit.record("destroy", actor=alice, channel=audit.Channel("fax"))
