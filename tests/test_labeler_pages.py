"""Labeler and work-admin pages through the front door: flows, permissions, escaping."""

import pytest
from django.core.management import call_command
from django.urls import reverse

from annotations.models import Assignment, Demonstration, PromptAnnotation, WorkItem
from annotations.roles import Role
from annotations.services.queue import leases_expire, task_claim_next
from tests.factories import PromptFactory, UserFactory, WorkItemFactory
from tests.helpers import XSS, logged_in

pytestmark = pytest.mark.django_db


def test_home_empty_state_and_shortcuts(labeler_client):
    content = labeler_client.get(reverse("labeler_home")).content.decode()
    assert "Nothing waiting — check back later." in content
    assert "<kbd>Ctrl</kbd>+<kbd>Enter</kbd>" in content
    assert 'href="/work/"' in content  # the nav link


def test_next_write_draft_submit_and_next(project, labeler, labeler_client):
    first = WorkItemFactory.create_batch(2, project=project)[0]
    home = labeler_client.get(reverse("labeler_home")).content.decode()
    assert "Write a demonstration" in home and '<span class="count">2</span>' in home
    response = labeler_client.post(
        reverse("task_next", args=[project.slug]), {"work_kind": "demonstration"}
    )
    assert response.status_code == 302 and response.url.endswith("?work_kind=demonstration")
    page = labeler_client.get(response.url).content.decode()
    assert first.prompt.text in page and "Not saved yet" in page
    assert 'href="/projects/test/guidelines/"' in page and "/ 8000 characters" in page
    labeler_client.post(response.url, {"text": "My draft words", "action": "draft"})
    page = labeler_client.get(response.url).content.decode()
    assert "My draft words" in page and "Saved " in page
    assert "Your unfinished drafts" in labeler_client.get(reverse("labeler_home")).content.decode()
    form = {"text": "My final words", "category": "open_qa", "work_kind": "demonstration"}
    done = labeler_client.post(response.url, form)
    assert done.status_code == 302 and done.url != response.url  # the next task
    assert Demonstration.objects.get().state == "submitted"
    last = labeler_client.post(done.url, form)
    assert last.url == reverse("labeler_home")
    assert "Nothing waiting" in labeler_client.get(last.url).content.decode()
    today = labeler_client.get(reverse("labeler_home")).content.decode()
    assert "Write a demonstration: <strong>2</strong>" in today


def test_over_limit_shows_the_message_and_keeps_the_text(project, labeler, labeler_client):
    project.max_demonstration_chars = 5
    project.save()
    WorkItemFactory(project=project)
    url = labeler_client.post(reverse("task_next", args=[project.slug])).url
    response = labeler_client.post(url, {"text": "far too long", "category": "chat"})
    content = response.content.decode()
    assert "this project allows 5" in content and "far too long" in content
    assert Demonstration.objects.get().state == "draft"


def test_prompt_is_escaped_and_whitespace_kept(project, labeler, labeler_client):
    PromptFactory(project=project, text="Line one\n    indented " + XSS)
    from annotations.services.work_admin import prompt_work_queue

    prompt_work_queue(project=project, kind="demonstration", count=1)
    url = labeler_client.post(reverse("task_next", args=[project.slug])).url
    content = labeler_client.get(url).content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;" in content
    assert "<script>alert(1)" not in content
    assert "Line one\n    indented" in content


def test_others_tasks_are_404(project, labeler, labeler_client):
    WorkItemFactory(project=project)
    token = task_claim_next(labeler=labeler, project=project).assignment.token
    labeler_client.post(reverse("task_page", args=[token]), {"text": "secret", "action": "draft"})
    other = logged_in(UserFactory(roles=[Role.LABELER]))
    assert other.get(reverse("task_page", args=[token])).status_code == 404
    assert other.post(reverse("task_skip", args=[token]), {"reason": "x"}).status_code == 404
    draft = Demonstration.objects.get()
    reviewer = logged_in(UserFactory(roles=[Role.REVIEWER]))
    assert reviewer.get(reverse("review_detail", args=[draft.pk])).status_code == 404


def test_skip_needs_a_reason(project, labeler, labeler_client):
    WorkItemFactory(project=project)
    url = labeler_client.post(reverse("task_next", args=[project.slug])).url
    token = url.split("/")[-2]
    refused = labeler_client.post(reverse("task_skip", args=[token]), {"reason": " "}, follow=True)
    assert "Say why you skip" in refused.content.decode()
    labeler_client.post(reverse("task_skip", args=[token]), {"reason": "unclear prompt"})
    assert Assignment.objects.get().skip_reason == "unclear prompt"


def test_prompt_annotation_task(project, labeler, labeler_client):
    WorkItemFactory(project=project, kind="prompt_annotation")
    url = labeler_client.post(reverse("task_next", args=[project.slug])).url
    content = labeler_client.get(url).content.decode()
    assert "Asks for moral judgment" in content and "Only about public figures" in content
    response = labeler_client.post(url, {"category": "chat", "pii": "on", "pii_certain": "on"})
    assert response.status_code == 302
    stored = PromptAnnotation.objects.get().data
    assert stored["pii"] is True and stored["pii_subfields"]["certain"] is True


def test_admin_sees_leases_and_releases_them(project, labeler, admin_client_):
    WorkItemFactory(project=project)
    assignment = task_claim_next(labeler=labeler, project=project).assignment
    page = admin_client_.get(reverse("work_admin", args=[project.slug])).content.decode()
    assert labeler.username in page and "Release" in page
    url = reverse("lease_release", args=[project.slug, assignment.pk])
    partial = admin_client_.post(url, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="leases")
    assert "Nobody holds a task right now." in partial.content.decode()
    assert "<html" not in partial.content.decode()
    assert Assignment.objects.get().state == "released"
    assert WorkItem.objects.get().active_leases == 0


def test_admin_queues_work_and_edits_priorities(project, admin_client_):
    PromptFactory.create_batch(5, project=project)
    base = [project.slug]
    admin_client_.post(
        reverse("work_queue_prompts", args=base),
        {"kind": "demonstration", "count": 3, "only_unqueued": "on"},
    )
    admin_client_.post(reverse("work_queue_writing", args=base), {"count": 2})
    assert WorkItem.objects.filter(kind="demonstration").count() == 3
    assert WorkItem.objects.filter(kind="prompt_writing", prompt=None).count() == 2
    priorities = {kind: 10 for kind in project.work_priorities} | {"prompt_writing": 90}
    admin_client_.post(reverse("work_priorities", args=base), priorities)
    project.refresh_from_db()
    assert project.work_priorities["prompt_writing"] == 90
    bad = admin_client_.post(reverse("work_queue_prompts", args=base), {"kind": "x", "count": 0})
    assert bad.status_code == 400


def test_queue_work_command(project, capsys):
    PromptFactory.create_batch(4, project=project)
    call_command("queue_work", project.slug, "prompt_annotation", "10")
    call_command("queue_work", project.slug, "prompt_annotation", "10")
    call_command("queue_work", project.slug, "prompt_writing", "3")
    assert WorkItem.objects.filter(kind="prompt_annotation").count() == 4
    assert WorkItem.objects.filter(kind="prompt_writing").count() == 3
    assert "Queued 0 prompt_annotation items." in capsys.readouterr().out


def test_permissions(client, labeler_client, project):
    admin_pages = [reverse("work_admin", args=[project.slug]), reverse("review_list")]
    for url in admin_pages:
        assert labeler_client.get(url).status_code == 403
        assert client.get(url).status_code == 302 and "/login/" in client.get(url).url
    assert client.get(reverse("labeler_home")).status_code == 302
    release = reverse("lease_release", args=[project.slug, 1])
    assert labeler_client.post(release).status_code == 403


def test_work_overview_links_each_project(project, admin_client_, labeler_client):
    content = admin_client_.get(reverse("work_overview")).content.decode()
    assert f'href="/projects/{project.slug}/work/"' in content and 'href="/work/admin/"' in content
    assert labeler_client.get(reverse("work_overview")).status_code == 403


def test_draft_comes_back_after_the_lease_expired(project, labeler, labeler_client):
    from datetime import timedelta

    from django.utils import timezone

    WorkItemFactory(project=project)
    url = labeler_client.post(reverse("task_next", args=[project.slug])).url
    labeler_client.post(url, {"text": "Yesterday's words", "action": "draft"})
    Assignment.objects.update(expires_at=timezone.now() - timedelta(hours=20))
    assert leases_expire() == 1  # as beat does every minute
    home = labeler_client.get(reverse("labeler_home")).content.decode()
    assert "Your unfinished drafts" in home
    again = labeler_client.post(reverse("task_next", args=[project.slug])).url
    assert again != url  # a fresh lease on the same item
    assert "Yesterday&#x27;s words" in labeler_client.get(again).content.decode()
