"""The sandbox's fake Slack keeps Slack's rules the bot must live with, and records what it
is sent; ``sandbox slack`` splits and addresses what is typed."""

import json
import urllib.error
import urllib.request

import pytest

from provisioning.sandbox import slack_command
from provisioning.sandbox.slack_api import DEMO_USER, RESPONSE_URL_USES, start_slack_api
from provisioning.slack import client

TOKEN = "xoxb-sandbox-test"


@pytest.fixture
def fake(tmp_path, settings):
    base, server = start_slack_api(TOKEN, tmp_path)
    settings.DS_SLACK_API_URL = f"{base}/api/"
    settings.DS_SLACK_BOT_TOKEN = TOKEN
    yield base
    server.shutdown()
    server.server_close()


def post(url: str, data: dict) -> tuple[int, str]:
    request = urllib.request.Request(url, data=json.dumps(data).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_users_info_knows_the_demo_user_and_refuses_others(fake, settings):
    assert client.email_of(DEMO_USER["id"]) == "demo@example.com"
    with pytest.raises(client.SlackCallFailed) as unknown:
        client.email_of("U0NOBODY")
    assert unknown.value.code == "user_not_found"
    settings.DS_SLACK_BOT_TOKEN = "xoxb-wrong"
    with pytest.raises(client.SlackCallFailed) as refused:
        client.email_of(DEMO_USER["id"])
    assert refused.value.code == "invalid_auth"


@pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing")
def test_post_message_keeps_slacks_rules_and_records_what_it_takes(fake, tmp_path):
    for arguments, error in (({"channel": "C1", "text": ""}, "no_text"),
                             ({"channel": "", "text": "hi"}, "channel_not_found"),
                             ({"channel": "C1", "text": "hi", "blocks": [
                                 {"type": "divider"}] * 51}, "invalid_blocks")):
        with pytest.raises(client.SlackCallFailed) as refused:
            client.post_message(**arguments)
        assert refused.value.code == error
    client.post_message(channel="C1", text="hello", blocks=[{"type": "divider"}])
    [entry] = [json.loads(line) for line in (tmp_path / "slack.jsonl").read_text().splitlines()
               if json.loads(line)["kind"] == "chat.postMessage"]
    assert entry["body"]["channel"] == "C1" and entry["body"]["text"] == "hello"


def test_a_response_url_takes_five_answers(fake):
    status, body = post(f"{fake}/sandbox/response-urls", {})
    url = json.loads(body)["url"]
    for _ in range(RESPONSE_URL_USES):
        client.respond(url, {"text": "ok"})
    with pytest.raises(client.SlackCallFailed) as used:
        client.respond(url, {"text": "one too many"})
    assert used.value.code == "HTTP404: used_url"
    assert post(f"{fake}/response/unknown", {"text": "x"})[0] == 404


@pytest.mark.django_db
def test_sandbox_slack_types_as_the_dashboard_user(alice):
    assert slack_command.split_typed("/staging create x") == slack_command.Typed(
        "/staging", "create x")
    assert slack_command.split_typed("list mine") == slack_command.Typed("/staging", "list mine")
    assert slack_command.slack_user_for("alice") == {
        "id": "U0ALICE", "email": "alice@example.com", "name": "alice"}
    assert slack_command.slack_user_for("nobody")["email"] == "nobody@sandbox.invalid"
