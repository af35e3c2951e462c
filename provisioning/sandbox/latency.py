"""How long each AWS operation takes in reality, and the sandbox's scaled-down version of it.

The figures come from published AWS timings (the source is kept beside each one), so the
sandbox's relative timings, and any critical path computed from them, match what a user of the
real thing would see. The scale shrinks every figure by the same factor: at the default 0.07 a
create with a dedicated database restored from a snapshot takes under a minute instead of the
ten-odd real minutes.
"""

import os
from dataclasses import dataclass

DEFAULT_SCALE = 0.07
SCALE_VARIABLE = "DS_SANDBOX_DELAY_SCALE"


@dataclass(frozen=True)
class Latency:
    seconds: float
    source: str


PROFILE: dict[str, Latency] = {
    "rds_create": Latency(
        240.0, "~4 min (3m16s-4m56s): public Terraform apply logs; hashicorp/terraform#498"
    ),
    "rds_restore": Latency(
        600.0,
        "estimate 8-15 min, floor ~4-5 min: AWS Knowledge Center rds-mysql-snapshot-restore; "
        "terraform-provider-aws#44104",
    ),
    "rds_modify_password": Latency(
        60.0,
        "estimate 0.5-2 min: Knowledge Center reset-master-user-password-rds; "
        "ExpediaGroup/apiary-data-lake#94",
    ),
    "rds_delete": Latency(
        240.0,
        "estimate 3-6 min: RDS User Guide USER_DeleteInstance; terraform-provider-aws PR #14778",
    ),
    "ecs_task_to_running": Latency(
        50.0, "Fargate task to RUNNING 45-60 s: aws/containers-roadmap#696, #358"
    ),
    "ecs_service_start_to_healthy": Latency(
        105.0,
        "estimate 1.5-2.5 min to a healthy target: ELB user guide target-group-health-checks; "
        "ECS guide load-balancer-healthcheck",
    ),
    "ecs_rolling_update": Latency(
        150.0,
        "2-3 min with a short deregistration delay: aws/copilot-cli#2619, #2190, #5957",
    ),
    "ecs_service_delete": Latency(
        30.0,
        "deregistration delay (5 s on our target groups) + task stop: "
        "hashicorp/terraform PR #9521",
    ),
    "elbv2_create_target_group": Latency(1.5, "1-2 s: Terraform logs"),
    "elbv2_create_rule": Latency(1.5, "1-2 s: Terraform logs"),
    "ecs_register_task_definition": Latency(0.5, "<= 1 s: Terraform logs"),
    # How long things already gone stay visible: the tagging API (and DescribeTasks for tasks)
    # keeps listing them, and the next create must live with it.
    "ecs_stopped_task_listed": Latency(
        3600.0,
        "stopped tasks appear in DescribeTasks results for at least one hour: ECS API "
        "Reference DescribeTasks; GetResources lists them as long",
    ),
    "ecs_task_definition_delete": Latency(
        600.0,
        "estimate ~10 min in DELETE_IN_PROGRESS: ECS developer guide delete-task-definition-v2; "
        "aws/containers-roadmap#685",
    ),
    "elbv2_deleted_rule_listed": Latency(
        600.0, "estimate ~10 min: Resource Groups Tagging API GetResources is eventually consistent"
    ),
    "secretsmanager_force_delete": Latency(
        30.0,
        "estimate: 'an asynchronous background process performs the actual deletion, so there "
        "can be a short delay': Secrets Manager API Reference DeleteSecret",
    ),
    # Describe calls are not slowed down in the sandbox; listed for critical-path estimates.
    "ecr_describe_images": Latency(0.5, "<= 1 s: Terraform logs"),
}


def scale_from_environment() -> float:
    raw = os.environ.get(SCALE_VARIABLE, "").strip()
    return float(raw) if raw else DEFAULT_SCALE


def scaled(operation: str, scale: float) -> float:
    """Seconds ``operation`` takes in the sandbox at ``scale`` (KeyError for an unknown one)."""
    return PROFILE[operation].seconds * scale


def profile_seconds(scale: float) -> dict[str, float]:
    return {operation: scaled(operation, scale) for operation in PROFILE}
