"""The ranking pages through the front door: claim, render, autosave, submit, revise, refuse."""

import json

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from annotations.models import Assignment, Ranking
from annotations.roles import Role
from annotations.selectors.rankings import ranking_context
from tests.factories import ComparisonTaskFactory, UserFactory
from tests.helpers import XSS_IMG, XSS_SCRIPT, logged_in, real_queries

pytestmark = pytest.mark.django_db


def take(client, project) -> str:
    response = client.post(f"/projects/{project.slug}/rank/")
    assert response.status_code == 302 and response["Location"].startswith("/rank/")
    return response["Location"]


def form_for(url: str, labeler, *, skip_likert_of: int | None = None) -> dict:
    token = url.strip("/").split("/")[-1]
    context = ranking_context(assignment=Assignment.objects.get(token=token, labeler=labeler))
    ids = [c.pk for c in context.outputs]
    data = {"groups": json.dumps([ids[:2], *([pk] for pk in ids[2:])]), "time_spent_ms": "9000"}
    for index, pk in enumerate(ids):
        if index != skip_likert_of:
            data[f"likert-{pk}"] = "4"
        for spec in context.schema.config["output_fields"]:
            data[f"f-{pk}-{spec['key']}"] = "no"
    return data


def test_start_claim_render_and_escape(project, labeler_client):
    assert labeler_client.get(f"/projects/{project.slug}/rank/").status_code == 200
    ComparisonTaskFactory(project=project, texts=[XSS_SCRIPT, XSS_IMG, "plain", "another"])
    url = take(labeler_client, project)
    page = labeler_client.get(url)
    html = page.content.decode()
    assert page.status_code == 200
    assert "<script>alert(1)" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert html.count('class="rk-chip"') == 4 and "Rank 4" in html and "(worst)" in html
    assert "vendor/sortablejs/Sortable.min.js" in html and "<kbd>D</kbd>" in html


def test_page_query_count_does_not_grow_with_k(project, labeler, labeler_client):
    ComparisonTaskFactory(project=project, k=4)
    ComparisonTaskFactory(project=project, k=9)
    counts = []
    for k in (4, 9):
        url = take(labeler_client, project)
        with CaptureQueriesContext(connection) as captured:
            page = labeler_client.get(url)
        assert page.content.decode().count('class="rk-output"') == k
        counts.append(real_queries(captured))
        submitted = labeler_client.post(url, form_for(url, labeler))
        assert submitted.status_code == 302
    assert len(counts[0]) == len(counts[1]) and len(counts[1]) <= 8, "\n".join(counts[1])


def test_form_submit_refusal_keeps_input_then_success_moves_on(project, labeler, labeler_client):
    ComparisonTaskFactory(project=project, k=4)
    url = take(labeler_client, project)
    data = form_for(url, labeler, skip_likert_of=2)
    refused = labeler_client.post(url, data)
    assert refused.status_code == 400
    html = refused.content.decode()
    assert "Output C: Overall quality is not rated" in html
    assert html.count("checked") >= 3 * 11  # what was entered is still there
    assert not Ranking.objects.exists()

    for garbage in ("{not json", '{"a": 1}', "[[[1]], 7]"):
        odd = labeler_client.post(url, dict(form_for(url, labeler), groups=garbage))
        assert odd.status_code == 400 and 'class="rk-errors"' in odd.content.decode()
    ok = labeler_client.post(url, form_for(url, labeler))
    assert ok.status_code == 302 and ok["Location"] == f"/projects/{project.slug}/rank/"
    ranking = Ranking.objects.get()
    assert ranking.state == "submitted" and ranking.time_spent_ms == 9000
    revisable = labeler_client.get(url).content.decode()
    assert "Save revision" in revisable and "You may revise this ranking until" in revisable


def test_autosave_draft_is_restored_on_reload(project, labeler, labeler_client):
    ComparisonTaskFactory(project=project, k=4)
    url = take(labeler_client, project)
    data = form_for(url, labeler)
    first = json.loads(data["groups"])[0][0]
    partial = {"groups": json.dumps([[first]]), f"likert-{first}": "6", "notes": "later"}
    assert labeler_client.post(url + "draft/", partial).status_code == 204
    html = labeler_client.get(url).content.decode()
    assert f'name="likert-{first}" value="6" checked' in html
    assert "later</textarea>" in html
    bad = labeler_client.post(url + "draft/", {f"likert-{first}": "12"})
    assert bad.status_code == 400 and "1..7; got 12" in bad.json()["error"]["message"]
    assert Ranking.objects.get().ratings[str(first)]["likert"] == 6


def test_others_tokens_are_404_and_roles_are_checked(project, labeler_client, engineer_client):
    ComparisonTaskFactory(project=project, k=4)
    url = take(labeler_client, project)
    client = logged_in(UserFactory(roles=[Role.LABELER]))
    assert client.get(url).status_code == 404
    assert client.post(url + "draft/", {"groups": "[]"}).status_code == 404
    assert engineer_client.get(url).status_code == 403
    assert Client().get(url).status_code == 302  # to the login page


def test_skip_needs_a_reason_and_moves_on(project, labeler_client):
    ComparisonTaskFactory(project=project, k=4)
    url = take(labeler_client, project)
    assert labeler_client.post(url + "skip/", {"reason": " "}).status_code == 302
    assert labeler_client.get(url).status_code == 200
    moved = labeler_client.post(url + "skip/", {"reason": "unclear prompt"})
    assert moved["Location"] == f"/projects/{project.slug}/rank/"
    assignment = Assignment.objects.get()
    assert (assignment.state, assignment.skip_reason) == ("skipped", "unclear prompt")
