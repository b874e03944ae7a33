"""Settings shared by every environment. Each value comes from the environment (see README)."""

from importlib.util import find_spec
from pathlib import Path

import dj_database_url

from labelapp.settings.env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(env_str("LABELAPP_VAR_DIR", str(BASE_DIR / "var")))

SECRET_KEY = env_str("DJANGO_SECRET_KEY", None)
DEBUG = env_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "labelapp.apps.LabelAdminConfig",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "template_partials",
    "annotations",
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
]

ROOT_URLCONF = "labelapp.urls"
WSGI_APPLICATION = "labelapp.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "builtins": ["template_partials.templatetags.partials"],
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "annotations.context_processors.roles",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'labelapp.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and find_spec("psycopg"):
    # psycopg 3 with server-side binding prepares a statement on the server after it ran
    # `prepare_threshold` times on a connection: the hot paths' joins cost more to plan than to
    # run. Set LABELAPP_DB_PREPARED_STATEMENTS=0 behind a pooler in transaction mode (PgBouncer
    # without max_prepared_statements), which shares server connections between clients.
    _prepared = env_bool("LABELAPP_DB_PREPARED_STATEMENTS", True)
    DATABASES["default"]["OPTIONS"] = {
        "server_side_binding": _prepared,
        "prepare_threshold": env_int("LABELAPP_DB_PREPARE_THRESHOLD", 2) if _prepared else None,
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# The hot paths on PostgreSQL: "sql" (hand-written statements) or "orm" (annotations/hotpath/).
LABELAPP_HOT_PATH = env_str("LABELAPP_HOT_PATH", "sql")

# Shared across processes (roles per user, see annotations/roles.py): Redis in production, a
# folder under var/ for `make run`.
_cache_url = env_str("LABELAPP_CACHE_URL", "")
CACHES = {
    "default": {
        # django-redis keeps one client per process; Django's own backend builds one per call.
        "BACKEND": "django_redis.cache.RedisCache"
        if _cache_url
        else "django.core.cache.backends.filebased.FileBasedCache",
        "LOCATION": _cache_url or str(VAR_DIR / "cache"),
        "KEY_PREFIX": env_str("LABELAPP_CACHE_PREFIX", ""),
    }
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("DJANGO_STATIC_ROOT", str(VAR_DIR / "staticfiles")))
# Front-end libraries come from npm (package.json), served under static/vendor/<name>/.
STATICFILES_DIRS = [
    BASE_DIR / "static",
    ("vendor/sortablejs", BASE_DIR / "node_modules" / "sortablejs"),
    ("vendor/chartjs", BASE_DIR / "node_modules" / "chart.js" / "dist"),
]
MEDIA_ROOT = Path(env_str("LABELAPP_MEDIA_ROOT", str(VAR_DIR / "media")))

# Uploads above 2.5 MB stream to a temporary file; nothing holds a whole upload in memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
LABELAPP_MAX_UPLOAD_BYTES = env_int("LABELAPP_MAX_UPLOAD_BYTES", 512 * 1024 * 1024)

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # htmx reads the token from the page, not the cookie
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "annotations.authentication.HotPathTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "annotations.errors.api_exception_handler",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 100,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "labelapp API",
    "DESCRIPTION": (
        "Prompts, labeling work, model outputs, jobs and datasets. Authenticate with "
        "`Authorization: Token <key>` (create a key with `manage.py api_token <username>`)."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],  # the schema holds no data
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Celery: the broker is Redis in production, an embedded filesystem broker for `make run`.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
CELERY_BROKER_TRANSPORT_OPTIONS: dict = {}
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "out"),
        "data_folder_out": str(_broker_dir / "out"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_TASK_ALWAYS_EAGER = False  # long work never runs inside a web request
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = ("annotations.job_kinds.route_task",)  # one table of task queues

LABELAPP_INFERENCE_URL = env_str("LABELAPP_INFERENCE_URL", "http://127.0.0.1:8100")
LABELAPP_INFERENCE_API_KEY = env_str("LABELAPP_INFERENCE_API_KEY", "")
LABELAPP_INFERENCE_TIMEOUT = float(env_int("LABELAPP_INFERENCE_TIMEOUT", 120))
LABELAPP_GENERATION_BATCH_PROMPTS = env_int("LABELAPP_GENERATION_BATCH_PROMPTS", 8)
LABELAPP_GENERATION_MAX_RETRIES = env_int("LABELAPP_GENERATION_MAX_RETRIES", 8)
LABELAPP_GENERATION_RETRY_SECONDS = env_int("LABELAPP_GENERATION_RETRY_SECONDS", 2)
LABELAPP_MODELS_DIR = Path(env_str("LABELAPP_MODELS_DIR", str(VAR_DIR / "models")))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LABELAPP_LOG_LEVEL", "INFO")},
}

from labelapp.beat import BEAT_SCHEDULE as CELERY_BEAT_SCHEDULE  # noqa: E402,F401
