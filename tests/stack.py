"""Processes for tests that cross process boundaries: the sandbox AWS (a moto server with the
seeded host environment), Django management commands and real qclusters, each in its own
process, as a user would run them.

Each stack has a database of its own: a SQLite file in its state directory, or, when the test
run has ``DATABASE_URL`` (PostgreSQL) set, a fresh database on that server, dropped at the end.
With ``DS_REDIS_URL`` set, the qclusters use that Redis as their broker, under a queue name of
the stack's own so that runs sharing the Redis never take each other's tasks.
``DS_QCLUSTER_PROCESSES`` (default 1) is how many qcluster processes ``start_qclusters`` runs.
benchmarks/time_to_ready.py starts its stack here too, with environment of its own.
"""

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import boto3

ROOT = Path(__file__).resolve().parent.parent
MANAGE = [sys.executable, str(ROOT / "manage.py")]


def stop(process: subprocess.Popen, timeout: float = 30) -> None:
    """SIGTERM to the main pid only: qcluster can hang when its whole group gets it."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        kill_tree(process.pid)
        process.wait()


def _children() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name (field 2) may hold spaces and parentheses: split after its end.
        parent = int(stat[stat.rindex(")") + 2:].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    return children


def descendants(pid: int) -> list[int]:
    """Every process below ``pid``, parents before their children."""
    children, found, queue = _children(), [], [pid]
    while queue:
        for child in children.get(queue.pop(0), []):
            found.append(child)
            queue.append(child)
    return found


def kill_tree(pid: int) -> list[int]:
    """SIGKILL ``pid`` and everything below it, as a crash of the machine would; the pids.

    The tree is frozen (SIGSTOP) first: a stopped parent cannot start a replacement for a
    child, and no child is handed to init before it was seen."""
    frozen: list[int] = []
    while True:
        new = [p for p in [pid, *descendants(pid)] if p not in frozen]
        if not new:
            break
        for target in new:
            _signal(target, signal.SIGSTOP)
            frozen.append(target)
    for target in frozen:
        _signal(target, signal.SIGKILL)
    return frozen


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


class SandboxStack:
    """A moto-server sandbox plus the environment Django processes need to use it."""

    def __init__(self, state_dir: Path, delay_scale: float = 0.01, *, env_services: bool = True,
                 env: dict[str, str] | None = None, qcluster_processes: int | None = None):
        """``env``: variables of the stack's own for every process it starts (and for this one,
        with ``use_here``); ``env_services`` False: SQLite and the ORM broker even when the test
        run has DATABASE_URL and DS_REDIS_URL."""
        self.state_dir = state_dir
        self.delay_scale = delay_scale
        self.processes: list[subprocess.Popen] = []
        self.qclusters: list[subprocess.Popen] = []
        self.qcluster_logs: list[Path] = []
        self.env = {
            **os.environ,
            "DS_SANDBOX": "1",
            "DS_SANDBOX_STATE_DIR": str(state_dir),
            "DS_SQLITE_PATH": str(state_dir / "db.sqlite3"),
            "DS_USER": "alice",
            "PYTHONUNBUFFERED": "1",
        }
        for inherited in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "DATABASE_URL", "DS_REDIS_URL",
                          "DS_Q_NAME"):
            self.env.pop(inherited, None)
        self.env.update(env or {})
        self.database_url = ""
        self._server_url = os.environ.get("DATABASE_URL", "") if env_services else ""
        if self._server_url:
            name = f"ds_stack_{uuid.uuid4().hex[:12]}"
            self.database_url = _with_database(self._server_url, name)
            self._postgres(f'CREATE DATABASE "{self._database_name}"')
            self.env["DATABASE_URL"] = self.database_url
        redis_url = os.environ.get("DS_REDIS_URL", "") if env_services else ""
        if redis_url:
            self.env["DS_REDIS_URL"] = redis_url
            self.env["DS_Q_NAME"] = f"ds-stack-{uuid.uuid4().hex[:12]}"
        self.qcluster_processes = qcluster_processes or int(
            os.environ.get("DS_QCLUSTER_PROCESSES") or 1)

    @property
    def _database_name(self) -> str:
        return urlsplit(self.database_url).path.lstrip("/")

    def _postgres(self, statement: str) -> None:
        import psycopg

        with psycopg.connect(self._server_url, autocommit=True) as connection:
            connection.execute(statement)

    @property
    def description(self) -> str:
        database = "PostgreSQL" if self.database_url else "SQLite"
        broker = "Redis" if "DS_REDIS_URL" in self.env else "ORM"
        return f"{database}, {broker} broker, {self.qcluster_processes} qcluster process(es)"

    def start_aws(self, timeout: float = 90) -> dict:
        env_file = self.state_dir / "env.json"
        log = open(self.state_dir / "sandbox-aws.log", "w")  # noqa: SIM115 (lives with the process)
        self.processes.append(subprocess.Popen(
            [*MANAGE, "sandbox", "aws", "--state-dir", str(self.state_dir),
             "--delay-scale", str(self.delay_scale)],
            env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
        ))
        deadline = time.monotonic() + timeout
        while not env_file.exists():
            if self.processes[-1].poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("sandbox AWS did not start: "
                                   + (self.state_dir / "sandbox-aws.log").read_text())
            time.sleep(0.2)
        self.aws_env = json.loads(env_file.read_text())
        return self.aws_env

    def use_here(self) -> None:
        """This process's environment becomes the stack's (Django settings, boto3): for a
        process that runs Django itself beside the stack's processes."""
        os.environ.clear()
        os.environ.update(self.env)

    def manage(self, *args: str, timeout: float = 300, **env) -> subprocess.CompletedProcess:
        return subprocess.run([*MANAGE, *args], env=self.env | env, cwd=ROOT, timeout=timeout,
                              capture_output=True, text=True)

    def spawn(self, *args: str, **env) -> subprocess.Popen:
        """A management command left running (its output is read with communicate())."""
        return subprocess.Popen([*MANAGE, *args], env=self.env | env, cwd=ROOT, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def start_qcluster(self, **env) -> subprocess.Popen:
        path = self.state_dir / f"qcluster-{len(self.processes)}.log"
        self.qcluster_logs.append(path)
        log = open(path, "w")  # noqa: SIM115 (lives with the process)
        process = subprocess.Popen([*MANAGE, "qcluster"], env=self.env | env, cwd=ROOT,
                                   stdout=log, stderr=subprocess.STDOUT)
        self.processes.append(process)
        self.qclusters.append(process)
        return process

    def start_qclusters(self, **env) -> list[subprocess.Popen]:
        """``DS_QCLUSTER_PROCESSES`` qclusters (separate nodes sharing the database)."""
        return [self.start_qcluster(**env) for _ in range(self.qcluster_processes)]

    def kill_qclusters(self) -> list[int]:
        """SIGKILL every qcluster process (main, sentinel, workers, monitor, pusher)."""
        killed = []
        for process in self.qclusters:
            if process.poll() is None:
                killed += kill_tree(process.pid)
                process.wait()
        self.qclusters = []
        return killed

    def logs(self) -> str:
        return "\n".join(path.read_text(errors="replace")
                         for path in sorted(self.state_dir.glob("*.log")))

    def query(self, sql: str, *params) -> list[tuple]:
        """Read the stack's database directly (``%s`` placeholders), without a Django process."""
        if self.database_url:
            import psycopg

            with psycopg.connect(self.database_url) as connection:
                return connection.execute(sql, params).fetchall()
        connection = sqlite3.connect(self.state_dir / "db.sqlite3", timeout=30)
        try:
            return connection.execute(sql.replace("%s", "?"), params).fetchall()
        finally:
            connection.close()

    def client(self, service: str):
        return boto3.client(
            service,
            endpoint_url=self.aws_env["AWS_ENDPOINT_URL"],
            region_name=self.aws_env["AWS_REGION"],
            aws_access_key_id=self.aws_env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.aws_env["AWS_SECRET_ACCESS_KEY"],
        )

    def close(self) -> None:
        for process in reversed(self.processes):
            stop(process)
        if self.database_url:
            self._postgres(f'DROP DATABASE IF EXISTS "{self._database_name}" WITH (FORCE)')


@contextlib.contextmanager
def running_stack(
    state_dir: Path, delay_scale: float, workers: Callable[[SandboxStack], dict] = lambda _: {},
    **options,
) -> Iterator[SandboxStack]:
    """A started stack: sandbox AWS, a migrated database and its qclusters (``workers`` gives
    extra qcluster environment from the stack, e.g. DS_Q_WORKERS; ``options`` are
    SandboxStack's); everything stops at exit."""
    stack = SandboxStack(state_dir, delay_scale=delay_scale, **options)
    try:
        stack.start_aws()
        migrated = stack.manage("migrate", "--no-input")
        assert migrated.returncode == 0, migrated.stderr
        stack.start_qclusters(**workers(stack))
        yield stack
    finally:
        stack.close()
