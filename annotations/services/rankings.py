"""Submitting, revising and drafting rankings: the reward model's data, validated in one place.

Every rule is checked before anything is written, and all problems are reported at once, each
naming the output letter (as the labeler saw it) and the field.
"""

from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from annotations.errors import ApplicationError, ErrorCode
from annotations.models import Assignment, Ranking
from annotations.models.labels import RankingState
from annotations.selectors.rankings import (
    RankingAnswer,
    RankingContext,
    ranking_context,
    revision_deadline,
)
from annotations.services.queue import assignment_complete, labeler_lock
from annotations.users import User

MAX_NOTES = 5000
MAX_TIME_SPENT_MS = 24 * 3600 * 1000  # a day on one ranking is a forgotten tab
ALLOWED = {True: ("yes", "no", "na"), False: ("yes", "no")}


@dataclass
class _Check:
    context: RankingContext
    complete: bool
    problems: list[dict[str, Any]]

    def add(self, message: str, *, pk: int | None = None, field: str = "") -> None:
        letter = self.context.letters.get(pk) if pk is not None else None
        text = f"Output {letter}: {message}" if letter else message
        self.problems.append({"output": letter, "completion": pk, "field": field, "message": text})


def _check_groups(check: _Check, groups: Any) -> list[list[int]]:
    letters = check.context.letters
    if not isinstance(groups, list) or not all(isinstance(g, list) for g in groups):
        check.add(
            "The ranking must be a list of rank groups (lists of output ids).", field="groups"
        )
        return []
    seen: dict[int, int] = {}
    clean: list[list[int]] = []
    for rank, group in enumerate(groups, start=1):
        if not group:
            if check.complete:
                check.add(
                    f"Rank group {rank} is empty; remove it or put an output in it.", field="groups"
                )
            continue
        kept = []
        for pk in group:
            if isinstance(pk, bool) or not isinstance(pk, int) or pk not in letters:
                check.add(f"{pk!r} is not an output of this comparison.", field="groups")
            elif pk in seen:
                check.add(
                    f"placed more than once (ranks {seen[pk]} and {rank}); place it once.",
                    pk=pk,
                    field="groups",
                )
            else:
                seen[pk] = rank
                kept.append(pk)
        if kept:
            clean.append(kept)
    if check.complete:
        for completion in check.context.outputs:
            if completion.pk not in seen:
                check.add(
                    "not placed; drag it into a rank column.", pk=completion.pk, field="groups"
                )
    return clean


def _check_rating(check: _Check, pk: int, rating: Any) -> dict[str, Any]:
    config = check.context.schema.config
    if not isinstance(rating, dict):
        check.add("the rating must be an object with likert, fields and notes.", pk=pk)
        return {}
    clean: dict[str, Any] = {}
    likert, low, high = rating.get("likert"), config["likert"]["min"], config["likert"]["max"]
    label = config["likert"].get("label", "Likert")
    if likert is None:
        if check.complete:
            check.add(f"{label} is not rated; choose {low}..{high}.", pk=pk, field="likert")
    elif isinstance(likert, bool) or not isinstance(likert, int) or not low <= likert <= high:
        check.add(
            f"{label} must be a whole number {low}..{high}; got {likert!r}.", pk=pk, field="likert"
        )
    else:
        clean["likert"] = likert
    clean["fields"] = _check_fields(check, pk, rating.get("fields") or {})
    notes = rating.get("notes") or ""
    if not isinstance(notes, str) or len(notes) > MAX_NOTES:
        check.add(f"notes must be text of at most {MAX_NOTES} characters.", pk=pk, field="notes")
    elif notes.strip():
        clean["notes"] = notes
    extra = set(rating) - {"likert", "fields", "notes"}
    if extra:
        check.add(f"unknown keys {sorted(extra)}; use likert, fields and notes.", pk=pk)
    return clean


def _check_fields(check: _Check, pk: int, values: Any) -> dict[str, str]:
    schema = check.context.schema
    specs = {spec["key"]: spec for spec in schema.config["output_fields"]}
    if not isinstance(values, dict):
        check.add("fields must be an object {field: answer}.", pk=pk, field="fields")
        return {}
    for key in sorted(set(values) - set(specs)):
        check.add(
            f"unknown field {key!r} (label schema version {schema.version}).", pk=pk, field=str(key)
        )
    clean: dict[str, str] = {}
    for key, spec in specs.items():
        value, allowed = values.get(key), ALLOWED[bool(spec.get("allow_na"))]
        if value is None:
            if check.complete:
                check.add(
                    f"'{spec['label']}' is not answered; choose {' or '.join(allowed)}.",
                    pk=pk,
                    field=key,
                )
        elif value not in allowed:
            why = " (N/A is not allowed for this field)" if value == "na" else ""
            check.add(
                f"'{spec['label']}' must be {' or '.join(allowed)}; got {value!r}{why}.",
                pk=pk,
                field=key,
            )
        else:
            clean[key] = value
    return clean


def _check_ratings(check: _Check, ratings: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(ratings, dict):
        check.add("Ratings must be an object {output id: rating}.", field="ratings")
        return {}
    letters = check.context.letters
    by_pk: dict[int, Any] = {}
    for key, rating in ratings.items():
        pk = int(key) if str(key).isascii() and str(key).isdigit() else None
        if pk not in letters:
            check.add(
                f"Ratings name {key!r}, which is not an output of this comparison.", field="ratings"
            )
        else:
            by_pk[pk] = rating
    clean: dict[str, dict[str, Any]] = {}
    for completion in check.context.outputs:
        pk = completion.pk
        if pk in by_pk:
            clean[str(pk)] = _check_rating(check, pk, by_pk[pk])
        elif check.complete:
            check.add(
                "not rated; give it a score and answer every question.", pk=pk, field="likert"
            )
    return clean


def _validated(context: RankingContext, answer: RankingAnswer, *, complete: bool) -> RankingAnswer:
    check = _Check(context=context, complete=complete, problems=[])
    groups = _check_groups(check, answer.groups)
    ratings = _check_ratings(check, answer.ratings)
    if not isinstance(answer.notes, str) or len(answer.notes) > MAX_NOTES:
        check.add(f"Notes must be text of at most {MAX_NOTES} characters.", field="notes")
    if (
        isinstance(answer.time_spent_ms, bool)
        or not isinstance(answer.time_spent_ms, int)
        or not 0 <= answer.time_spent_ms <= MAX_TIME_SPENT_MS
    ):
        check.add(
            f"time_spent_ms must be a whole number from 0 to {MAX_TIME_SPENT_MS}.",
            field="time_spent_ms",
        )
    if check.problems:
        count = len(check.problems)
        raise ApplicationError(
            f"The ranking cannot be {'submitted' if complete else 'saved'}: "
            + "; ".join(p["message"] for p in check.problems[:8])
            + (f"; and {count - 8} more." if count > 8 else "."),
            code=ErrorCode.INVALID_RANKING,
            details={"problems": check.problems},
        )
    return RankingAnswer(
        groups=groups,
        ratings=ratings,
        none_acceptable=bool(answer.none_acceptable),
        notes=answer.notes,
        time_spent_ms=answer.time_spent_ms,
    )


def _check_owner(assignment: Assignment, labeler: User) -> None:
    if assignment.labeler_id != labeler.pk or assignment.item.comparison_id is None:
        raise ApplicationError("This ranking task is not yours.", code=ErrorCode.NOT_FOUND)


def _same(ranking: Ranking, answer: RankingAnswer) -> bool:
    return (ranking.groups, ranking.ratings, ranking.none_acceptable, ranking.notes) == (
        answer.groups,
        answer.ratings,
        answer.none_acceptable,
        answer.notes,
    )


def _write(context: RankingContext, answer: RankingAnswer, *, state: str) -> Ranking:
    ranking = context.ranking or Ranking(
        task=context.task,
        labeler_id=context.assignment.labeler_id,
        schema_version=context.schema.version,
    )
    ranking.shown_order = [c.pk for c in context.outputs]
    ranking.groups = answer.groups
    ranking.ratings = answer.ratings
    ranking.none_acceptable = answer.none_acceptable
    ranking.notes = answer.notes
    ranking.time_spent_ms = answer.time_spent_ms
    if state == RankingState.SUBMITTED and ranking.state != RankingState.SUBMITTED:
        ranking.submitted_at = timezone.now()
    ranking.state = state
    ranking.save()
    return ranking


def ranking_submit(*, assignment: Assignment, labeler: User, answer: RankingAnswer) -> Ranking:
    """Submit (or revise) the labeler's ranking of the assignment's comparison, atomically.

    Guarantees: every output placed exactly once in non-empty groups and rated on exactly the
    schema version's fields with allowed values, or ApplicationError listing every problem and
    nothing written. The first submit also completes the assignment in the work queue. A second
    identical submit returns the stored ranking unchanged (safe to retry); a different one
    revises it while the project's revision window (from the first submit) is open, else 409.
    A lease that others finished meanwhile is refused (409) and the answer is kept as a draft.
    """
    _check_owner(assignment, labeler)
    try:
        with transaction.atomic():
            labeler_lock(labeler_id=labeler.pk)
            context = ranking_context(assignment=assignment)
            clean = _validated(context, answer, complete=True)
            ranking = context.ranking
            if ranking is not None and ranking.state == RankingState.SUBMITTED:
                return _revise(context, ranking, clean)
            assignment_complete(assignment=assignment)
            return _write(context, clean, state=RankingState.SUBMITTED)
    except ApplicationError as exc:
        if exc.code.keeps_draft:
            ranking_draft_save(assignment=assignment, labeler=labeler, answer=answer)
        raise


def _revise(context: RankingContext, ranking: Ranking, answer: RankingAnswer) -> Ranking:
    if _same(ranking, answer):
        return ranking
    project = context.assignment.item.project
    deadline = revision_deadline(ranking=ranking, project=project)
    if deadline is None or timezone.now() > deadline:
        raise ApplicationError(
            f"This ranking was submitted at {ranking.submitted_at:%Y-%m-%d %H:%M} UTC and the "
            f"project's revision window of {project.revision_window_minutes} minutes has "
            "closed; it can no longer be changed.",
            code=ErrorCode.REVISION_CLOSED,
        )
    return _write(context, answer, state=RankingState.SUBMITTED)


def ranking_draft_save(*, assignment: Assignment, labeler: User, answer: RankingAnswer) -> Ranking:
    """Keep partial work (state=draft) so that it survives a reload: unplaced and unrated outputs
    are fine, but ids, scores and answers that are present must be valid (ApplicationError, and
    nothing written, otherwise). A submitted ranking is not turned back into a draft (409)."""
    _check_owner(assignment, labeler)
    with transaction.atomic():
        labeler_lock(labeler_id=labeler.pk)
        context = ranking_context(assignment=assignment)
        if context.ranking is not None and context.ranking.state == RankingState.SUBMITTED:
            raise ApplicationError(
                "This ranking is submitted already; submit again to revise it.",
                code=ErrorCode.ALREADY_SUBMITTED,
            )
        clean = _validated(context, answer, complete=False)
        return _write(context, clean, state=RankingState.DRAFT)
