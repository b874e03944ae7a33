"""Who gets in where: pages, the Django admin and the API."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("name", ["project_new", "job_list"])
def test_anonymous_users_go_to_login(client, name):
    response = client.get(reverse(name))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_anonymous_home_and_project_pages_go_to_login(client, project):
    for url in (reverse("home"), reverse("project_detail", args=[project.slug])):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("prompt_import", ["test"]),
        ("project_new", []),
        ("project_edit", ["test"]),
        ("prompt_list", ["test"]),
        ("job_list", []),
    ],
)
def test_labeler_gets_403_on_admin_pages(labeler_client, project, name, args):
    assert labeler_client.get(reverse(name, args=args)).status_code == 403


def test_labeler_upload_post_changes_nothing(labeler_client, project, tmp_path):
    response = labeler_client.post(
        reverse("prompt_import", args=["test"]),
        {"file": SimpleUploadedFile("p.jsonl", b'{"text": "x", "customer_id": "a"}\n')},
    )
    assert response.status_code == 403
    assert project.prompts.count() == 0


def test_django_admin_is_for_admins(labeler_client, admin_client_, engineer_client):
    assert labeler_client.get("/admin/").status_code == 403
    assert engineer_client.get("/admin/").status_code == 403
    assert admin_client_.get("/admin/").status_code == 200
    assert admin_client_.get("/admin/annotations/prompt/").status_code == 200


def test_engineer_may_watch_jobs_but_not_import(engineer_client, project):
    assert engineer_client.get(reverse("job_list")).status_code == 200
    assert engineer_client.get(reverse("prompt_list", args=["test"])).status_code == 200
    assert engineer_client.get(reverse("prompt_import", args=["test"])).status_code == 403


def test_api_without_token_answers_401():
    response = APIClient().get("/api/v1/projects/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_api_with_bad_token_answers_401():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    assert client.get("/api/v1/me/").status_code == 401


def test_api_roles(labeler, labeler_api, admin_api, project):
    assert labeler_api.get("/api/v1/me/").json() == {
        "username": labeler.username,
        "roles": ["labeler"],
    }
    response = labeler_api.post("/api/v1/projects/", {"name": "X", "slug": "x"}, format="json")
    assert response.status_code == 403
    assert "manage" in response.json()["error"]["message"]
    assert labeler_api.get("/api/v1/projects/test/prompts/").status_code == 403
    assert admin_api.get("/api/v1/projects/test/prompts/").status_code == 200


def test_unknown_project_is_404(admin_client_, admin_api):
    assert admin_client_.get(reverse("project_detail", args=["nope"])).status_code == 404
    response = admin_api.get("/api/v1/projects/nope/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_csrf_is_enforced_on_pages(admin_user, project):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    response = client.post(reverse("project_new"), {"name": "CSRF", "slug": "csrf"})
    assert response.status_code == 403


def test_label_schema_versions_are_added_checked_and_never_edited_in_the_admin(
    admin_client_, project
):
    """The Django admin adds a schema as the next version, through the same check as the service,
    and offers no way to change or delete a version that labels may name."""
    import json

    from annotations.models import LabelSchema
    from annotations.models.projects import default_schema_config

    url = "/admin/annotations/labelschema/"
    bad = admin_client_.post(f"{url}add/", {"project": project.pk, "config": '{"likert": 3}'})
    assert bad.status_code == 200 and "likert" in bad.content.decode()
    odd = {**default_schema_config(), "categories": 5, "pii_subfields": [["x"]]}
    odder = admin_client_.post(f"{url}add/", {"project": project.pk, "config": json.dumps(odd)})
    assert odder.status_code == 200
    assert "categories" in odder.content.decode() and "pii_subfields" in odder.content.decode()
    assert LabelSchema.objects.filter(project=project).count() == 1
    config = json.dumps(default_schema_config())
    added = admin_client_.post(f"{url}add/", {"project": project.pk, "config": config})
    assert added.status_code == 302, added.content.decode()[:500]
    assert list(project.schemas.values_list("version", flat=True)) == [2, 1]
    first = project.schemas.get(version=1)
    assert admin_client_.post(f"{url}{first.pk}/delete/", {"post": "yes"}).status_code == 403
    admin_client_.post(f"{url}{first.pk}/change/", {"project": project.pk, "config": "{}"})
    first.refresh_from_db()
    assert first.config == default_schema_config()


def test_deleting_a_project_in_the_admin_takes_its_schema_versions_along(admin_client_, project):
    from annotations.models import LabelSchema, Project

    response = admin_client_.post(
        f"/admin/annotations/project/{project.pk}/delete/", {"post": "yes"}
    )
    assert response.status_code == 302
    assert not Project.objects.filter(pk=project.pk).exists()
    assert not LabelSchema.objects.filter(project_id=project.pk).exists()
