"""Fixtures: users per role, logged-in clients, token API clients, a project, a real worker."""

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from celery.contrib.testing.worker import start_worker
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotations.models import Project
from annotations.roles import Role
from annotations.services.projects import project_create
from tests.factories import UserFactory
from tests.inference import models_dir, service  # noqa: F401  (shared fixtures)


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


def _client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def labeler_client(labeler) -> Client:
    return _client_for(labeler)


@pytest.fixture
def admin_client_(admin_user) -> Client:
    return _client_for(admin_user)


@pytest.fixture
def engineer_client(engineer) -> Client:
    return _client_for(engineer)


def token_client(user) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def admin_api(admin_user) -> APIClient:
    return token_client(admin_user)


@pytest.fixture
def labeler_api(labeler) -> APIClient:
    return token_client(labeler)


@pytest.fixture
def project(admin_user) -> Project:
    return project_create(user=admin_user, data={"name": "Test project", "slug": "test"})


def write_jsonl(path: Path, rows: list) -> Path:
    with path.open("w") as out:
        for row in rows:
            out.write((row if isinstance(row, str) else json.dumps(row)) + "\n")
    return path


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
