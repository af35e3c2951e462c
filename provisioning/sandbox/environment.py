"""Point a process at a running sandbox by filling os.environ from its ``env.json``.

Runs inside settings.py, before Django is set up, so it imports nothing but the standard
library. Values the operator already exported win (setdefault).
"""

import json
import os
from pathlib import Path

ENV_FILE_NAME = "env.json"

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


def apply_sandbox_environment(state_dir: Path) -> None:
    for key, value in (STATIC_ENVIRONMENT | read_sandbox_environment(state_dir)).items():
        os.environ.setdefault(key, value)
