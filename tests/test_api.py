"""The JSON API: one error shape, validation that says what to fix, and the OpenAPI schema."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from annotations.models import Job, Project, Prompt
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db


def test_create_project_and_its_first_schema(admin_api):
    response = admin_api.post(
        "/api/v1/projects/", {"name": "Chat", "slug": "chat", "k_min": 4, "k_max": 6}, format="json"
    )
    assert response.status_code == 201, response.json()
    project = Project.objects.get(slug="chat")
    assert (project.k_min, project.k_max) == (4, 6)
    schema = project.schemas.get()
    assert schema.version == 1
    assert len(schema.config["output_fields"]) == 11
    assert schema.config["likert"] == {
        "min": 1,
        "max": 7,
        "label": "Overall quality",
        "low": "worst",
        "high": "best",
    }


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"k_min": 2, "k_max": 9}, "4 <= k_min <= k_max <= 9"),
        ({"k_min": 7, "k_max": 5}, "got 7..5"),
        ({"k_max": 12}, "got 4..12"),
        ({"split_train": 0.5}, "add up to 1"),
    ],
)
def test_project_settings_out_of_range(admin_api, data, fragment):
    response = admin_api.post(
        "/api/v1/projects/", {"name": "P", "slug": "p", **data}, format="json"
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_project"
    assert fragment in error["message"]
    assert not Project.objects.filter(slug="p").exists()


def test_validation_errors_have_the_one_shape(admin_api):
    response = admin_api.post("/api/v1/projects/", {"slug": "has spaces"}, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert "name: This field is required." in error["message"]
    assert "slug" in error["details"]["fields"]


def test_add_prompt_and_refusals(admin_api, project):
    url = "/api/v1/projects/test/prompts/"
    created = admin_api.post(
        url, {"text": "Explain tides.", "customer_id": "c1", "category": "open_qa"}, format="json"
    )
    assert created.status_code == 201
    assert created.json()["split"] in {"train", "valid", "test"}
    duplicate = admin_api.post(url, {"text": "explain tides", "customer_id": "c2"}, format="json")
    assert duplicate.status_code == 400
    assert duplicate.json()["error"]["code"] == "prompt_rejected"
    assert "duplicate" in duplicate.json()["error"]["message"]
    bad = admin_api.post(url, {"text": "x", "customer_id": "c", "category": "poems"}, format="json")
    assert bad.status_code == 400
    assert "category" in bad.json()["error"]["message"]
    assert Prompt.objects.filter(project=project).count() == 1
    listed = admin_api.get(url + "?q=tides").json()
    assert listed["count"] == 1
    assert listed["results"][0]["text"] == "Explain tides."


def test_import_through_api_queues_a_job(admin_api, project):
    upload = SimpleUploadedFile("p.jsonl", b'{"text": "a", "customer_id": "x"}\n')
    response = admin_api.post(
        "/api/v1/projects/test/prompts/import/", {"file": upload}, format="multipart"
    )
    assert response.status_code == 202, response.json()
    body = response.json()
    assert (body["kind"], body["state"], body["project"]) == ("import_prompts", "queued", "test")
    job = Job.objects.get(pk=body["id"])
    assert job.params["format"] == "jsonl"
    assert admin_api.get(f"/api/v1/jobs/{job.pk}/").json()["id"] == job.pk


def test_import_with_unknown_format_says_so(admin_api, project):
    upload = SimpleUploadedFile("prompts.txt", b"hello")
    response = admin_api.post(
        "/api/v1/projects/test/prompts/import/", {"file": upload}, format="multipart"
    )
    assert response.status_code == 400
    assert "Say the format" in response.json()["error"]["message"]
    assert not Job.objects.exists()


def test_cancel_a_finished_job_is_refused(admin_api, project, admin_user):
    job = JobFactory(project=project, created_by=admin_user, state="succeeded")
    response = admin_api.post(f"/api/v1/jobs/{job.pk}/cancel/")
    assert response.status_code == 400
    assert "already succeeded" in response.json()["error"]["message"]


def test_openapi_schema_and_docs(client, admin_client_):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert "/api/v1/projects/{slug}/prompts/import/" in paths
    assert "/api/v1/jobs/{id}/cancel/" in paths
    docs = admin_client_.get("/api/docs/")
    assert docs.status_code == 200
    assert b"swagger-ui" in docs.content


def test_schema_generates_without_warnings():
    from django.core.management import call_command

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", "/dev/null")
