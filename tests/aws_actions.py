"""Records every AWS action the engine performs during the test run (in this process and in
the sandbox's qcluster and ``ds`` processes, which inherit ``DS_AWS_ACTION_LOG``), and fails the
run when provisioning/permissions.py, hence docs/iam-policy.json, lacks one of them."""

import os
import tempfile
from pathlib import Path

from provisioning.permissions import DIAGNOSTIC_ACTIONS, engine_actions

ARTIFACT = Path(__file__).resolve().parent.parent / "test-artifacts" / "aws-actions.txt"
_missing: list[str] = []


def pytest_configure(config):
    if not os.environ.get("DS_AWS_ACTION_LOG"):
        handle, path = tempfile.mkstemp(prefix="ds-aws-actions-", suffix=".log")
        os.close(handle)
        os.environ["DS_AWS_ACTION_LOG"] = path


def recorded_actions() -> set[str]:
    path = Path(os.environ["DS_AWS_ACTION_LOG"])
    return set(path.read_text().split()) if path.exists() else set()


def pytest_sessionfinish(session, exitstatus):
    performed = recorded_actions()
    ARTIFACT.parent.mkdir(exist_ok=True)
    ARTIFACT.write_text("".join(f"{action}\n" for action in sorted(performed)))
    allowed = engine_actions() | set(DIAGNOSTIC_ACTIONS)
    _missing[:] = sorted(performed - allowed)
    if _missing and session.exitstatus == 0:
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter):
    if _missing:
        terminalreporter.section("IAM policy")
        terminalreporter.write_line(
            "The engine performed AWS actions that provisioning/permissions.py does not "
            "allow (add them, then regenerate docs/iam-policy.json): " + ", ".join(_missing))
