"""Settings of the demo site. The defaults need nothing but Python: SQLite and the
django-q2 ORM broker. ``DEMO_DB=postgres`` and ``DEMO_BROKER=redis`` switch to the
services on 127.0.0.1 (used by the second CI run)."""

import os
from pathlib import Path

from demo_project.secret_key import load_or_create

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("DEMO_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)

# Safe when run as documented (.ci/demo, README): a random key kept in VAR_DIR (0600) unless
# DJANGO_SECRET_KEY is given; DEBUG only with DJANGO_DEBUG=1; loopback host names only
# unless DJANGO_ALLOWED_HOSTS lists others (comma-separated).
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or load_or_create(VAR_DIR)
DEBUG = os.environ.get("DJANGO_DEBUG", "") == "1"
ALLOWED_HOSTS = [host.strip() for host in
                 os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]").split(",")
                 if host.strip()]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and ReDoc as static files: no CDN (docs/api.md)
    "django_q",
    "moderation",
    "demo_project.blog",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The admin and console follow the browser's language (docs/admin.md, "Languages").
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "demo_project.urls"
WSGI_APPLICATION = "demo_project.wsgi.application"

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

if os.environ.get("DEMO_DB") == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": os.environ.get("DEMO_DB_NAME") or os.environ.get("PGDATABASE", "test"),
            "USER": os.environ.get("PGUSER", "postgres"),
            "HOST": os.environ.get("PGHOST", "127.0.0.1"),
            "PORT": os.environ.get("PGPORT", "5432"),
            "TEST": {"NAME": os.environ.get("PGTESTDATABASE", "test_moderation")},
        }
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("DEMO_DB_NAME") or VAR_DIR / "demo.sqlite3",
            # WAL + IMMEDIATE transactions: the web process and the qcluster workers
            # write concurrently without "database is locked".
            "OPTIONS": {
                "init_command": "PRAGMA journal_mode=WAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 30,
            },
            "TEST": {"NAME": os.environ.get("DEMO_TEST_DB") or None},
        }
    }

Q_CLUSTER = {
    "name": "moderation",
    "workers": int(os.environ.get("DEMO_Q_WORKERS", "2")),
    # Above MODERATION["LIVE_MAX_DURATION"] (3600 s): a live stream is one long task.
    "timeout": 3700,
    "retry": 3800,
    # Lets the local engine use child processes inside a worker (both cores per video).
    "daemonize_workers": False,
    "max_attempts": 2,
    "recycle": 200,
    "catch_up": False,
    "poll": 0.5,
    "label": "Task queue",
}
if os.environ.get("DEMO_BROKER") == "redis":
    Q_CLUSTER["redis"] = {
        "host": os.environ.get("REDIS_HOST", "127.0.0.1"),
        "port": int(os.environ.get("REDIS_PORT", "6379")),
        "db": int(os.environ.get("REDIS_DB", "0")),
    }
else:
    Q_CLUSTER["orm"] = "default"

MODERATION = {
    "EVIDENCE_ROOT": VAR_DIR / "evidence",
    "KEYWORDS": {"contraband_drug": ["cheap pills", "buy weed"]},
    "DEFAULT_PROVIDER": os.environ.get("MODERATION_PROVIDER", "local"),
    # Where a remote provider (or the emulator) fetches uploads from: signed, expiring URLs.
    # https, or loopback (the emulator): anything else fails check E004 with DEBUG off.
    "PUBLIC_BASE_URL": os.environ.get("MODERATION_PUBLIC_BASE_URL", "http://127.0.0.1:8000"),
    # Where a remote provider posts results (<base>/moderation/callbacks/<alias>/); empty:
    # results are polled. Needs the account UID (ALIBABA_CLOUD_UID), check E011.
    "CALLBACK_BASE_URL": os.environ.get("MODERATION_CALLBACK_BASE_URL", ""),
}
# Alibaba Cloud, configured from the environment (never from the source). Point
# MODERATION_ALIYUN_ENDPOINT at `manage.py moderation_emulator` to try it offline.
if os.environ.get("ALIBABA_CLOUD_ACCESS_KEY_ID"):
    _aliyun = {
        "ACCESS_KEY_ID": os.environ["ALIBABA_CLOUD_ACCESS_KEY_ID"],
        "ACCESS_KEY_SECRET": os.environ.get("ALIBABA_CLOUD_ACCESS_KEY_SECRET", ""),
        "UID": os.environ.get("ALIBABA_CLOUD_UID", ""),
        "ENDPOINT": os.environ.get("MODERATION_ALIYUN_ENDPOINT", ""),
        "REGION": os.environ.get("ALIBABA_CLOUD_REGION", "ap-southeast-1"),
    }
    MODERATION["PROVIDERS"] = {
        "aliyun_guardrails": {
            "BACKEND": "moderation.providers.aliyun.guardrails.GuardrailsProvider",
            "OPTIONS": _aliyun,
        },
        "aliyun_green": {
            "BACKEND": "moderation.providers.aliyun.green.GreenProvider",
            "OPTIONS": {**_aliyun, "RATE_LIMIT": 50},  # 1.0 documents 50 image scans/s
        },
        # IMM reads media from OSS only (oss:// URLs); a demo upload has none.
        "aliyun_imm": {
            "BACKEND": "moderation.providers.aliyun.imm.ImmProvider",
            "OPTIONS": {**_aliyun, "PROJECT_NAME": os.environ.get("MODERATION_IMM_PROJECT",
                                                                  "demo")},
        },
    }

# The moderation API (moderation.api) uses these; a site keeps its own choices.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Media moderation API",
    "VERSION": "1",
    "DESCRIPTION": "Jobs, reviews, feedback, on-demand moderation and hash libraries.",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # The docs page's JavaScript and CSS from drf-spectacular-sidecar's static files (a CDN
    # would leave a blank page on a network without internet).
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Names for the moderation API's choice sets (docs/api.md).
    "ENUM_NAME_OVERRIDES": {
        "JobDecisionEnum": "moderation.models.Decision",
        "ReviewDecisionEnum": "moderation.api.serializers.REVIEW_DECISIONS",
        "MediaKindEnum": "moderation.models.MediaKind",
    },
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
# The languages the moderation app ships (moderation/locale); LocaleMiddleware picks one
# from the session, the language cookie or Accept-Language.
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
MEDIA_URL = "media/"
MEDIA_ROOT = VAR_DIR / "media"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LOGIN_URL = "admin:login"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"moderation": {"handlers": ["console"], "level": "INFO"}},
}
