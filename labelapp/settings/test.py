"""The test suite: real PostgreSQL and Redis (no SQLite, no in-memory broker)."""

import os
import uuid

os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-not-secret")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/labelapp")
os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/15")
os.environ.setdefault("LABELAPP_CACHE_URL", "redis://127.0.0.1:6379/14")
# One key prefix per test session, inherited by the processes it starts (workers, servers): no
# cached value outlives the session whose database it describes.
os.environ.setdefault("LABELAPP_CACHE_PREFIX", f"test-{uuid.uuid4().hex[:12]}")

from labelapp.settings.base import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins in tests
ALLOWED_HOSTS = ["*"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # noqa: F405
