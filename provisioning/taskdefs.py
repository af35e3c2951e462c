"""Cloning the host's task definitions for a staging (pure functions, no AWS calls)."""

import copy
import hashlib
import json
from fractions import Fraction

from .aws.ecr import ImageReference


def _set_environment(container: dict, variables: dict[str, str]) -> None:
    kept = [e for e in container.get("environment", []) if e["name"] not in variables]
    container["environment"] = kept + [{"name": k, "value": v} for k, v in variables.items()]
    # A secret of the same name would override our value at run time.
    if "secrets" in container:
        container["secrets"] = [s for s in container["secrets"] if s["name"] not in variables]


# The least a container keeps when its size is scaled down: below this a log router or agent
# is stopped for memory (hard limit) or starved of CPU at once.
MEMORY_FLOOR_MIB = 64
CPU_FLOOR_UNITS = 32


def _share(values: list[int], budget: int, floor: int) -> Fraction | None:
    """The largest share f <= 1 with sum(max(floor, v * f)) <= budget, values already at or
    under the floor kept as they are; None when even the floors do not fit. Water-filling:
    the smallest values reach the floor first and are held there."""
    if sum(values) <= budget:
        return Fraction(1)
    kept = sum(v for v in values if v <= floor)
    scaled = sorted(v for v in values if v > floor)
    for held in range(len(scaled) + 1):
        left = budget - kept - floor * held
        if left < 0:
            return None
        rest = scaled[held:]
        if not rest:
            return Fraction(0)
        share = Fraction(left, sum(rest))
        if rest[0] * share >= floor:
            return share
    return None


def _scaled(value: int, share: Fraction, floor: int) -> int:
    # Monotonic in value, so a reservation never ends above its container's hard limit.
    return value if value <= floor else max(floor, int(value * share))


def _fit_container_sizes(containers: list[dict], cpu: int, memory: int) -> None:
    """Container-level sizes scaled so that, summed, they fit the staging's (smaller) task.

    ECS refuses a task whose containers' ``cpu`` add up past the task's, or whose reserved
    memory (``memoryReservation``, else ``memory``) does, or one container whose ``memory`` is
    above the task's. The rule, per resource:

    * Sums that already fit are left alone.
    * Otherwise every value shrinks by one share (proportionally: the app keeps the most, the
      sidecars keep their part), never below a floor of 64 MiB / 32 CPU units; a value already
      under the floor stays as it is. For memory the share makes both the hard limits and the
      reservations add up inside the task (so no container meets the task's limit before its
      own), and is the same for both so each ``memoryReservation`` stays <= its ``memory``.
    * When even the floors do not fit (many sidecars in a small task), that resource's
      container-level values are dropped: the containers then share the task's.
    """
    hard = [int(c["memory"]) for c in containers if c.get("memory")]
    reserved = [int(c.get("memoryReservation") or c.get("memory") or 0) for c in containers]
    shares = [_share(hard, memory, MEMORY_FLOOR_MIB),
              _share([v for v in reserved if v], memory, MEMORY_FLOOR_MIB)]
    if None in shares:
        for container in containers:
            container.pop("memory", None)
            container.pop("memoryReservation", None)
    elif min(shares) < 1:
        for container in containers:
            for key in ("memory", "memoryReservation"):
                if container.get(key):
                    container[key] = _scaled(int(container[key]), min(shares), MEMORY_FLOOR_MIB)

    cpus = [int(c["cpu"]) for c in containers if c.get("cpu")]
    share = _share(cpus, cpu, CPU_FLOOR_UNITS)
    if share is None:
        for container in containers:
            container.pop("cpu", None)
    elif share < 1:
        for container in containers:
            if container.get("cpu"):
                container["cpu"] = _scaled(int(container["cpu"]), share, CPU_FLOOR_UNITS)


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
    """The host's definition under a new family, smaller (containers' sizes fitted inside, see
    _fit_container_sizes), running ``image`` with ``environment`` in every container of the
    app's image repository (sidecars keep theirs)."""
    clone = copy.deepcopy(host_definition)
    clone.pop("taskDefinitionArn", None)
    clone.pop("tags", None)
    clone["family"] = family
    clone["cpu"] = cpu
    clone["memory"] = memory
    _fit_container_sizes(clone["containerDefinitions"], int(cpu), int(memory))
    for container in clone["containerDefinitions"]:
        if app_image.same_repository(container["image"]):
            container["image"] = image
            _set_environment(container, environment)
    return clone


def fingerprint(definition: dict) -> str:
    """What makes two revisions equivalent for us: sizes (the task's and its containers'),
    images and environments."""
    essentials = {
        "cpu": str(definition.get("cpu")),
        "memory": str(definition.get("memory")),
        "containers": sorted(
            (
                c["name"],
                c["image"],
                [int(c.get(key) or 0) for key in ("cpu", "memory", "memoryReservation")],
                sorted((e["name"], e["value"]) for e in c.get("environment", [])),
            )
            for c in definition["containerDefinitions"]
        ),
    }
    return hashlib.sha256(json.dumps(essentials, sort_keys=True).encode()).hexdigest()
