"""Imports as jobs, end to end: the upload page, a real Celery worker on Redis, the job page."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from annotations.models import Job, Prompt
from tests.helpers import job_id_from, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def upload(client, lines: list[str], *, name: str = "p.jsonl", skip: bool = False):
    body = ("\n".join(lines) + "\n").encode()
    data = {"file": SimpleUploadedFile(name, body)}
    if skip:
        data["skip_invalid"] = "on"
    return client.post(reverse("prompt_import", args=["test"]), data)


def test_upload_page_runs_the_import_in_a_worker(celery_worker_live, admin_client_, project):
    rows = [
        json.dumps({"text": f"Prompt {i} about oceans", "customer_id": f"c{i % 7}"})
        for i in range(500)
    ]
    response = upload(admin_client_, rows)
    assert response.status_code == 302
    job_id = job_id_from(response)
    job = wait_for(job_id)
    assert job.state == "succeeded", job.message
    assert job.result["imported"] == 500
    assert job.percent == 100
    assert Prompt.objects.filter(project=project, import_job=job).count() == 500
    page = admin_client_.get(reverse("job_detail", args=[job_id]))
    assert b"Imported 500 of 500 rows." in page.content
    fragment = admin_client_.get(reverse("job_detail", args=[job_id]), HTTP_HX_REQUEST="true")
    assert fragment.status_code == 286  # htmx stops polling


def test_invalid_file_imports_nothing_then_rerun_skips_bad_rows(
    celery_worker_live, admin_client_, project
):
    rows = [
        json.dumps({"text": "Good one", "customer_id": "a"}),
        "{oops",
        json.dumps({"text": "Another good one", "customer_id": "b"}),
    ]
    job = wait_for(job_id_from(upload(admin_client_, rows)))
    assert job.state == "failed"
    assert "1 of 3 rows are not valid; nothing was imported" in job.message
    assert job.result["errors"][0]["line"] == 2
    assert not Prompt.objects.filter(project=project).exists()
    page = admin_client_.get(reverse("job_detail", args=[job.pk]))
    assert b"Line 2 is not valid JSON" in page.content
    assert b"skipping the 1 invalid rows" in page.content
    rerun = admin_client_.post(reverse("job_rerun", args=[job.pk]))
    new = wait_for(job_id_from(rerun))
    assert new.state == "succeeded"
    assert (new.result["imported"], new.result["invalid"]) == (2, 1)


def test_cancel_before_start_never_imports(admin_client_, project, transactional_db):
    response = upload(admin_client_, [json.dumps({"text": "x", "customer_id": "a"})])
    job_id = job_id_from(response)
    admin_client_.post(reverse("job_cancel", args=[job_id]))
    from annotations.services.prompts import prompt_import_run

    prompt_import_run(job_id=job_id)  # what the worker would do when it picks the message up
    job = Job.objects.get(pk=job_id)
    assert job.state == "cancelled"
    assert not Prompt.objects.filter(project=project).exists()


def test_running_twice_is_harmless(celery_worker_live, admin_client_, project):
    from annotations.services.prompts import prompt_import_run

    response = upload(admin_client_, [json.dumps({"text": "only once", "customer_id": "a"})])
    job = wait_for(job_id_from(response))
    prompt_import_run(job_id=job.pk)  # a redelivered message
    assert Prompt.objects.filter(project=project).count() == 1
    assert Job.objects.get(pk=job.pk).attempts == 1
