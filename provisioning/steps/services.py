"""The staging's web and worker ECS services: create, update, wait until steady, remove."""

from ..aws import ecs, elbv2
from ..errors import ExternalCallFailed
from ..host import read_host_environment
from ..names import staging_tags
from ..stepkit import Skip, StepContext, made_moments_ago

# Give a new task time to boot before failed health checks count against it.
HEALTH_CHECK_GRACE_SECONDS = 60
# ECS's circuit breaker gives up after max(3, half the desired count) failed tasks; a service
# without it (made by an older version) would replace its tasks for ever, so we stop there too.
FAILED_TASKS_LIMIT = 3
# Service events with these words tell why tasks do not stay up ("is unhealthy in
# (target-group ...) due to (reason Health checks failed with these codes: [302])"); those
# saying only that the deployment failed come next.
_CAUSE_WORDS = ("unhealthy", "unable", "error", "cannot", "denied")


def _describe(ctx: StepContext, service: str) -> ecs.Service | None:
    return ecs.describe_service(cluster=ctx.config.cluster, service=service)


def _wait_until_gone(ctx: StepContext, service: str) -> None:
    def gone() -> tuple[bool, str]:
        found = _describe(ctx, service)
        return found is None, f"{service}: {found.status if found else 'INACTIVE'}"

    ctx.wait_until(f"ecs:DescribeServices {service} (deleting)", gone,
                   ctx.config.service_wait_seconds)


def _ensure_service(
    ctx: StepContext, service: str, task_definition: str, load_balancers: list[dict]
) -> dict:
    """Create the service, or point an existing one at ``task_definition``."""
    existing = _describe(ctx, service)
    if existing is not None and existing.status == "DRAINING":
        _wait_until_gone(ctx, service)  # a destroyed namesake is still going away
        existing = None
    if existing is None:
        host = read_host_environment(ctx.config)
        created = ecs.create_service(
            cluster=ctx.config.cluster,
            name=service,
            task_definition=task_definition,
            network_configuration=host.network_configuration,
            load_balancers=load_balancers,
            tags=staging_tags(ctx.staging.name),
            health_check_grace_seconds=HEALTH_CHECK_GRACE_SECONDS if load_balancers else 0,
        )
        ctx.progress(f"created {service}")
        return {"arn": created.arn}
    if existing.task_definition != task_definition:
        ecs.update_service(cluster=ctx.config.cluster, service=service,
                           task_definition=task_definition, desired_count=1)
        ctx.progress(f"updated {service} to {task_definition.rsplit('/', 1)[-1]}")
    return {"arn": existing.arn}


def create_web_service(ctx: StepContext) -> dict:
    host = read_host_environment(ctx.config)
    load_balancers = [{
        "targetGroupArn": ctx.output("target_group")["arn"],
        "containerName": host.web_container,
        "containerPort": host.web_port,
    }]
    return _ensure_service(ctx, ctx.names.web_service, ctx.output("web_task_definition")["arn"],
                           load_balancers)


def create_worker_service(ctx: StepContext) -> dict:
    return _ensure_service(
        ctx, ctx.names.worker_service, ctx.output("worker_task_definition")["arn"], []
    )


def update_web_service(ctx: StepContext) -> dict:
    return _update(ctx, ctx.names.web_service, ctx.output("web_task_definition")["arn"])


def update_worker_service(ctx: StepContext) -> dict:
    return _update(ctx, ctx.names.worker_service, ctx.output("worker_task_definition")["arn"])


# Set once the step asked ECS to deploy: a rerun finds the service on the new task
# definition already and must still report that it deployed.
DEPLOYED = "deployed"


def _update(ctx: StepContext, service: str, task_definition: str) -> dict:
    existing = _describe(ctx, service)
    if existing is None:
        raise Skip(f"{service} does not exist; destroy and create the staging again")
    if existing.task_definition != task_definition:
        ctx.remember(DEPLOYED, True)
        ecs.update_service(cluster=ctx.config.cluster, service=service,
                           task_definition=task_definition, desired_count=1)
        ctx.progress(f"deploying {task_definition.rsplit('/', 1)[-1]}")
    elif not ctx.recall(DEPLOYED, False):
        ctx.progress(f"already on {task_definition.rsplit('/', 1)[-1]}: nothing to deploy")
    return {"arn": existing.arn, "task_definition": task_definition,
            "deployed": bool(ctx.recall(DEPLOYED, False))}


def _deployment_failed(deployment: ecs.Deployment | None) -> bool:
    return deployment is not None and (
        deployment.rollout_state == "FAILED" or deployment.failed_tasks >= FAILED_TASKS_LIMIT
    )


def _failure_reason(ctx: StepContext, found: ecs.Service, deployment: ecs.Deployment) -> str:
    """ECS's own words: the deployment's reason, the newest event that tells the cause, and
    why the deployment's last task stopped."""
    parts = [deployment.rollout_state_reason if deployment.rollout_state == "FAILED"
             else f"{deployment.failed_tasks} tasks failed."]
    trouble = next((e for e in found.events if any(w in e.lower() for w in _CAUSE_WORDS)),
                   None) or next((e for e in found.events if "fail" in e.lower()), None)
    if trouble:
        parts.append(f"Service event: {trouble}")
    stopped = [t for t in ecs.stopped_tasks(cluster=ctx.config.cluster, service=found.name)
               if not deployment.id or t.started_by in {deployment.id, ""}]
    if stopped:
        last = stopped[0]
        detail = f" ({'; '.join(last.container_reasons)})" if last.container_reasons else ""
        parts.append(f"Stopped task: {last.stopped_reason}{detail}")
    return " ".join(p for p in parts if p)


def _service_gone(ctx: StepContext, service: str, status: str) -> ExternalCallFailed:
    return ExternalCallFailed(
        f"ecs:DescribeServices {service}", "ServiceNotFoundException",
        f"{service} does not exist ({status}) in cluster {ctx.config.cluster}, so it will "
        "never be steady: destroy the staging, or create it again")


def _steady_check(ctx: StepContext, service: str, made_by: str,
                  target_group: str | None = None):
    """``made_by``: the step of this operation that makes or changes the service; a moment
    after it, the service may not show yet (stepkit.PROPAGATION_SECONDS). ``target_group``:
    the name of the group whose targets must be healthy too."""

    def steady() -> tuple[bool, str]:
        found = _describe(ctx, service)
        if found is None:
            if made_moments_ago(ctx.finished_at(made_by)):
                return False, f"{service}: not visible yet"
            reason = ecs.why_absent(cluster=ctx.config.cluster, service=service)
            raise _service_gone(ctx, service, reason or "MISSING")
        if found.status == "DRAINING":
            raise _service_gone(ctx, service, "DRAINING: being deleted")
        if _deployment_failed(found.primary):
            # Waiting on would only reach the timeout: ECS stopped launching tasks.
            raise ExternalCallFailed(f"ecs:DescribeServices {service}",
                                     "ServiceDeploymentFailed",
                                     _failure_reason(ctx, found, found.primary))
        group = _target_group(target_group) if target_group else None
        seen = (f"{found.running}/{found.desired} tasks running, "
                f"{len(found.deployments)} deployment(s)")
        if not found.is_steady:
            return False, seen
        states = elbv2.target_states(arn=group.arn) if group else []
        if states:
            seen += ", targets " + ", ".join(states)
        return all(s == "healthy" for s in states), seen

    return steady


def _target_group(name: str) -> elbv2.TargetGroup:
    group = elbv2.find_target_group(name=name)
    if group is None:
        # Its targets could never turn healthy.
        raise ExternalCallFailed(
            "elasticloadbalancing:DescribeTargetGroups", "TargetGroupNotFound",
            f"the staging's target group {name} does not exist: destroy the staging, or "
            "create it again")
    return group


def wait_web_healthy(ctx: StepContext) -> dict:
    ctx.wait_until(
        f"ecs:DescribeServices {ctx.names.web_service} (steady and healthy)",
        _steady_check(ctx, ctx.names.web_service, "web_service", ctx.names.target_group),
        ctx.config.service_wait_seconds,
    )
    return {}


def wait_worker_steady(ctx: StepContext) -> dict:
    ctx.wait_until(
        f"ecs:DescribeServices {ctx.names.worker_service} (steady)",
        _steady_check(ctx, ctx.names.worker_service, "worker_service"),
        ctx.config.service_wait_seconds,
    )
    return {}


def _remove(ctx: StepContext, service: str) -> dict:
    # Ask first: some ECS implementations accept a delete of an INACTIVE service again.
    if _describe(ctx, service) is None:
        raise Skip(f"{service} does not exist")
    ecs.delete_service(cluster=ctx.config.cluster, service=service)
    _wait_until_gone(ctx, service)
    return {"deleted": service}


def remove_web_service(ctx: StepContext) -> dict:
    return _remove(ctx, ctx.names.web_service)


def remove_worker_service(ctx: StepContext) -> dict:
    return _remove(ctx, ctx.names.worker_service)
