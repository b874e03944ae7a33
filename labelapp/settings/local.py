"""`make run`: one machine, nothing to install. SQLite and a filesystem broker unless overridden."""

import os

os.environ.setdefault("DJANGO_SECRET_KEY", "local-development-only-not-secret")
os.environ.setdefault("DJANGO_DEBUG", "1")

from labelapp.settings.base import *  # noqa: F403
from labelapp.settings.base import VAR_DIR

VAR_DIR.mkdir(parents=True, exist_ok=True)
for _sub in ("broker/out", "broker/processed", "broker/control", "media"):
    (VAR_DIR / _sub).mkdir(parents=True, exist_ok=True)
