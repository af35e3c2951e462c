"""End to end on the sandbox: a slash command typed in (the sandbox's) Slack creates a staging
through the real dashboard, qcluster and moto, and its ready message reaches the fake Slack;
a second one destroys it."""

import json
import socket
import subprocess
import time

import pytest

from tests.stack import MANAGE, ROOT, running_stack, stop

pytestmark = pytest.mark.e2e


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with running_stack(tmp_path_factory.mktemp("slack-e2e"), 0.01) as stack:
        made = stack.manage("shell", "-c", (
            "from django.contrib.auth import get_user_model; "
            "get_user_model().objects.create_user('alice', 'alice@example.com', 'x')"))
        assert made.returncode == 0, made.stderr
        port = free_port()
        log = open(stack.state_dir / "runserver.log", "w")  # noqa: SIM115 (lives with it)
        web = subprocess.Popen([*MANAGE, "runserver", f"127.0.0.1:{port}", "--noreload"],
                               env=stack.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert web.poll() is None and time.monotonic() < deadline, stack.logs()
                time.sleep(0.2)
        stack.dashboard_url = f"http://127.0.0.1:{port}"
        try:
            yield stack
        finally:
            stop(web)


def typed(stack, text: str) -> subprocess.CompletedProcess:
    return stack.manage("sandbox", "slack", text, "--user", "alice", "--url",
                        stack.dashboard_url, "--timeout", "240")


def channel_messages(stack) -> list[str]:
    lines = (stack.state_dir / "slack.jsonl").read_text().splitlines()
    return [entry["body"]["text"] for entry in map(json.loads, lines)
            if entry["kind"] == "chat.postMessage"]


def test_a_slash_command_creates_a_staging_and_its_ready_message_reaches_slack(stack):
    created = typed(stack, "/staging create feature/Login_Page --shared-db")
    assert created.returncode == 0, created.stdout + created.stderr + stack.logs()
    [name] = [row[0] for row in stack.query("SELECT name FROM provisioning_staging")]
    assert "HTTP 200: Working on `create feature/Login_Page --shared-db`..." in created.stdout
    assert f"#sandbox: {name} is ready: http://{name}." in created.stdout
    [ready] = channel_messages(stack)
    assert ready.startswith(f"{name} is ready: http://{name}.")
    assert stack.query("SELECT status FROM provisioning_staging") == [("ready",)]
    assert stack.query("SELECT channel FROM provisioning_auditevent") == [("slack",)]

    destroyed = typed(stack, f"/staging destroy {name}")
    assert destroyed.returncode == 0, destroyed.stdout + destroyed.stderr
    assert f"#sandbox: {name} is destroyed" in destroyed.stdout
    assert len(channel_messages(stack)) == 2
    assert stack.query("SELECT status FROM provisioning_staging") == [("destroyed",)]
    sent = stack.query("SELECT channel, status FROM provisioning_notification ORDER BY id")
    assert sorted(sent) == sorted([("dashboard", "sent"), ("email", "sent"),
                                   ("slack", "sent")] * 2)
    # The sandbox's e-mail: one file per message under its state directory.
    mails = [path.read_text() for path in sorted((stack.state_dir / "mail").iterdir())]
    assert len(mails) == 2 and all("To: alice@example.com" in mail for mail in mails)
