"""The sandbox's RegisterTaskDefinition rules (provisioning/sandbox/ecs_rules.py), met in-process:
the ``aws`` fixture installs them as the sandbox's moto server does."""

import boto3
import pytest
from botocore.exceptions import ClientError

SIDECAR = {"name": "log-router", "essential": False,
           "image": "public.ecr.aws/aws-observability/aws-for-fluent-bit:stable",
           "cpu": 64, "memory": 128,
           "firelensConfiguration": {"type": "fluentbit"}}


def web(**sizes) -> dict:
    return {"name": "web", "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/app:main",
            "essential": True, **sizes}


def register(*containers, cpu="1024", memory="2048", fargate=True):
    kwargs = {"family": "rules", "containerDefinitions": list(containers),
              "networkMode": "awsvpc", "cpu": cpu, "memory": memory}
    if fargate:
        kwargs["requiresCompatibilities"] = ["FARGATE"]
    return boto3.client("ecs").register_task_definition(**kwargs)["taskDefinition"]


def refused(*containers, **task) -> str:
    with pytest.raises(ClientError) as error:
        register(*containers, **task)
    assert error.value.response["Error"]["Code"] == "ClientException"
    return error.value.response["Error"]["Message"]


def test_a_host_shaped_definition_is_registered(aws):
    task = register(web(cpu=768, memory=1536, memoryReservation=1024), SIDECAR)
    assert [c["name"] for c in task["containerDefinitions"]] == ["web", "log-router"]
    assert task["containerDefinitions"][1]["firelensConfiguration"] == {"type": "fluentbit"}


def test_containers_without_sizes_share_the_task(aws):
    register(web(), {**SIDECAR, "cpu": 0, "memory": 64}, cpu="256", memory="512")


@pytest.mark.parametrize(("cpu", "memory"), [("512", "512"), ("256", "4096"), ("1024", "1024"),
                                             ("300", "1024")])
def test_a_pair_fargate_does_not_run_is_refused(aws, cpu, memory):
    assert refused(web(), cpu=cpu, memory=memory) == (
        f"No Fargate configuration exists for given values: {cpu} CPU, {memory} memory. "
        "See the Amazon ECS documentation for the valid values.")


def test_the_same_pair_is_fine_outside_fargate(aws):
    register(web(memory=256), cpu="512", memory="512", fargate=False)


def test_vcpu_and_gb_units_are_understood(aws):
    register(web(), cpu="1 vCPU", memory="2 GB")
    assert "No Fargate configuration" in refused(web(), cpu="1 vCPU", memory="1 GB")


def test_fargate_needs_task_level_sizes(aws):
    assert refused(web(memory=512), cpu="", memory="1024") == (
        "Fargate requires that 'cpu' be defined at the task level.")


def test_a_reservation_above_the_containers_memory_is_refused(aws):
    message = refused(web(memory=512, memoryReservation=1024))
    assert "'web'" in message and "memoryReservation" in message


def test_a_container_above_the_task_memory_is_refused(aws):
    assert refused(web(memory=4096), cpu="256", memory="2048") == (
        "The 'memory' setting for container 'web' is greater than for the task.")


def test_container_cpu_adding_up_past_the_task_is_refused(aws):
    assert refused(web(cpu=256), SIDECAR, cpu="256", memory="512") == (
        "The sum of all container 'cpu' values cannot be greater than the value of the task "
        "'cpu'.")


def test_reservations_adding_up_past_the_task_are_refused(aws):
    # Each fits alone; together they do not (the sidecar reserves its hard limit).
    assert refused(web(memory=1024, memoryReservation=1024), SIDECAR, cpu="512",
                   memory="1024") == (
        "The sum of all container 'memoryReservation' values cannot be greater than the value "
        "of the task 'memory'.")


def test_hard_limits_may_add_up_past_the_task_when_reservations_fit(aws):
    register(web(memory=1024, memoryReservation=512), {**SIDECAR, "memory": 1024,
                                                       "memoryReservation": 256},
             cpu="512", memory="1024")
