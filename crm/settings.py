"""Settings, read from the environment (12-factor) through django-environ.

PostgreSQL (≥ 15) and Redis, always: DATABASE_URL is the app role that row-level security
applies to, DATABASE_OWNER_URL the role that owns the tables and runs migrations, REDIS_URL
the cache and the Celery broker. When DATABASE_URL or REDIS_URL is not set, the project
runs its own servers from PyPI wheels (crm/embedded.py: `make run`, `make test`, manage.py)
and their settings come from var/local.env, which the environment overrides.
Every variable is listed in README.md's configuration table.
"""

import ipaddress
from pathlib import Path

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

from crm import dbroles, embedded

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = embedded.var_dir()

# The process environment first (12-factor). The one file read is the embedded stack's
# var/local.env, and only for what the environment leaves unset: docker-compose reads its
# .env itself, and production sets DATABASE_URL and REDIS_URL.
_embedded_pg, _embedded_redis = embedded.wanted()
if _embedded_pg or _embedded_redis:
    if not (VAR_DIR / embedded.ENV_FILE).exists():
        raise ImproperlyConfigured(
            "DATABASE_URL and REDIS_URL are not set and there is no embedded stack in "
            f"{VAR_DIR}: run `make run` (it starts its own PostgreSQL and Redis) or any "
            "`manage.py` command once, or set DATABASE_URL, DATABASE_OWNER_URL and REDIS_URL."
        )
    embedded.apply_env(
        embedded.read_env_file(VAR_DIR / embedded.ENV_FILE),
        postgres=_embedded_pg,
        redis=_embedded_redis,
    )
env = environ.Env()

DEBUG = env.bool("DEBUG", default=False)
if DEBUG:
    SECRET_KEY = env.str("SECRET_KEY", default="insecure-local-only-key-do-not-deploy")
else:
    try:
        SECRET_KEY = env.str("SECRET_KEY")
    except ImproperlyConfigured:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set the SECRET_KEY environment variable "
            "(or DEBUG=True for a local, non-production run)."
        ) from None
    if len(SECRET_KEY) < 32:
        raise ImproperlyConfigured("SECRET_KEY must be at least 32 characters in production.")

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    # crm first: its management commands (migrate) override Django's.
    "crm.apps.CrmConfig",
    "crm.apps.CrmAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_celery_beat",
    "django_tables2",
    "django_filters",
    "django_htmx",
    "template_partials",
    "axes",
    "customers.apps.CustomersConfig",
    "leads.apps.LeadsConfig",
    "opportunities.apps.OpportunitiesConfig",
    "service_feedback.apps.ServiceFeedbackConfig",
    "health.apps.HealthConfig",
    "automation.apps.AutomationConfig",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Above everything that may query the database: PostgreSQL unreachable answers 503 with
    # Retry-After instead of a 500 (crm/outage.py). Below SecurityMiddleware, whose headers
    # the 503 then gets too.
    "crm.outage.OutageMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # After WhiteNoise: static files keep their own cache headers and carry no policy.
    "crm.security.ContentSecurityPolicyMiddleware",
    "crm.security.PrivateCacheMiddleware",
    "crm.security.UnreadableBodyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "crm.middleware.LanguageMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Default deny: every view needs a signed-in user unless marked @login_not_required.
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "axes.middleware.AxesMiddleware",
    # Last: everything after it (views, template rendering) runs inside the tenant transaction.
    "crm.middleware.TenantMiddleware",
]

ROOT_URLCONF = "crm.urls"
WSGI_APPLICATION = "crm.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.template.context_processors.tz",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "crm.context_processors.shell",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------
VAR_DIR.mkdir(parents=True, exist_ok=True)
DATABASES = {"default": env.db("DATABASE_URL")}
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured(
        "DATABASE_URL must name a PostgreSQL (15 or newer) database: postgres://…"
    )
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
# No JIT compilation on the app's connections: the reports' and dashboards' statements
# (~10⁵ rows) cross its cost threshold, and compiling them took longer than running
# them (200–500 ms of a 700 ms drill-down count at 1,000,000 leads; bench/README.md).
NO_JIT = {"options": "-c jit=off"}
DATABASES["default"]["OPTIONS"] = {**DATABASES["default"].get("OPTIONS", {}), **NO_JIT}
# A kept connection is tested before a request reuses it: after a PostgreSQL restart the
# next request opens a new one instead of failing on the dead socket.
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if env.str("DATABASE_OWNER_URL", default=""):
    # The owner runs migrations and nothing else (crm/management/commands/migrate.py).
    DATABASES["owner"] = env.db("DATABASE_OWNER_URL")
# The platform role (BYPASSRLS): only crm.tenancy.all_tenants_context routes here, and only
# the allow-listed platform jobs enter that (docs/operations.md). Unset: DATABASE_URL with
# the role crm_platform and the same password (crm/dbroles.py).
DATABASES["platform"] = {
    **env.db_url_config(
        dbroles.platform_url(env.str("DATABASE_URL"), env.str("DATABASE_PLATFORM_URL", default=""))
    ),
    "CONN_MAX_AGE": DATABASES["default"]["CONN_MAX_AGE"],
    "CONN_HEALTH_CHECKS": True,
    "OPTIONS": NO_JIT,
}
# Reports and dashboards read the `reports` alias (crm.metrics.reports_alias): a streaming
# replica when REPORTS_DATABASE_URL names one (as the app role), else the primary itself.
# Nothing is written there (crm.metrics.ReportsRouter); its sessions are read-only besides,
# so a write that names the alias is refused even by a server that is not in recovery.
# A replica that does not answer costs a report page REPORTS_CONNECT_TIMEOUT seconds.
if env.str("REPORTS_DATABASE_URL", default=""):
    _reports = env.db("REPORTS_DATABASE_URL")
    DATABASES["reports"] = {
        **_reports,
        "CONN_MAX_AGE": DATABASES["default"]["CONN_MAX_AGE"],
        "CONN_HEALTH_CHECKS": True,
        "OPTIONS": {
            "connect_timeout": env.int("REPORTS_CONNECT_TIMEOUT", default=5),
            **_reports.get("OPTIONS", {}),
            "options": "-c jit=off -c default_transaction_read_only=on",
        },
        "TEST": {"MIRROR": "default"},
    }
# /healthz calls the replica `lagging` past this many seconds behind the primary.
REPORTS_REPLICA_MAX_LAG = env.int("REPORTS_REPLICA_MAX_LAG", default=300)
# Behind a pooler in transaction mode (PgBouncer's pool_mode = transaction; docs/scaling.md):
# a transaction may run on another server connection than the one before, so nothing may
# outlive it there. The tenant setting and the advisory locks are transaction-scoped
# already (crm.tenancy); server-side cursors (.iterator()) and psycopg's automatic
# prepared statements are not, and are turned off.
DATABASE_TRANSACTION_POOLING = env.bool("DATABASE_TRANSACTION_POOLING", default=False)
if DATABASE_TRANSACTION_POOLING:
    for _alias in DATABASES.values():
        _alias["DISABLE_SERVER_SIDE_CURSORS"] = True
        _alias["OPTIONS"] = {**_alias.get("OPTIONS", {}), "prepare_threshold": None}
# PostgreSQL's backend, told that a tenant table's key is (tenant_id, id) (crm/backend).
for _alias in DATABASES.values():
    if _alias["ENGINE"] == "django.db.backends.postgresql":
        _alias["ENGINE"] = "crm.backend"
# The platform jobs' reads and writes on `platform`; reports' reads on `reports`, never a
# write (crm/tenancy.py, crm/metrics.py).
DATABASE_ROUTERS = ["crm.tenancy.PlatformRouter", "crm.metrics.ReportsRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache, sessions ------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL")
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        # A Redis that does not answer costs a cache call about this long, never a hung worker.
        "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
    }
}
# Sessions (and so log-in) live in PostgreSQL, CSRF tokens in a cookie: the product keeps
# working while Redis is down. The cache only holds what can be lost (the hosted form's
# rate-limit counters, which fall back to PostgreSQL; the registry look-ups of a task).
SESSION_ENGINE = "django.contrib.sessions.backends.db"

# --- Auth -----------------------------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.float("AXES_COOLOFF_HOURS", default=0.25)  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
# The visitor's address as the product sees it (crm.http.client_ip: behind the proxy, from
# X-Forwarded-For), not the proxy's: else five failures from anywhere lock a user for all.
AXES_CLIENT_IP_CALLABLE = "crm.http.axes_client_ip"
# One row per failure (username, address, time): the per-username slow-down counts them.
AXES_ENABLE_ACCESS_FAILURE_LOG = True
# An attempt refused by a lock is not a failure: the password was not checked. (It would
# else count towards the slow-down below, which one address could then set off alone.)
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
# A guesser spread over many addresses (crm.login_throttle): after LOGIN_SLOWDOWN_AFTER
# failures for one username within the window, from any address, each further attempt for
# it is checked only LOGIN_SLOWDOWN_BASE_SECONDS × 2^k seconds (at most _MAX_) after the
# last failure; earlier ones are refused (429) without looking at the password.
LOGIN_SLOWDOWN_AFTER = env.int("LOGIN_SLOWDOWN_AFTER", default=20)
LOGIN_SLOWDOWN_WINDOW_MINUTES = env.int("LOGIN_SLOWDOWN_WINDOW_MINUTES", default=15)
LOGIN_SLOWDOWN_BASE_SECONDS = 2
LOGIN_SLOWDOWN_MAX_SECONDS = env.int("LOGIN_SLOWDOWN_MAX_SECONDS", default=60)

# --- i18n -----------------------------------------------------------------------------
LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
# Times and dates as crm.formatting shows them (2026-12-02 07:40), in both languages.
FORMAT_MODULE_PATH = ["crm.formats"]
USE_I18N = True
TIME_ZONE = "Asia/Shanghai"
USE_TZ = True

# --- Static files ---------------------------------------------------------------------
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
# Opportunity attachments (opportunities.models.Attachment.file): in the media directory
# (the `media` volume) unless ATTACHMENTS_DIR says elsewhere; never served from a URL of
# their own, only by the download view, which checks tenant and role.
ATTACHMENTS_DIR = env.path("ATTACHMENTS_DIR", default=str(VAR_DIR / "media" / "attachments"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "attachments": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(ATTACHMENTS_DIR)},
    },
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = DEBUG
MEDIA_ROOT = VAR_DIR / "media"

# --- Security: HTTPS, HSTS, cookies, Content-Security-Policy ---------------------------
# Production defaults whenever DEBUG is off: `manage.py check --deploy` passes with the
# values docs/operations.md lists. A plain-HTTP stack with DEBUG off (docker compose on
# localhost, the test suite) turns them off explicitly (.env.example).
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # the container health check speaks plain HTTP
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
# Opt-in: only once every subdomain serves HTTPS and the domain is to be preloaded.
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
TRUST_X_FORWARDED_FOR = env.bool("BEHIND_HTTPS_PROXY", default=False)
# The proxies' addresses or networks (e.g. "10.0.0.0/8,172.16.0.0/12"); unset, the address
# that connects to us is taken for the one proxy. Read by crm.http.client_ip.
TRUSTED_PROXIES = [
    ipaddress.ip_network(p, strict=False) for p in env.list("TRUSTED_PROXIES", default=[])
]
if TRUST_X_FORWARDED_FOR:
    # The proxy terminates TLS and says so; without this every request looks like http.
    # Its X-Forwarded-For also gives the visitor's address (crm.http.client_ip).
    # SECURE_PROXY_SSL_HEADER=HEADER,value names another header (never trusted without
    # BEHIND_HTTPS_PROXY: a client could set it itself).
    SECURE_PROXY_SSL_HEADER = tuple(
        env.list("SECURE_PROXY_SSL_HEADER", default=["HTTP_X_FORWARDED_PROTO", "https"])
    )
    if len(SECURE_PROXY_SSL_HEADER) != 2:
        raise ImproperlyConfigured(
            "SECURE_PROXY_SSL_HEADER must be HEADER,value, e.g. HTTP_X_FORWARDED_PROTO,https"
        )
# SECURE_COOKIES sets both; SESSION_COOKIE_SECURE / CSRF_COOKIE_SECURE override one each.
_secure_cookies = env.bool("SECURE_COOKIES", default=not DEBUG)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=_secure_cookies)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=_secure_cookies)
# crm.security: every response gets this policy, "{nonce}" being the request's fresh
# nonce (templates: nonce="{{ request.csp_nonce }}"). No inline script or <style> runs
# without it; style attributes are refused too (the templates use classes).
CSP_DIRECTIVES = {
    "default-src": ["'self'"],
    "script-src": ["'self'", "{nonce}"],
    "style-src": ["'self'", "{nonce}"],
    "img-src": ["'self'", "data:"],
    "font-src": ["'self'"],
    "connect-src": ["'self'"],
    "frame-ancestors": ["'none'"],
    "form-action": ["'self'"],
    "base-uri": ["'self'"],
    "object-src": ["'none'"],
}
# frame-ancestors of the pages meant to be framed by other sites (the hosted lead form,
# embedded in customers' own websites): space-separated CSP sources; * = any web site.
CSP_EMBED_FRAME_ANCESTORS = env.str("CSP_EMBED_FRAME_ANCESTORS", default="*")
# Send Content-Security-Policy-Report-Only instead (to try a changed policy first).
CSP_REPORT_ONLY = env.bool("CSP_REPORT_ONLY", default=False)

# --- Celery ---------------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
# Above the longest task, or a running task is redelivered to a second worker.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
# Queues by job class (docs/scaling.md): a worker started without -Q consumes them all
# (`make run`, the tests); production runs a worker pool per class
# (docker-compose.yml), so a night's reports never hold up a webhook's lead.
CELERY_TASK_DEFAULT_QUEUE = "celery"  # what no route names: the heartbeat, quality alerts
CELERY_TASK_QUEUES = tuple(
    Queue(name) for name in ("intake", "notifications", "reports", "automation", "celery")
)
CELERY_TASK_ROUTES = {
    # Seconds count: the inbox, its re-drive, the registry check, the SLA timers.
    "leads.process_inbound_event*": {"queue": "intake"},
    "leads.redrive_inbound_events": {"queue": "intake"},
    "leads.verify_lead_company": {"queue": "intake"},
    "leads.sla_sweep*": {"queue": "intake"},
    # In-app notifications' outside channels (e-mail, WeCom, robots) and their retries.
    "crm.deliver*": {"queue": "notifications"},
    # Nightly recomputes, roll-ups, checks and on-demand reports and exports.
    "crm.run_export": {"queue": "reports"},
    "crm.exports_cleanup*": {"queue": "reports"},
    "crm.weekly_diagnosis*": {"queue": "reports"},
    "crm.check_metrics*": {"queue": "reports"},
    "crm.levels_record*": {"queue": "reports"},
    "leads.run_replay": {"queue": "reports"},
    "leads.report_rollup*": {"queue": "reports"},
    "leads.activity_nightly*": {"queue": "reports"},
    "opportunities.pipeline_nightly*": {"queue": "reports"},
    "health.recompute*": {"queue": "reports"},
    "crm.log_retention_all": {"queue": "reports"},
    "crm.log_retention": {"queue": "reports"},
    # The business events' outbox (crm.events) and the automation rules they feed.
    "crm.events_*": {"queue": "automation"},
    "automation.*": {"queue": "automation"},
}
# beat reads its schedule from the database only (django-celery-beat), so the platform
# superuser's edits in the admin stick. The jobs below are created there after `migrate`
# when missing, and never overwritten (crm/schedules.py).
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CRM_PERIODIC_TASKS = {
    # Proves beat and a worker are alive: /healthz shows the last run.
    "crm.heartbeat": {
        "task": "crm.heartbeat",
        "schedule": env.float("HEARTBEAT_INTERVAL", default=60.0),
    },
    # A lost broker message must not lose a lead: queue again what is still `received`.
    "leads.redrive": {"task": "leads.redrive_inbound_events", "schedule": 60.0},
    "leads.sla": {"task": "leads.sla_sweep_all", "schedule": 60.0},
    # Notification retries with backoff, lost messages and paused channels' probes.
    "crm.deliver_due": {"task": "crm.deliver_due", "schedule": 30.0},
    # Business events (crm.events) whose drain message was lost: queued again.
    "crm.events_redrive": {"task": "crm.events_redrive", "schedule": 15.0},
    # Automation rules' time conditions ("no follow-up 72 h after …"): due clocks acted on.
    "automation.due_sweep": {"task": "automation.due_sweep_all", "schedule": 60.0},
    # The lead-quality report's daily roll-ups: days with changes every 5 minutes, and a
    # nightly check that every day with leads has them (docs/board.md).
    "leads.report_rollup": {"task": "leads.report_rollup_all", "schedule": 300.0},
    # Background exports (crm.exports): files and rows older than 7 days deleted, jobs
    # lost with a worker marked failed.
    "crm.exports_cleanup": {"task": "crm.exports_cleanup_all", "schedule": 3600.0},
    "leads.report_cover": {
        "task": "leads.report_rollup_all",
        "schedule": crontab(hour=3, minute=17),
        "kwargs": {"cover": True},
    },
    # The pipeline's night (opportunities.tasks): hourly, each tenant's run does the day's
    # stage calibration, frozen forecast and accuracy once, from 02:00 in its time zone.
    "opportunities.pipeline_nightly": {
        "task": "opportunities.pipeline_nightly_all",
        "schedule": crontab(minute=7),
    },
    # Customer health (health.tasks): hourly, each tenant's run scores its customers once a
    # day, from 02:00 in its time zone.
    "health.recompute": {
        "task": "health.recompute_all",
        "schedule": crontab(minute=13),
    },
    # Water levels (crm.levels): hourly, each tenant's run records yesterday's levels once,
    # from 01:00 in its time zone, and tells the owners of its anomalies.
    "crm.levels": {
        "task": "crm.levels_record_all",
        "schedule": crontab(minute=23),
    },
    # The reps' weekly diagnoses (crm.process): each tenant's written once a week, from
    # Friday 17:00 in its time zone.
    "crm.weekly_diagnosis": {"task": "crm.weekly_diagnosis_all", "schedule": 900.0},
    # The lead activity index (leads.activity.compute): hourly, each tenant's run scores
    # its open leads once a day, from 01:00 in its time zone.
    "leads.activity": {
        "task": "leads.activity_nightly_all",
        "schedule": crontab(minute=13),
    },
    # Quality alerts (service_feedback.alerts): clusters over the threshold raise an alert,
    # alerts quiet for their days close.
    "service_feedback.alerts_sweep": {
        "task": "service_feedback.alerts_sweep_all",
        "schedule": 900.0,
    },
    # The metric check (crm.metric_checks): hourly, each tenant's run recounts every
    # figure of its yesterday from its rows once, from 03:00 in its time zone.
    "crm.check_metrics": {
        "task": "crm.check_metrics_all",
        "schedule": crontab(minute=37),
    },
    # Retention (crm.log_retention): nightly, each tenant's event log, automation run log,
    # handled clocks, finished webhook calls and spent dedup rows past their days deleted.
    "crm.log_retention": {
        "task": "crm.log_retention_all",
        "schedule": crontab(hour=4, minute=41),
    },
}
# Celery's Django fix-up closes the database connection around every task unless told to
# reuse it: a new PostgreSQL connection per lead halved a worker's throughput.
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=1000)
HEARTBEAT_STALE_AFTER = 180  # seconds

# --- Logging --------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}, "axes": {"level": "WARNING"}},
}

# Company-name verification against a business registry (optional): GET <url>?name=…
REGISTRY_VERIFIER_URL = env.str("REGISTRY_VERIFIER_URL", default="")
REGISTRY_VERIFIER_TIMEOUT = env.float("REGISTRY_VERIFIER_TIMEOUT", default=3.0)
# Notifications: allow robot/SMS URLs on loopback, link-local and private addresses
# (off in production: a tenant admin could otherwise make the server call its own network).
NOTIFY_ALLOW_PRIVATE_URLS = env.bool("NOTIFY_ALLOW_PRIVATE_URLS", default=False)
# E-mail notifications: smtp+tls://user:password@host:587 (django-environ's EMAIL_URL).
# Development prints mail to the console instead of sending it.
vars().update(
    env.email_url("EMAIL_URL", default="consolemail://" if DEBUG else "smtp://localhost:25")
)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="crm@localhost")
# The platform admins, mailed when the nightly metric check finds a figure that does not
# add up (crm.metric_checks): ADMINS=ops@example.com,oncall@example.com.
ADMINS = [(a, a) for a in env.list("ADMINS", default=[]) if a.strip()]
SERVER_EMAIL = env.str("SERVER_EMAIL", default=DEFAULT_FROM_EMAIL)
# The hosted lead form: submissions per IP address and channel in 10 minutes.
LEAD_FORM_RATE_LIMIT = env.int("LEAD_FORM_RATE_LIMIT", default=10)
# The absolute URL the product is reached at, for webhook and form URLs printed by
# commands and QR codes (requests use their own host).
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="http://127.0.0.1:8000")

DJANGO_TABLES2_TEMPLATE = "django_tables2/bootstrap5-responsive.html"

# --- Retention (crm.log_retention, docs/automation.md "Retention") --------------------
# Processed business events (the event log the rules' windowed counts and the dry run
# read) are kept this many days; the job raises it to what the apps need (the longest
# windowed count plus the 30-day dry run, and AUTOMATION_LOG_DAYS), saying so in its log.
EVENT_LOG_DAYS = env.int("EVENT_LOG_DAYS", default=400)
# The automation run log (runs and conditions false), handled time-condition clocks and
# finished (sent or dead) webhook calls are kept this many days (at least 1).
AUTOMATION_LOG_DAYS = env.int("AUTOMATION_LOG_DAYS", default=180)

# --- Product --------------------------------------------------------------------------
DEMO_PASSWORD = "demo-pass-2026"  # noqa: S105 — the demo tenant's published password
