"""Demonstrations through the services and the API: drafts, limits, submit, query counts."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from annotations.errors import ApplicationError
from annotations.models import Assignment, Demonstration, PromptAnnotation, WorkItem
from annotations.roles import Role
from annotations.services.demonstrations import demonstration_draft_save, demonstration_submit
from annotations.services.prompt_annotations import prompt_annotation_submit
from annotations.services.queue import task_claim_next
from annotations.services.work_admin import prompt_work_queue, work_priorities_update
from tests.factories import PromptFactory, UserFactory, WorkItemFactory
from tests.helpers import logged_in, real_queries, token_client

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("both_hot_paths")]
ANNOTATION = {"category": "open_qa", "flags": {"asks_advice": True}, "pii": False}


def claim(labeler, project, kind="demonstration"):
    return task_claim_next(labeler=labeler, project=project, kinds=[kind]).assignment


def test_draft_survives_and_accumulates_time(project, labeler):
    WorkItemFactory(project=project)
    assignment = claim(labeler, project)
    demonstration_draft_save(labeler=labeler, token=assignment.token, text="Hel", time_spent_ms=400)
    demonstration_draft_save(
        labeler=labeler, token=assignment.token, text="Hello", time_spent_ms=600
    )
    draft = Demonstration.objects.get()
    assert (draft.text, draft.state, draft.time_spent_ms) == ("Hello", "draft", 1000)
    # a huge or negative delta cannot distort time on task
    demonstration_draft_save(
        labeler=labeler, token=assignment.token, text="Hello", time_spent_ms=-5
    )
    assert Demonstration.objects.get().time_spent_ms == 1000


def test_submit_twice_makes_one_demonstration(project, labeler):
    WorkItemFactory(project=project)
    assignment = claim(labeler, project)
    first, created = demonstration_submit(
        labeler=labeler, token=assignment.token, text="An answer", annotation=ANNOTATION
    )
    again, created_again = demonstration_submit(
        labeler=labeler, token=assignment.token, text="Another", annotation=ANNOTATION
    )
    assert (created, created_again) == (True, False)
    assert again.pk == first.pk and Demonstration.objects.count() == 1
    assert Demonstration.objects.get().text == "An answer"
    item = WorkItem.objects.get()
    assert (item.done_count, item.active_leases, item.is_open) == (1, 0, False)
    annotation = PromptAnnotation.objects.get()
    assert annotation.schema_version == 1
    assert annotation.data["category"] == "open_qa" and annotation.data["flags"]["asks_advice"]
    with pytest.raises(ApplicationError, match="submitted this demonstration already"):
        demonstration_draft_save(labeler=labeler, token=assignment.token, text="late")


def test_length_limit_refuses_and_keeps_the_draft(project, labeler):
    project.max_demonstration_chars = 10
    project.save()
    WorkItemFactory(project=project)
    assignment = claim(labeler, project)
    with pytest.raises(ApplicationError, match="11 characters; this project allows 10"):
        demonstration_submit(
            labeler=labeler, token=assignment.token, text="x" * 11, annotation=ANNOTATION
        )
    draft = Demonstration.objects.get()
    assert (draft.state, draft.text) == ("draft", "x" * 11)
    assert Assignment.objects.get().state == "leased"
    with pytest.raises(ApplicationError, match="Choose the prompt's category"):
        demonstration_submit(labeler=labeler, token=assignment.token, text="ok", annotation={})
    assert Demonstration.objects.get().text == "ok"  # still a draft, with the latest words


def test_others_cannot_touch_my_task(project, labeler):
    WorkItemFactory(project=project)
    assignment = claim(labeler, project)
    other = UserFactory(roles=[Role.LABELER])
    with pytest.raises(ApplicationError, match="not yours"):
        demonstration_draft_save(labeler=other, token=assignment.token, text="mine now")
    assert not Demonstration.objects.exists()


def test_prompt_annotation_task_is_idempotent(project, labeler):
    WorkItemFactory(project=project, kind="prompt_annotation")
    assignment = claim(labeler, project, "prompt_annotation")
    assert prompt_annotation_submit(labeler=labeler, token=assignment.token, annotation=ANNOTATION)
    assert not prompt_annotation_submit(
        labeler=labeler, token=assignment.token, annotation={**ANNOTATION, "category": "chat"}
    )
    assert PromptAnnotation.objects.get().data["category"] == "open_qa"
    assert WorkItem.objects.get().done_count == 1


def test_queue_prompts_with_filters_and_not_twice(project):
    PromptFactory.create_batch(6, project=project)
    first = prompt_work_queue(project=project, kind="demonstration", count=4)
    second = prompt_work_queue(project=project, kind="demonstration", count=4)
    assert (len(first), len(second)) == (4, 2)
    assert prompt_work_queue(project=project, kind="demonstration", count=4) == []
    split = project.prompts.first().split
    again = prompt_work_queue(
        project=project, kind="prompt_annotation", count=10, split=split, category=""
    )
    assert len(again) == project.prompts.filter(split=split).count()
    with pytest.raises(ApplicationError):
        prompt_work_queue(project=project, kind="ranking", count=1)


def test_priorities_update(project):
    work_priorities_update(project=project, priorities={"demonstration": 99})
    project.refresh_from_db()
    assert project.work_priorities["demonstration"] == 99
    assert project.work_priorities["ranking"] == 50
    with pytest.raises(ApplicationError, match="0 to 1000"):
        work_priorities_update(project=project, priorities={"ranking": 5000})


def test_api_claim_draft_submit_skip(project, labeler, labeler_api):
    WorkItemFactory.create_batch(2, project=project)
    response = labeler_api.post(reverse("api_task_claim", args=[project.slug]), {}, format="json")
    assert response.status_code == 200, response.content
    token = response.json()["token"]
    assert response.json()["prompt_text"].startswith("Prompt ")
    saved = labeler_api.put(
        reverse("api_draft_save", args=[token]), {"text": "draft", "time_spent_ms": 50}, "json"
    )
    assert saved.status_code == 200 and saved.json()["chars"] == 5
    body = {"text": "final", "time_spent_ms": 25, "annotation": ANNOTATION}
    url = reverse("api_demonstration_submit", args=[token])
    first = labeler_api.post(url, body, format="json")
    second = labeler_api.post(url, body, format="json")
    assert (first.status_code, second.status_code) == (201, 200), first.content
    assert first.json()["time_spent_ms"] == 75 and second.json()["created"] is False
    nxt = labeler_api.post(reverse("api_task_claim", args=[project.slug]), {}, format="json")
    skip_url = reverse("api_task_skip", args=[nxt.json()["token"]])
    refused = labeler_api.post(skip_url, {"reason": ""}, format="json")
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "invalid"
    skipped = labeler_api.post(skip_url, {"reason": "unclear"}, format="json")
    assert skipped.json() == {"state": "skipped", "skip_reason": "unclear"}
    empty = labeler_api.post(reverse("api_task_claim", args=[project.slug]), {}, format="json")
    assert empty.status_code == 204


def test_api_needs_a_token_and_the_label_role(project, engineer):
    from rest_framework.test import APIClient

    url = reverse("api_task_claim", args=[project.slug])
    assert APIClient().post(url, {}, format="json").status_code == 401
    assert token_client(engineer).post(url, {}, format="json").status_code == 403


def test_api_limit_message(project, labeler, labeler_api):
    project.max_demonstration_chars = 5
    project.save()
    WorkItemFactory(project=project)
    token = claim(labeler, project).token
    body = {"text": "too long text", "annotation": ANNOTATION}
    response = labeler_api.post(reverse("api_demonstration_submit", args=[token]), body, "json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "too_long"
    assert "this project allows 5" in response.json()["error"]["message"]


def _counts(project):
    """Queries of: claiming (fresh labeler), rendering the task page, submitting it (page)."""
    client = logged_in(UserFactory(roles=[Role.LABELER]))
    client.get(reverse("labeler_home"))
    with CaptureQueriesContext(connection) as claimed:
        response = client.post(reverse("task_next", args=[project.slug]))
    token = response.url.split("/")[-2]
    with CaptureQueriesContext(connection) as rendered:
        assert client.get(response.url).status_code == 200
    form = {"text": "An answer", "category": "chat", "flag_asks_advice": "on"}
    with CaptureQueriesContext(connection) as submitted:
        done = client.post(reverse("task_page", args=[token]), form)
    assert done.status_code == 302
    return [len(real_queries(c)) for c in (claimed, rendered, submitted)]


def test_query_counts_do_not_grow_with_the_queue(project):
    WorkItemFactory.create_batch(3, project=project)
    small = _counts(project)
    PromptFactory.create_batch(300, project=project)
    prompt_work_queue(project=project, kind="demonstration", count=300)
    large = _counts(project)
    assert small == large
    claim_n, render_n, submit_n = small
    # claim: one candidate query per kind tried (ranking first by default priority)
    assert claim_n <= 11 and render_n <= 8 and submit_n <= 22, small
