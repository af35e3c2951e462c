"""Cloning the host's task definition for a staging (pure functions)."""

import copy
from datetime import UTC, datetime

import botocore.session
import pytest

from provisioning.aws import ecs
from provisioning.aws.ecr import ImageReference
from provisioning.fargate import FARGATE_MEMORY_BY_CPU
from provisioning.sandbox.ecs_rules import check_task_definition
from provisioning.taskdefs import clone_task_definition, fingerprint
from tests.factories import stubbed_client

REGISTRY = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
APP = ImageReference.parse(f"{REGISTRY}/app:main")
NEW_IMAGE = f"{REGISTRY}/app@sha256:" + "ab" * 32
STAGING_ENV = {
    "DYNAMIC_STAGING_NAME": "login-1a2b3c",
    "DB_INSTANCE_ID": "ds-login-1a2b3c",
    "REDIS_NAMESPACE": "login-1a2b3c",
}


def host_definition() -> dict:
    return {
        "taskDefinitionArn": "arn:aws:ecs:us-east-1:123456789012:task-definition/host-web:7",
        "family": "host-web",
        "cpu": "1024",
        "memory": "2048",
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"],
        "executionRoleArn": "arn:aws:iam::123456789012:role/exec",
        "tags": [{"key": "team", "value": "web"}],
        "containerDefinitions": [
            {
                "name": "web",
                "image": f"{REGISTRY}/app:main",
                "cpu": 768,
                "memory": 1536,
                "memoryReservation": 1024,
                "portMappings": [{"containerPort": 8000}],
                "environment": [
                    {"name": "RAILS_ENV", "value": "staging"},
                    {"name": "DB_INSTANCE_ID", "value": "host-db"},
                ],
                "secrets": [
                    {"name": "DATABASE_PASSWORD", "valueFrom": "arn:secret:db"},
                    {"name": "REDIS_NAMESPACE", "valueFrom": "arn:ssm:redis-namespace"},
                ],
            },
            {
                # The same repository pinned by digest: still the app.
                "name": "migrations",
                "image": f"{REGISTRY}/app@sha256:" + "00" * 32,
                "essential": False,
                "cpu": 64,
                "memory": 128,
            },
            {
                "name": "log-router",
                "image": f"{REGISTRY}/fluent-bit:2.1",
                "cpu": 64,
                "memoryReservation": 64,
                "environment": [{"name": "DB_INSTANCE_ID", "value": "untouched"}],
                "secrets": [{"name": "REDIS_NAMESPACE", "valueFrom": "arn:ssm:sidecar"}],
            },
            {
                "name": "datadog",
                "image": "public.ecr.aws/datadog/agent:latest",
                "cpu": 32,
                "memoryReservation": 256,
            },
        ],
    }


def clone(definition: dict | None = None, **overrides) -> dict:
    kwargs = {
        "family": "ds-login-1a2b3c-web", "app_image": APP, "image": NEW_IMAGE,
        "cpu": "256", "memory": "512", "environment": STAGING_ENV,
    } | overrides
    return clone_task_definition(definition or host_definition(), **kwargs)


def containers(definition: dict) -> dict[str, dict]:
    return {c["name"]: c for c in definition["containerDefinitions"]}


def env(container: dict) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("environment", [])}


def test_new_family_and_sizes():
    cloned = clone()
    assert cloned["family"] == "ds-login-1a2b3c-web"
    assert (cloned["cpu"], cloned["memory"]) == ("256", "512")
    assert "taskDefinitionArn" not in cloned
    assert "tags" not in cloned  # the staging's own tags are added when it is registered
    # What the host runs with stays as it is.
    assert cloned["networkMode"] == "awsvpc"
    assert cloned["executionRoleArn"] == "arn:aws:iam::123456789012:role/exec"
    assert cloned["requiresCompatibilities"] == ["FARGATE"]


def sizes(definition: dict) -> dict[str, tuple]:
    return {c["name"]: (c.get("cpu"), c.get("memory"), c.get("memoryReservation"))
            for c in definition["containerDefinitions"]}


def assert_fits(definition: dict) -> None:
    """What ECS checks (the sandbox's rules), and that the hard limits add up inside the task
    too, so no container is stopped by the task's limit before its own."""
    check_task_definition(containers=definition["containerDefinitions"], cpu=definition["cpu"],
                          memory=definition["memory"], requires_compatibilities=["FARGATE"])
    containers = definition["containerDefinitions"]
    assert sum(int(c.get("memory") or 0) for c in containers) <= int(definition["memory"])
    for container in containers:
        if container.get("memory") and container.get("memoryReservation"):
            assert container["memoryReservation"] <= container["memory"]


def test_the_host_fixture_is_a_definition_ecs_accepts():
    assert_fits(host_definition())


@pytest.mark.parametrize(("cpu", "memory"), [
    (cpu, memory) for cpu, memories in FARGATE_MEMORY_BY_CPU.items() for memory in memories])
def test_the_clone_fits_every_fargate_size(cpu, memory):
    assert_fits(clone(cpu=str(cpu), memory=str(memory)))


def test_container_sizes_shrink_in_proportion_with_a_floor():
    # Hard limits add up to 1536 + 128 = 1664 MiB: 1024 MiB of task keeps 8/13 of each, and
    # the reservations (1472 MiB, which alone would keep 15/22) shrink by the same share.
    # CPU: the 32 units already at the floor stay; the rest (896) share 480 units: 15/28.
    assert sizes(clone(cpu="512", memory="1024")) == {
        "web": (411, 945, 630),
        "migrations": (34, 78, None),
        "log-router": (34, None, 64),  # a reservation at the floor stays as it is
        "datadog": (32, None, 157),
    }


def test_the_smallest_task_keeps_the_sidecars_at_the_floor():
    # 64 MiB and 32 units are the least a container keeps: the app gets what is left.
    assert sizes(clone()) == {
        "web": (160, 448, 298),
        "migrations": (32, 64, None),
        "log-router": (32, None, 64),
        "datadog": (32, None, 74),
    }


def test_sizes_that_fit_already_are_kept():
    same = clone(cpu="1024", memory="2048")
    assert sizes(same) == sizes(host_definition())


def test_sizes_are_dropped_when_even_the_floors_do_not_fit():
    host = host_definition()
    host["containerDefinitions"] = [
        {"name": f"agent-{i}", "image": "public.ecr.aws/agent:1", "cpu": 64, "memory": 128,
         "memoryReservation": 96} for i in range(9)]
    cloned = clone(host)
    assert_fits(cloned)
    for container in cloned["containerDefinitions"]:
        assert "memory" not in container and "memoryReservation" not in container
        assert "cpu" not in container


def test_a_reservation_without_a_hard_limit_is_fitted_too():
    host = host_definition()
    host["containerDefinitions"][0].pop("memory")
    cloned = clone(host, cpu="256", memory="512")
    assert_fits(cloned)
    assert containers(cloned)["web"]["memoryReservation"] == 307  # 1024 * 0.3


def test_app_containers_get_the_image_and_the_staging_environment():
    cloned = containers(clone())
    for name in ("web", "migrations"):
        assert cloned[name]["image"] == NEW_IMAGE
        assert env(cloned[name]).items() >= STAGING_ENV.items()
    web_env = env(cloned["web"])
    assert web_env["RAILS_ENV"] == "staging"  # kept
    assert web_env["DB_INSTANCE_ID"] == "ds-login-1a2b3c"  # replaced, not duplicated
    names = [e["name"] for e in cloned["web"]["environment"]]
    assert len(names) == len(set(names))


def test_a_secret_of_the_same_name_no_longer_overrides_the_value():
    web = containers(clone())["web"]
    assert [s["name"] for s in web["secrets"]] == ["DATABASE_PASSWORD"]


def test_sidecars_from_other_repositories_are_untouched():
    host = containers(host_definition())
    cloned = containers(clone())
    assert cloned["log-router"]["image"] == host["log-router"]["image"]
    assert cloned["log-router"]["environment"] == host["log-router"]["environment"]
    assert cloned["log-router"]["secrets"] == host["log-router"]["secrets"]
    def unsized(container: dict) -> dict:
        return {k: v for k, v in container.items()
                if k not in {"cpu", "memory", "memoryReservation"}}

    assert unsized(cloned["datadog"]) == unsized(host["datadog"])  # only its sizes are fitted


def test_the_host_definition_is_not_mutated():
    host = host_definition()
    before = copy.deepcopy(host)
    clone(host)
    assert host == before


def test_fingerprint_is_equal_for_the_same_essentials():
    first, second = clone(), clone()
    second["taskDefinitionArn"] = "arn:aws:ecs:...:task-definition/ds-login-1a2b3c-web:3"
    second["containerDefinitions"].reverse()  # order does not matter
    second["containerDefinitions"][0]["environment"] = list(
        reversed(second["containerDefinitions"][0].get("environment", []))
    )
    assert fingerprint(first) == fingerprint(second)


def test_fingerprint_compares_cpu_as_text_or_number():
    numeric = clone()
    numeric["cpu"], numeric["memory"] = 256, 512
    assert fingerprint(numeric) == fingerprint(clone())


@pytest.mark.parametrize("change", [
    lambda d: d.update(memory="1024"),
    lambda d: d.update(cpu="512"),
    lambda d: d["containerDefinitions"][0].update(image=f"{REGISTRY}/app@sha256:" + "cd" * 32),
    lambda d: d["containerDefinitions"][0]["environment"].append({"name": "X", "value": "1"}),
    lambda d: d["containerDefinitions"][0]["environment"][0].update(value="production"),
    lambda d: d["containerDefinitions"][2].update(image=f"{REGISTRY}/fluent-bit:2.2"),
    lambda d: d["containerDefinitions"][0].update(memory=512),
    lambda d: d["containerDefinitions"][3].update(memoryReservation=128),
    lambda d: d["containerDefinitions"][1].update(cpu=48),
])
def test_fingerprint_differs_when_an_essential_changes(change):
    changed = clone()
    change(changed)
    assert fingerprint(changed) != fingerprint(clone())


def test_image_reference_parsing():
    assert ImageReference.parse("registry:5000/team/app") == ImageReference(
        "registry:5000", "team/app", "latest")
    ref = ImageReference.parse(f"{REGISTRY}/app:feature-x")
    assert (ref.registry, ref.repository, ref.tag) == (REGISTRY, "app", "feature-x")
    assert ref.with_digest("sha256:1") == f"{REGISTRY}/app@sha256:1"
    assert ref.same_repository(f"{REGISTRY}/app@sha256:" + "0" * 64)
    assert not ref.same_repository(f"{REGISTRY}/app-sidecar:feature-x")
    assert not ref.same_repository("other.registry/app:feature-x")


# --- what DescribeTaskDefinition answers and RegisterTaskDefinition accepts -------------------

DESCRIBED_ARN = "arn:aws:ecs:us-east-1:123456789012:task-definition/host-web:7"


def described_host_web() -> dict:
    """A DescribeTaskDefinition answer as real ECS gives it, read-only members included."""
    when = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    return {
        "taskDefinitionArn": DESCRIBED_ARN,
        "family": "host-web",
        "revision": 7,
        "status": "DELETE_IN_PROGRESS",
        "cpu": "1024",
        "memory": "2048",
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"],
        "compatibilities": ["EC2", "FARGATE"],
        "requiresAttributes": [{"name": "ecs.capability.execution-role-awslogs"}],
        "registeredAt": when,
        "registeredBy": "arn:aws:sts::123456789012:assumed-role/deployer/ci",
        "deregisteredAt": when,
        "deleteRequestedAt": when,
        "executionRoleArn": "arn:aws:iam::123456789012:role/exec",
        "runtimePlatform": {"cpuArchitecture": "X86_64", "operatingSystemFamily": "LINUX"},
        "enableFaultInjection": False,
        "containerDefinitions": [{"name": "web", "image": f"{REGISTRY}/app:main"}],
    }


@pytest.fixture
def stubbed_ecs(monkeypatch):
    """The ECS client our wrapper uses, answering from botocore's Stubber (which also checks
    every request and answer against the service model)."""
    with stubbed_client(monkeypatch, ecs, "ecs") as stubber:
        yield stubber


def test_a_described_definition_keeps_only_what_register_accepts(stubbed_ecs):
    stubbed_ecs.add_response("describe_task_definition", {"taskDefinition": described_host_web()},
                             {"taskDefinition": "host-web:7"})
    definition = ecs.describe_task_definition(task_definition="host-web:7")
    assert set(definition) == {
        "taskDefinitionArn", "family", "cpu", "memory", "networkMode", "requiresCompatibilities",
        "executionRoleArn", "runtimePlatform", "enableFaultInjection", "containerDefinitions"}


def test_a_described_definition_registers_again(stubbed_ecs):
    host = described_host_web()
    stubbed_ecs.add_response("describe_task_definition", {"taskDefinition": host},
                             {"taskDefinition": "host-web:7"})
    registrable = {k: host[k] for k in (
        "family", "cpu", "memory", "networkMode", "requiresCompatibilities", "executionRoleArn",
        "runtimePlatform", "enableFaultInjection", "containerDefinitions")}
    stubbed_ecs.add_response(
        "register_task_definition",
        {"taskDefinition": {"taskDefinitionArn": DESCRIBED_ARN.replace(":7", ":8")}},
        registrable | {"tags": [{"key": "dynamic-staging", "value": "login-1a2b3c"}]},
    )
    definition = ecs.describe_task_definition(task_definition="host-web:7")
    arn = ecs.register_task_definition(definition=definition,
                                       tags={"dynamic-staging": "login-1a2b3c"})
    assert arn.endswith("host-web:8")


def test_the_registrable_members_come_from_the_installed_service_model():
    model = botocore.session.get_session().get_service_model("ecs")
    accepted = set(model.operation_model("RegisterTaskDefinition").input_shape.members)
    answered = set(model.operation_model("DescribeTaskDefinition").output_shape
                   .members["taskDefinition"].members)
    everything = {member: "x" for member in accepted | answered}
    assert set(ecs.registrable(everything)) == accepted - {"tags"}
