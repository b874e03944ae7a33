"""Production: every secret and service address must come from the environment (no defaults)."""

from labelapp.settings.env import env_bool, env_int, env_str

env_str("DJANGO_SECRET_KEY")  # fail at start, not at first request, when one is missing
env_str("DATABASE_URL")
env_str("CELERY_BROKER_URL")
env_str("LABELAPP_CACHE_URL")  # roles are cached across processes: a shared cache

from labelapp.settings.base import *  # noqa: E402,F403

DEBUG = False
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", True)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 0)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
