"""What the engine reads from the host environment: the services whose current task
definitions are cloned, their network configuration and the app's image repository."""

from dataclasses import dataclass

from .aws import ecs
from .aws.ecr import ImageReference
from .config import EngineConfig
from .errors import Refusal, UserError


@dataclass(frozen=True)
class HostEnvironment:
    web_task_definition: dict
    worker_task_definition: dict
    web_container: str
    web_port: int
    network_configuration: dict
    image: ImageReference
    web_target_group_arn: str | None  # the host web service's own target group


def _web_container(service: ecs.Service, definition: dict) -> tuple[str, int]:
    """The container the host's load balancer sends traffic to, and its port."""
    for lb in service.load_balancers:
        if lb.get("containerName"):
            return lb["containerName"], int(lb.get("containerPort") or 80)
    for container in definition["containerDefinitions"]:
        for mapping in container.get("portMappings", []):
            return container["name"], int(mapping["containerPort"])
    first = definition["containerDefinitions"][0]
    return first["name"], 80


def _live_service(config: EngineConfig, name: str) -> ecs.Service:
    service = ecs.describe_service(cluster=config.cluster, service=name)
    if service is None:
        raise UserError(
            f"The host service {name!r} was not found in cluster {config.cluster!r}; "
            "check DS_CLUSTER, DS_WEB_SERVICE and DS_WORKER_SERVICE.",
            code=Refusal.NOT_CONFIGURED,
        )
    return service


def read_host_environment(config: EngineConfig) -> HostEnvironment:
    web = _live_service(config, config.web_service)
    worker = _live_service(config, config.worker_service)
    web_definition = ecs.describe_task_definition(task_definition=web.task_definition)
    worker_definition = ecs.describe_task_definition(task_definition=worker.task_definition)
    container, port = _web_container(web, web_definition)
    image = next(
        c["image"] for c in web_definition["containerDefinitions"] if c["name"] == container
    )
    return HostEnvironment(
        web_task_definition=web_definition,
        worker_task_definition=worker_definition,
        web_container=container,
        web_port=port,
        network_configuration=web.network_configuration,
        image=ImageReference.parse(image.split("@", 1)[0]),
        web_target_group_arn=next(
            (lb["targetGroupArn"] for lb in web.load_balancers if lb.get("targetGroupArn")), None
        ),
    )
