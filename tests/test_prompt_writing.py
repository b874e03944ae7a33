"""Prompts written by labelers: each kind, through prompt_create's filters, and the few-shot
expansion into training examples."""

import pytest
from django.urls import reverse

from annotations.errors import ApplicationError
from annotations.models import Assignment, Prompt, WorkItem
from annotations.services.prompt_writing import FewShotExample, few_shot_examples, prompt_write
from annotations.services.queue import task_claim_next
from annotations.services.work_admin import prompt_writing_queue
from tests.factories import PromptFactory

FEW_SHOT = {
    "instruction": "Answer with the capital city.",
    "pairs": [
        {"query": "France", "response": "Paris"},
        {"query": "Japan", "response": "Tokyo"},
        {"query": "Peru", "response": "Lima"},
    ],
}


def test_few_shot_expands_to_one_example_per_pair_with_the_others_as_context():
    examples = few_shot_examples(FEW_SHOT)
    assert [e.completion for e in examples] == ["Paris", "Tokyo", "Lima"]
    assert examples[1] == FewShotExample(
        prompt="Answer with the capital city.\n\n"
        "Query: France\nResponse: Paris\n\n"
        "Query: Peru\nResponse: Lima\n\n"
        "Query: Japan\nResponse:",
        completion="Tokyo",
    )
    for example, pair in zip(examples, FEW_SHOT["pairs"], strict=True):
        assert f"Response: {pair['response']}" not in example.prompt  # never its own answer
        others = [p for p in FEW_SHOT["pairs"] if p is not pair]
        assert all(
            f"Query: {p['query']}\nResponse: {p['response']}" in example.prompt for p in others
        )
    assert few_shot_examples({"instruction": "x", "pairs": []}) == []


def _task(project, labeler):
    prompt_writing_queue(project=project, count=1)
    return task_claim_next(labeler=labeler, project=project, kinds=["prompt_writing"]).assignment


@pytest.mark.django_db
def test_each_kind_enters_the_pool_as_a_labeler_prompt(project, labeler):
    prompt_writing_queue(project=project, count=3)
    written = []
    for kind, fields in [
        ("plain", {"text": "Write a haiku about autumn rain on a tin roof."}),
        ("few_shot", {"instruction": FEW_SHOT["instruction"], "pairs": FEW_SHOT["pairs"]}),
        ("user_based", {"use_case": "Plan a trip", "text": "Plan three days in Lisbon for me."}),
    ]:
        token = task_claim_next(labeler=labeler, project=project).assignment.token
        written.append(prompt_write(labeler=labeler, token=token, kind=kind, **fields))
    plain, few, user = (Prompt.objects.get(pk=p.pk) for p in written)
    assert {p.source for p in (plain, few, user)} == {"labeler"}
    assert {p.customer_id for p in (plain, few, user)} == {f"labeler:{labeler.pk}"}
    assert (plain.kind, few.kind, user.kind) == ("plain", "few_shot", "user_based")
    assert few.few_shot == FEW_SHOT and few.text.startswith("Answer with the capital city.")
    assert user.use_case == "Plan a trip"
    assert WorkItem.objects.filter(done_count=1).count() == 3


@pytest.mark.django_db
def test_refusals_store_nothing_and_leave_the_task_open(project, labeler):
    existing = PromptFactory(
        project=project, text="An existing prompt that is long enough to share a prefix 0"
    )
    assignment = _task(project, labeler)
    before = Prompt.objects.count()
    with pytest.raises(ApplicationError, match="duplicate"):
        prompt_write(
            labeler=labeler,
            token=assignment.token,
            kind="plain",
            text=existing.text,
        )
    project.max_prompt_chars = 20
    project.save()
    with pytest.raises(ApplicationError, match="longer than"):
        prompt_write(labeler=labeler, token=assignment.token, kind="plain", text="y" * 50)
    with pytest.raises(ApplicationError, match="at least 2"):
        prompt_write(
            labeler=labeler,
            token=assignment.token,
            kind="few_shot",
            instruction="Do it",
            pairs=[{"query": "a", "response": "b"}],
        )
    with pytest.raises(ApplicationError, match="use case"):
        prompt_write(labeler=labeler, token=assignment.token, kind="user_based", text="hi")
    assert Prompt.objects.count() == before
    assert Assignment.objects.get(pk=assignment.pk).state == "leased"


@pytest.mark.django_db
def test_submitting_twice_is_refused(project, labeler):
    assignment = _task(project, labeler)
    prompt_write(labeler=labeler, token=assignment.token, kind="plain", text="A fresh prompt")
    with pytest.raises(ApplicationError, match="submitted already"):
        prompt_write(labeler=labeler, token=assignment.token, kind="plain", text="Another one")
    assert Prompt.objects.count() == 1


@pytest.mark.django_db
def test_writing_page_shows_a_refusal_inline_and_keeps_the_text(project, labeler, labeler_client):
    story = "Tell me a long story about a dragon who learns to bake bread, " * 2
    PromptFactory(project=project, text=story)
    assignment = _task(project, labeler)
    url = reverse("task_page", args=[assignment.token])
    assert b"Few-shot" in labeler_client.get(url).content
    text = story + "<b>again</b>"
    response = labeler_client.post(url, {"kind": "plain", "text": text})
    assert response.status_code == 200
    assert b"The prompt was not added: duplicate" in response.content
    assert b"&lt;b&gt;again&lt;/b&gt;" in response.content  # kept, escaped
    ok = labeler_client.post(url, {"kind": "plain", "text": "Something new entirely"})
    assert ok.status_code == 302
    assert Prompt.objects.filter(source="labeler").count() == 1
