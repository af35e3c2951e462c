"""Cloning the host's task definitions for a staging (pure functions, no AWS calls)."""

import copy
import hashlib
import json

from .aws.ecr import ImageReference


def _set_environment(container: dict, variables: dict[str, str]) -> None:
    kept = [e for e in container.get("environment", []) if e["name"] not in variables]
    container["environment"] = kept + [{"name": k, "value": v} for k, v in variables.items()]
    # A secret of the same name would override our value at run time.
    if "secrets" in container:
        container["secrets"] = [s for s in container["secrets"] if s["name"] not in variables]


def _fit_container_sizes(container: dict, cpu: int, memory: int) -> None:
    """Container-level sizes may not exceed the (smaller) task-level ones we set."""
    if int(container.get("memory") or 0) > memory:
        del container["memory"]
    if int(container.get("memoryReservation") or 0) > memory:
        del container["memoryReservation"]
    if int(container.get("cpu") or 0) > cpu:
        container["cpu"] = 0


def clone_task_definition(
    host_definition: dict,
    *,
    family: str,
    app_image: ImageReference,
    image: str,
    cpu: str,
    memory: str,
    environment: dict[str, str],
) -> dict:
    """The host's definition under a new family, smaller, running ``image`` with ``environment``
    in every container of the app's image repository (sidecars keep theirs)."""
    clone = copy.deepcopy(host_definition)
    clone.pop("taskDefinitionArn", None)
    clone.pop("tags", None)
    clone["family"] = family
    clone["cpu"] = cpu
    clone["memory"] = memory
    for container in clone["containerDefinitions"]:
        _fit_container_sizes(container, int(cpu), int(memory))
        if app_image.same_repository(container["image"]):
            container["image"] = image
            _set_environment(container, environment)
    return clone


def fingerprint(definition: dict) -> str:
    """What makes two revisions equivalent for us: sizes, images and environments."""
    essentials = {
        "cpu": str(definition.get("cpu")),
        "memory": str(definition.get("memory")),
        "containers": sorted(
            (
                c["name"],
                c["image"],
                sorted((e["name"], e["value"]) for e in c.get("environment", [])),
            )
            for c in definition["containerDefinitions"]
        ),
    }
    return hashlib.sha256(json.dumps(essentials, sort_keys=True).encode()).hexdigest()
