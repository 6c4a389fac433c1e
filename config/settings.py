"""Tribunal settings. Everything comes from the environment (see ``config/env.py`` and the README).

Defaults are the embedded laptop setup: SQLite in ``var/``, kombu's filesystem broker, DEBUG off
unless asked for. Production sets DATABASE_URL (PostgreSQL through psycopg 3), CELERY_BROKER_URL
(Redis or RabbitMQ), SECRET_KEY, ALLOWED_HOSTS.
"""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config.env import envbool, envint, envlist, envstr

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(envstr("TRIBUNAL_VAR_DIR", str(BASE_DIR / "var")))
TRIBUNAL_VERSION = "0.1.0"

DEBUG = envbool("DEBUG", False)
SECRET_KEY = envstr("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set SECRET_KEY (or SECRET_KEY_FILE), or DEBUG=1 for local work."
        )
    SECRET_KEY = "insecure-dev-only-key-do-not-use-in-production"
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", ["127.0.0.1", "localhost"] if not DEBUG else ["*"])
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "knox",  # API tokens: hashed at rest, with an expiry; listable and revocable by their owner
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI files served locally: /api/docs/ works offline
    "django_htmx",
    "axes",  # failed-login lockout by account and by address (annotation/auth.py)
    "template_partials",
    "annotation",
    "jury",
    "exports",
    "exports.guard",  # label "guard": guard models, their training jobs and evaluations
    "jury.edits",  # label "edits": synthetic feedback edits (SYNFAC-EDIT), their templates and runs
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "annotation.middleware.LockConflictMiddleware",
    "annotation.middleware.PrivateCacheMiddleware",
    "annotation.middleware.ContentSecurityPolicyMiddleware",
    "axes.middleware.AxesMiddleware",  # last, as django-axes asks
]

# Brute force: after LOGIN_FAILURE_LIMIT failed logins for one account, or from one address, further
# attempts are refused unchecked (429, no password hashing) for LOGIN_LOCKOUT_MINUTES; a success
# resets the count. Admins lift a lock in /admin/axes/ or with `manage.py axes_reset_username NAME`.
# The token endpoint and the login form are also rate-limited per address (LOGIN_RATE).
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = envint("LOGIN_FAILURE_LIMIT", 10, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=envint("LOGIN_LOCKOUT_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "annotation.auth.lockout_response"
AXES_VERBOSE = False
LOGIN_RATE = envstr("LOGIN_RATE", "60/min")

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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
                "annotation.context_processors.tribunal",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        envstr("DATABASE_URL", f"sqlite:///{VAR_DIR / 'tribunal.sqlite3'}"),
        conn_max_age=envint("DB_CONN_MAX_AGE", 60, minimum=0),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web server read while the worker writes. Every transaction begins IMMEDIATE, i.e.
    # takes SQLite's single write lock at BEGIN and waits for it (up to ``timeout`` seconds) there:
    # a DEFERRED transaction that read first and then wants to write fails at once with "database
    # is locked" when another connection wrote meanwhile (SQLite cannot wait in that case), which
    # turned contention into 500s. Writers still serialise; ``annotation.dbretry`` retries the rare
    # lock error that remains, and imports commit in chunks so annotators get in between.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": envint("SQLITE_BUSY_TIMEOUT_S", 30, minimum=1),
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
    DATABASES["default"]["CONN_MAX_AGE"] = 0
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
MEDIA_ROOT = VAR_DIR / "media"

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # htmx reads the token from the page, not the cookie
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SESSION_COOKIE_SECURE = envbool("SESSION_COOKIE_SECURE", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
# HTTPS deployments (secure cookies) also get HSTS: a year by default, 0 turns it off.
SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 31_536_000 if SESSION_COOKIE_SECURE else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
# Behind a TLS-terminating proxy that sets X-Forwarded-Proto (and strips it from clients).
if envbool("TRUST_X_FORWARDED_PROTO", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# /api/schema/ and /api/docs/ for logged-in users only (session or token).
API_DOCS_REQUIRE_LOGIN = envbool("API_DOCS_REQUIRE_LOGIN", False)

# Uploads: imports stream from a temporary file, never from memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

# --- Tribunal --------------------------------------------------------------------------------
TRIBUNAL_DEVICE = envstr("TRIBUNAL_DEVICE", "auto")
MODEL_CACHE_DIR = Path(envstr("MODEL_CACHE_DIR", str(Path.home() / ".cache" / "tribunal" / "models")))
# Files bigger than this run as a background job on the worker (bytes).
IMPORT_BACKGROUND_THRESHOLD = envint("IMPORT_BACKGROUND_THRESHOLD", 20 * 1024 * 1024, minimum=0)
# A single line longer than this is rejected (bytes).
IMPORT_MAX_LINE_BYTES = envint("IMPORT_MAX_LINE_BYTES", 1024 * 1024, minimum=1024)
IMPORT_BATCH_SIZE = envint("IMPORT_BATCH_SIZE", 2000, minimum=1)
IMPORT_MAX_ERRORS = envint("IMPORT_MAX_ERRORS", 1000, minimum=1)
# Project metrics (/projects/<slug>/metrics/, the API): a project with more annotations than this has
# them computed on the worker (celery queue); the page shows the last stored result with its time.
METRICS_WORKER_THRESHOLD = envint("METRICS_WORKER_THRESHOLD", 200_000, minimum=0)
# ... and so does a project whose jury p_i cover more pairs than this: the discretion bootstrap refits
# w* by Adam for every resample, seconds to minutes whatever the project's size.
METRICS_WORKER_PI_PAIRS = envint("METRICS_WORKER_PI_PAIRS", 100, minimum=0)
# A .gz import may unpack to at most this many bytes, and (past 64 MiB) to at most this many times
# its packed size: a 1 MB file that unpacks to 300 MB is refused, not imported for minutes.
IMPORT_MAX_UNPACKED_BYTES = envint("IMPORT_MAX_UNPACKED_BYTES", 16 * 1024**3, minimum=1024)
IMPORT_MAX_GZIP_RATIO = envint("IMPORT_MAX_GZIP_RATIO", 200, minimum=2)
IMPORT_UPLOAD_DIR = VAR_DIR / "imports"
# A background job whose worker is on another host and has not reported progress for this long is
# considered abandoned and re-queued when a worker starts (same-host claimants are checked by pid).
JOB_STALE_SECONDS = envint("JOB_STALE_SECONDS", 300, minimum=10)
EXPORT_DIR = Path(envstr("EXPORT_DIR", str(VAR_DIR / "exports")))
# Trained guard folders (``<name>-v<version>/``: safetensors, tokenizer, guard.json, model card).
GUARD_DIR = Path(envstr("GUARD_DIR", str(MODEL_CACHE_DIR / "guards")))
# How long a worker holds a jury chunk before another worker may take it over.
JURY_CHUNK_LEASE_S = envint("JURY_CHUNK_LEASE_S", 300, minimum=1)
# A worker on the gpu queue converts the packaged models its jurors use as soon as it starts (a task it
# enqueues for itself), so the first jury run does not sit at "0%" for the ten minutes Gemma takes.
JURY_PREPARE_MODELS_ON_START = envbool("JURY_PREPARE_MODELS_ON_START", True)

# --- REST framework -------------------------------------------------------------------------
REST_FRAMEWORK = {
    # Token first: an unauthenticated API call then gets 401 with a `WWW-Authenticate: Token`
    # challenge (session authentication has none, so it would make that a bare 403).
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "knox.auth.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # drf-spectacular's AutoSchema, plus each endpoint's permissions in its description and
    # component names qualified by view (nested InputSerializer/OutputSerializer do not collide).
    "DEFAULT_SCHEMA_CLASS": "annotation.permissions.TribunalAutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    # Every API error is JSON with a `code` (a lock conflict after retries: 503 "busy").
    "EXCEPTION_HANDLER": "annotation.api_errors.exception_handler",
}
# API tokens (django-rest-knox): `Authorization: Token <token>`; stored as a hash; each expires
# API_TOKEN_TTL_HOURS after it was issued (a new one is one POST away); all of a user's tokens are
# revoked when their password changes (annotation/signals.py).
REST_KNOX = {
    "TOKEN_TTL": timedelta(hours=envint("API_TOKEN_TTL_HOURS", 24 * 30, minimum=1)),
    "TOKEN_LIMIT_PER_USER": envint("API_TOKEN_LIMIT_PER_USER", 20, minimum=1),
    "AUTO_REFRESH": False,
    "AUTH_HEADER_PREFIX": "Token",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Tribunal API",
    "DESCRIPTION": "Human and LLM-jury judgments of LLM responses, turned into alignment data.",
    "VERSION": TRIBUNAL_VERSION,
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # No CDN: the Swagger UI assets come from drf-spectacular-sidecar through staticfiles.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Celery ---------------------------------------------------------------------------------
CELERY_BROKER_URL = envstr("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "broker"
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        # Fanout exchanges (worker remote control) live here; kombu's default is ./control in the CWD.
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
# Job state lives in our own models (ImportBatch, JuryRun, Export), so no result backend is needed.
CELERY_RESULT_BACKEND = envstr("CELERY_RESULT_BACKEND", None)
CELERY_TASK_IGNORE_RESULT = CELERY_RESULT_BACKEND is None
CELERY_TASK_ALWAYS_EAGER = envbool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ROUTES = {"jury.*": {"queue": "gpu"}, "exports.guard.*": {"queue": "gpu"}}
CELERY_TASK_DEFAULT_QUEUE = "celery"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": envstr("LOG_LEVEL", "INFO")},
}
