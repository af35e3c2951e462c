"""Settings for the dynamic stagings dashboard.

Everything an operator may change is read from an environment variable here, through the small
typed helpers below, and documented in README.md. With ``DS_SANDBOX=1`` the sandbox (a bundled
moto server seeded with a host environment) supplies the AWS defaults; without it nothing of the
sandbox is imported and the variables are used as given.
"""

import os
import secrets
import sys
from datetime import timedelta
from pathlib import Path
from urllib.parse import unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

from dashboard.private_files import create_private
from provisioning.config import (
    check_fargate_size,
    check_sign_in_settings,
    check_ttl,
    parse_hours,
    parse_pool_sizes,
    parse_source_secrets,
    parse_warn_hours,
)

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    return float(raw) if raw else default


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    return raw in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


def env_secret(name: str, default: str = "") -> str:
    """``NAME``, or the contents of the file ``NAME_FILE`` points to when set: a mounted secret
    (Kubernetes, ECS, systemd credentials) stays out of the process environment."""
    path = env_str(f"{name}_FILE")
    if path:
        return Path(path).read_text().strip()
    return env_str(name, default)


SANDBOX = env_bool("DS_SANDBOX")
SANDBOX_STATE_DIR = Path(env_str("DS_SANDBOX_STATE_DIR") or BASE_DIR / "var" / "sandbox")
if SANDBOX:
    # Fills os.environ with the sandbox's AWS endpoint and host environment (only where the
    # operator set nothing), so boto3 and the DS_* settings below pick them up unchanged.
    from provisioning.sandbox.environment import apply_sandbox_environment

    apply_sandbox_environment(SANDBOX_STATE_DIR)

# The pages say when AWS is the sandbox's (its links lead nowhere real; its demo login).
DS_SANDBOX = SANDBOX
# How long AWS takes here against real AWS: the estimates before this installation has timed
# its own operations are the lifecycle registry's real-AWS durations times this. The sandbox
# runs AWS at its delay scale; real AWS at 1.
if SANDBOX:
    from provisioning.sandbox.latency import DEFAULT_SCALE

    DS_SANDBOX_DELAY_SCALE = env_float("DS_SANDBOX_DELAY_SCALE", DEFAULT_SCALE)
else:
    DS_SANDBOX_DELAY_SCALE = 1.0
# The sandbox's demo login: `manage.py sandbox run` makes it, the sandbox's login page shows it.
DS_DEMO_USERNAME = "demo"
DS_DEMO_PASSWORD = env_str("DS_DEMO_PASSWORD", "demo-staging-123")

DEBUG = env_bool("DJANGO_DEBUG", default=SANDBOX)
# Commands that only read the code and sign nothing run without a secret key (a checkout checks
# its migrations); anything that serves, queues or signs refuses to start without one.
KEYLESS_COMMANDS = frozenset({"makemigrations", "showmigrations"})


def _management_command() -> str:
    return sys.argv[1] if len(sys.argv) > 1 and Path(sys.argv[0]).name == "manage.py" else ""


SECRET_KEY = env_secret("DJANGO_SECRET_KEY")
if not SECRET_KEY and SANDBOX:
    from provisioning.sandbox.secret_key import sandbox_secret_key

    SECRET_KEY = sandbox_secret_key(SANDBOX_STATE_DIR)
if not SECRET_KEY and _management_command() in KEYLESS_COMMANDS:
    # Nothing this process signs outlives it: a key of its own is as good as any.
    SECRET_KEY = secrets.token_urlsafe(50)
if not SECRET_KEY:
    # A well-known fallback would let anyone who read this file forge sessions.
    raise ImproperlyConfigured(
        "DJANGO_SECRET_KEY is not set. Set it to a long random value, e.g. the output of "
        "`python -c 'import secrets; print(secrets.token_urlsafe(50))'`, or point "
        "DJANGO_SECRET_KEY_FILE at a file holding it; DS_SANDBOX=1 (the local sandbox) makes "
        "and keeps one by itself.")
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "django_q",
    "axes",
    "provisioning",
    "dashboard",
]

MIDDLEWARE = [
    "dashboard.middleware.CookieSizeLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "dashboard.middleware.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Sends a page request of someone signed in with the identity provider back to it now and
    # then, so that somebody it no longer lets in loses the dashboard too.
    "dashboard.sso.ProviderRecheckMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "dashboard.urls"
WSGI_APPLICATION = "dashboard.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


def database_from_url(url: str) -> dict:
    """A Django DATABASES entry from ``postgres://user:pass@host:port/name``."""
    parts = urlsplit(url)
    if parts.scheme not in {"postgres", "postgresql"}:
        raise RuntimeError(f"DATABASE_URL: unsupported scheme {parts.scheme!r}")
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parts.path.lstrip("/")),
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(parts.port or ""),
        "CONN_MAX_AGE": 60,
    }


# Local state (the SQLite file, the sandbox's env.json, collected static files) lives here.
(BASE_DIR / "var").mkdir(exist_ok=True)

DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    DATABASES = {"default": database_from_url(DATABASE_URL)}
else:
    # WAL + IMMEDIATE transactions + a generous timeout: several qcluster workers and the web
    # server write to the same file, and plain SQLite would answer "database is locked".
    SQLITE_PATH = Path(env_str("DS_SQLITE_PATH") or BASE_DIR / "var" / "db.sqlite3")
    create_private(SQLITE_PATH)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": SQLITE_PATH,
            "OPTIONS": {
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 30,
            },
            "TEST": {"NAME": BASE_DIR / "var" / "test.sqlite3"},
        }
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Each process keeps its own: what is cached is cheap to read again once per process.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# How long the create page keeps what it read from AWS (sources' snapshots, branches).
DS_CREATE_PAGE_CACHE_SECONDS = env_int("DS_CREATE_PAGE_CACHE_SECONDS", 60)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
# django-axes first: it refuses a locked-out user name or address before a password is checked.
# Then passwords (refused unless local logins are on), then the identity provider's callback
# (dashboard/sso.py), which answers nothing else.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "dashboard.sso.LocalPasswordBackend",
    "dashboard.sso.SignInBackend",
]
DS_LOGIN_FAILURE_LIMIT = env_int("DS_LOGIN_FAILURE_LIMIT", 5)
DS_LOGIN_LOCKOUT_MINUTES = env_int("DS_LOGIN_LOCKOUT_MINUTES", 15)
AXES_FAILURE_LIMIT = DS_LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(minutes=DS_LOGIN_LOCKOUT_MINUTES)
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_CALLABLE = "dashboard.views.login_locked"
AXES_CLIENT_IP_CALLABLE = "dashboard.login_throttle.client_address"
DS_BEHIND_PROXY = env_bool("DJANGO_BEHIND_PROXY")
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# --- signing in with the company's identity provider (OpenID Connect, dashboard/sso.py) -------
# The endpoints come from the issuer's discovery document, read when first needed.
DS_OIDC_ISSUER = env_str("DS_OIDC_ISSUER").rstrip("/")
DS_OIDC_CLIENT_ID = env_str("DS_OIDC_CLIENT_ID")
DS_OIDC_CLIENT_SECRET = env_secret("DS_OIDC_CLIENT_SECRET")
DS_OIDC_PROVIDER_NAME = env_str("DS_OIDC_PROVIDER_NAME")
DS_OIDC_ALLOWED_DOMAINS = [d.lstrip("@") for d in env_list("DS_OIDC_ALLOWED_DOMAINS")]
DS_OIDC_STAFF_GROUPS = env_list("DS_OIDC_STAFF_GROUPS")
DS_OIDC_GROUPS_CLAIM = env_str("DS_OIDC_GROUPS_CLAIM", "groups")
DS_OIDC_SCOPES = env_str("DS_OIDC_SCOPES", "openid email profile")
DS_OIDC_RECHECK_MINUTES = env_int("DS_OIDC_RECHECK_MINUTES", 15)
# Unset: on exactly when no identity provider is configured (provisioning/config.py).
DS_LOCAL_LOGIN = env_bool("DS_LOCAL_LOGIN") if env_str("DS_LOCAL_LOGIN") else None
# What mozilla-django-oidc reads as it is; the rest it asks of dashboard/sso.py.
OIDC_RP_SIGN_ALGO = "RS256"
OIDC_USE_PKCE = True
OIDC_PKCE_CODE_CHALLENGE_METHOD = "S256"
OIDC_USE_NONCE = True
OIDC_STORE_ID_TOKEN = True  # the logout's id_token_hint
OIDC_TIMEOUT = 10
OIDC_OP_LOGOUT_URL_METHOD = "dashboard.sso.provider_logout_url"

# --- signing in in front of every staging (the load balancer's authenticate-oidc action) -------
DS_STAGING_AUTH = env_str("DS_STAGING_AUTH").lower()
DS_STAGING_OIDC_ISSUER = env_str("DS_STAGING_OIDC_ISSUER")
DS_STAGING_OIDC_AUTHORIZATION_ENDPOINT = env_str("DS_STAGING_OIDC_AUTHORIZATION_ENDPOINT")
DS_STAGING_OIDC_TOKEN_ENDPOINT = env_str("DS_STAGING_OIDC_TOKEN_ENDPOINT")
DS_STAGING_OIDC_USERINFO_ENDPOINT = env_str("DS_STAGING_OIDC_USERINFO_ENDPOINT")
DS_STAGING_OIDC_CLIENT_ID = env_str("DS_STAGING_OIDC_CLIENT_ID")
DS_STAGING_OIDC_SECRET_NAME = env_str("DS_STAGING_OIDC_SECRET_NAME")
DS_STAGING_BYPASS_HEADER = env_str("DS_STAGING_BYPASS_HEADER")
check_sign_in_settings(issuer=DS_OIDC_ISSUER, client_id=DS_OIDC_CLIENT_ID,
                       staging_auth=DS_STAGING_AUTH)

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "var" / "static"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        "provisioning": {"handlers": ["console"], "level": env_str("DS_LOG_LEVEL", "INFO")},
    },
}

# --- background work -----------------------------------------------------------------------
# A create can wait on an RDS restore for a quarter of an hour and more. The queue must never
# cut such a task off and re-run it blindly, so its timeout is far above any operation and the
# redelivery ("retry") comes only after that; the runner itself resumes from the steps already
# done when an operation is run again (see provisioning/runner.py).
OPERATION_TIMEOUT_SECONDS = env_int("DS_OPERATION_TIMEOUT", 3 * 60 * 60)
REDIS_URL = env_str("DS_REDIS_URL")
Q_CLUSTER = {
    # With a Redis broker the name is the queue's key: deployments (or test runs) sharing one
    # Redis keep apart by giving each its own name.
    "name": env_str("DS_Q_NAME", "dynamic-stagings"),
    "workers": env_int("DS_Q_WORKERS", 4),
    "timeout": OPERATION_TIMEOUT_SECONDS,
    "retry": OPERATION_TIMEOUT_SECONDS + 600,
    "max_attempts": 1,
    "ack_failures": True,
    "catch_up": False,
    "save_limit": 500,
    "poll": 0.5,
    "label": "Background tasks",
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

# --- the host environment on AWS (see README "Configuration") ------------------------------
DS_CLUSTER = env_str("DS_CLUSTER", "host-staging")
DS_WEB_SERVICE = env_str("DS_WEB_SERVICE", "host-web")
DS_WORKER_SERVICE = env_str("DS_WORKER_SERVICE", "host-worker")
DS_LISTENER_ARN = env_str("DS_LISTENER_ARN")
DS_DOMAIN = env_str("DS_DOMAIN", "dynamic.staging.example.com")
DS_URL_SCHEME = env_str("DS_URL_SCHEME", "https")
DS_HOST_DB_INSTANCE = env_str("DS_HOST_DB_INSTANCE", "host-db")
DS_SNAPSHOT_SOURCES = env_list("DS_SNAPSHOT_SOURCES") or [DS_HOST_DB_INSTANCE]
DS_HOST_DB_PASSWORD_SECRET = env_str("DS_HOST_DB_PASSWORD_SECRET")
# Databases kept restored ahead of time per source (provisioning/pool.py), and per source a
# secret with its own master password, given to the staging instead of changing the password.
DS_POOL_SIZES = parse_pool_sizes(env_str("DS_POOL_SIZES"))
DS_SOURCE_DB_SECRETS = parse_source_secrets(env_str("DS_SOURCE_DB_SECRETS"))
DS_ACCOUNT_API_URL = env_str("DS_ACCOUNT_API_URL")
DS_ACCOUNT_API_TOKEN = env_secret("DS_ACCOUNT_API_TOKEN")
DS_ACCOUNT_API_TIMEOUT = env_float("DS_ACCOUNT_API_TIMEOUT", 30.0)

DS_WEB_CPU = env_str("DS_WEB_CPU", "256")
DS_WEB_MEMORY = env_str("DS_WEB_MEMORY", "512")
DS_WORKER_CPU = env_str("DS_WORKER_CPU", "256")
DS_WORKER_MEMORY = env_str("DS_WORKER_MEMORY", "512")
check_fargate_size("DS_WEB", cpu=DS_WEB_CPU, memory=DS_WEB_MEMORY)
check_fargate_size("DS_WORKER", cpu=DS_WORKER_CPU, memory=DS_WORKER_MEMORY)
DS_DB_INSTANCE_CLASS = env_str("DS_DB_INSTANCE_CLASS", "db.t3.micro")
# Empty: the host web target group's own path.
DS_HEALTH_CHECK_PATH = env_str("DS_HEALTH_CHECK_PATH", "")

DS_ENV_STAGING_NAME = env_str("DS_ENV_STAGING_NAME", "DYNAMIC_STAGING_NAME")
DS_ENV_DB_INSTANCE = env_str("DS_ENV_DB_INSTANCE", "DB_INSTANCE_ID")
DS_ENV_REDIS_NAMESPACE = env_str("DS_ENV_REDIS_NAMESPACE", "REDIS_NAMESPACE")
DS_ENV_DB_PASSWORD = env_str("DS_ENV_DB_PASSWORD", "DB_PASSWORD")
# With the account API served by the staging itself ({host}/{name} in DS_ACCOUNT_API_URL), the
# variable through which its containers get their own token (an ECS secret).
DS_ENV_ACCOUNT_API_TOKEN = env_str("DS_ENV_ACCOUNT_API_TOKEN", "ACCOUNT_API_TOKEN")

# How often the engine asks AWS whether a long operation has finished, and how long it waits.
DS_POLL_SECONDS = env_float("DS_POLL_SECONDS", 10.0)
# 0: an operation whose steps all wait on AWS gives its worker back at once (runner.py).
DS_HOLD_WORKER_SECONDS = env_float("DS_HOLD_WORKER_SECONDS", 0.0)
DS_DB_WAIT_SECONDS = env_int("DS_DB_WAIT_SECONDS", 45 * 60)
DS_SERVICE_WAIT_SECONDS = env_int("DS_SERVICE_WAIT_SECONDS", 20 * 60)

# Caps checked before a create makes anything: stagings cost money while they live.
DS_MAX_LIVE_STAGINGS = env_int("DS_MAX_LIVE_STAGINGS", 50)
DS_MAX_LIVE_PER_USER = env_int("DS_MAX_LIVE_PER_USER", 10)
# Operations (creates, redeploys) one person may have under way at once; destroys are exempt.
DS_MAX_INFLIGHT_PER_USER = env_int("DS_MAX_INFLIGHT_PER_USER", 3)
# Per qcluster worker process: threads that run the rounds of operations woken after a wait.
DS_RESUME_THREADS = env_int("DS_RESUME_THREADS", 2)

# Expiry: how long a staging lives after its create or last redeploy, the most anyone may ask
# for (a create's TTL, an extension), and the warnings before its end (hours, largest first).
DS_TTL_HOURS = parse_hours("DS_TTL_HOURS", env_str("DS_TTL_HOURS"), 72.0)
DS_MAX_TTL_HOURS = parse_hours("DS_MAX_TTL_HOURS", env_str("DS_MAX_TTL_HOURS"), 336.0)
check_ttl(DS_TTL_HOURS, DS_MAX_TTL_HOURS)
DS_EXPIRY_WARN_HOURS = parse_warn_hours(env_str("DS_EXPIRY_WARN_HOURS", "24,1"))

# --- security in production ----------------------------------------------------------------
# The sandbox serves plain http on loopback, so none of this is on by default. A deployment
# behind TLS sets DJANGO_SECURE=1 (and DJANGO_BEHIND_PROXY=1 when a load balancer ends TLS and
# forwards http with X-Forwarded-Proto); `manage.py check --deploy` then reports nothing.
if env_bool("DJANGO_SECURE"):
    SECURE_SSL_REDIRECT = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 365 * 24 * 60 * 60)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
if DS_BEHIND_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# A request whose Cookie header is larger is refused (400) before anything parses it.
DS_MAX_COOKIE_BYTES = env_int("DS_MAX_COOKIE_BYTES", 8 * 1024)

# --- notifications -------------------------------------------------------------------------
# Where people open the dashboard: links in e-mails and Slack messages (no links when unset).
DS_DASHBOARD_URL = env_str("DS_DASHBOARD_URL").rstrip("/")
# E-mail is sent when an SMTP host is configured; the sandbox writes each e-mail to a file
# under its state directory instead.
EMAIL_HOST = env_str("DJANGO_EMAIL_HOST")
EMAIL_PORT = env_int("DJANGO_EMAIL_PORT", 587)
EMAIL_HOST_USER = env_str("DJANGO_EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_secret("DJANGO_EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("DJANGO_EMAIL_USE_TLS", default=True)
EMAIL_TIMEOUT = 30
DEFAULT_FROM_EMAIL = env_str("DJANGO_DEFAULT_FROM_EMAIL", "dynamic-stagings@localhost")
if not EMAIL_HOST and SANDBOX:
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = SANDBOX_STATE_DIR / "mail"
DS_EMAIL_ENABLED = bool(EMAIL_HOST) or SANDBOX

# --- stagingbot (Slack) --------------------------------------------------------------------
# Without a signing secret /slack/* refuses everything; the sandbox sets all three to its fake
# Slack Web API.
DS_SLACK_SIGNING_SECRET = env_secret("DS_SLACK_SIGNING_SECRET")
DS_SLACK_BOT_TOKEN = env_secret("DS_SLACK_BOT_TOKEN")
DS_SLACK_API_URL = env_str("DS_SLACK_API_URL", "https://slack.com/api/")
