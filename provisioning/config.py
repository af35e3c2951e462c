"""The settings as one frozen object: the only reader of ``settings.DS_*`` outside
dashboard/settings.py (which reads the environment), so steps never reach into Django and a
setting has one name in code (tests/test_configuration.py holds every module to it)."""

from dataclasses import dataclass, field

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from .fargate import FARGATE_MEMORY_BY_CPU, describe_sizes, is_fargate_size, memory_sizes_text


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
