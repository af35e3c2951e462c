"""The settings as one frozen object: the only reader of ``settings.DS_*`` outside
dashboard/settings.py (which reads the environment), so steps never reach into Django and a
setting has one name in code (tests/test_configuration.py holds every module to it)."""

import math
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from .fargate import FARGATE_MEMORY_BY_CPU, describe_sizes, is_fargate_size, memory_sizes_text

STAGING_AUTH_OIDC = "oidc"
STAGING_AUTH_CHOICES = ("", STAGING_AUTH_OIDC)


@dataclass(frozen=True)
class StagingOidc:
    """What each staging's authenticate-oidc action is given (DS_STAGING_OIDC_*): the client
    secret itself stays in Secrets Manager until a rule is made."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    userinfo_endpoint: str
    client_id: str
    client_secret_name: str

    def missing(self) -> list[str]:
        """The DS_STAGING_OIDC_* settings that are empty."""
        values = {
            "DS_STAGING_OIDC_ISSUER": self.issuer,
            "DS_STAGING_OIDC_AUTHORIZATION_ENDPOINT": self.authorization_endpoint,
            "DS_STAGING_OIDC_TOKEN_ENDPOINT": self.token_endpoint,
            "DS_STAGING_OIDC_USERINFO_ENDPOINT": self.userinfo_endpoint,
            "DS_STAGING_OIDC_CLIENT_ID": self.client_id,
            "DS_STAGING_OIDC_SECRET_NAME": self.client_secret_name,
        }
        return [name for name, value in values.items() if not value]


@dataclass(frozen=True)
class EngineConfig:
    cluster: str
    web_service: str
    worker_service: str
    listener_arn: str
    domain: str
    url_scheme: str
    host_db_instance: str
    snapshot_sources: tuple[str, ...]
    host_db_password_secret: str
    account_api_url: str
    account_api_token: str
    account_api_timeout: float
    web_cpu: str
    web_memory: str
    worker_cpu: str
    worker_memory: str
    db_instance_class: str
    health_check_path: str
    env_staging_name: str
    env_db_instance: str
    env_redis_namespace: str
    poll_seconds: float
    db_wait_seconds: int
    service_wait_seconds: int
    # Per snapshot source: warm-pool size, and the secret holding its own master password.
    pool_sizes: dict[str, int] = field(default_factory=dict)
    source_db_secrets: dict[str, str] = field(default_factory=dict)
    env_db_password: str = "DB_PASSWORD"
    # A run keeps its worker through a wait shorter than this instead of parking (tests).
    hold_worker_seconds: float = 0.0
    max_live_stagings: int = 50
    max_live_per_user: int = 10
    max_inflight_per_user: int = 3
    # Per worker process: threads running the rounds of woken operations (tasks._Resumer).
    resume_threads: int = 2
    env_account_api_token: str = "ACCOUNT_API_TOKEN"
    # What the web pages read: the create page's AWS cache, the login throttle, the proxy in
    # front and the Cookie header's cap.
    create_page_cache_seconds: int = 60
    login_failure_limit: int = 5
    login_lockout_minutes: int = 15
    behind_proxy: bool = False
    max_cookie_bytes: int = 8 * 1024
    # Expiry: a staging's life after its create or last redeploy, the most anyone may ask
    # for, and how long before the end the pages (and later the owner) are warned.
    ttl_hours: float = 72.0
    max_ttl_hours: float = 336.0
    expiry_warn_hours: tuple[float, ...] = (24.0, 1.0)
    # The sandbox: AWS is a local moto server. Its durations are real AWS's times
    # ``aws_time_scale`` (1 on real AWS); its pages show its demo login and say that its
    # staging URLs and console links lead nowhere.
    sandbox: bool = False
    aws_time_scale: float = 1.0
    demo_username: str = ""
    demo_password: str = ""
    # Signing in to the dashboard with the company's identity provider (dashboard/sso.py).
    oidc_issuer: str = ""
    oidc_client_id: str = ""
    oidc_client_secret: str = ""
    oidc_provider_name: str = ""
    oidc_allowed_domains: tuple[str, ...] = ()
    oidc_staff_groups: tuple[str, ...] = ()
    oidc_groups_claim: str = "groups"
    oidc_scopes: str = "openid email profile"
    oidc_recheck_minutes: int = 15
    # None: password logins are on exactly when no identity provider is configured.
    local_login_setting: bool | None = None
    # Signing in in front of every staging (the load balancer's authenticate-oidc action).
    staging_auth: str = ""
    staging_oidc: StagingOidc | None = None
    staging_bypass_header: str = ""

    @property
    def oidc_enabled(self) -> bool:
        return bool(self.oidc_issuer and self.oidc_client_id)

    @property
    def local_login(self) -> bool:
        """Username and password logins: a break-glass admin's way in once the identity
        provider is configured (DS_LOCAL_LOGIN=1), the only way in while it is not."""
        if self.local_login_setting is None:
            return not self.oidc_enabled
        return self.local_login_setting

    @property
    def provider_name(self) -> str:
        return self.oidc_provider_name or urlsplit(self.oidc_issuer).hostname or "SSO"

    @property
    def stagings_need_sign_in(self) -> bool:
        return self.staging_auth == STAGING_AUTH_OIDC

    @property
    def rules_per_staging(self) -> int:
        """Listener rules one staging takes: its own, and the bypass rule before it."""
        return 2 if self.stagings_need_sign_in and self.staging_bypass_header else 1
    # Notifications: the dashboard's address for links, and whether e-mail is configured.
    dashboard_url: str = ""
    email_enabled: bool = False
    # stagingbot: Slack's signing secret, the bot's token and the Web API's address.
    slack_signing_secret: str = ""
    slack_bot_token: str = ""
    slack_api_url: str = "https://slack.com/api/"

    def url_for(self, host: str) -> str:
        return f"{self.url_scheme}://{host}"

    def needs_host_password(self, source: str) -> bool:
        """A DB restored from ``source`` must be given the host's master password: it is not
        the host's own, and no secret with its own password is configured for the staging."""
        return source != self.host_db_instance and source not in self.source_db_secrets

    def pool_size(self, source: str) -> int:
        return self.pool_sizes.get(source, 0)


def load_config() -> EngineConfig:
    s = settings
    return EngineConfig(
        cluster=s.DS_CLUSTER,
        web_service=s.DS_WEB_SERVICE,
        worker_service=s.DS_WORKER_SERVICE,
        listener_arn=s.DS_LISTENER_ARN,
        domain=s.DS_DOMAIN,
        url_scheme=s.DS_URL_SCHEME,
        host_db_instance=s.DS_HOST_DB_INSTANCE,
        snapshot_sources=tuple(s.DS_SNAPSHOT_SOURCES),
        host_db_password_secret=s.DS_HOST_DB_PASSWORD_SECRET,
        account_api_url=s.DS_ACCOUNT_API_URL,
        account_api_token=s.DS_ACCOUNT_API_TOKEN,
        account_api_timeout=s.DS_ACCOUNT_API_TIMEOUT,
        web_cpu=s.DS_WEB_CPU,
        web_memory=s.DS_WEB_MEMORY,
        worker_cpu=s.DS_WORKER_CPU,
        worker_memory=s.DS_WORKER_MEMORY,
        db_instance_class=s.DS_DB_INSTANCE_CLASS,
        health_check_path=s.DS_HEALTH_CHECK_PATH,
        env_staging_name=s.DS_ENV_STAGING_NAME,
        env_db_instance=s.DS_ENV_DB_INSTANCE,
        env_redis_namespace=s.DS_ENV_REDIS_NAMESPACE,
        poll_seconds=s.DS_POLL_SECONDS,
        db_wait_seconds=s.DS_DB_WAIT_SECONDS,
        service_wait_seconds=s.DS_SERVICE_WAIT_SECONDS,
        pool_sizes=dict(s.DS_POOL_SIZES),
        source_db_secrets=dict(s.DS_SOURCE_DB_SECRETS),
        env_account_api_token=s.DS_ENV_ACCOUNT_API_TOKEN,
        env_db_password=s.DS_ENV_DB_PASSWORD,
        hold_worker_seconds=s.DS_HOLD_WORKER_SECONDS,
        max_live_stagings=s.DS_MAX_LIVE_STAGINGS,
        max_live_per_user=s.DS_MAX_LIVE_PER_USER,
        max_inflight_per_user=s.DS_MAX_INFLIGHT_PER_USER,
        resume_threads=s.DS_RESUME_THREADS,
        create_page_cache_seconds=s.DS_CREATE_PAGE_CACHE_SECONDS,
        login_failure_limit=s.DS_LOGIN_FAILURE_LIMIT,
        login_lockout_minutes=s.DS_LOGIN_LOCKOUT_MINUTES,
        behind_proxy=s.DS_BEHIND_PROXY,
        max_cookie_bytes=s.DS_MAX_COOKIE_BYTES,
        ttl_hours=s.DS_TTL_HOURS,
        max_ttl_hours=s.DS_MAX_TTL_HOURS,
        expiry_warn_hours=tuple(s.DS_EXPIRY_WARN_HOURS),
        sandbox=s.DS_SANDBOX,
        aws_time_scale=s.DS_SANDBOX_DELAY_SCALE,
        demo_username=s.DS_DEMO_USERNAME,
        demo_password=s.DS_DEMO_PASSWORD,
        oidc_issuer=s.DS_OIDC_ISSUER,
        oidc_client_id=s.DS_OIDC_CLIENT_ID,
        oidc_client_secret=s.DS_OIDC_CLIENT_SECRET,
        oidc_provider_name=s.DS_OIDC_PROVIDER_NAME,
        oidc_allowed_domains=tuple(d.lower() for d in s.DS_OIDC_ALLOWED_DOMAINS),
        oidc_staff_groups=tuple(s.DS_OIDC_STAFF_GROUPS),
        oidc_groups_claim=s.DS_OIDC_GROUPS_CLAIM,
        oidc_scopes=s.DS_OIDC_SCOPES,
        oidc_recheck_minutes=s.DS_OIDC_RECHECK_MINUTES,
        local_login_setting=s.DS_LOCAL_LOGIN,
        staging_auth=s.DS_STAGING_AUTH,
        staging_oidc=StagingOidc(
            issuer=s.DS_STAGING_OIDC_ISSUER,
            authorization_endpoint=s.DS_STAGING_OIDC_AUTHORIZATION_ENDPOINT,
            token_endpoint=s.DS_STAGING_OIDC_TOKEN_ENDPOINT,
            userinfo_endpoint=s.DS_STAGING_OIDC_USERINFO_ENDPOINT,
            client_id=s.DS_STAGING_OIDC_CLIENT_ID,
            client_secret_name=s.DS_STAGING_OIDC_SECRET_NAME,
        ),
        staging_bypass_header=s.DS_STAGING_BYPASS_HEADER,
        dashboard_url=s.DS_DASHBOARD_URL,
        email_enabled=s.DS_EMAIL_ENABLED,
        slack_signing_secret=s.DS_SLACK_SIGNING_SECRET,
        slack_bot_token=s.DS_SLACK_BOT_TOKEN,
        # slack_sdk joins method names onto it: it must end with a slash.
        slack_api_url=s.DS_SLACK_API_URL.rstrip("/") + "/",
    )


def _per_source(variable: str, raw: str, example: str) -> dict[str, str]:
    """``source=value,source=value`` as a dict; ImproperlyConfigured says which part is wrong.
    Read at start-up (settings.py), so a typo stops the app instead of a create hours later.
    Whether each source is one of DS_SNAPSHOT_SOURCES is not known yet then (the sandbox
    supplies them later): the pool's refill reports a source that is not."""
    found: dict[str, str] = {}
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        source, equals, value = (text.strip() for text in item.partition("="))
        if not equals or not source or not value:
            raise ImproperlyConfigured(
                f"{variable}: {item!r} is not source=value (for example {example!r})."
            )
        if source in found:
            raise ImproperlyConfigured(f"{variable}: {source!r} is given twice.")
        found[source] = value
    return found


def parse_pool_sizes(raw: str) -> dict[str, int]:
    """DS_POOL_SIZES, e.g. ``host-db=2,qa-db=1``: sources left out keep no warm databases."""
    sizes = {}
    for source, value in _per_source("DS_POOL_SIZES", raw, "host-db=2").items():
        if not value.isdecimal():
            raise ImproperlyConfigured(
                f"DS_POOL_SIZES: the size for {source!r} must be a whole number (0 or more), "
                f"not {value!r}."
            )
        sizes[source] = int(value)
    return sizes


def parse_source_secrets(raw: str) -> dict[str, str]:
    """DS_SOURCE_DB_SECRETS, e.g. ``qa-db=qa/db-password``: a Secrets Manager secret (name or
    ARN) per source holding that source's master password."""
    return _per_source("DS_SOURCE_DB_SECRETS", raw, "qa-db=qa/db-password")


def check_fargate_size(prefix: str, *, cpu: str, memory: str) -> None:
    """``<prefix>_CPU`` and ``<prefix>_MEMORY`` (e.g. DS_WEB_CPU, DS_WEB_MEMORY) must be a pair
    Fargate runs: AWS would refuse every task definition registered with another, at the first
    create rather than at start-up."""
    valid = describe_sizes()
    if not cpu.isdecimal() or int(cpu) not in FARGATE_MEMORY_BY_CPU:
        raise ImproperlyConfigured(
            f"{prefix}_CPU: {cpu!r} is not a Fargate task size in CPU units. {valid}"
        )
    if not memory.isdecimal() or not is_fargate_size(int(cpu), int(memory)):
        raise ImproperlyConfigured(
            f"{prefix}_MEMORY: {memory!r} is not a Fargate memory size for {prefix}_CPU={cpu}: "
            f"with {cpu} CPU units Fargate takes {memory_sizes_text(int(cpu))} MiB. {valid}"
        )


def parse_hours(variable: str, raw: str, default: float) -> float:
    """A positive number of hours (fractions allowed), e.g. DS_TTL_HOURS=0.5."""
    if not raw.strip():
        return default
    try:
        hours = float(raw)
    except ValueError:
        hours = float("nan")
    if not math.isfinite(hours) or hours <= 0:
        raise ImproperlyConfigured(
            f"{variable}: {raw!r} is not a number of hours above 0 (for example {default:g})."
        )
    return hours


def check_ttl(ttl_hours: float, max_ttl_hours: float) -> None:
    """The default TTL must be one a user may ask for."""
    if ttl_hours > max_ttl_hours:
        raise ImproperlyConfigured(
            f"DS_TTL_HOURS ({ttl_hours:g}) is above DS_MAX_TTL_HOURS ({max_ttl_hours:g}): "
            "raise the maximum or lower the default."
        )


def parse_warn_hours(raw: str) -> tuple[float, ...]:
    """DS_EXPIRY_WARN_HOURS, e.g. ``24,1``: the warning windows, largest first; empty turns
    the warnings off."""
    windows = set()
    for item in (part.strip() for part in raw.split(",")):
        if item:
            windows.add(parse_hours("DS_EXPIRY_WARN_HOURS", item, 0.0))
    return tuple(sorted(windows, reverse=True))


def check_sign_in_settings(*, issuer: str, client_id: str, staging_auth: str) -> None:
    """Half an identity provider is a typo, not a choice: refuse to start rather than show a
    login page whose button fails (or quietly keep password logins on)."""
    if bool(issuer) != bool(client_id):
        given, missing = (("DS_OIDC_ISSUER", "DS_OIDC_CLIENT_ID") if issuer
                          else ("DS_OIDC_CLIENT_ID", "DS_OIDC_ISSUER"))
        raise ImproperlyConfigured(f"{given} is set but {missing} is not: set both (or "
                                   "neither) to sign in with the identity provider.")
    if issuer and urlsplit(issuer).scheme not in {"http", "https"}:
        raise ImproperlyConfigured(
            f"DS_OIDC_ISSUER: {issuer!r} is not a URL (e.g. https://login.example.com).")
    if staging_auth not in STAGING_AUTH_CHOICES:
        raise ImproperlyConfigured(
            f"DS_STAGING_AUTH: {staging_auth!r} is not known; leave it empty (stagings are "
            f"open to whoever reaches the load balancer) or set {STAGING_AUTH_OIDC!r}.")
