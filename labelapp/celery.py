"""The Celery app. Queues: default (imports, exports, stats), generation, gpu (training)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "labelapp.settings.local")

app = Celery("labelapp")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
