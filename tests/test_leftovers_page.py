"""The leftovers page (the orphan sweep): open orphans for everyone, sweep and delete
for staff only, and the fleet's notice while there are some."""

import re

import pytest
from django.urls import reverse
from django.utils import timezone

from provisioning import audit
from provisioning.errors import ExternalCallFailed
from provisioning.models import AuditAction, Orphan
from tests.factories import ACCOUNT, REGION
from tests.pages import client_for

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("enqueued", "aws_region")]


def orphan(arn_suffix: str, *, kind="elasticloadbalancing:targetgroup", name="gone",
           deleted=False, error="") -> Orphan:
    return Orphan.objects.create(
        arn=f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:targetgroup/ds-{arn_suffix}/1",
        kind=kind, staging_name=name, error=error,
        deleted_at=timezone.now() if deleted else None,
    )


@pytest.fixture
def sweeper(monkeypatch):
    """The sweep's entry points and the queue, as the views call them."""
    calls: dict[str, list] = {"sweep": [], "enqueued": []}

    def sweep(delete=False, actor=None):
        calls["sweep"].append((delete, actor.username))
        return list(Orphan.objects.filter(deleted_at__isnull=True))

    monkeypatch.setattr("provisioning.sweep.sweep", sweep)
    monkeypatch.setattr("provisioning.sweep.delete_orphans", pytest.fail)
    monkeypatch.setattr("provisioning.tasks.async_task",
                        lambda func, *args, **kwargs: calls["enqueued"].append((func, args)))
    return calls


def test_leftovers_page_lists_open_orphans_for_everyone(bob):
    orphan("old", name="old-one", error="elbv2:DeleteTargetGroup: ResourceInUse: in use")
    orphan("done", name="done-one", deleted=True)
    audit.record(AuditAction.SWEEP, actor=None, detail="1 orphaned resource(s)")
    page = client_for(bob).get(reverse("leftovers")).content.decode()
    assert "targetgroup/ds-old/1" in page and "old-one" in page
    assert "targetgroup/ds-done/1" not in page
    assert "ResourceInUse: in use" in page
    assert "Recent sweeps" in page and ">system<" in page
    # bob may look, not act
    assert "Delete leftovers" not in page and "Sweep now" not in page
    assert 'type="checkbox"' not in page and "Only an admin" in page


def test_staff_see_the_buttons(admin):
    item = orphan("old")
    page = client_for(admin).get(reverse("leftovers")).content.decode()
    assert f'name="orphan" value="{item.pk}"' in page
    assert f'action="{reverse("delete_leftovers")}"' in page and "Delete leftovers" in page
    assert f'action="{reverse("sweep_now")}"' in page and "Sweep now" in page


def test_nothing_left_behind_says_so(alice):
    audit.record(AuditAction.SWEEP, actor=alice, detail="nothing found")  # after a sweep
    page = client_for(alice).get(reverse("leftovers")).content.decode()
    assert "Nothing left behind" in page


def test_only_staff_may_sweep_or_delete(alice, bob, sweeper):
    item = orphan("old")
    for user in (alice, bob):
        client = client_for(user)
        assert client.post(reverse("sweep_now")).status_code == 403
        assert client.post(reverse("delete_leftovers"), {"orphan": [item.pk]}).status_code == 403
    assert sweeper == {"sweep": [], "enqueued": []}


def test_sweep_now(admin, sweeper):
    orphan("old")
    response = client_for(admin).post(reverse("sweep_now"), follow=True)
    assert sweeper["sweep"] == [(False, "admin")]
    assert response.redirect_chain == [(reverse("leftovers"), 302)]
    assert "found 1 leftover in AWS" in response.content.decode()


def test_sweep_now_when_aws_refuses(admin, monkeypatch):
    def refuse(delete=False, actor=None):
        raise ExternalCallFailed("tag:GetResources", "AccessDeniedException", "not allowed")

    monkeypatch.setattr("provisioning.sweep.sweep", refuse)
    response = client_for(admin).post(reverse("sweep_now"), follow=True)
    assert response.status_code == 200
    page = response.content.decode()
    assert "tag:GetResources: AccessDeniedException: not allowed" in page


def test_delete_leftovers_queues_the_chosen_ones(admin, sweeper):
    first, second, _third = orphan("a"), orphan("b"), orphan("c")
    response = client_for(admin).post(reverse("delete_leftovers"),
                                      {"orphan": [second.pk, first.pk]}, follow=True)
    assert sweeper["enqueued"] == [("provisioning.tasks.delete_orphans_task",
                                    ([first.pk, second.pk], admin.pk))]
    assert "Deleting 2 leftovers in the background" in response.content.decode()


@pytest.mark.parametrize("chosen", [[], ["abc"], ["1e3"], ["-1"], ["99999"], ["deleted"]])
def test_delete_leftovers_refuses_what_is_not_listed(admin, sweeper, chosen):
    orphan("a")
    gone = orphan("b", deleted=True)
    chosen = [str(gone.pk) if value == "deleted" else value for value in chosen]
    response = client_for(admin).post(reverse("delete_leftovers"), {"orphan": chosen},
                                      follow=True)
    assert response.status_code == 200
    assert sweeper["enqueued"] == []
    assert re.search(r'class="message error">(Choose at least one|A chosen leftover is no '
                     r'longer listed)', response.content.decode())


def test_fleet_mentions_leftovers_only_when_there_are_some(alice):
    client = client_for(alice)
    assert "leftovers-notice" not in client.get("/").content.decode()
    orphan("a")
    orphan("b")
    orphan("c", deleted=True)
    page = client.get("/").content.decode()
    notice = re.search(r'<p class="notice leftovers-notice">(.*?)</p>', page, re.S).group(1)
    assert notice.startswith("2 AWS resources") and f'href="{reverse("leftovers")}"' in notice
