"""Every stagingbot command, from the signed request to the answer on its response URL: who
typed it (their Slack e-mail), what the engine did with that user's rights, the audit trail.

AWS is moto with the seeded host (``host_env``); Slack is a real local HTTP server."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from provisioning import audit, engine
from provisioning.models import (
    AuditEvent,
    DbMode,
    OperationKind,
    SlackRequest,
    SlackRequestStatus,
    Staging,
    StagingStatus,
)
from provisioning.slack.bot import answer
from provisioning.slack.commands import HELP, CommandProblem, parse
from tests.conftest import QA_DB, RELEASE_TAG, SNAPSHOT_SOURCES
from tests.factories import make_staging
from tests.slack_helpers import ADMIN, ALICE, BOB, STRANGER, command_form, post_signed

pytest_plugins = ["tests.slack_fixtures"]
pytestmark = pytest.mark.django_db


def test_help_and_an_unknown_word_answer_at_once_with_the_help(run, slack):
    for text in ("help", "", "deploy feature/x", "HELP"):
        said, later = run(text)
        assert said == HELP and later == []
    assert not SlackRequest.objects.exists() and slack.lookups == []


@pytest.mark.parametrize(("text", "sentence"), [
    ("create", "The following arguments are required: branch."),
    ("show", "The following arguments are required: name."),
    ("list everyone", "Argument whose: list takes only the word mine, not 'everyone'."),
    ("destroy a b", "Unrecognized arguments: b."),
    ("create 'feature/x", "I could not read that: No closing quotation (quotes must be "
                          "closed)."),
    ("extend shop 0", "Argument hours: the hours must be more than 0."),
])
def test_a_command_that_cannot_be_read_is_one_sentence(run, text, sentence):
    said, later = run(text)
    assert said == sentence and later == []
    assert not SlackRequest.objects.exists()


@pytest.mark.parametrize("text", ["sleep shop", "wake shop"])
def test_what_the_engine_cannot_do_yet_is_said_honestly(run, text):
    said, later = run(text)
    assert "not available yet" in said and said.count(".") == 1 and later == []
    assert not SlackRequest.objects.exists() and not Staging.objects.exists()


def test_create_makes_the_staging_for_the_slack_user(host_env, run, slack, alice, enqueued):
    said, later = run("create feature/Login_Page --shared-db")
    assert said == "Working on `create feature/Login_Page --shared-db`..."
    staging = Staging.objects.get()
    assert (staging.owner, staging.branch, staging.db_mode) == (alice, "feature/Login_Page",
                                                                DbMode.SHARED)
    assert later == [f"Creating *{staging.name}* from `feature/Login_Page` with the shared "
                     "database. I will post in this conversation when it is ready."]
    assert slack.lookups == [ALICE]
    request = SlackRequest.objects.get()
    operation = staging.latest_operation()
    assert enqueued == [operation.pk]
    assert (request.status, request.user, request.staging, request.operation) == (
        SlackRequestStatus.ANSWERED, alice, staging, operation)
    event = AuditEvent.objects.get(action="create")
    assert (event.actor, event.channel) == (alice, "slack")


def test_create_takes_a_source_and_a_name(host_env, run):
    _, later = run(f"create feature/Login_Page --source {QA_DB} --name qa-login")
    staging = Staging.objects.get()
    assert (staging.name, staging.source, staging.db_mode) == ("qa-login", QA_DB,
                                                               DbMode.DEDICATED)
    assert later == [f"Creating *qa-login* from `feature/Login_Page` with a database restored "
                     f"from {QA_DB}. I will post in this conversation when it is ready."]


def test_a_create_the_engine_refuses_is_one_sentence_and_makes_nothing(host_env, run):
    _, later = run("create feature/Login_Page --source prod-db")
    assert later == [f"Unknown snapshot source 'prod-db'; allowed: {', '.join(SNAPSHOT_SOURCES)}."]
    _, later = run("create feature/no-such-image --shared-db")
    assert len(later) == 1 and "feature-no-such-image" in later[0]
    assert not Staging.objects.exists() and not AuditEvent.objects.exists()


def test_list_shows_the_live_stagings_or_only_mine(run, alice, bob):
    make_staging(alice, name="alices", status=StagingStatus.READY, url="https://alices.test")
    make_staging(bob, name="bobs", status=StagingStatus.PROVISIONING)
    make_staging(bob, name="gone", status=StagingStatus.DESTROYED)
    _, [everyone] = run("list")
    assert everyone.splitlines() == [
        "• *alices* (ready) `feature/Login_Page`, alice <https://alices.test|https://alices.test>",
        "• *bobs* (provisioning) `feature/Login_Page`, bob",
    ]
    _, [mine] = run("list mine", user=BOB)
    assert "bobs" in mine and "alices" not in mine and "gone" not in mine
    _, [none] = run("list mine", user=ADMIN)
    assert none == "You have no live stagings."


def test_show_tells_how_to_log_in_but_never_the_password(run, alice, bob, settings):
    settings.DS_DASHBOARD_URL = "https://stagings.example.com"
    staging = make_staging(alice, name="shop", status=StagingStatus.READY,
                           url="https://shop.dynamic.test", image_tag="feature-shop",
                           login_username="admin@shop.example",
                           login_url="https://shop.dynamic.test/login",
                           login_secret_arn="arn:aws:secretsmanager:us-east-1:1:secret:x")
    _, [shown] = run("show shop", user=BOB)  # anyone may look, as on the dashboard
    assert shown.splitlines() == [
        "*shop*: ready",
        "Branch `feature/Login_Page`, image `feature-shop`",
        "Database: dedicated, restored from host-db",
        "Owner: alice",
        "URL: https://shop.dynamic.test",
        "Log in at https://shop.dynamic.test/login as `admin@shop.example`; the password is on "
        "its dashboard page.",
        f"Dashboard: https://stagings.example.com/stagings/{staging.pk}/",
    ]
    _, [unknown] = run("show nothing-here")
    assert unknown == "No staging is called nothing-here."


def test_redeploy_with_a_tag(host_env, run, alice, enqueued):
    staging = make_staging(alice, name="shop", status=StagingStatus.READY)
    _, [said] = run(f"redeploy shop --tag {RELEASE_TAG}")
    operation = staging.latest_operation()
    assert (operation.kind, operation.params["tag"]) == (OperationKind.REDEPLOY, RELEASE_TAG)
    assert enqueued == [operation.pk]
    assert said == (f"Redeploying *shop* with `{RELEASE_TAG}`. I will post in this conversation "
                    "when it is ready.")
    assert AuditEvent.objects.get(action="redeploy").channel == "slack"


def test_destroy(run, alice, enqueued):
    staging = make_staging(alice, name="shop", status=StagingStatus.READY)
    _, [said] = run("destroy shop")
    assert staging.latest_operation().kind == OperationKind.DESTROY
    assert said.startswith("Destroying *shop*: everything it made in AWS is being removed.")
    assert AuditEvent.objects.get(action="destroy").channel == "slack"
    _, [gone] = run("destroy nothing-here")
    assert gone == "No live staging is called nothing-here."


def test_create_with_a_ttl(host_env, run):
    run("create feature/Login_Page --shared-db --ttl 4")
    staging = Staging.objects.get()
    assert staging.ttl_hours == 4
    assert 3.9 < (staging.expires_at - timezone.now()).total_seconds() / 3600 <= 4


def test_extend_moves_the_expiry_capped_at_the_most_allowed(run, alice, settings):
    settings.DS_MAX_TTL_HOURS = 24
    staging = make_staging(alice, name="shop", status=StagingStatus.READY,
                           expires_at=timezone.now() + timedelta(hours=1))
    _, [said] = run("extend shop 12")
    staging.refresh_from_db()
    assert 11.9 < (staging.expires_at - timezone.now()).total_seconds() / 3600 <= 12
    assert said.startswith("shop now expires at") and "in 12 hours" in said
    _, [capped] = run("extend shop 100")
    assert "capped" in capped and "24" in capped
    assert AuditEvent.objects.filter(action="extend", channel="slack").count() == 2


def test_bob_cannot_extend_alices_staging(run, alice):
    expires = timezone.now() + timedelta(hours=1)
    staging = make_staging(alice, name="shop", status=StagingStatus.READY, expires_at=expires)
    _, [said] = run("extend shop 12", user=BOB)
    assert said == "Only shop's owner (alice) or an admin may extend it."
    staging.refresh_from_db()
    assert staging.expires_at == expires


def test_bob_cannot_destroy_or_redeploy_alices_staging_from_slack(run, alice, enqueued):
    staging = make_staging(alice, name="shop", status=StagingStatus.READY)
    for verb in ("destroy", "redeploy"):
        _, [said] = run(f"{verb} shop", user=BOB)
        assert said == f"Only shop's owner (alice) or an admin may {verb} it."
    assert staging.operations.count() == 0 and enqueued == []
    assert not AuditEvent.objects.exists()
    # The same rule as the dashboard's: an admin may.
    _, [said] = run("destroy shop", user=ADMIN)
    assert said.startswith("Destroying *shop*")


def test_someone_slack_knows_but_the_dashboard_does_not_is_refused(run, slack, enqueued):
    slack.users[STRANGER] = "mallory@example.com"
    _, [said] = run("create feature/Login_Page", user=STRANGER)
    assert said == ("No dashboard user has the e-mail address mallory@example.com, so I cannot "
                    "act for you: ask an admin to set it on your dashboard account.")
    slack.users[STRANGER] = ""
    _, [said] = run("list", user=STRANGER)
    assert said.startswith("Slack shows me no e-mail address for you")
    del slack.users[STRANGER]
    _, [said] = run("list", user=STRANGER)
    assert said == ("I could not ask Slack who you are (users.info: user_not_found); try again "
                    "in a minute.")
    assert not Staging.objects.exists() and enqueued == []


def test_an_e_mail_two_dashboard_users_share_picks_nobody(run, slack, alice, bob):
    bob.email = alice.email.upper()
    bob.save()
    _, [said] = run("list")
    assert said.startswith("No dashboard user has the e-mail address alice@example.com")
    assert engine.user_with_email("ADMIN@example.com").username == "admin"


def test_a_request_is_answered_once_however_often_it_is_run(run, slack, queued_slack,
                                                           django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        post_signed(Client(), "/slack/commands",
                    command_form("list", response_url=slack.response_url("once")))
    [request_id] = queued_slack
    assert answer(request_id) == "answered"
    assert answer(request_id) == "taken by another worker, or answered"
    assert len(slack.responses) == 1


def test_the_audit_channel_is_slacks_only_where_given(alice):
    staging = make_staging(alice)
    inside = audit.record("destroy", actor=alice, staging=staging, channel=audit.SLACK)
    outside = audit.record("destroy", actor=alice, staging=staging)
    assert (inside.channel, outside.channel) == ("slack", "")


def test_the_parser_keeps_quoted_words_whole():
    command = parse("create 'feature/with space' --name x")
    assert command.options["branch"] == "feature/with space"
    with pytest.raises(CommandProblem):
        parse("create")


def test_a_fault_of_ours_is_still_answered(run, monkeypatch, alice):
    def broken(name):
        raise RuntimeError("database went away")

    monkeypatch.setattr(engine, "staging_named", broken)
    _, [said] = run("show shop")
    assert said == ("Something went wrong on our side (it is in the dashboard's log); try "
                    "again in a minute.")
    assert SlackRequest.objects.get().status == SlackRequestStatus.ANSWERED
