"""``ds doctor``: the configured host checked against everything a create needs.

Each check is a function of the engine's settings returning one or more ``Check`` lines: ``ok``,
``warn`` (a create works, but something deserves a look) or ``fail`` (a create would fail, or
leave a staging that does not work), with what was found and how to fix it. A check whose AWS
call fails is a ``fail`` naming the call and AWS's error code and message; the other checks still
run. Secrets are read to judge their shape and never shown.

The Setup page runs the same report; it costs a few dozen AWS calls, so the page keeps the last
one in Django's cache (``remember``), and the fleet page reads only that (``last_report``).
"""

import logging
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property

from django.core.cache import cache

from . import oidc, permissions
from .account_api import targets_staging
from .aws import ecs, elbv2, iam, rds, secretsmanager, sts
from .aws.base import AwsError, current_region
from .config import EngineConfig
from .errors import ExternalCallFailed

logger = logging.getLogger(__name__)

OK, WARN, FAIL = "ok", "warn", "fail"
SNAPSHOT_MAX_AGE = timedelta(days=7)
QUOTA_WARN_RATIO = 0.8
DB_INSTANCES_WARN_FREE = 5
ACCOUNT_API_PROBE_SECONDS = 5.0
LONG_ARN_SETTINGS = ("serviceLongArnFormat", "taskLongArnFormat")
DATABASE_SECRETS_STATEMENT = "ReadDatabasePasswordSecrets"
CACHE_KEY = "ds-doctor-report"
CACHE_SECONDS = 5 * 60
# The longest HttpHeaderName a rule's http-header condition takes.
BYPASS_HEADER_MAX = 40


@dataclass(frozen=True)
class Check:
    check: str
    status: str  # OK, WARN or FAIL
    found: str
    fix: str = ""


@dataclass(frozen=True)
class Report:
    checks: tuple[Check, ...]
    at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def failures(self) -> int:
        return sum(1 for c in self.checks if c.status == FAIL)

    @property
    def warnings(self) -> int:
        return sum(1 for c in self.checks if c.status == WARN)

    @property
    def passed(self) -> bool:
        return self.failures == 0

    def as_list(self) -> list[dict]:
        return [asdict(c) for c in self.checks]


class _Host:
    """What several checks read, asked of AWS once per report."""

    def __init__(self, config: EngineConfig):
        self.config = config

    @cached_property
    def web(self) -> ecs.Service | None:
        return ecs.describe_service(cluster=self.config.cluster, service=self.config.web_service)

    @cached_property
    def worker(self) -> ecs.Service | None:
        return ecs.describe_service(cluster=self.config.cluster,
                                    service=self.config.worker_service)

    @cached_property
    def listener(self) -> elbv2.Listener | None:
        if not self.config.listener_arn:
            return None
        return elbv2.describe_listener(listener_arn=self.config.listener_arn)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


# --- credentials and region --------------------------------------------------------------------

def check_credentials(host: _Host) -> list[Check]:
    region = current_region()
    if not region:
        return [Check("credentials", FAIL, "no region configured",
                      "Set AWS_REGION (or a region in the AWS profile) to the host's region.")]
    identity = sts.caller_identity()
    return [Check("credentials", OK,
                  f"account {identity.account} as {identity.arn}, region {region}")]


# --- ECS: cluster, services, task definitions --------------------------------------------------

def check_cluster(host: _Host) -> list[Check]:
    cluster = ecs.describe_cluster(cluster=host.config.cluster)
    if cluster is None or cluster.status != "ACTIVE":
        state = "not found" if cluster is None else f"{cluster.status}, not ACTIVE"
        return [Check("cluster", FAIL, f"{host.config.cluster}: {state}",
                      "Set DS_CLUSTER to the host staging's ECS cluster.")]
    return [Check("cluster", OK, f"{cluster.name} is ACTIVE")]


def _service_check(host: _Host, role: str) -> list[Check]:
    name = host.config.web_service if role == "web" else host.config.worker_service
    variable = "DS_WEB_SERVICE" if role == "web" else "DS_WORKER_SERVICE"
    service = host.web if role == "web" else host.worker
    label = f"{role} service"
    if service is None:
        return [Check(label, FAIL, f"{name}: not found in cluster {host.config.cluster}",
                      f"Set {variable} to the host staging's {role} service.")]
    found = f"{service.name}: {service.status}, {service.running}/{service.desired} running"
    if service.status != "ACTIVE":
        return [Check(label, FAIL, found,
                      f"The service is being deleted: point {variable} at the live one.")]
    awsvpc = service.network_configuration.get("awsvpcConfiguration") or {}
    if not awsvpc.get("subnets"):
        return [Check(label, FAIL, f"{found}; no awsvpc network configuration (subnets)",
                      "Stagings run on Fargate and copy the host service's subnets and security "
                      "groups: the host service must use the awsvpc network mode.")]
    checks = [Check(label, OK, f"{found}, {_plural(len(awsvpc['subnets']), 'subnet')}")]
    checks.extend(_task_definition_checks(host, role, service))
    return checks


def check_web_service(host: _Host) -> list[Check]:
    return _service_check(host, "web")


def check_worker_service(host: _Host) -> list[Check]:
    return _service_check(host, "worker")


def _container_sizes(definition: dict) -> tuple[int, int]:
    containers = definition.get("containerDefinitions", [])
    cpu = sum(int(c.get("cpu") or 0) for c in containers)
    memory = sum(int(c.get("memory") or c.get("memoryReservation") or 0) for c in containers)
    return cpu, memory


def _task_definition_checks(host: _Host, role: str, service: ecs.Service) -> list[Check]:
    label = f"{role} task definition"
    definition = ecs.describe_task_definition(task_definition=service.task_definition)
    revision = definition["taskDefinitionArn"].rsplit("/", 1)[-1]
    problems = []
    compatibilities = definition.get("requiresCompatibilities") or []
    if "FARGATE" not in compatibilities:
        problems.append(f"requires {'/'.join(compatibilities) or 'EC2'}, not FARGATE")
    network_mode = definition.get("networkMode") or "bridge"
    if network_mode != "awsvpc":
        problems.append(f"network mode {network_mode}, not awsvpc")
    if problems:
        return [Check(label, FAIL, f"{revision}: {'; '.join(problems)}",
                      "Stagings are cloned onto Fargate: register the host's task definition "
                      "with requiresCompatibilities FARGATE and networkMode awsvpc.")]
    cpu_setting, memory_setting = (
        ("DS_WEB_CPU", "DS_WEB_MEMORY") if role == "web" else ("DS_WORKER_CPU", "DS_WORKER_MEMORY")
    )
    cpu_target = int(host.config.web_cpu if role == "web" else host.config.worker_cpu)
    memory_target = int(host.config.web_memory if role == "web" else host.config.worker_memory)
    cpu, memory = _container_sizes(definition)
    checks = []
    if cpu > cpu_target or memory > memory_target:
        checks.append(Check(
            label, WARN,
            f"{revision}: its containers ask for {cpu} CPU units and {memory} MiB together, more "
            f"than a staging's {cpu_target} CPU / {memory_target} MiB: the clone scales the "
            "container sizes down to fit",
            f"Fine if the app runs in {memory_target} MiB; otherwise raise {cpu_setting} / "
            f"{memory_setting} (a valid Fargate pair).",
        ))
    else:
        checks.append(Check(label, OK, f"{revision}: Fargate, awsvpc, containers fit "
                                       f"{cpu_target} CPU / {memory_target} MiB"))
    if role == "web":
        checks.append(_web_container_check(service, definition))
    return checks


def _web_container_check(service: ecs.Service, definition: dict) -> Check:
    containers = {c["name"]: c for c in definition.get("containerDefinitions", [])}
    targeted = [lb for lb in service.load_balancers if lb.get("containerName")]
    if not targeted:
        first = next(
            ((c["name"], m["containerPort"]) for c in containers.values()
             for m in c.get("portMappings", [])),
            None,
        )
        if first is None:
            return Check("web container", FAIL,
                         "the host web service has no load balancer and no container maps a "
                         "port", "Attach the host web service to its target group.")
        return Check("web container", WARN,
                     f"the host web service has no load balancer; stagings will send traffic "
                     f"to {first[0]}:{first[1]}, its first port mapping",
                     "Attach the host web service to a target group naming the container.")
    lb = targeted[0]
    name, port = lb["containerName"], int(lb.get("containerPort") or 0)
    container = containers.get(name)
    if container is None:
        return Check("web container", FAIL,
                     f"the load balancer targets container {name!r}, which the task "
                     "definition does not have",
                     "Redeploy the host web service so its load balancer names a container of "
                     "its task definition.")
    ports = {int(m.get("containerPort") or 0) for m in container.get("portMappings", [])}
    if port not in ports:
        return Check("web container", FAIL,
                     f"the load balancer targets {name}:{port}, a port the container does not "
                     "map", "Add the port mapping to the host's web task definition.")
    return Check("web container", OK, f"{name}:{port}, image {container.get('image', '?')}")


# --- load balancer: listener, quotas, health check ---------------------------------------------

def check_listener(host: _Host) -> list[Check]:
    if not host.config.listener_arn:
        return [Check("listener", FAIL, "DS_LISTENER_ARN is not set",
                      "Set DS_LISTENER_ARN to the ALB listener the stagings' rules go on.")]
    listener = host.listener
    if listener is None:
        return [Check("listener", FAIL, f"{host.config.listener_arn}: not found",
                      "Set DS_LISTENER_ARN to an existing ALB listener (HTTPS, usually 443).")]
    balancer = elbv2.describe_load_balancer(arn=listener.load_balancer_arn)
    if balancer is None:
        return [Check("listener", FAIL, "its load balancer is gone",
                      "Set DS_LISTENER_ARN to a listener of a live load balancer.")]
    found = f"{listener.protocol}:{listener.port} on {balancer.name} ({balancer.state})"
    if balancer.kind != "application":
        return [Check("listener", FAIL, f"{found}: a {balancer.kind} load balancer",
                      "Host-header rules need an Application Load Balancer listener.")]
    checks = [Check("listener", OK, found)]
    usage = elbv2.load_balancer_usage(listener_arn=listener.arn)
    checks.append(_quota_check(
        "listener rules", usage.rules, elbv2.MAX_RULES_PER_ALB,
        f"rules on all listeners of {balancer.name} (default rules not counted)",
        f"Each staging takes {_plural(host.config.rules_per_staging, 'rule')}. Destroy idle "
        "stagings, remove unused rules, or put the stagings on a listener of another load "
        "balancer (the 100 is not adjustable).", per_staging=host.config.rules_per_staging,
    ))
    checks.append(_quota_check(
        "target groups", usage.target_groups, elbv2.MAX_TARGET_GROUPS_PER_ALB,
        f"target groups attached to {balancer.name}",
        "Each staging attaches one target group. Destroy idle stagings or detach unused target "
        "groups (the 100 per load balancer is not adjustable).",
    ))
    return checks


def _quota_check(name: str, used: int, maximum: int, what: str, fix: str,
                 per_staging: int = 1) -> Check:
    found = f"{used} of {maximum} {what}"
    if used + per_staging > maximum:
        return Check(name, FAIL, f"{found}: no room for a staging", fix)
    if used > maximum * QUOTA_WARN_RATIO:
        return Check(name, WARN, f"{found}: room for {maximum - used} more", fix)
    return Check(name, OK, found)


def check_health_check(host: _Host) -> list[Check]:
    web = host.web
    if web is None:
        return [Check("health check", FAIL, "the host web service was not found",
                      "Fix the web service first (DS_WEB_SERVICE).")]
    arns = [lb["targetGroupArn"] for lb in web.load_balancers if lb.get("targetGroupArn")]
    if not arns:
        return [Check("health check", FAIL,
                      "the host web service has no target group to copy the health check from",
                      "Stagings are checked the way the host is: put the host web service "
                      "behind a target group (DS_WEB_SERVICE).")]
    check = elbv2.health_check(arn=arns[0])
    if check is None:
        return [Check("health check", FAIL, f"the host's target group {arns[0]} is gone",
                      "Redeploy the host web service with an existing target group.")]
    return [Check("health check", OK,
                  f"{check.protocol} {check.path}, healthy on {check.matcher}, "
                  f"every {check.interval_seconds} s (host web target group)")]


# --- RDS: snapshot sources and quota -----------------------------------------------------------

def _age(moment: datetime) -> str:
    hours = (datetime.now(UTC) - moment).total_seconds() / 3600
    return f"{hours:.0f} h old" if hours < 48 else f"{hours / 24:.0f} days old"


def _source_check(source: str) -> Check:
    label = f"snapshot source {source}"
    if rds.describe_instance(instance_id=source) is None:
        return Check(label, FAIL, "no such DB instance",
                     "Remove it from DS_SNAPSHOT_SOURCES or fix its name.")
    snapshot = rds.newest_available_snapshot(rds.list_snapshots(instance_id=source))
    if snapshot is None:
        return Check(label, FAIL, "no available snapshot",
                     "Turn on automated backups for the instance, or take a snapshot.")
    found = f"newest available snapshot {snapshot.identifier}, {_age(snapshot.created_at)}"
    if datetime.now(UTC) - snapshot.created_at > SNAPSHOT_MAX_AGE:
        return Check(label, WARN, found,
                     "Stagings would start with old data: check the instance's backups.")
    return Check(label, OK, found)


def check_snapshot_sources(host: _Host) -> list[Check]:
    if not host.config.snapshot_sources:
        return [Check("snapshot sources", FAIL, "none configured",
                      "Set DS_SNAPSHOT_SOURCES (the host's own DB instance first).")]
    return [_guarded(f"snapshot source {s}", lambda s=s: [_source_check(s)])[0]
            for s in host.config.snapshot_sources]


def check_db_instance_quota(host: _Host) -> list[Check]:
    quota = rds.instance_quota()
    free = quota.maximum - quota.used
    found = f"{quota.used} of {quota.maximum} DB instances in use"
    fix = ("Each dedicated-database staging (and each warm-pool database) is a DB instance: "
           "delete unused ones or ask AWS for a higher DB instances quota.")
    if free <= 0:
        return [Check("DB instance quota", FAIL, f"{found}: none free", fix)]
    if free < DB_INSTANCES_WARN_FREE:
        return [Check("DB instance quota", WARN, f"{found}: {free} free", fix)]
    return [Check("DB instance quota", OK, f"{found}: {free} free")]


# --- secrets -----------------------------------------------------------------------------------

def password_problem(value: str) -> str:
    """Why ``value`` (a secret's: a plain password, or RDS-managed JSON) cannot serve as a
    master password, or ""."""
    try:
        password = secretsmanager.parse_db_password(value, secret_id="the secret").password
    except ExternalCallFailed:
        return 'it is JSON without a "password" string'
    if not password:
        return "it is empty"
    return rds.master_password_problem(password)


def _secret_check(label: str, secret_id: str, setting: str) -> Check:
    try:
        value = secretsmanager.read_secret(secret_id=secret_id)
    except AwsError as exc:
        found = f"{secret_id}: {exc.call}: {exc.code}: {exc.message}"
        if exc.code == "ResourceNotFoundException":
            return Check(label, FAIL, found, f"Set {setting} to an existing secret (name or ARN).")
        return Check(label, FAIL, found,
                     "Allow the dashboard's role secretsmanager:GetSecretValue on the secret "
                     "(and kms:Decrypt on its key, if it has its own).")
    shape = "JSON" if value.lstrip().startswith("{") else "a plain string"
    problem = password_problem(value)
    if problem:
        return Check(label, FAIL, f"{secret_id} is readable, but {problem}",
                     f"Store the password as a plain string or as JSON with a \"password\" "
                     f"key, without \" / @ or spaces ({setting}).")
    return Check(label, OK, f"{secret_id}: readable, {shape} of the right shape")


def check_secrets(host: _Host) -> list[Check]:
    config = host.config
    checks: list[Check] = []
    needing_host = [s for s in config.snapshot_sources if config.needs_host_password(s)]
    if config.host_db_password_secret:
        checks += _guarded("host DB password secret", lambda: [_secret_check(
            "host DB password secret", config.host_db_password_secret,
            "DS_HOST_DB_PASSWORD_SECRET")])
    elif needing_host:
        checks.append(Check(
            "host DB password secret", FAIL,
            f"DS_HOST_DB_PASSWORD_SECRET is not set, and {', '.join(needing_host)} "
            f"{'needs' if len(needing_host) == 1 else 'need'} it",
            "Set DS_HOST_DB_PASSWORD_SECRET to the secret holding the host DB's master "
            "password, or give each such source its own with DS_SOURCE_DB_SECRETS.",
        ))
    else:
        checks.append(Check("host DB password secret", OK,
                            "not set; no source needs it"))
    for source, secret_id in config.source_db_secrets.items():
        label = f"source secret {source}"
        if source not in config.snapshot_sources:
            checks.append(Check(label, WARN, f"{source} is not in DS_SNAPSHOT_SOURCES",
                                "Remove the entry from DS_SOURCE_DB_SECRETS or add the source."))
            continue
        checks += _guarded(label, lambda label=label, secret_id=secret_id: [
            _secret_check(label, secret_id, "DS_SOURCE_DB_SECRETS")])
    return checks


# --- account API -------------------------------------------------------------------------------

def _probe(url: str, timeout: float) -> str:
    """Any HTTP answer, error statuses included, means something listens there."""
    request = urllib.request.Request(url, method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return f"HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}"


def check_account_api(host: _Host) -> list[Check]:
    url = host.config.account_api_url
    if not url:
        return [Check("account API", OK, "DS_ACCOUNT_API_URL is not set: stagings get no test "
                                         "account")]
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme not in {"http", "https"}:
        return [Check("account API", FAIL, f"{url} is not an http(s) URL",
                      "Set DS_ACCOUNT_API_URL to the app's account endpoint.")]
    if targets_staging(url):
        return [Check("account API", OK,
                      f"{url} is served by each staging itself: it cannot be checked before a "
                      "staging exists")]
    try:
        answer = _probe(url, min(ACCOUNT_API_PROBE_SECONDS, host.config.account_api_timeout))
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return [Check("account API", FAIL, f"{url}: no answer ({reason})",
                      "Check DS_ACCOUNT_API_URL and that the dashboard can reach the app.")]
    if not host.config.account_api_token:
        return [Check("account API", WARN,
                      f"{url} answers ({answer}), but DS_ACCOUNT_API_TOKEN is not set",
                      "Set DS_ACCOUNT_API_TOKEN unless the app's account API asks for none.")]
    return [Check("account API", OK, f"{url} answers ({answer})")]


# --- signing in (OpenID Connect) ---------------------------------------------------------------

# Made up: a provider judges the client before it looks at the code and the redirect URI.
PROBE_REDIRECT = "https://dynamic-stagings.invalid/oidc/callback/"


def _client_check(name: str, *, token_endpoint: str, client_id: str, client_secret: str,
                  setting: str, redirect_uri: str = PROBE_REDIRECT) -> Check:
    try:
        probe = oidc.probe_client(token_endpoint=token_endpoint, client_id=client_id,
                                  client_secret=client_secret, redirect_uri=redirect_uri)
    except oidc.ProviderUnreachable as exc:
        return Check(name, FAIL, str(exc), f"Check {setting} and that this machine reaches "
                                           "the provider.")
    found = f"{token_endpoint} answered {probe.answer} to client {client_id}"
    if probe.verdict == oidc.REFUSED:
        return Check(name, FAIL, f"{found}: the provider does not accept this client",
                     f"Check {setting}: the client id and its secret as the provider has them.")
    if probe.verdict == oidc.UNCLEAR:
        return Check(name, WARN, f"{found}: the provider failed, so the client is unchecked",
                     "Run ds doctor again later.")
    return Check(name, OK, f"{found} (a made-up code: the client itself passed)")


def check_sign_in(host: _Host) -> list[Check]:
    """The dashboard's identity provider: discovery document, client, who may come in."""
    config = host.config
    if not config.oidc_enabled:
        return [Check("sign-in", OK, "DS_OIDC_ISSUER is not set: user names and passwords")]
    try:
        metadata = oidc.discover(config.oidc_issuer)
    except oidc.ProviderUnreachable as exc:
        return [Check("sign-in", FAIL, str(exc),
                      "Set DS_OIDC_ISSUER to the provider's issuer URL (its discovery document "
                      "is ISSUER/.well-known/openid-configuration) and check that the dashboard "
                      "reaches it.")]
    logout = ("; logout ends its session too" if metadata.end_session_endpoint
              else "; it has no end_session_endpoint: logout ends only the dashboard's session")
    checks = [Check("sign-in", OK, f"{config.oidc_issuer}: discovery document read{logout}")]
    checks.append(_client_check(
        "sign-in client", token_endpoint=metadata.token_endpoint,
        client_id=config.oidc_client_id, client_secret=config.oidc_client_secret,
        setting="DS_OIDC_CLIENT_ID and DS_OIDC_CLIENT_SECRET"))
    if not config.oidc_allowed_domains:
        checks.append(Check("sign-in domains", WARN,
                            "DS_OIDC_ALLOWED_DOMAINS is not set: anybody the provider verifies "
                            "an e-mail for gets in",
                            "Set DS_OIDC_ALLOWED_DOMAINS to the company's e-mail domains, "
                            "unless the provider only has the company's people."))
    passwords = "on (DS_LOCAL_LOGIN=1)" if config.local_login else "off"
    checks.append(Check("password logins", OK, f"{passwords} beside the provider"))
    return checks


def _staging_sign_in_settings(config: EngineConfig) -> list[Check]:
    staging = config.staging_oidc
    missing = staging.missing()
    if missing:
        return [Check("staging sign-in", FAIL, f"DS_STAGING_AUTH=oidc without {', '.join(missing)}",
                      "Set them from the provider's discovery document (see README, "
                      "\"Signing in\").")]
    plain = [url for url in (staging.issuer, staging.authorization_endpoint,
                             staging.token_endpoint, staging.userinfo_endpoint)
             if not url.startswith("https://")]
    if plain:
        return [Check("staging sign-in", FAIL, f"not https: {', '.join(plain)}",
                      "The load balancer takes only https URLs for the issuer and endpoints.")]
    return []


def check_staging_sign_in(host: _Host) -> list[Check]:
    """DS_STAGING_AUTH=oidc: what each staging's authenticate-oidc action will need."""
    config = host.config
    if not config.stagings_need_sign_in:
        checks = [Check("staging sign-in", OK, "DS_STAGING_AUTH is not set: a staging is open "
                                               "to whoever reaches the load balancer")]
        if config.staging_bypass_header:
            checks.append(Check("staging bypass", WARN,
                                "DS_STAGING_BYPASS_HEADER is set, but without DS_STAGING_AUTH "
                                "there is no sign-in to skip", "Unset it, or set "
                                "DS_STAGING_AUTH=oidc."))
        return checks
    problems = _staging_sign_in_settings(config)
    if problems:
        return problems
    checks = []
    listener = host.listener
    if listener is not None and listener.protocol != "HTTPS":
        checks.append(Check(
            "staging sign-in", FAIL,
            f"the stagings' listener is {listener.protocol}:{listener.port}, and the load "
            "balancer signs people in (authenticate-oidc) only on HTTPS listeners",
            "Put the stagings on an HTTPS listener (443, with a certificate for "
            "*.DS_DOMAIN) and set DS_LISTENER_ARN to it."))
    staging = config.staging_oidc
    try:
        secret = secretsmanager.read_secret(secret_id=staging.client_secret_name)
    except ExternalCallFailed as exc:
        checks.append(Check("staging sign-in", FAIL,
                            f"DS_STAGING_OIDC_SECRET_NAME {staging.client_secret_name}: "
                            f"{exc.code}: {exc.message}",
                            "Store the stagings' client secret in that secret, readable by "
                            "the dashboard's role."))
        return checks
    checks.append(_client_check(
        "staging sign-in client", token_endpoint=staging.token_endpoint,
        client_id=staging.client_id, client_secret=secret,
        setting="DS_STAGING_OIDC_CLIENT_ID and DS_STAGING_OIDC_SECRET_NAME",
        redirect_uri=f"https://doctor.{config.domain}/oauth2/idpresponse"))
    if config.staging_bypass_header and len(config.staging_bypass_header) > BYPASS_HEADER_MAX:
        checks.append(Check("staging bypass", FAIL,
                            f"DS_STAGING_BYPASS_HEADER {config.staging_bypass_header!r} is "
                            f"longer than the {BYPASS_HEADER_MAX} characters a rule takes",
                            "Choose a shorter header name, e.g. X-Staging-Bypass."))
    if not any(check.status == FAIL for check in checks):
        checks.insert(0, Check(
            "staging sign-in", OK,
            f"each staging signs people in with {staging.issuer} (client {staging.client_id})"
            + (f", {config.staging_bypass_header} skips it with the staging's bypass token"
               if config.staging_bypass_header else "")))
    return checks


# --- ECS account settings ----------------------------------------------------------------------

def check_long_arns(host: _Host) -> list[Check]:
    settings = ecs.effective_account_settings()
    wrong = {name: settings.get(name, "not reported") for name in LONG_ARN_SETTINGS
             if settings.get(name) != "enabled"}
    if wrong:
        found = ", ".join(f"{name} {value}" for name, value in wrong.items())
        status = FAIL if any(v != "not reported" for v in wrong.values()) else WARN
        return [Check("ECS long ARNs", status, found,
                      "Tags (which find and sweep every staging's resources) need the long ARN "
                      "format: aws ecs put-account-setting-default --name serviceLongArnFormat "
                      "--value enabled (and taskLongArnFormat).")]
    return [Check("ECS long ARNs", OK, "serviceLongArnFormat and taskLongArnFormat enabled")]


# --- IAM ---------------------------------------------------------------------------------------

def _policy_source(caller_arn: str) -> str | None:
    """The IAM entity whose policies apply to the caller: a user's ARN as is, the role behind
    an assumed-role session (with its path, when IAM tells us), else None (root, federated)."""
    prefix, _, resource = caller_arn.partition(":assumed-role/")
    if resource:
        role = resource.split("/", 1)[0]
        account_part = prefix.replace(":sts:", ":iam:", 1)
        try:
            found = iam.role_arn(name=role)
        except (AwsError, NotImplementedError):  # optional: the path-less ARN is the fallback
            found = None
        return found or f"{account_part}:role/{role}"
    account_part, _, resource = caller_arn.partition(":user/")
    if resource:
        return f"{account_part.replace(':sts:', ':iam:', 1)}:user/{resource}"
    if ":role/" in caller_arn:
        return caller_arn
    return None


def _resource_for(pattern: str, region: str, account: str) -> str:
    """A resource the statement is meant for, so resource-scoped statements are simulated on
    something they cover: ``*`` stays, a pattern gets our region, account and a sample name."""
    if pattern == "*":
        return pattern
    parts = pattern.split(":", 5)
    if len(parts) == 6:
        parts[3] = region if parts[3] == "*" else parts[3]
        parts[4] = account if parts[4] == "*" else parts[4]
    return ":".join(parts).replace("*", "doctor-check")


def _database_secret_arns(config: EngineConfig, region: str, account: str) -> list[str]:
    """The configured DB password secrets as ARNs: a name gets the six-character suffix
    Secrets Manager appends, so a policy on ``name-*`` (or ``name-??????``) covers it."""
    ids = [config.host_db_password_secret, *config.source_db_secrets.values()]
    if config.stagings_need_sign_in and config.staging_oidc.client_secret_name:
        ids.append(config.staging_oidc.client_secret_name)
    return [
        secret if secret.startswith("arn:")
        else f"arn:aws:secretsmanager:{region}:{account}:secret:{secret}-doctor"
        for secret in ids if secret
    ]


def _context_for(condition: dict) -> dict[str, str]:
    return {key: value for test in condition.values() for key, value in test.items()}


def check_permissions(host: _Host) -> list[Check]:
    identity = sts.caller_identity()
    source = _policy_source(identity.arn)
    if source is None:
        return [Check("IAM permissions", WARN,
                      f"{identity.arn} cannot be simulated (root or federated user)",
                      "Run ds doctor with the dashboard's own role to check its policy.")]
    region = current_region()
    denied: list[str] = []
    try:
        for statement in permissions.STATEMENTS:
            resource = _resource_for(statement.resource, region, identity.account)
            resources = None if resource == "*" else [resource]
            if statement.sid == DATABASE_SECRETS_STATEMENT:
                # Meant to be narrowed to the configured secrets: simulated on those.
                resources = _database_secret_arns(host.config, region, identity.account)
                if not resources:
                    continue
            evaluations = iam.simulate_principal_policy(
                principal_arn=source, actions=sorted(statement.actions),
                resource_arns=resources, context=_context_for(statement.condition),
            )
            denied += [e.action for e in evaluations if not e.allowed]
    except NotImplementedError as exc:  # AWS-compatible endpoints without a policy simulator
        return [Check("IAM permissions", WARN, f"could not check: {exc}",
                      "Check the role's policy against docs/iam-policy.json by hand.")]
    except AwsError as exc:  # a refused simulation is a warning, not a failure
        found = f"could not simulate the policies of {source} ({exc.code}: {exc.message})"
        if "AccessDenied" in exc.code:
            return [Check("IAM permissions", WARN, found,
                          "Allow the dashboard's role iam:SimulatePrincipalPolicy (and "
                          "iam:GetRole) to check it, or compare its policy with "
                          "docs/iam-policy.json.")]
        return [Check("IAM permissions", WARN, found,
                      "Run ds doctor with the dashboard's own role or user, or compare its "
                      "policy with docs/iam-policy.json.")]
    total = len(permissions.engine_actions())
    if denied:
        names = sorted(set(denied))
        return [Check("IAM permissions", FAIL,
                      f"{source} is denied {_plural(len(names), 'action')}: {', '.join(names)}",
                      "Attach the policy of docs/iam-policy.json (python manage.py ds policy).")]
    return [Check("IAM permissions", OK, f"{source} is allowed all {total} engine actions")]


# --- running the report ------------------------------------------------------------------------

CHECKS: tuple[tuple[str, Callable[[_Host], list[Check]]], ...] = (
    ("credentials", check_credentials),
    ("cluster", check_cluster),
    ("web service", check_web_service),
    ("worker service", check_worker_service),
    ("listener", check_listener),
    ("health check", check_health_check),
    ("snapshot sources", check_snapshot_sources),
    ("secrets", check_secrets),
    ("account API", check_account_api),
    ("sign-in", check_sign_in),
    ("staging sign-in", check_staging_sign_in),
    ("ECS long ARNs", check_long_arns),
    ("DB instance quota", check_db_instance_quota),
    ("IAM permissions", check_permissions),
)


def _guarded(name: str, run: Callable[[], list[Check]]) -> list[Check]:
    """The check's lines, or one ``fail`` saying which call failed and why."""
    try:
        return run()
    except Exception as exc:  # noqa: BLE001 (one broken check must not hide the others)
        if isinstance(exc, ExternalCallFailed):
            found = f"{exc.call}: {exc.code}: {exc.message}"
        else:
            logger.exception("ds doctor: the %s check crashed", name)
            found = f"{type(exc).__name__}: {exc}"
        return [Check(name, FAIL, found,
                      "AWS refused or failed the call: check the credentials, the region and "
                      "the IAM policy, then run ds doctor again.")]


def run_checks(config: EngineConfig) -> Report:
    host = _Host(config)
    checks: list[Check] = []
    for name, check in CHECKS:
        checks += _guarded(name, lambda check=check: check(host))
    return Report(checks=tuple(checks))


def remember(report: Report) -> None:
    cache.set(CACHE_KEY, report, CACHE_SECONDS)


def last_report() -> Report | None:
    """The last report a Setup page made, while it is fresh; never runs a check."""
    return cache.get(CACHE_KEY)
