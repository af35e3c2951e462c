"""The SQLite database holds sessions and who asked for what: readable by its owner only.

The file is made 0600 before SQLite first opens it (settings.py calls ``create_private``), and
every new connection tightens the database and its WAL/shared-memory files should something
else have made them (Django's test database, a restore, an older installation).
"""

import contextlib
import os
from pathlib import Path

PRIVATE = 0o600
_SIDE_FILES = ("", "-wal", "-shm", "-journal")


def create_private(path: Path) -> None:
    """Create an empty file readable and writable by its owner only, unless it exists."""
    if str(path) == ":memory:" or str(path).startswith("file:"):
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE))


def tighten(path: str | os.PathLike) -> None:
    for suffix in _SIDE_FILES:
        side = Path(f"{path}{suffix}")
        try:
            if side.stat().st_mode & 0o777 != PRIVATE:
                side.chmod(PRIVATE)
        except FileNotFoundError:
            continue


def tighten_sqlite_files(sender, connection, **kwargs) -> None:
    """connection_created receiver."""
    if connection.vendor != "sqlite":
        return
    name = connection.settings_dict["NAME"]
    if connection.is_in_memory_db() or not name:
        return
    tighten(name)
