"""The staging's target group and its host-header rules on the dynamic stagings listener: the
rule that forwards (after signing people in, with DS_STAGING_AUTH=oidc) and, with
DS_STAGING_BYPASS_HEADER, the rule before it that lets automated tests through with the
staging's bypass token (kept in Secrets Manager, dynamic-stagings/NAME/bypass-token)."""

import dataclasses
import secrets
import zlib
from dataclasses import dataclass

from ..aws import elbv2, secretsmanager
from ..config import EngineConfig
from ..errors import ExternalCallFailed, Refusal, UserError
from ..host import HostEnvironment, read_host_environment
from ..names import ResourceNames, staging_tags
from ..stepkit import Skip, StepContext

PRIORITY_ATTEMPTS = 10
BYPASS_BYTES = 32
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


# --- the staging's listener rules --------------------------------------------------------------

BYPASS, MAIN = "bypass", "main"


@dataclass(frozen=True)
class StagingRule:
    """One listener rule of a staging's host, as ``staging_rules`` plans it."""

    role: str  # BYPASS or MAIN
    target_group_arn: str
    sign_in: elbv2.OidcSignIn | None = None
    header: elbv2.HeaderMatch | None = None

    def matches(self, rule: elbv2.Rule) -> bool:
        if self.header is not None:
            return self.header.name.lower() in rule.header_names
        return not rule.header_names


def bypass_wanted(config: EngineConfig) -> bool:
    return config.stagings_need_sign_in and bool(config.staging_bypass_header)


def session_cookie_name(staging_name: str) -> str:
    """Per staging: signing in to one staging never stands for another's session."""
    return f"AWSELBAuthSessionCookie-{staging_name}"


def staging_sign_in(config: EngineConfig, staging_name: str) -> elbv2.OidcSignIn:
    oidc = config.staging_oidc
    return elbv2.OidcSignIn(
        issuer=oidc.issuer,
        authorization_endpoint=oidc.authorization_endpoint,
        token_endpoint=oidc.token_endpoint,
        userinfo_endpoint=oidc.userinfo_endpoint,
        client_id=oidc.client_id,
        client_secret=secretsmanager.read_secret(secret_id=oidc.client_secret_name),
        session_cookie_name=session_cookie_name(staging_name),
    )


def staging_rules(ctx: StepContext, target_group_arn: str) -> list[StagingRule]:
    """Every rule the staging's host gets, highest priority first. With DS_STAGING_AUTH=oidc
    the main rule signs people in with the provider before it forwards; with
    DS_STAGING_BYPASS_HEADER too, a rule before it forwards requests that carry the staging's
    bypass token in that header without signing in (automated tests). Anything that puts a
    staging's rules back (a create, a wake) builds them here."""
    config = ctx.config
    if not config.stagings_need_sign_in:
        return [StagingRule(MAIN, target_group_arn)]
    rules = []
    if bypass_wanted(config):
        header = elbv2.HeaderMatch(config.staging_bypass_header, read_bypass_token(ctx))
        rules.append(StagingRule(BYPASS, target_group_arn, header=header))
    rules.append(StagingRule(MAIN, target_group_arn,
                             sign_in=staging_sign_in(config, ctx.staging.name)))
    return rules


def _priorities_for(wanted: list[StagingRule], present: dict[str, int], used: set[int],
                    name: str) -> dict[str, int]:
    """Free priorities for the rules not present, keeping ``wanted``'s order (a lower number
    is looked at first) around the ones present."""
    chosen = dict(present)
    taken = set(used)
    for index, rule in enumerate(wanted):
        if rule.role in chosen:
            continue
        below = [chosen[r.role] for r in wanted[:index] if r.role in chosen]
        above = [chosen[r.role] for r in wanted[index + 1:] if r.role in chosen]
        low, high = max(below, default=0), min(above, default=elbv2.MAX_PRIORITY + 1)
        if low == 0 and high > elbv2.MAX_PRIORITY:
            priority = choose_priority(taken, name)
        elif low == 0:  # the highest free one below the next rule
            priority = next((p for p in range(high - 1, 0, -1) if p not in taken), None)
        else:
            priority = next((p for p in range(low + 1, high) if p not in taken), None)
        if priority is None:
            raise ExternalCallFailed("elasticloadbalancing:CreateRule", "TooManyRules",
                                     f"no free rule priority between {low} and {high}")
        chosen[rule.role] = priority
        taken.add(priority)
    return chosen


def _present(wanted: list[StagingRule], own: list[elbv2.Rule]) -> dict[str, elbv2.Rule]:
    found = {}
    for rule in wanted:
        match = next((r for r in own if rule.matches(r)), None)
        if match is not None:
            found[rule.role] = match
    return found


def put_staging_rules(ctx: StepContext, target_group_arn: str) -> dict[str, elbv2.Rule]:
    """Make whichever of the staging's rules is missing (an earlier attempt may have made
    some); returns every rule by role."""
    wanted = staging_rules(ctx, target_group_arn)
    for _ in range(PRIORITY_ATTEMPTS):
        ctx.check_cancelled()
        rules = elbv2.list_rules(listener_arn=ctx.config.listener_arn)
        present = _present(wanted, [r for r in rules if ctx.names.host in r.hosts])
        if len(present) == len(wanted):
            return present
        priorities = _priorities_for(
            wanted, {role: rule.priority for role, rule in present.items()},
            {r.priority for r in rules if r.priority}, ctx.staging.name)
        try:
            for rule in wanted:
                if rule.role in present:
                    continue
                made = elbv2.create_rule(
                    listener_arn=ctx.config.listener_arn, priority=priorities[rule.role],
                    host=ctx.names.host, target_group_arn=rule.target_group_arn,
                    tags=staging_tags(ctx.staging.name), sign_in=rule.sign_in,
                    header=rule.header)
                ctx.progress(f"{ctx.names.host}{' with the bypass header' if rule.header else ''}"
                             f" -> priority {made.priority}"
                             f"{', signing people in first' if rule.sign_in else ''}")
        except elbv2.PriorityInUse as exc:
            ctx.progress(f"priority {exc.args[0]} was taken meanwhile, choosing another")
            continue
    raise ExternalCallFailed("elasticloadbalancing:CreateRule", "PriorityInUse",
                             f"no free priority after {PRIORITY_ATTEMPTS} attempts")


def create_listener_rule(ctx: StepContext) -> dict:
    rules = put_staging_rules(ctx, ctx.output("target_group")["arn"])
    main = rules[MAIN]
    output = {"arn": main.arn, "priority": main.priority}
    if BYPASS in rules:
        output.update(bypass_arn=rules[BYPASS].arn, bypass_priority=rules[BYPASS].priority)
    return output


# --- the bypass token --------------------------------------------------------------------------


def read_bypass_token(ctx: StepContext) -> str:
    name = ctx.names.bypass_token_secret
    token = bypass_token_named(name)
    if token is None:
        raise ExternalCallFailed("secretsmanager:DescribeSecret", "ResourceNotFoundException",
                                 f"{name} does not exist: the staging's bypass token was never "
                                 "made")
    return token


def bypass_token_named(name: str) -> str | None:
    arn = secretsmanager.find_secret_arn(name=name)
    return None if arn is None else secretsmanager.read_secret(secret_id=arn)


def bypass_token_of(staging_name: str, config: EngineConfig) -> str | None:
    """The staging's bypass token, for staff to hand to automated tests; None when it has
    none."""
    return bypass_token_named(ResourceNames(staging_name, config.domain).bypass_token_secret)


def make_bypass_token(ctx: StepContext) -> dict:
    """The staging's own bypass token; the one an earlier attempt made is kept (a rule may
    already carry it)."""
    name = ctx.names.bypass_token_secret
    arn = secretsmanager.find_secret_arn(name=name)
    if arn is None:
        arn = secretsmanager.store_secret(name=name, value=secrets.token_urlsafe(BYPASS_BYTES),
                                          tags=staging_tags(ctx.staging.name))
    return {"secret_arn": arn}


def remove_bypass_token(ctx: StepContext) -> dict:
    # Asked first: whether DeleteSecret of a missing name is an error is not to be relied on.
    if secretsmanager.find_secret_arn(name=ctx.names.bypass_token_secret) is None:
        raise Skip("no bypass token")
    if not secretsmanager.delete_secret(name=ctx.names.bypass_token_secret):
        raise Skip("no bypass token")
    return {"deleted": ctx.names.bypass_token_secret}


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
