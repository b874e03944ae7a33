"""Every page renders, escapes what it shows, and keeps its query count flat."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from annotations.models import Job, Project
from annotations.services.projects import project_update
from tests.factories import PASSWORD, JobFactory, PromptFactory
from tests.helpers import XSS

pytestmark = pytest.mark.django_db


def test_login_page(client):
    response = client.get(reverse("login"))
    assert response.status_code == 200
    assert b'name="password"' in response.content


def test_login_and_logout(client, labeler):
    response = client.post(reverse("login"), {"username": labeler.username, "password": PASSWORD})
    assert response.status_code == 302
    assert client.get(reverse("home")).status_code == 200
    client.post(reverse("logout"))
    assert client.get(reverse("home")).status_code == 302


def test_home_for_each_role(labeler_client, admin_client_, engineer_client, project):
    assert b"Recent jobs" not in labeler_client.get(reverse("home")).content
    assert b"Recent jobs" in engineer_client.get(reverse("home")).content
    assert b"Test project" in admin_client_.get(reverse("home")).content


def test_empty_states(admin_client_):
    assert b"No projects yet." in admin_client_.get(reverse("home")).content
    assert b"No jobs yet." in admin_client_.get(reverse("job_list")).content
    assert b"No projects yet." in admin_client_.get(reverse("project_list")).content


def test_project_create_edit_and_detail(admin_client_):
    response = admin_client_.post(
        reverse("project_new"),
        {
            "name": "Chat data",
            "slug": "chat",
            "k_min": 4,
            "k_max": 9,
            "labelers_per_item": 2,
            "lease_minutes": 30,
            "revision_window_minutes": 60,
            "split_train": 0.8,
            "split_valid": 0.1,
            "split_test": 0.1,
            "max_prompts_per_customer": 200,
            "dedup_prefix_chars": 100,
            "max_prompt_tokens": 1000,
            "max_demonstration_chars": 8000,
        },
    )
    assert response.status_code == 302
    project = Project.objects.get(slug="chat")
    assert project.labelers_per_item == 2
    detail = admin_client_.get(reverse("project_detail", args=["chat"]))
    assert b"version 1" in detail.content
    assert b"No prompts yet." in detail.content
    assert admin_client_.get(reverse("project_edit", args=["chat"])).status_code == 200
    bad = admin_client_.post(
        reverse("project_edit", args=["chat"]),
        {
            "name": "Chat data",
            "slug": "chat",
            "k_min": 3,
            "k_max": 9,
            "labelers_per_item": 2,
            "lease_minutes": 30,
            "revision_window_minutes": 60,
            "split_train": 0.8,
            "split_valid": 0.1,
            "split_test": 0.1,
            "max_prompts_per_customer": 200,
            "dedup_prefix_chars": 100,
            "max_prompt_tokens": 1000,
            "max_demonstration_chars": 8000,
        },
    )
    assert bad.status_code == 200
    assert b"K must satisfy 4 &lt;= k_min &lt;= k_max &lt;= 9; got 3..9." in bad.content
    project.refresh_from_db()
    assert project.k_min == 4


def test_guidelines_markdown_is_sanitised(labeler_client, project):
    project_update(
        project=project,
        data={"guidelines": f"# Rules\n\n**Be kind.** {XSS}\n\n[link](javascript:alert(1))"},
    )
    response = labeler_client.get(reverse("project_guidelines", args=["test"]))
    html = response.content.decode()
    assert "<h1>Rules</h1>" in html
    assert "<strong>Be kind.</strong>" in html
    assert "<script>alert(1)</script>" not in html
    assert "onerror" not in html
    assert "javascript:" not in html


def test_prompt_list_escapes_text_and_searches(admin_client_, project):
    prompts = PromptFactory.create_batch(3, project=project)
    PromptFactory(project=project, text=XSS)
    response = admin_client_.get(reverse("prompt_list", args=["test"]))
    html = response.content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    fragment = admin_client_.get(
        reverse("prompt_list", args=["test"]),
        {"q": prompts[1].text},
        HTTP_HX_REQUEST="true",
        HTTP_HX_TARGET="prompt-rows",
    )
    assert b"<html" not in fragment.content
    assert prompts[1].text.encode() in fragment.content
    assert prompts[2].text.encode() not in fragment.content


def test_prompt_list_query_count_does_not_grow(admin_client_, project):
    PromptFactory.create_batch(5, project=project)
    admin_client_.get(reverse("prompt_list", args=["test"]))
    with CaptureQueriesContext(connection) as few:
        admin_client_.get(reverse("prompt_list", args=["test"]))
    PromptFactory.create_batch(200, project=project)
    with CaptureQueriesContext(connection) as many:
        admin_client_.get(reverse("prompt_list", args=["test"]))
    assert len(many) == len(few), [q["sql"] for q in many.captured_queries]
    assert len(few) <= 8


def test_import_page_and_job_pages(admin_client_, project, admin_user):
    assert admin_client_.get(reverse("prompt_import", args=["test"])).status_code == 200
    response = admin_client_.post(
        reverse("prompt_import", args=["test"]), {"file": SimpleUploadedFile("p.txt", b"hi")}
    )
    assert response.status_code == 200
    assert b"Choose a format" in response.content
    assert not Job.objects.exists()
    job = JobFactory(
        project=project, created_by=admin_user, state="running", progress_done=5, progress_total=10
    )
    page = admin_client_.get(reverse("job_detail", args=[job.pk]))
    assert b'hx-trigger="every 1s"' in page.content
    assert b'value="50"' in page.content
    fragment = admin_client_.get(reverse("job_detail", args=[job.pk]), HTTP_HX_REQUEST="true")
    assert fragment.status_code == 200
    assert b"<html" not in fragment.content
    assert admin_client_.get(reverse("job_list")).status_code == 200
    admin_client_.post(reverse("job_cancel", args=[job.pk]))
    job.refresh_from_db()
    assert job.cancel_requested


def test_404_and_403_pages(labeler_client):
    assert b"Not found" in labeler_client.get("/projects/nope/").content
    response = labeler_client.get(reverse("project_new"))
    assert response.status_code == 403
    assert b"Not allowed" in response.content
