"""Point a process at a running sandbox by filling os.environ from its ``env.json``.

Runs inside settings.py, before Django is set up, so it imports nothing but the standard
library. Values the operator already exported win (setdefault).
"""

import fcntl
import json
import os
from pathlib import Path

ENV_FILE_NAME = "env.json"
# Held (flock, exclusive) by the process that runs the sandbox, for as long as it runs: the
# kernel lets go when that process dies, however it dies, so a lock nobody holds means no
# sandbox runs from this state directory, whatever env.json a killed one left behind.
LOCK_FILE_NAME = "sandbox.lock"
NOT_RUNNING = "no sandbox is running: start it with make run"

# Enough for Django (migrate, createsuperuser, ...) to start when no sandbox is running; boto3
# must never find real credentials in a sandbox process.
STATIC_ENVIRONMENT = {
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
}


def read_sandbox_environment(state_dir: Path) -> dict[str, str]:
    """The variables the running sandbox wrote, or {} when none is running (or it is unreadable)."""
    try:
        data = json.loads((Path(state_dir) / ENV_FILE_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(key): str(value) for key, value in data.items()}


def sandbox_is_running(state_dir: Path) -> bool:
    """Whether a sandbox process holds the state directory's lock right now."""
    try:
        descriptor = os.open(Path(state_dir) / LOCK_FILE_NAME, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(descriptor)
    return False


def apply_sandbox_environment(state_dir: Path) -> None:
    """Fill os.environ from the running sandbox's env.json; a file left by a sandbox that is
    gone is ignored (its endpoint would answer nothing)."""
    running = read_sandbox_environment(state_dir) if sandbox_is_running(state_dir) else {}
    for key, value in (STATIC_ENVIRONMENT | running).items():
        os.environ.setdefault(key, value)
