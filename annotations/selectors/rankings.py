"""Reads for the ranking workspace: one labeler's view of a comparison task."""

import string
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from annotations.domain.ranking import shown_order
from annotations.hotpath import hot_path
from annotations.models import (
    Assignment,
    ComparisonTask,
    Completion,
    LabelSchema,
    Ranking,
)
from annotations.models.labels import RankingState
from annotations.users import User

FIELD_CHOICES = (("yes", "Yes"), ("no", "No"), ("na", "N/A"))


@dataclass(frozen=True)
class RankingContext:
    """What validating or showing one labeler's ranking of a task needs."""

    assignment: Assignment
    task: ComparisonTask
    outputs: list[Completion]  # in the order this labeler is shown them
    letters: dict[int, str]  # completion id -> "A", "B", ...
    schema: LabelSchema
    ranking: Ranking | None


@dataclass
class RankingAnswer:
    """A labeler's answer as entered, before or after validation."""

    groups: list[list[int]] = field(default_factory=list)
    ratings: dict[str, dict[str, Any]] = field(default_factory=dict)
    none_acceptable: bool = False
    notes: str = ""
    time_spent_ms: int = 0

    @classmethod
    def of(cls, ranking: Ranking | None) -> "RankingAnswer":
        if ranking is None:
            return cls()
        return cls(
            groups=ranking.groups,
            ratings=ranking.ratings,
            none_acceptable=ranking.none_acceptable,
            notes=ranking.notes,
            time_spent_ms=ranking.time_spent_ms,
        )


def ranking_context(*, assignment: Assignment) -> RankingContext:
    """The task with its prompt, its outputs in the labeler's shown order, the labeler's stored
    ranking and the schema version that applies: the version of the stored ranking, else the
    project's current one."""
    rows = hot_path().ranking_rows(assignment=assignment)
    task, schema, ranking = rows.task, rows.schema, rows.ranking
    completions = {c.pk: c for c in hot_path().completions(task=task)}
    order = (
        ranking.shown_order
        if ranking is not None and sorted(ranking.shown_order) == sorted(completions)
        else shown_order(
            item_ids=list(completions), task_id=task.pk, labeler_id=assignment.labeler_id
        )
    )
    outputs = [completions[pk] for pk in order]
    letters = {c.pk: string.ascii_uppercase[index] for index, c in enumerate(outputs)}
    return RankingContext(assignment, task, outputs, letters, schema, ranking)


def revision_deadline(*, ranking: Ranking | None, project: Any) -> datetime | None:
    """Until when the labeler may still change a submitted ranking (None: not submitted)."""
    if ranking is None or ranking.state != RankingState.SUBMITTED or ranking.submitted_at is None:
        return None
    return ranking.submitted_at + timedelta(minutes=project.revision_window_minutes)


def _output_view(completion: Completion, letter: str, rating: dict, schema: dict) -> dict:
    likert = schema["likert"]
    values = rating.get("fields") or {}
    return {
        "id": completion.pk,
        "letter": letter,
        "text": completion.text,
        "excerpt": completion.text[:90],
        "notes": rating.get("notes") or "",
        "likert": [
            (value, rating.get("likert") == value)
            for value in range(likert["min"], likert["max"] + 1)
        ],
        "fields": [
            {
                "key": spec["key"],
                "label": spec["label"],
                "help": spec.get("help", ""),
                "choices": [
                    (value, label, values.get(spec["key"]) == value)
                    for value, label in FIELD_CHOICES
                    if value != "na" or spec.get("allow_na")
                ],
            }
            for spec in schema["output_fields"]
        ],
    }


def ranking_workspace(*, context: RankingContext, answer: RankingAnswer | None = None) -> dict:
    """Everything the comparison page shows: outputs with their ratings filled in, the pool of
    unplaced outputs and K rank columns (the answer's groups, best first), and whether the
    labeler may still edit. `answer` overrides the stored ranking (a refused submission is shown
    as it was entered)."""
    ranking = context.ranking
    answer = answer or RankingAnswer.of(ranking)
    config = context.schema.config
    views = {
        c.pk: _output_view(c, context.letters[c.pk], answer.ratings.get(str(c.pk)) or {}, config)
        for c in context.outputs
    }
    columns: list[list[dict]] = [[] for _ in context.outputs]
    placed: set[int] = set()
    groups = answer.groups if isinstance(answer.groups, list) else []
    for index, group in enumerate(g for g in groups if isinstance(g, list) and g):
        for pk in group:
            if isinstance(pk, int) and pk in views and pk not in placed and index < len(columns):
                columns[index].append(views[pk])
                placed.add(pk)
    project = context.assignment.item.project
    deadline = revision_deadline(ranking=ranking, project=project)
    submitted = deadline is not None
    return {
        "assignment": context.assignment,
        "task": context.task,
        "project": project,
        "prompt": context.task.prompt,
        "schema": context.schema,
        "likert": config["likert"],
        "outputs": list(views.values()),
        "pool": [views[c.pk] for c in context.outputs if c.pk not in placed],
        "columns": [(index + 1, cards) for index, cards in enumerate(columns)],
        "answer": answer,
        "ranking": ranking,
        "submitted": submitted,
        "revision_deadline": deadline,
        "editable": deadline is None or timezone.now() <= deadline,
    }


def rankings_recent(*, labeler: User, project: Any, limit: int = 10) -> list[dict]:
    """The labeler's own latest submitted rankings in the project, each with the assignment token
    its page lives under and its revision deadline (None once the window has closed). Two
    queries."""
    rankings = list(
        Ranking.objects.filter(labeler=labeler, task__project=project, state=RankingState.SUBMITTED)
        .only("id", "task_id", "submitted_at")
        .order_by("-submitted_at")[:limit]
    )
    tokens = dict(
        Assignment.objects.filter(
            labeler=labeler, item__comparison_id__in=[r.task_id for r in rankings]
        ).values_list("item__comparison_id", "token")
    )
    now = timezone.now()
    rows = []
    for ranking in rankings:
        deadline = revision_deadline(ranking=ranking, project=project)
        rows.append(
            {
                "ranking": ranking,
                "token": tokens.get(ranking.task_id),
                "deadline": deadline if deadline and deadline >= now else None,
            }
        )
    return rows
