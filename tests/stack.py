"""Processes for tests that cross process boundaries: the sandbox AWS (a moto server with the
seeded host environment), Django management commands and a real qcluster, each in its own
process with its own SQLite file, as a user would run them."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

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
        process.kill()
        process.wait()


class SandboxStack:
    """A moto-server sandbox plus the environment Django processes need to use it."""

    def __init__(self, state_dir: Path, delay_scale: float = 0.01):
        self.state_dir = state_dir
        self.delay_scale = delay_scale
        self.processes: list[subprocess.Popen] = []
        self.env = {
            **os.environ,
            "DS_SANDBOX": "1",
            "DS_SANDBOX_STATE_DIR": str(state_dir),
            "DS_SQLITE_PATH": str(state_dir / "db.sqlite3"),
            "DS_USER": "alice",
            "PYTHONUNBUFFERED": "1",
        }
        for inherited in ("AWS_ENDPOINT_URL", "DATABASE_URL", "DS_REDIS_URL"):
            self.env.pop(inherited, None)

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

    def manage(self, *args: str, timeout: float = 300, **env) -> subprocess.CompletedProcess:
        return subprocess.run([*MANAGE, *args], env=self.env | env, cwd=ROOT, timeout=timeout,
                              capture_output=True, text=True)

    def start_qcluster(self, **env) -> subprocess.Popen:
        log = open(self.state_dir / f"qcluster-{len(self.processes)}.log", "w")  # noqa: SIM115
        process = subprocess.Popen([*MANAGE, "qcluster"], env=self.env | env, cwd=ROOT,
                                   stdout=log, stderr=subprocess.STDOUT)
        self.processes.append(process)
        return process

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
