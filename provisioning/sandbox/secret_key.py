"""The sandbox's Django secret key: made once per sandbox state directory and kept there.

Runs inside settings.py before Django is set up, so it uses the standard library only. Every
process of one sandbox (web server, qclusters, ``ds``) reads the same file, so their sessions
and signed values agree; two processes starting at once cannot write two different keys
(the file is created exclusively, and the loser reads the winner's).
"""

import os
import secrets
from pathlib import Path

KEY_FILE_NAME = "django-secret-key"


def sandbox_secret_key(state_dir: Path) -> str:
    path = Path(state_dir) / KEY_FILE_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_when_written(path)
    with os.fdopen(handle, "w") as key_file:
        key_file.write(secrets.token_urlsafe(50))
    return path.read_text().strip()


def _read_when_written(path: Path) -> str:
    # The other process may have created the file a moment ago and not yet written it.
    for _ in range(100):
        key = path.read_text().strip()
        if key:
            return key
        os.sched_yield()
    raise RuntimeError(f"{path} stays empty: delete it and start again")
