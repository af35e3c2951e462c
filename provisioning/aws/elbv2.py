"""Elastic Load Balancing v2: the staging's target group and its listener rules.

IAM: elasticloadbalancing:DescribeListeners, DescribeLoadBalancers, DescribeTargetGroups,
DescribeTargetHealth, DescribeRules, CreateTargetGroup, ModifyTargetGroupAttributes,
DeleteTargetGroup, CreateRule, DeleteRule, AddTags.
"""

from dataclasses import dataclass

from botocore.exceptions import ClientError

from .base import AwsError, as_key_value_list, client, error_code, translated_errors

# ALB limits: rule priorities are 1..50000; one ALB holds at most 100 rules (default rules
# excepted) across its listeners and 100 target groups (neither adjustable).
MAX_PRIORITY = 50_000
MAX_RULES_PER_ALB = 100
MAX_TARGET_GROUPS_PER_ALB = 100


class PriorityInUse(Exception):
    """Another rule took the priority between our look and our create."""


@dataclass(frozen=True)
class TargetGroup:
    arn: str
    name: str
    vpc_id: str


@dataclass(frozen=True)
class HealthCheck:
    """A target group's health check, as CreateTargetGroup takes it."""

    path: str
    matcher: str  # HTTP codes: "200", "200-399", "200,302"
    port: str  # "traffic-port" or a port number
    protocol: str
    interval_seconds: int
    timeout_seconds: int
    healthy_threshold: int
    unhealthy_threshold: int


@dataclass(frozen=True)
class TargetHealth:
    state: str  # initial, healthy, unhealthy, draining, unused, unavailable
    reason: str
    description: str


@dataclass(frozen=True)
class Rule:
    arn: str
    priority: int | None  # None for the listener's default rule
    hosts: tuple[str, ...]
    target_group_arns: tuple[str, ...]
    # Names (lower case) of the rule's http-header conditions, and its actions' types in order.
    header_names: tuple[str, ...] = ()
    action_types: tuple[str, ...] = ()


@dataclass(frozen=True)
class OidcSignIn:
    """An authenticate-oidc action's configuration (the load balancer signs people in)."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    userinfo_endpoint: str
    client_id: str
    client_secret: str
    session_cookie_name: str
    scope: str = "openid email"

    def __repr__(self) -> str:  # never the client secret, in a traceback or a log line
        return f"OidcSignIn(issuer={self.issuer!r}, client_id={self.client_id!r})"


@dataclass(frozen=True)
class HeaderMatch:
    """An http-header condition: the header ``name`` carries exactly ``value``."""

    name: str
    value: str

    def __repr__(self) -> str:
        return f"HeaderMatch(name={self.name!r})"


def rule_conditions(*, host: str, header: HeaderMatch | None = None) -> list[dict]:
    conditions = [{"Field": "host-header", "HostHeaderConfig": {"Values": [host]}}]
    if header is not None:
        conditions.append({"Field": "http-header", "HttpHeaderConfig": {
            "HttpHeaderName": header.name, "Values": [header.value]}})
    return conditions


def rule_actions(*, target_group_arn: str, sign_in: OidcSignIn | None = None) -> list[dict]:
    """Forward to the group; with ``sign_in``, authenticate first (Order 1, then forward Order
    2: an ALB runs a rule's actions by Order, and only the last may answer the request)."""
    forward = {"Type": "forward", "TargetGroupArn": target_group_arn}
    if sign_in is None:
        return [forward]
    authenticate = {"Type": "authenticate-oidc", "Order": 1, "AuthenticateOidcConfig": {
        "Issuer": sign_in.issuer,
        "AuthorizationEndpoint": sign_in.authorization_endpoint,
        "TokenEndpoint": sign_in.token_endpoint,
        "UserInfoEndpoint": sign_in.userinfo_endpoint,
        "ClientId": sign_in.client_id,
        "ClientSecret": sign_in.client_secret,
        "SessionCookieName": sign_in.session_cookie_name,
        "Scope": sign_in.scope,
        "OnUnauthenticatedRequest": "authenticate",
    }}
    return [authenticate, {**forward, "Order": 2}]


def listener_vpc(*, listener_arn: str) -> str:
    with translated_errors("elasticloadbalancing:DescribeListeners"):
        listener = client("elbv2").describe_listeners(ListenerArns=[listener_arn])["Listeners"][0]
        lb = client("elbv2").describe_load_balancers(
            LoadBalancerArns=[listener["LoadBalancerArn"]]
        )["LoadBalancers"][0]
    return lb["VpcId"]


def find_target_group(*, name: str) -> TargetGroup | None:
    with translated_errors("elasticloadbalancing:DescribeTargetGroups"):
        try:
            raw = client("elbv2").describe_target_groups(Names=[name])["TargetGroups"][0]
        except ClientError as exc:
            if error_code(exc) == "TargetGroupNotFound":
                return None
            raise
    return TargetGroup(arn=raw["TargetGroupArn"], name=raw["TargetGroupName"],
                       vpc_id=raw.get("VpcId", ""))


def target_group_exists(*, arn: str) -> bool:
    with translated_errors("elasticloadbalancing:DescribeTargetGroups"):
        try:
            client("elbv2").describe_target_groups(TargetGroupArns=[arn])
        except ClientError as exc:
            if error_code(exc) == "TargetGroupNotFound":
                return False
            raise
    return True


def health_check(*, arn: str) -> HealthCheck | None:
    """The health check of the target group ``arn``, with ELB's defaults for what it omits;
    None when there is no such target group."""
    with translated_errors("elasticloadbalancing:DescribeTargetGroups"):
        try:
            raw = client("elbv2").describe_target_groups(TargetGroupArns=[arn])["TargetGroups"][0]
        except ClientError as exc:
            if error_code(exc) == "TargetGroupNotFound":
                return None
            raise
    return HealthCheck(
        path=raw.get("HealthCheckPath") or "/",
        matcher=(raw.get("Matcher") or {}).get("HttpCode") or "200",
        port=str(raw.get("HealthCheckPort") or "traffic-port"),
        protocol=raw.get("HealthCheckProtocol") or "HTTP",
        interval_seconds=int(raw.get("HealthCheckIntervalSeconds") or 30),
        timeout_seconds=int(raw.get("HealthCheckTimeoutSeconds") or 5),
        healthy_threshold=int(raw.get("HealthyThresholdCount") or 5),
        unhealthy_threshold=int(raw.get("UnhealthyThresholdCount") or 2),
    )


def create_target_group(
    *, name: str, vpc_id: str, port: int, health_check: HealthCheck, tags: dict[str, str]
) -> TargetGroup:
    with translated_errors("elasticloadbalancing:CreateTargetGroup"):
        raw = client("elbv2").create_target_group(
            Name=name,
            Protocol="HTTP",
            Port=port,
            VpcId=vpc_id,
            TargetType="ip",  # Fargate tasks register by IP
            HealthCheckProtocol=health_check.protocol,
            HealthCheckPort=health_check.port,
            HealthCheckPath=health_check.path,
            Matcher={"HttpCode": health_check.matcher},
            HealthCheckIntervalSeconds=health_check.interval_seconds,
            HealthCheckTimeoutSeconds=health_check.timeout_seconds,
            HealthyThresholdCount=health_check.healthy_threshold,
            UnhealthyThresholdCount=health_check.unhealthy_threshold,
            Tags=as_key_value_list(tags),
        )["TargetGroups"][0]
    return TargetGroup(arn=raw["TargetGroupArn"], name=raw["TargetGroupName"], vpc_id=vpc_id)


def set_deregistration_delay(*, arn: str, seconds: int) -> None:
    with translated_errors("elasticloadbalancing:ModifyTargetGroupAttributes"):
        client("elbv2").modify_target_group_attributes(
            TargetGroupArn=arn,
            Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": str(seconds)}],
        )


def delete_target_group(*, arn: str) -> None:
    with translated_errors("elasticloadbalancing:DeleteTargetGroup"):
        try:
            client("elbv2").delete_target_group(TargetGroupArn=arn)
        except ClientError as exc:
            if error_code(exc) != "TargetGroupNotFound":
                raise


def target_health(*, arn: str) -> list[TargetHealth]:
    """The health of every registered target, with ELB's reason when it is not healthy."""
    with translated_errors("elasticloadbalancing:DescribeTargetHealth"):
        raw = client("elbv2").describe_target_health(TargetGroupArn=arn)
    return [
        TargetHealth(state=d["TargetHealth"]["State"], reason=d["TargetHealth"].get("Reason", ""),
                     description=d["TargetHealth"].get("Description", ""))
        for d in raw.get("TargetHealthDescriptions", [])
    ]


def target_states(*, arn: str) -> list[str]:
    """The health state of every registered target ("healthy", "initial", ...)."""
    return [target.state for target in target_health(arn=arn)]


def _rule_from(raw: dict) -> Rule:
    hosts: list[str] = []
    header_names: list[str] = []
    for condition in raw.get("Conditions", []):
        if condition.get("Field") == "host-header":
            config = condition.get("HostHeaderConfig", {})
            hosts.extend(config.get("Values") or condition.get("Values") or [])
        elif condition.get("Field") == "http-header":
            header_names.append(condition.get("HttpHeaderConfig", {}).get("HttpHeaderName", ""))
    actions = sorted(raw.get("Actions", []), key=lambda a: int(a.get("Order") or 0))
    targets = [a["TargetGroupArn"] for a in actions if a.get("TargetGroupArn")]
    priority = raw.get("Priority")
    return Rule(
        arn=raw["RuleArn"],
        priority=int(priority) if priority and priority.isdigit() else None,
        hosts=tuple(h.lower() for h in hosts),
        target_group_arns=tuple(targets),
        header_names=tuple(name.lower() for name in header_names),
        action_types=tuple(a.get("Type", "") for a in actions),
    )


def list_rules(*, listener_arn: str) -> list[Rule]:
    rules: list[Rule] = []
    marker = None
    with translated_errors("elasticloadbalancing:DescribeRules"):
        while True:
            kwargs = {"ListenerArn": listener_arn, "PageSize": 400}
            if marker:
                kwargs["Marker"] = marker
            raw = client("elbv2").describe_rules(**kwargs)
            rules.extend(_rule_from(r) for r in raw["Rules"])
            marker = raw.get("NextMarker")
            if not marker:
                return rules


def create_rule(
    *, listener_arn: str, priority: int, host: str, target_group_arn: str, tags: dict[str, str],
    sign_in: OidcSignIn | None = None, header: HeaderMatch | None = None,
) -> Rule:
    """A rule for ``host`` (and, with ``header``, only requests carrying it) that forwards to
    the group, after signing people in with ``sign_in``."""
    with translated_errors("elasticloadbalancing:CreateRule"):
        try:
            raw = client("elbv2").create_rule(
                ListenerArn=listener_arn,
                Priority=priority,
                Conditions=rule_conditions(host=host, header=header),
                Actions=rule_actions(target_group_arn=target_group_arn, sign_in=sign_in),
                Tags=as_key_value_list(tags),
            )["Rules"][0]
        except ClientError as exc:
            if error_code(exc) == "PriorityInUse":
                raise PriorityInUse(priority) from exc
            raise
    return _rule_from(raw)


def delete_rule(*, arn: str) -> None:
    with translated_errors("elasticloadbalancing:DeleteRule"):
        try:
            client("elbv2").delete_rule(RuleArn=arn)
        except ClientError as exc:
            if error_code(exc) != "RuleNotFound":
                raise


@dataclass(frozen=True)
class Listener:
    arn: str
    load_balancer_arn: str
    protocol: str
    port: int


@dataclass(frozen=True)
class LoadBalancer:
    arn: str
    name: str
    kind: str  # "application", "network" or "gateway"
    state: str
    vpc_id: str


def _listener_from(raw: dict) -> Listener:
    return Listener(arn=raw["ListenerArn"], load_balancer_arn=raw["LoadBalancerArn"],
                    protocol=raw.get("Protocol", ""), port=int(raw.get("Port") or 0))


def describe_listener(*, listener_arn: str) -> Listener | None:
    with translated_errors("elasticloadbalancing:DescribeListeners"):
        try:
            raw = client("elbv2").describe_listeners(ListenerArns=[listener_arn])["Listeners"]
        except ClientError as exc:
            if error_code(exc) == "ListenerNotFound":
                return None
            raise
    return _listener_from(raw[0]) if raw else None


def list_listeners(*, load_balancer_arn: str) -> list[Listener]:
    listeners: list[Listener] = []
    with translated_errors("elasticloadbalancing:DescribeListeners"):
        pages = client("elbv2").get_paginator("describe_listeners").paginate(
            LoadBalancerArn=load_balancer_arn
        )
        for page in pages:
            listeners.extend(_listener_from(raw) for raw in page["Listeners"])
    return listeners


def describe_load_balancer(*, arn: str) -> LoadBalancer | None:
    with translated_errors("elasticloadbalancing:DescribeLoadBalancers"):
        try:
            raw = client("elbv2").describe_load_balancers(LoadBalancerArns=[arn])
        except ClientError as exc:
            if error_code(exc) == "LoadBalancerNotFound":
                return None
            raise
    found = raw["LoadBalancers"][0]
    return LoadBalancer(
        arn=found["LoadBalancerArn"], name=found["LoadBalancerName"],
        kind=found.get("Type", ""), state=(found.get("State") or {}).get("Code", ""),
        vpc_id=found.get("VpcId", ""),
    )


def count_target_groups(*, load_balancer_arn: str) -> int:
    """Target groups some listener or rule of the load balancer forwards to."""
    count = 0
    with translated_errors("elasticloadbalancing:DescribeTargetGroups"):
        pages = client("elbv2").get_paginator("describe_target_groups").paginate(
            LoadBalancerArn=load_balancer_arn
        )
        try:
            for page in pages:
                count += len(page["TargetGroups"])
        except ClientError as exc:
            # Some endpoints answer a load balancer with no target group this way.
            if error_code(exc) != "TargetGroupNotFound":
                raise
    return count


# --- how full the load balancer is (checked before a create makes anything) ---------------------


@dataclass(frozen=True)
class LoadBalancerUsage:
    """What counts against the load balancer's fixed quotas: rules (default rules excepted)
    across ALL its listeners, and target groups attached to it."""

    load_balancer_arn: str
    rules: int
    target_groups: int


def load_balancer_usage(*, listener_arn: str) -> LoadBalancerUsage:
    listener = describe_listener(listener_arn=listener_arn)
    if listener is None:
        raise AwsError("elasticloadbalancing:DescribeListeners", "ListenerNotFound",
                       f"{listener_arn} does not exist")
    load_balancer = listener.load_balancer_arn
    rules = sum(1 for other in list_listeners(load_balancer_arn=load_balancer)
                for rule in list_rules(listener_arn=other.arn) if rule.priority is not None)
    return LoadBalancerUsage(load_balancer, rules,
                             count_target_groups(load_balancer_arn=load_balancer))
