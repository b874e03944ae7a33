"""Small helpers the tests share; their data comes from tests/factories.py."""

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotations.models import DatasetExport, Job
from annotations.services.exports import export_create, export_run
from tests.factories import PASSWORD

# Task text that tries to run script; pages must show it as text.
XSS_SCRIPT = "<script>alert(1)</script>"
XSS_IMG = "<img src=x onerror=alert(1)>"
XSS = XSS_SCRIPT + XSS_IMG


def real_queries(captured: Any) -> list[str]:
    """The statements a request runs, less the savepoints of the test's own transaction and the
    PREPAREs of hand-written statements (once per database connection, see annotations/rows.py).
    """
    return [
        q["sql"]
        for q in captured.captured_queries
        if not q["sql"].startswith(("SAVEPOINT", "RELEASE SAVEPOINT", "PREPARE "))
    ]


def wait_for(
    job_id: int, *, until: Callable[[Job], bool] | None = None, timeout: float = 240
) -> Job:
    """Poll the job row (a real worker runs the job) until `until(job)` (default: the job
    finished); fail with its state, message and log after `timeout` seconds."""
    until = until or (lambda job: job.is_finished)
    deadline = time.monotonic() + timeout
    while True:
        job = Job.objects.get(pk=job_id)
        if until(job):
            return job
        if time.monotonic() > deadline:
            raise AssertionError(
                f"job {job_id} is {job.state} after {timeout}s: {job.message}\n{job.log_tail}"
            )
        time.sleep(0.1)


def job_id_from(response: Any) -> int:
    """The job a page redirected to (its job page)."""
    return int(response["Location"].rstrip("/").split("/")[-1])


def run_export(project: Any, user: Any = None, **options: Any) -> DatasetExport:
    """An export made in this process, as the management command makes it; `kind` (default
    rm_pairs) and `format` (default jsonl), the rest are filters."""
    export = export_create(
        project=project,
        user=user,
        kind=options.pop("kind", "rm_pairs"),
        format=options.pop("format", "jsonl"),
        filters=options,
        enqueue=False,
    )
    assert export_run(job_id=export.job_id) is not None
    export.refresh_from_db()
    return export


def logged_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def token_client(user: Any) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def write_jsonl(path: Path, rows: list) -> Path:
    """Rows as JSON lines; a string row is written as it is (a malformed line)."""
    with path.open("w") as out:
        for row in rows:
            out.write((row if isinstance(row, str) else json.dumps(row)) + "\n")
    return path


def log_in(page: Any, user: Any, password: str = PASSWORD) -> None:
    """Log in through the login form of a Playwright page."""
    page.goto("/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/login/" not in url)
