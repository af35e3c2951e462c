"""The engine's view of the settings: one frozen object, so steps never reach into Django."""

from dataclasses import dataclass

from django.conf import settings


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

    def url_for(self, host: str) -> str:
        return f"{self.url_scheme}://{host}"


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
    )
