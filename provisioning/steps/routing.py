"""The staging's target group and its host-header rule on the dynamic stagings listener."""

import dataclasses
import zlib

from ..aws import elbv2
from ..errors import ExternalCallFailed, Refusal, UserError
from ..host import HostEnvironment, read_host_environment
from ..names import staging_tags
from ..stepkit import Skip, StepContext

PRIORITY_ATTEMPTS = 10
# A staging has one task behind its group: a short delay makes redeploys and destroys quick.
DEREGISTRATION_DELAY_SECONDS = 5


def choose_priority(used: set[int], name: str) -> int:
    """A free rule priority. Rules of different hosts never overlap, so the order carries no
    meaning; starting at a point derived from the name spreads concurrent creates apart, so
    they rarely race for the same priority."""
    start = 1 + zlib.crc32(name.encode()) % 1000
    for priority in list(range(start, elbv2.MAX_PRIORITY + 1)) + list(range(1, start)):
        if priority not in used:
            return priority
    raise ExternalCallFailed("elasticloadbalancing:CreateRule", "TooManyRules",
                             "no free rule priority on the listener")


def staging_health_check(ctx: StepContext, host: HostEnvironment) -> elbv2.HealthCheck:
    """The host web service's own health check (the app answers it the same way in a
    staging), with the path of DS_HEALTH_CHECK_PATH when that is set."""
    if host.web_target_group_arn is None:
        raise UserError(
            f"The host service {ctx.config.web_service!r} has no target group to copy the "
            "health check from; check DS_WEB_SERVICE.", code=Refusal.NOT_CONFIGURED
        )
    check = elbv2.health_check(arn=host.web_target_group_arn)
    if check is None:
        raise UserError(
            f"The host web service's target group {host.web_target_group_arn} does not exist; "
            "redeploy the host web service (see `ds doctor`).", code=Refusal.NOT_CONFIGURED
        )
    if ctx.config.health_check_path:
        check = dataclasses.replace(check, path=ctx.config.health_check_path)
    return check


def create_target_group(ctx: StepContext) -> dict:
    group = elbv2.find_target_group(name=ctx.names.target_group)
    if group is None:
        host = read_host_environment(ctx.config)
        check = staging_health_check(ctx, host)
        group = elbv2.create_target_group(
            name=ctx.names.target_group,
            vpc_id=elbv2.listener_vpc(listener_arn=ctx.config.listener_arn),
            port=host.web_port,
            health_check=check,
            tags=staging_tags(ctx.staging.name),
        )
        ctx.progress(f"health check {check.path} expecting {check.matcher}")
    # Also when an earlier attempt made the group and stopped before this call.
    elbv2.set_deregistration_delay(arn=group.arn, seconds=DEREGISTRATION_DELAY_SECONDS)
    return {"arn": group.arn}


def _own_rule(ctx: StepContext, rules: list[elbv2.Rule]) -> elbv2.Rule | None:
    return next((r for r in rules if ctx.names.host in r.hosts), None)


def create_listener_rule(ctx: StepContext) -> dict:
    target_group_arn = ctx.output("target_group")["arn"]
    for _ in range(PRIORITY_ATTEMPTS):
        ctx.check_cancelled()
        rules = elbv2.list_rules(listener_arn=ctx.config.listener_arn)
        existing = _own_rule(ctx, rules)
        if existing is not None:
            return {"arn": existing.arn, "priority": existing.priority}
        priority = choose_priority({r.priority for r in rules if r.priority}, ctx.staging.name)
        try:
            rule = elbv2.create_rule(
                listener_arn=ctx.config.listener_arn, priority=priority, host=ctx.names.host,
                target_group_arn=target_group_arn, tags=staging_tags(ctx.staging.name),
            )
        except elbv2.PriorityInUse:
            ctx.progress(f"priority {priority} was taken meanwhile, choosing another")
            continue
        ctx.progress(f"{ctx.names.host} -> priority {rule.priority}")
        return {"arn": rule.arn, "priority": rule.priority}
    raise ExternalCallFailed("elasticloadbalancing:CreateRule", "PriorityInUse",
                             f"no free priority after {PRIORITY_ATTEMPTS} attempts")


def remove_listener_rules(ctx: StepContext) -> dict:
    group = elbv2.find_target_group(name=ctx.names.target_group)
    rules = [
        r for r in elbv2.list_rules(listener_arn=ctx.config.listener_arn)
        if ctx.names.host in r.hosts or (group and group.arn in r.target_group_arns)
    ]
    if not rules:
        raise Skip("no rule for this staging on the listener")
    for rule in rules:
        elbv2.delete_rule(arn=rule.arn)
    return {"deleted": [r.arn for r in rules]}


def remove_target_group(ctx: StepContext) -> dict:
    group = elbv2.find_target_group(name=ctx.names.target_group)
    if group is None:
        raise Skip(f"{ctx.names.target_group} does not exist")
    elbv2.delete_target_group(arn=group.arn)
    return {"deleted": group.arn}
