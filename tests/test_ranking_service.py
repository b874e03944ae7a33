"""Comparison creation and the ranking services: validation, idempotence, revision, drafts."""

from datetime import timedelta

import pytest
from django.utils import timezone

from annotations.domain.ranking import shown_order
from annotations.errors import ApplicationError
from annotations.models import Assignment, ComparisonTask, Ranking, WorkItem
from annotations.models.work import AssignmentState
from annotations.roles import Role
from annotations.selectors.rankings import RankingAnswer, ranking_context
from annotations.services.queue import leases_expire, task_claim_next
from annotations.services.rankings import ranking_draft_save, ranking_submit
from tests.factories import ComparisonTaskFactory, ProjectFactory, UserFactory

pytestmark = pytest.mark.usefixtures("both_hot_paths")


def claim(labeler, project) -> Assignment:
    found = task_claim_next(labeler=labeler, project=project, kinds=["ranking"])
    assert found is not None
    return found.assignment


def full_answer(assignment, *, groups=None) -> dict:
    """A complete, valid answer: outputs ranked in shown order with one tie at the top."""
    context = ranking_context(assignment=assignment)
    ids = [c.pk for c in context.outputs]
    fields = {spec["key"]: "no" for spec in context.schema.config["output_fields"]}
    fields["hallucination"] = "na"
    return {
        "groups": groups if groups is not None else [ids[:2], *([pk] for pk in ids[2:])],
        "ratings": {
            str(pk): {"likert": 7 - i % 7, "fields": dict(fields)} for i, pk in enumerate(ids)
        },
        "none_acceptable": False,
        "notes": "fine",
        "time_spent_ms": 41_000,
    }


@pytest.mark.django_db
def test_comparison_create_checks_k_and_queues_one_ranking_item(project):
    with pytest.raises(ApplicationError) as refused:
        ComparisonTaskFactory(project=project, k=3)
    assert "between 4 and 9 outputs" in refused.value.message and "got 3" in refused.value.message
    with pytest.raises(ApplicationError):
        ComparisonTaskFactory(project=project, k=10)
    assert ComparisonTask.objects.count() == 0 and WorkItem.objects.count() == 0

    task = ComparisonTaskFactory(project=project, k=9)
    assert [c.position for c in task.completions.all()] == list(range(9))
    item = WorkItem.objects.get()
    assert (item.kind, item.comparison_id, item.required_labels) == ("ranking", task.pk, 1)


@pytest.mark.django_db
def test_submit_stores_ranking_completes_the_lease_and_is_idempotent(project, labeler):
    task = ComparisonTaskFactory(project=project, k=5)
    assignment = claim(labeler, project)
    answer = full_answer(assignment)
    ranking = ranking_submit(assignment=assignment, labeler=labeler, answer=RankingAnswer(**answer))

    ranking.refresh_from_db()
    assert ranking.state == "submitted" and ranking.submitted_at is not None
    assert ranking.groups == answer["groups"] and ranking.schema_version == 1
    ids = list(task.completions.values_list("pk", flat=True))
    assert ranking.shown_order == shown_order(item_ids=ids, task_id=task.pk, labeler_id=labeler.pk)
    assert ranking.ratings[str(ids[0])]["fields"]["hallucination"] == "na"
    assignment.refresh_from_db()
    assert assignment.state == AssignmentState.SUBMITTED

    again = ranking_submit(assignment=assignment, labeler=labeler, answer=RankingAnswer(**answer))
    assert again.pk == ranking.pk and again.updated_at == ranking.updated_at
    item = WorkItem.objects.get()
    assert (item.done_count, item.active_leases, item.is_open) == (1, 0, False)
    assert Ranking.objects.count() == 1


@pytest.mark.django_db
def test_refused_submit_writes_nothing_and_names_letter_and_field(project, labeler):
    ComparisonTaskFactory(project=project, k=4)
    assignment = claim(labeler, project)
    answer = full_answer(assignment)
    context = ranking_context(assignment=assignment)
    second = context.outputs[1]
    answer["ratings"][str(second.pk)]["likert"] = 9
    answer["ratings"][str(second.pk)]["fields"]["sexual_content"] = "na"
    with pytest.raises(ApplicationError) as refused:
        ranking_submit(assignment=assignment, labeler=labeler, answer=RankingAnswer(**answer))
    problems = refused.value.details["problems"]
    assert [(p["output"], p["field"]) for p in problems] == [
        ("B", "likert"),
        ("B", "sexual_content"),
    ]
    assert "N/A is not allowed" in problems[1]["message"]
    assert Ranking.objects.count() == 0
    assignment.refresh_from_db()
    assert assignment.state == AssignmentState.LEASED


@pytest.mark.django_db
def test_revision_inside_the_window_then_closed(project, labeler):
    ComparisonTaskFactory(project=project, k=4)
    assignment = claim(labeler, project)
    answer = full_answer(assignment)
    ranking = ranking_submit(assignment=assignment, labeler=labeler, answer=RankingAnswer(**answer))
    first_submitted = ranking.submitted_at

    revised = dict(answer, groups=[[pk] for group in answer["groups"] for pk in group][::-1])
    ranking = ranking_submit(
        assignment=assignment, labeler=labeler, answer=RankingAnswer(**revised)
    )
    ranking.refresh_from_db()
    assert ranking.groups == revised["groups"] and ranking.submitted_at == first_submitted
    assert WorkItem.objects.get().done_count == 1

    Ranking.objects.filter(pk=ranking.pk).update(
        submitted_at=timezone.now() - timedelta(minutes=project.revision_window_minutes + 1)
    )
    with pytest.raises(ApplicationError) as closed:
        ranking_submit(assignment=assignment, labeler=labeler, answer=RankingAnswer(**answer))
    assert closed.value.code == "revision_closed" and closed.value.status_code == 409
    assert Ranking.objects.get().groups == revised["groups"]


@pytest.mark.django_db
def test_draft_keeps_partial_work_and_refuses_bad_values(project, labeler):
    ComparisonTaskFactory(project=project, k=4)
    assignment = claim(labeler, project)
    first = ranking_context(assignment=assignment).outputs[0].pk
    partial = {first: {"likert": 3, "fields": {"fails_instruction": "yes"}}}
    draft = ranking_draft_save(
        assignment=assignment,
        labeler=labeler,
        answer=RankingAnswer(groups=[[first], []], ratings=partial),
    )
    assert (draft.state, draft.groups) == ("draft", [[first]])
    context = ranking_context(assignment=assignment)
    assert context.ranking.ratings == {
        str(first): {"likert": 3, "fields": {"fails_instruction": "yes"}}
    }

    with pytest.raises(ApplicationError) as refused:
        ranking_draft_save(
            assignment=assignment, labeler=labeler, answer=RankingAnswer(groups=[[999999]])
        )
    assert "999999 is not an output" in refused.value.message
    assert Ranking.objects.get().groups == [[first]]

    ranking_submit(
        assignment=assignment, labeler=labeler, answer=RankingAnswer(**full_answer(assignment))
    )
    with pytest.raises(ApplicationError) as submitted:
        ranking_draft_save(assignment=assignment, labeler=labeler, answer=RankingAnswer())
    assert submitted.value.code == "already_submitted"


@pytest.mark.django_db
def test_labelers_per_item_and_nobody_submits_for_another(project):
    project.labelers_per_item = 2
    project.save()
    ComparisonTaskFactory(project=project, k=4)
    first, second, third = (UserFactory(roles=[Role.LABELER]) for _ in range(3))
    a, b = claim(first, project), claim(second, project)
    assert task_claim_next(labeler=third, project=project, kinds=["ranking"]) is None
    with pytest.raises(ApplicationError) as not_yours:
        ranking_submit(assignment=a, labeler=second, answer=RankingAnswer(**full_answer(a)))
    assert not_yours.value.status_code == 404
    ranking_submit(assignment=a, labeler=first, answer=RankingAnswer(**full_answer(a)))
    ranking_submit(assignment=b, labeler=second, answer=RankingAnswer(**full_answer(b)))
    assert Ranking.objects.filter(state="submitted").count() == 2
    assert not WorkItem.objects.get().is_open


@pytest.mark.django_db
def test_lost_lease_keeps_the_answer_as_a_draft(project):
    ComparisonTaskFactory(project=project, k=4)
    slow, quick = UserFactory(roles=[Role.LABELER]), UserFactory(roles=[Role.LABELER])
    late = claim(slow, project)
    Assignment.objects.filter(pk=late.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    leases_expire(project=project)
    taken = claim(quick, project)
    ranking_submit(assignment=taken, labeler=quick, answer=RankingAnswer(**full_answer(taken)))
    late.refresh_from_db()
    with pytest.raises(ApplicationError) as lost:
        ranking_submit(assignment=late, labeler=slow, answer=RankingAnswer(**full_answer(late)))
    assert lost.value.code == "lease_lost"
    kept = Ranking.objects.get(labeler=slow)
    assert kept.state == "draft" and len(kept.ratings) == 4


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("other", ["submit", "draft"])
def test_concurrent_submit_and_submit_or_autosave_store_one_ranking(other):
    """A submit racing a second submit (double click) or an autosaved draft of the same task:
    no error from the database, one ranking row, submitted, and the item counted once."""
    import threading

    from django.db import connection

    project = ProjectFactory()
    ComparisonTaskFactory(project=project, k=4)
    labeler = UserFactory(roles=[Role.LABELER])
    assignment = claim(labeler, project)
    answer = full_answer(assignment)
    draft = {"groups": answer["groups"][:1], "ratings": {}, "notes": "half way"}
    failures: list = []
    barrier = threading.Barrier(2)

    def run(call):
        try:
            barrier.wait()
            call()
        except ApplicationError as exc:  # a draft after the submit is refused, and says so
            if exc.code != "already_submitted":
                failures.append(exc)
        except Exception as exc:
            failures.append(exc)
        finally:
            connection.close()

    calls = [
        lambda: ranking_submit(
            assignment=assignment, labeler=labeler, answer=RankingAnswer(**answer)
        ),
        (
            lambda: ranking_submit(
                assignment=assignment, labeler=labeler, answer=RankingAnswer(**answer)
            )
        )
        if other == "submit"
        else (
            lambda: ranking_draft_save(
                assignment=assignment, labeler=labeler, answer=RankingAnswer(**draft)
            )
        ),
    ]
    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures
    [ranking] = Ranking.objects.filter(labeler=labeler)
    assert ranking.state == "submitted" and ranking.groups == answer["groups"]
    item = WorkItem.objects.get(project=project)
    assert (item.done_count, item.active_leases, item.is_open) == (1, 0, False)
