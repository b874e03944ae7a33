"""Fixtures: users per role, logged-in clients, token API clients, a project, labeled data, a
real worker; the Hypothesis profiles."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from celery.contrib.testing.worker import start_worker
from django.test import Client
from hypothesis import settings as hypothesis_settings
from rest_framework.test import APIClient

from annotations.models import ModelVersion, Project
from annotations.roles import Role
from annotations.services.model_versions import model_versions_ensure_builtin
from tests.factories import LabeledData, ProjectFactory, UserFactory
from tests.helpers import logged_in, token_client
from tests.inference import models_dir, service  # noqa: F401  (shared fixtures)

# "ci" (the default): the same examples on every run and no deadline, so that a slow shared
# machine cannot fail a test. HYPOTHESIS_PROFILE=dev draws new examples on each run and keeps
# the failing ones in .hypothesis/.
hypothesis_settings.register_profile("ci", deadline=None, derandomize=True, database=None)
hypothesis_settings.register_profile("dev", deadline=None)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(params=["sql", "orm"])
def both_hot_paths(request, settings) -> str:
    """Run the test on both hot-path implementations (annotations/hotpath/)."""
    settings.LABELAPP_HOT_PATH = request.param
    return request.param


@pytest.fixture
def labeler(db):
    return UserFactory(roles=[Role.LABELER])


@pytest.fixture
def admin_user(db):
    return UserFactory(roles=[Role.ADMIN])


@pytest.fixture
def engineer(db):
    return UserFactory(roles=[Role.ENGINEER])


@pytest.fixture
def reviewer(db):
    return UserFactory(roles=[Role.REVIEWER])


@pytest.fixture
def labeler_client(labeler) -> Client:
    return logged_in(labeler)


@pytest.fixture
def admin_client_(admin_user) -> Client:
    return logged_in(admin_user)


@pytest.fixture
def engineer_client(engineer) -> Client:
    return logged_in(engineer)


@pytest.fixture
def admin_api(admin_user) -> APIClient:
    return token_client(admin_user)


@pytest.fixture
def labeler_api(labeler) -> APIClient:
    return token_client(labeler)


@pytest.fixture
def project(admin_user) -> Project:
    return ProjectFactory(name="Test project", slug="test", created_by=admin_user)


@pytest.fixture
def labeled_data(project) -> LabeledData:
    return LabeledData(project)


@pytest.fixture
def celery_worker_live(transactional_db) -> Iterator[object]:
    """A real Celery worker (in a thread) on the Redis broker, consuming every queue."""
    from labelapp.celery import app

    app.control.purge()
    with start_worker(
        app,
        pool="solo",
        concurrency=1,
        perform_ping_check=False,
        queues=["default", "generation", "gpu"],
        shutdown_timeout=30,
    ) as worker:
        yield worker


@pytest.fixture
def builtin(db, settings, models_dir):  # noqa: F811 (the models_dir fixture)
    settings.LABELAPP_MODELS_DIR = models_dir
    model_versions_ensure_builtin()
    return {v.name: v for v in ModelVersion.objects.all()}
