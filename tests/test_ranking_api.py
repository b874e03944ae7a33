"""The ranking API end to end: next, draft, submit, read back; every validation error one by one."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from annotations.models import Ranking
from annotations.roles import Role
from tests.factories import ComparisonTaskFactory, UserFactory
from tests.helpers import real_queries, token_client

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("both_hot_paths")]


def take(api, project) -> dict:
    response = api.post(f"/api/v1/projects/{project.slug}/rankings/next/")
    assert response.status_code == 200, response.content
    return response.json()


def answer_for(task: dict) -> dict:
    """A complete answer in the shown order, A and B tied for best."""
    ids = [output["id"] for output in task["outputs"]]
    fields = {spec["key"]: "no" for spec in task["schema"]["output_fields"]}
    return {
        "groups": [ids[:2], *([pk] for pk in ids[2:])],
        "ratings": {str(pk): {"likert": 5, "fields": dict(fields)} for pk in ids},
        "none_acceptable": False,
        "notes": "",
        "time_spent_ms": 12_000,
    }


def submit_url(task: dict) -> str:
    return f"/api/v1/rankings/assignments/{task['token']}/submit/"


def test_next_submit_read_back_and_idempotent(project, labeler_api):
    ComparisonTaskFactory(project=project, texts=[f"<b>out {i}</b>" for i in range(6)])
    task = take(labeler_api, project)
    assert [o["letter"] for o in task["outputs"]] == list("ABCDEF")
    assert task["draft"] is None and task["schema_version"] == 1
    assert take(labeler_api, project)["token"] == task["token"]  # a held lease is resumed

    body = answer_for(task)
    first = labeler_api.post(submit_url(task), body, format="json")
    assert first.status_code == 200, first.content
    stored = first.json()
    assert stored["state"] == "submitted" and stored["groups"] == body["groups"]
    assert stored["revision_deadline"] is not None
    again = labeler_api.post(submit_url(task), body, format="json")
    assert again.json() == stored
    assert Ranking.objects.count() == 1

    read = labeler_api.get(f"/api/v1/rankings/{stored['id']}/")
    assert read.status_code == 200 and read.json()["ratings"] == stored["ratings"]
    other = token_client(UserFactory(roles=[Role.LABELER]))
    missing = other.get(f"/api/v1/rankings/{stored['id']}/")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert other.post(submit_url(task), body, format="json").status_code == 404
    assert labeler_api.post(f"/api/v1/projects/{project.slug}/rankings/next/").status_code == 204


def test_draft_then_next_returns_it(project, labeler_api):
    ComparisonTaskFactory(project=project, k=4)
    task = take(labeler_api, project)
    first = task["outputs"][0]["id"]
    draft = {"groups": [[first]], "ratings": {str(first): {"likert": 2}}}
    response = labeler_api.put(
        f"/api/v1/rankings/assignments/{task['token']}/draft/", draft, format="json"
    )
    assert response.status_code == 200 and response.json()["state"] == "draft"
    resumed = take(labeler_api, project)
    assert resumed["draft"]["groups"] == [[first]]
    assert resumed["draft"]["ratings"] == {str(first): {"likert": 2, "fields": {}}}


def _drop_first(body, ids):
    body["groups"] = [[pk for pk in group if pk != ids[0]] for group in body["groups"]]
    body["groups"] = [group for group in body["groups"] if group]


CASES = {
    "missing output": (_drop_first, "A", "groups", "not placed"),
    "duplicate": (lambda b, ids: b["groups"].append([ids[0]]), "A", "groups", "more than once"),
    "empty group": (lambda b, ids: b["groups"].insert(1, []), None, "groups", "group 2 is empty"),
    "unknown id": (lambda b, ids: b["groups"].append([424242]), None, "groups", "424242 is not"),
    "likert out of range": (
        lambda b, ids: b["ratings"][str(ids[2])].update(likert=8),
        "C",
        "likert",
        "1..7; got 8",
    ),
    "unknown field": (
        lambda b, ids: b["ratings"][str(ids[1])]["fields"].update(funny="yes"),
        "B",
        "funny",
        "unknown field 'funny'",
    ),
    "N/A where not allowed": (
        lambda b, ids: b["ratings"][str(ids[3])]["fields"].update(harmful_advice="na"),
        "D",
        "harmful_advice",
        "N/A is not allowed",
    ),
    "unrated output": (lambda b, ids: b["ratings"].pop(str(ids[1])), "B", "likert", "not rated"),
    "unanswered field": (
        lambda b, ids: b["ratings"][str(ids[0])]["fields"].pop("violent_content"),
        "A",
        "violent_content",
        "'Contains violent content' is not answered",
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_each_validation_error_is_named_and_nothing_is_saved(case, project, labeler_api):
    ComparisonTaskFactory(project=project, k=4)
    task = take(labeler_api, project)
    ids = [output["id"] for output in task["outputs"]]
    body = answer_for(task)
    change, letter, field, text = CASES[case]
    change(body, ids)
    response = labeler_api.post(submit_url(task), body, format="json")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert set(error) == {"code", "message", "details"} and error["code"] == "invalid_ranking"
    [problem] = error["details"]["problems"]
    assert (problem["output"], problem["field"]) == (letter, field)
    assert text in problem["message"] and text in error["message"]
    if letter:
        assert problem["message"].startswith(f"Output {letter}: ")
    assert Ranking.objects.count() == 0


def test_malformed_body_has_the_one_error_shape(project, labeler_api):
    ComparisonTaskFactory(project=project, k=4)
    task = take(labeler_api, project)
    response = labeler_api.post(submit_url(task), {"groups": "A>B"}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert "groups" in response.json()["error"]["message"]


def test_time_on_task_out_of_range_is_refused_cleanly(project, labeler_api):
    ComparisonTaskFactory(project=project, k=4)
    task = take(labeler_api, project)
    body = {**answer_for(task), "time_spent_ms": 10**20}
    response = labeler_api.post(submit_url(task), body, format="json")
    assert response.status_code == 400
    assert "time_spent_ms" in response.json()["error"]["message"]


# (next, submit) statements once the user's roles are cached. sql: token, user and roles; project;
# lock the labeler; live lease and kinds with open items; lease one item; task, prompt, stored
# ranking and schema; the completions || token, user and roles; the assignment with item and
# project; lock the labeler; task, prompt, ranking and schema; the completions; complete and
# count; store the ranking. orm: the same one query at a time.
RANKING_STATEMENTS = {"sql": (7, 7), "orm": (11, 10)}


def test_next_and_submit_query_counts_do_not_grow_with_k(project, labeler, both_hot_paths):
    ComparisonTaskFactory(project=project, k=4)
    ComparisonTaskFactory(project=project, k=9)
    api = token_client(labeler)
    assert api.get("/api/v1/me/").status_code == 200  # caches the roles
    counts = []
    for k in (4, 9):
        with CaptureQueriesContext(connection) as leased:
            task = take(api, project)
        assert len(task["outputs"]) == k
        with CaptureQueriesContext(connection) as submitted:
            response = api.post(submit_url(task), answer_for(task), format="json")
        assert response.status_code == 200
        counts.append((len(real_queries(leased)), len(real_queries(submitted))))
    statements = "\n".join(real_queries(leased) + real_queries(submitted))
    assert counts == [RANKING_STATEMENTS[both_hot_paths]] * 2, statements


def test_answers_have_the_documented_shape(project, labeler_api):
    """next and submit build their answers directly (the busiest calls); the OpenAPI document
    comes from the Output serializers, so the keys must match them."""
    from annotations.apis.ranking import RankingNextApi, RankingOutput

    ComparisonTaskFactory(project=project, k=4)
    task = take(labeler_api, project)
    assert set(task) == set(RankingNextApi.Output().fields)
    assert set(task["outputs"][0]) == set(RankingNextApi.Output.Output().fields)
    draft = labeler_api.put(
        f"/api/v1/rankings/assignments/{task['token']}/draft/",
        {"groups": [], "ratings": {}},
        "json",
    )
    assert draft.status_code == 200, draft.content
    assert set(draft.json()) == set(RankingOutput().fields)
    again = take(labeler_api, project)  # the lease comes back with the draft
    assert again["resumed"] and set(again["draft"]) == set(RankingOutput().fields)
    done = labeler_api.post(submit_url(task), answer_for(task), format="json")
    assert done.status_code == 200 and set(done.json()) == set(RankingOutput().fields)
    assert done.json()["revision_deadline"] is not None
