"""RegisterTaskDefinition refuses what ECS refuses, installed in the moto server's process.

Moto registers any sizes. ECS does not, and a clone that fits the host but not a smaller
staging task is exactly what the engine must not produce. Refused with a ClientException, in
ECS's own words where they are known (quoted in public issue threads):

* a Fargate definition without task-level ``cpu`` or ``memory``, or with a pair Fargate does
  not run: "No Fargate configuration exists for given values: 512 CPU, 512 memory. ...";
* a container whose ``memoryReservation`` is above its ``memory`` (any launch type; the AWS
  docs state the rule, the wording of this message is ours);
* a container whose ``memory`` is above the task's: "The 'memory' setting for container 'web'
  is greater than for the task.";
* containers whose ``cpu`` values add up past the task's, or whose reserved memory
  (``memoryReservation``, else ``memory``) adds up past the task's memory: "The sum of all
  container 'cpu' values cannot be greater than the value of the task 'cpu'.", and the same
  for 'memoryReservation' against the task 'memory'.

The rules hold while the host is seeded too: the host must be a definition ECS would accept.
The unit tests install them in-process as well (tests/conftest.py), so they meet them there.
"""

import functools
import re

from provisioning.fargate import is_fargate_size

_installed = {"done": False}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(vcpu|gb)?\s*", re.IGNORECASE)


class TaskDefinitionRefused(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def _units(raw) -> int | None:
    """Task-level cpu/memory as ECS takes them: "1024", 1024, "1 vCPU" or "2 GB"."""
    if raw is None or raw == "":
        return None
    found = _SIZE.fullmatch(str(raw))
    if not found:
        raise TaskDefinitionRefused(f"Invalid setting for task: {raw!r}.")
    number = float(found.group(1))
    return int(number * 1024) if found.group(2) else int(number)


def _container_value(container: dict, key: str) -> int:
    return int(container.get(key) or 0)


def check_task_definition(
    *, containers: list[dict], cpu, memory, requires_compatibilities: list[str] | None
) -> None:
    """Raise TaskDefinitionRefused with ECS's message for the first rule the definition breaks."""
    fargate = "FARGATE" in (requires_compatibilities or [])
    task_cpu, task_memory = _units(cpu), _units(memory)
    if fargate:
        for name, value in (("cpu", task_cpu), ("memory", task_memory)):
            if value is None:
                raise TaskDefinitionRefused(
                    f"Fargate requires that '{name}' be defined at the task level.")
        if not is_fargate_size(task_cpu, task_memory):
            raise TaskDefinitionRefused(
                f"No Fargate configuration exists for given values: {cpu} CPU, {memory} memory. "
                "See the Amazon ECS documentation for the valid values.")
    for container in containers:
        hard = _container_value(container, "memory")
        soft = _container_value(container, "memoryReservation")
        if hard and soft > hard:
            raise TaskDefinitionRefused(
                f"Invalid setting for container '{container.get('name')}'. 'memoryReservation' "
                "must be less than or equal to 'memory'.")
        if task_memory and hard > task_memory:
            raise TaskDefinitionRefused(
                f"The 'memory' setting for container '{container.get('name')}' is greater than "
                "for the task.")
    if task_cpu and sum(_container_value(c, "cpu") for c in containers) > task_cpu:
        raise TaskDefinitionRefused(
            "The sum of all container 'cpu' values cannot be greater than the value of the "
            "task 'cpu'.")
    reserved = sum(_container_value(c, "memoryReservation") or _container_value(c, "memory")
                   for c in containers)
    if task_memory and reserved > task_memory:
        raise TaskDefinitionRefused(
            "The sum of all container 'memoryReservation' values cannot be greater than the "
            "value of the task 'memory'.")


def _checked_register(original):
    @functools.wraps(original)
    def wrapper(self, family, container_definitions, *args, **kwargs):
        from moto.ecs.exceptions import EcsClientException

        try:
            check_task_definition(
                containers=container_definitions or [],
                cpu=kwargs.get("cpu"),
                memory=kwargs.get("memory"),
                requires_compatibilities=kwargs.get("requires_compatibilities"),
            )
        except TaskDefinitionRefused as refused:
            raise EcsClientException(refused.message) from None
        return original(self, family, container_definitions, *args, **kwargs)

    return wrapper


def install() -> None:
    """Patch moto's ECS backend in this process (once)."""
    if _installed["done"]:
        return
    from moto.ecs.models import EC2ContainerServiceBackend

    EC2ContainerServiceBackend.register_task_definition = _checked_register(
        EC2ContainerServiceBackend.register_task_definition)
    _installed["done"] = True
