"""Fargate task sizes: the table AWS accepts, and the settings refused at start-up."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from provisioning.config import check_fargate_size
from provisioning.fargate import FARGATE_MEMORY_BY_CPU, is_fargate_size
from provisioning.steps import task_definitions
from tests.factories import make_operation, make_staging, step_context


@pytest.mark.parametrize(("cpu", "memory"), [
    (256, 512), (256, 2048), (512, 1024), (512, 4096), (1024, 2048), (1024, 8192),
    (2048, 4096), (2048, 16384), (4096, 8192), (4096, 30720), (8192, 16384), (8192, 61440),
    (16384, 32768), (16384, 122880),
])
def test_the_pairs_aws_documents_are_valid(cpu, memory):
    assert is_fargate_size(cpu, memory)


@pytest.mark.parametrize(("cpu", "memory"), [
    (256, 256), (256, 1536), (256, 4096), (512, 512), (512, 1536), (1024, 1024),
    (1024, 9216), (2048, 2048), (4096, 31744), (8192, 18432), (16384, 36864), (128, 512),
    (3072, 8192),
])
def test_other_pairs_are_not(cpu, memory):
    assert not is_fargate_size(cpu, memory)


def test_the_table_has_the_documented_number_of_sizes():
    assert {cpu: len(sizes) for cpu, sizes in FARGATE_MEMORY_BY_CPU.items()} == {
        256: 3, 512: 4, 1024: 7, 2048: 13, 4096: 23, 8192: 12, 16384: 12}


def test_a_valid_setting_passes():
    check_fargate_size("DS_WEB", cpu="512", memory="3072")


@pytest.mark.parametrize(("cpu", "memory", "named"), [
    ("300", "1024", "DS_WEB_CPU"),
    ("a lot", "1024", "DS_WEB_CPU"),
    ("", "1024", "DS_WEB_CPU"),
    ("256", "4096", "DS_WEB_MEMORY"),
    ("512", "1.5GB", "DS_WEB_MEMORY"),
    ("1024", "1024", "DS_WEB_MEMORY"),
])
def test_an_invalid_setting_is_refused_with_its_name_and_the_valid_pairs(cpu, memory, named):
    with pytest.raises(ImproperlyConfigured) as refused:
        check_fargate_size("DS_WEB", cpu=cpu, memory=memory)
    message = str(refused.value)
    assert message.startswith(f"{named}:")
    assert "256: 512, 1024, 2048" in message
    assert "16384: 32768-122880 in steps of 8192" in message


def test_the_worker_settings_are_named_too():
    with pytest.raises(ImproperlyConfigured, match="^DS_WORKER_MEMORY:.*1024 CPU units"):
        check_fargate_size("DS_WORKER", cpu="1024", memory="512")


def test_settings_refuse_an_invalid_pair_at_start_up(tmp_path):
    environment = {k: v for k, v in os.environ.items() if not k.startswith("DS_")}
    environment.update(DS_WORKER_CPU="256", DS_WORKER_MEMORY="4096",
                       DJANGO_SETTINGS_MODULE="dashboard.settings")
    done = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=Path(__file__).resolve().parent.parent, env=environment,
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode != 0
    assert "ImproperlyConfigured: DS_WORKER_MEMORY:" in done.stderr


@pytest.mark.django_db
def test_the_staging_task_definitions_register_at_every_fargate_size(host_env, alice, settings):
    """The host (sized containers and a log router, as real hosts run) cloned at every size
    Fargate runs: ECS's rules (installed in moto by the ``aws`` fixture) accept each one."""
    staging = make_staging(alice)
    operation = make_operation(staging)
    outputs = {"image": {"image": f"{host_env.registry}/app@sha256:" + "1" * 64, "tag": "main"}}
    registered = []
    for cpu, memories in FARGATE_MEMORY_BY_CPU.items():
        for memory in memories:
            settings.DS_WEB_CPU, settings.DS_WEB_MEMORY = str(cpu), str(memory)
            settings.DS_WORKER_CPU, settings.DS_WORKER_MEMORY = str(cpu), str(memory)
            context = step_context(operation, "web_task_definition", outputs)
            registered.append(task_definitions.register_web_task_definition(context)["arn"])
            context = step_context(operation, "worker_task_definition", outputs)
            registered.append(task_definitions.register_worker_task_definition(context)["arn"])
    assert len(set(registered)) == 2 * sum(map(len, FARGATE_MEMORY_BY_CPU.values()))
