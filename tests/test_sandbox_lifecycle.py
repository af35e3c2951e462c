"""The sandbox is safe to start twice, to find missing, and to restart: a second start refuses
before it touches anything, and `DS_SANDBOX=1` without a running sandbox says so at once."""

import json
import os
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from provisioning.sandbox.environment import (
    ENV_FILE_NAME,
    NOT_RUNNING,
    apply_sandbox_environment,
    sandbox_is_running,
)
from provisioning.sandbox.launcher import SandboxError, StateDirClaim

BASE_DIR = Path(__file__).resolve().parent.parent


def manage(*args: str, state_dir: Path, **env: str) -> subprocess.CompletedProcess:
    environment = {key: value for key, value in os.environ.items()
                   if not key.startswith(("AWS_", "DS_"))}
    environment.update(DS_SANDBOX="1", DS_SANDBOX_STATE_DIR=str(state_dir),
                       DS_SQLITE_PATH=str(state_dir / "db.sqlite3"), **env)
    return subprocess.run([sys.executable, "manage.py", *args], cwd=BASE_DIR, env=environment,
                          capture_output=True, text=True, timeout=120)


def migrated(state_dir: Path) -> bool:
    """Whether anything wrote the dashboard's tables (the file itself is made at start-up)."""
    path = state_dir / "db.sqlite3"
    if not path.exists():
        return False
    with sqlite3.connect(path) as connection:
        return bool(connection.execute(
            "SELECT 1 FROM sqlite_master WHERE name = 'django_migrations'").fetchall())


def test_a_state_directory_is_claimed_by_one_sandbox(tmp_path):
    first = StateDirClaim(tmp_path)
    assert sandbox_is_running(tmp_path)
    expected = f"already running from {tmp_path} .process {os.getpid()}"
    with pytest.raises(SandboxError, match=expected):
        StateDirClaim(tmp_path)
    first.release()
    assert not sandbox_is_running(tmp_path)
    StateDirClaim(tmp_path).release()


def test_a_second_run_refuses_before_touching_anything(tmp_path):
    claim = StateDirClaim(tmp_path)
    (tmp_path / ENV_FILE_NAME).write_text(json.dumps({"AWS_ENDPOINT_URL": "http://x"}))
    try:
        result = manage("sandbox", "run", "--port", "0", state_dir=tmp_path)
    finally:
        claim.release()
    assert result.returncode != 0
    assert "already running" in result.stderr
    assert "Dashboard:" not in result.stdout
    assert (tmp_path / ENV_FILE_NAME).exists()  # the running sandbox's file is left alone
    assert not migrated(tmp_path)  # no migration, no demo password reset


def test_a_taken_dashboard_port_is_refused_before_anything_starts(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = manage("sandbox", "run", "--port", str(port), state_dir=tmp_path)
    assert result.returncode != 0
    assert f"Port {port}" in result.stderr and "not free" in result.stderr
    assert "Dashboard:" not in result.stdout
    assert not migrated(tmp_path)
    assert not sandbox_is_running(tmp_path)


def test_ds_without_a_running_sandbox_says_so_at_once(tmp_path):
    # A file left behind by a sandbox that was killed: nobody holds the lock.
    (tmp_path / ENV_FILE_NAME).write_text(json.dumps({"AWS_ENDPOINT_URL": "http://127.0.0.1:9"}))
    assert manage("migrate", "--no-input", state_dir=tmp_path).returncode == 0
    created = manage("ds", "create", "main", state_dir=tmp_path)
    assert created.returncode == 2
    assert created.stderr == f"error: {NOT_RUNNING}\n"
    listed = manage("ds", "list", state_dir=tmp_path)
    assert listed.returncode == 0
    assert NOT_RUNNING in listed.stderr and "as last recorded" in listed.stderr


def test_a_stale_env_file_is_not_applied(tmp_path, monkeypatch):
    (tmp_path / ENV_FILE_NAME).write_text(json.dumps({"DS_TEST_STALE": "1"}))
    monkeypatch.delenv("DS_TEST_STALE", raising=False)
    apply_sandbox_environment(tmp_path)
    assert "DS_TEST_STALE" not in os.environ
    claim = StateDirClaim(tmp_path)
    try:
        apply_sandbox_environment(tmp_path)
        assert os.environ.pop("DS_TEST_STALE") == "1"
    finally:
        claim.release()


@pytest.mark.django_db
def test_starting_again_keeps_the_demo_password_and_so_the_sessions(settings):
    from django.contrib.auth import get_user_model

    from provisioning.config import load_config
    from provisioning.management.commands.sandbox import Command

    demo = load_config().demo_username
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    Command()._ensure_demo_user()
    first = get_user_model().objects.get(username=demo).password
    Command()._ensure_demo_user()
    assert get_user_model().objects.get(username=demo).password == first
