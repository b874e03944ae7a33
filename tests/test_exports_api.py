"""Export pages and API end to end: jobs on a real Celery worker, download, delete, cancel,
and who may do what."""

import hashlib
import io
import json
import zipfile
from pathlib import Path

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from annotations.models import DatasetExport, Job
from annotations.services.exports import exports_root
from tests.helpers import job_id_from, run_export, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.worker
def test_page_starts_an_export_job_and_lists_the_ready_snapshot(
    celery_worker_live, labeled_data, admin_client_
):
    url = reverse("export_list", args=[labeled_data.project.slug])
    page = admin_client_.get(url)
    assert page.status_code == 200 and b"No exports yet" in page.content
    response = admin_client_.post(
        url,
        {
            "kind": "rm_pairs",
            "format": "jsonl",
            "splits": ["train", "valid"],
            "accepted_only": "on",
        },
    )
    assert response.status_code == 302
    job = wait_for(job_id_from(response))
    assert job.state == "succeeded", job.message
    export = DatasetExport.objects.get(job=job)
    assert export.ready and export.filters["splits"] == ["train", "valid"]
    in_splits = [r for r in labeled_data.submitted() if r.task.prompt.split != "test"]
    assert job.percent == 100 and job.progress_total == len(in_splits) == 8
    job_page = admin_client_.get(reverse("job_detail", args=[job.pk]))
    assert f"Exported {export.row_count} rows".encode() in job_page.content
    listing = admin_client_.get(url)
    assert b"v1" in listing.content and b"Download" in listing.content
    assert f"train {export.manifest['files'][0]['rows']}".encode() in listing.content
    detail = admin_client_.get(
        reverse("export_detail", args=[labeled_data.project.slug, export.pk])
    )
    assert b"Dataset card" in detail.content and b"| RM | train |" in detail.content
    bad = admin_client_.post(url, {"kind": "sft", "format": "csv"})
    assert bad.status_code == 400 and b"csv is not one of the available choices" in bad.content


@pytest.mark.worker
def test_api_creates_reads_downloads_and_deletes(celery_worker_live, labeled_data, admin_api):
    slug = labeled_data.project.slug
    created = admin_api.post(
        f"/api/v1/projects/{slug}/exports/",
        {"kind": "rm_rankings", "format": "parquet", "consensus": True},
        format="json",
    )
    assert created.status_code == 202, created.content
    body = created.json()
    assert body["job"]["kind"] == "export" and body["export"]["version"] == 1
    job = wait_for(body["job"]["id"])
    assert job.state == "succeeded", job.message
    pk = body["export"]["id"]
    detail = admin_api.get(f"/api/v1/projects/{slug}/exports/{pk}/").json()
    assert detail["ready"] and detail["manifest"]["filters"]["consensus"] is True
    listed = admin_api.get(f"/api/v1/projects/{slug}/exports/").json()
    assert [e["id"] for e in listed] == [pk]

    response = admin_api.get(f"/api/v1/projects/{slug}/exports/{pk}/download/")
    assert response.status_code == 200 and response.streaming
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    prefix = f"{slug}-rm_rankings-v1"
    names = sorted(archive.namelist())
    expected = sorted(f"{prefix}/{f['name']}" for f in detail["manifest"]["files"])
    assert names == sorted([*expected, f"{prefix}/README.md", f"{prefix}/manifest.json"])
    for info in detail["manifest"]["files"]:
        digest = hashlib.sha256(archive.read(f"{prefix}/{info['name']}")).hexdigest()
        assert digest == info["sha256"]
    one = admin_api.get(f"/api/v1/projects/{slug}/exports/{pk}/download/?file=train.parquet")
    assert hashlib.sha256(b"".join(one.streaming_content)).hexdigest() == next(
        f["sha256"] for f in detail["manifest"]["files"] if f["name"] == "train.parquet"
    )
    assert (
        admin_api.get(f"/api/v1/projects/{slug}/exports/{pk}/download/?file=../x").status_code
        == 404
    )

    folder = Path(detail["manifest"] and DatasetExport.objects.get(pk=pk).directory)
    assert admin_api.delete(f"/api/v1/projects/{slug}/exports/{pk}/").status_code == 204
    assert not folder.exists() and not DatasetExport.objects.filter(pk=pk).exists()
    refused = admin_api.post(f"/api/v1/projects/{slug}/exports/", {"kind": "nope"}, format="json")
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "invalid_kind"


@pytest.mark.worker
def test_cancel_mid_way_in_the_worker_leaves_nothing(
    celery_worker_live, labeled_data, admin_api, monkeypatch
):
    from annotations.services import exports as service
    from annotations.services.jobs import job_progress, job_request_cancel

    monkeypatch.setattr(service, "CHUNK_SIZE", 1)
    calls = {"n": 0, "staged": []}

    def progress(**kwargs):
        calls["n"] += 1
        if calls["n"] == 4:  # three chunks written: a file is open in the staging folder
            calls["staged"] = [p for p in exports_root().rglob("*.jsonl")]
            job_request_cancel(job=Job.objects.get(pk=kwargs["job_id"]))
        return job_progress(**kwargs)

    monkeypatch.setattr(service, "job_progress", progress)
    slug = labeled_data.project.slug
    created = admin_api.post(
        f"/api/v1/projects/{slug}/exports/", {"kind": "rm_pairs"}, format="json"
    )
    job = wait_for(created.json()["job"]["id"])
    assert job.state == "cancelled" and 0 < job.progress_done < job.progress_total
    assert calls["staged"] and not any(p.exists() for p in calls["staged"])
    assert not DatasetExport.objects.filter(ready=True).exists()
    assert [p for p in exports_root().rglob("*") if p.is_file()] == []
    listing = admin_api.get(f"/api/v1/projects/{slug}/exports/").json()
    assert [(e["ready"], e["job_state"]) for e in listing] == [(False, "cancelled")]


def _ready_export(project) -> DatasetExport:
    return run_export(project, kind="ppo_prompts")


def test_labelers_get_403_everywhere(labeled_data, labeler_client, labeler_api):
    export = _ready_export(labeled_data.project)
    slug = labeled_data.project.slug
    for url in (
        reverse("export_list", args=[slug]),
        reverse("export_detail", args=[slug, export.pk]),
        reverse("export_download", args=[slug, export.pk]),
    ):
        assert labeler_client.get(url).status_code == 403, url
    assert labeler_client.post(reverse("export_delete", args=[slug, export.pk])).status_code == 403
    assert (
        labeler_client.post(reverse("export_list", args=[slug]), {"kind": "sft"}).status_code == 403
    )
    api = f"/api/v1/projects/{slug}/exports/"
    assert labeler_api.get(api).status_code == 403
    assert labeler_api.post(api, {"kind": "sft"}, format="json").status_code == 403
    assert labeler_api.get(f"{api}{export.pk}/").status_code == 403
    assert labeler_api.get(f"{api}{export.pk}/download/").status_code == 403
    assert labeler_api.delete(f"{api}{export.pk}/").status_code == 403
    assert DatasetExport.objects.count() == 1 and Path(export.directory).is_dir()


def test_anonymous_goes_to_login_and_the_api_says_401(labeled_data, client):
    export = _ready_export(labeled_data.project)
    slug = labeled_data.project.slug
    page = client.get(reverse("export_download", args=[slug, export.pk]))
    assert page.status_code == 302 and "/login" in page["Location"]
    assert client.get(reverse("export_list", args=[slug])).status_code == 302
    api = APIClient()
    assert api.get(f"/api/v1/projects/{slug}/exports/").status_code == 401
    assert api.get(f"/api/v1/projects/{slug}/exports/{export.pk}/download/").status_code == 401


def test_engineers_download_and_delete_from_the_pages(labeled_data, engineer_client):
    export = _ready_export(labeled_data.project)
    slug = labeled_data.project.slug
    response = engineer_client.get(
        reverse("export_download", args=[slug, export.pk]) + "?file=manifest.json"
    )
    assert json.loads(b"".join(response.streaming_content)) == export.manifest
    gone = engineer_client.post(reverse("export_delete", args=[slug, export.pk]))
    assert gone.status_code == 302 and not DatasetExport.objects.exists()
    assert not Path(export.directory).exists()
    other = engineer_client.get(reverse("export_detail", args=[slug, export.pk]))
    assert other.status_code == 404
