"""Settings in one place: dashboard/settings.py reads the environment, provisioning.config is
the only reader of ``settings.DS_*``, and README's configuration table names exactly the
variables that are read."""

import ast
import re
from pathlib import Path

import pytest

from provisioning.config import load_config

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = ROOT / "dashboard" / "settings.py"
CONFIG = ROOT / "provisioning" / "config.py"
OURS = re.compile(r"^(DS|DJANGO)_[A-Z0-9_]+$")


def _source_files() -> list[Path]:
    return sorted((ROOT / "provisioning").rglob("*.py")) + sorted(
        (ROOT / "dashboard").rglob("*.py"))


def variables_read_by_settings() -> set[str]:
    """Every variable dashboard/settings.py reads through its env_* helpers (env_secret reads
    NAME and NAME_FILE)."""
    found = set()
    for node in ast.walk(ast.parse(SETTINGS.read_text())):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id.startswith("env_") and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)):
            continue
        name = node.args[0].value
        found.add(name)
        if node.func.id == "env_secret":
            found.add(f"{name}_FILE")
    return found


def string_constants(path: Path) -> set[str]:
    return {node.value for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Constant) and isinstance(node.value, str)}


def readme_table_variables(readme: str) -> set[str]:
    """The variables named (in backticks) in the first column of the configuration table."""
    section = readme.split("\n## Configuration", 1)[1].split("\n## ", 1)[0]
    names = set()
    for line in section.splitlines():
        if line.startswith("|") and not line.startswith("|---"):
            first_cell = line.split("|")[1]
            names.update(n for n in re.findall(r"`([A-Z][A-Z0-9_]*)`", first_cell)
                         if OURS.match(n))
    return names


def test_settings_reads_a_known_set_of_variables():
    read = variables_read_by_settings()
    # The parser finds plain, typed and secret reads.
    assert {"DS_CLUSTER", "DS_POLL_SECONDS", "DJANGO_DEBUG", "DJANGO_SECRET_KEY",
            "DJANGO_SECRET_KEY_FILE", "DS_ACCOUNT_API_TOKEN_FILE"} <= read


def test_every_variable_settings_reads_is_in_the_readme_table():
    documented = readme_table_variables((ROOT / "README.md").read_text())
    read = {name for name in variables_read_by_settings() if OURS.match(name)}
    assert sorted(read - documented) == []


def test_every_variable_in_the_readme_table_is_read_somewhere():
    documented = readme_table_variables((ROOT / "README.md").read_text())
    named_in_code = set(variables_read_by_settings())
    for path in _source_files():
        if path != SETTINGS:
            named_in_code |= string_constants(path)
    assert sorted(documented - named_in_code) == []


def test_the_table_check_sees_a_row_too_many_and_a_row_missing():
    readme = (ROOT / "README.md").read_text()
    extra = readme.replace("| `DS_CLUSTER` |", "| `DS_NOT_A_SETTING` |", 1)
    assert "DS_NOT_A_SETTING" in readme_table_variables(extra)
    assert "DS_CLUSTER" not in readme_table_variables(extra)


def _settings_reads(path: Path) -> list[str]:
    reads = []
    for node in ast.walk(ast.parse(path.read_text())):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id == "settings" and node.attr.startswith("DS_")):
            reads.append(f"{path.relative_to(ROOT)}:{node.lineno} settings.{node.attr}")
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id in {"getattr", "hasattr"} and node.args
                and isinstance(node.args[0], ast.Name) and node.args[0].id == "settings"):
            reads.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.func.id}(settings, ...)")
    return reads


def test_only_the_config_reads_ds_settings():
    reads = [read for path in _source_files() if path not in {SETTINGS, CONFIG}
             for read in _settings_reads(path)]
    assert reads == []


@pytest.mark.parametrize(("setting", "field", "value"), [
    ("DS_CREATE_PAGE_CACHE_SECONDS", "create_page_cache_seconds", 5),
    ("DS_LOGIN_FAILURE_LIMIT", "login_failure_limit", 2),
    ("DS_LOGIN_LOCKOUT_MINUTES", "login_lockout_minutes", 3),
    ("DS_BEHIND_PROXY", "behind_proxy", True),
    ("DS_MAX_COOKIE_BYTES", "max_cookie_bytes", 100),
])
def test_the_config_follows_the_settings(settings, setting, field, value):
    assert getattr(load_config(), field) != value
    setattr(settings, setting, value)
    assert getattr(load_config(), field) == value


def test_a_page_reads_the_lockout_from_the_config(settings, client):
    from django.test import RequestFactory

    from dashboard.views import login_locked

    settings.DS_LOGIN_FAILURE_LIMIT, settings.DS_LOGIN_LOCKOUT_MINUTES = 7, 42
    page = login_locked(RequestFactory().post("/login/")).content.decode()
    assert "After 7 failed logins" in page and "paused for 42 minutes" in page
