"""Demonstrations and prompt annotations: autosaved drafts, idempotent submission, and queueing
prompts for this work."""

import contextlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef
from django.utils import timezone

from annotations.errors import ApplicationError
from annotations.models import (
    Assignment,
    Demonstration,
    LabelSchema,
    Project,
    Prompt,
    PromptAnnotation,
    WorkItem,
)
from annotations.models.labels import DemonstrationState
from annotations.models.projects import WorkKind
from annotations.models.work import AssignmentState
from annotations.rows import columns, fetch_one, instance
from annotations.selectors.projects import label_schema_current
from annotations.services.queue import (
    COMPLETE_CTE,
    assignment_complete,
    assignment_for_token,
    work_items_create,
)

MAX_DRAFT_CHARS = 200_000  # a hard cap on drafts; the project's limit applies when submitting
MAX_TIME_DELTA_MS = 15 * 60 * 1000  # one save never adds more than this to time on task
PROMPT_KINDS = (WorkKind.DEMONSTRATION, WorkKind.PROMPT_ANNOTATION)


@dataclass(frozen=True)
class DraftSaved:
    saved_at: datetime
    chars: int


def _assignment(*, labeler: Any, token: uuid.UUID | str, kind: str) -> Assignment:
    assignment = assignment_for_token(labeler=labeler, token=token)
    if assignment.item.kind != kind:
        raise ApplicationError(
            f"This task is a {assignment.item.get_kind_display().lower()} task, not {kind}.",
            code="wrong_kind",
        )
    if assignment.state == AssignmentState.SKIPPED:
        raise ApplicationError(
            "You skipped this task; take the next one.", code="skipped", status_code=409
        )
    return assignment


def _time_delta(ms: int | None) -> int:
    return max(0, min(int(ms or 0), MAX_TIME_DELTA_MS))


def demonstration_draft_save(
    *, labeler: Any, token: uuid.UUID | str, text: str, time_spent_ms: int = 0
) -> DraftSaved:
    """Store the labeler's draft for the task's prompt and add `time_spent_ms` (the time since
    the last save) to its time on task. Atomic; a submitted demonstration is never changed
    (ApplicationError 409)."""
    assignment = _assignment(labeler=labeler, token=token, kind=WorkKind.DEMONSTRATION)
    return _draft_store(
        prompt_id=assignment.item.prompt_id, labeler=labeler, text=text, delta=time_spent_ms
    )


def _draft_store(*, prompt_id: int, labeler: Any, text: str, delta: int) -> DraftSaved:
    if len(text) > MAX_DRAFT_CHARS:
        raise ApplicationError(
            f"A draft holds at most {MAX_DRAFT_CHARS:,} characters; this one has {len(text):,}.",
            code="too_long",
        )
    now = timezone.now()
    delta = _time_delta(delta)
    with transaction.atomic():
        updated = Demonstration.objects.filter(
            prompt_id=prompt_id, labeler=labeler, state=DemonstrationState.DRAFT
        ).update(text=text, time_spent_ms=F("time_spent_ms") + delta, updated_at=now)
        if not updated:
            demonstration, created = Demonstration.objects.get_or_create(
                prompt_id=prompt_id,
                labeler=labeler,
                defaults={"text": text, "time_spent_ms": delta},
            )
            if not created and demonstration.state != DemonstrationState.DRAFT:
                raise ApplicationError(
                    "You submitted this demonstration already; the draft is closed.",
                    code="already_submitted",
                    status_code=409,
                )
    return DraftSaved(saved_at=now, chars=len(text))


def annotation_clean(*, data: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """The per-prompt answers in their stored shape, checked against the label schema."""
    categories = list(config.get("categories") or [])
    category = str(data.get("category") or "")
    if category not in categories:
        raise ApplicationError(
            "Choose the prompt's category" + (f" (not {category!r})." if category else "."),
            code="category_required",
        )
    flag_keys = [f["key"] for f in config.get("prompt_flags") or []]
    pii_keys = [f["key"] for f in config.get("pii_subfields") or []]
    flags = data.get("flags") or {}
    subfields = data.get("pii_subfields") or {}
    unknown = (set(flags) - set(flag_keys)) | (set(subfields) - set(pii_keys))
    if unknown:
        raise ApplicationError(
            f"Unknown fields {sorted(unknown)}; this schema has {flag_keys + pii_keys}.",
            code="unknown_fields",
        )
    pii = bool(data.get("pii"))
    return {
        "category": category,
        "flags": {key: bool(flags.get(key)) for key in flag_keys},
        "pii": pii,
        "pii_subfields": {key: pii and bool(subfields.get(key)) for key in pii_keys},
    }


def _annotation_store(*, prompt_id: int, labeler: Any, version: int, data: dict) -> None:
    PromptAnnotation.objects.bulk_create(
        [PromptAnnotation(prompt_id=prompt_id, labeler=labeler, schema_version=version, data=data)],
        update_conflicts=True,
        unique_fields=["prompt", "labeler"],
        update_fields=["schema_version", "data", "updated_at"],
    )


def _check_length(*, text: str, project: Project) -> None:
    if not text.strip():
        raise ApplicationError("Write the demonstration before submitting.", code="empty")
    limit = project.max_demonstration_chars
    if len(text) > limit:
        raise ApplicationError(
            f"The demonstration has {len(text):,} characters; this project allows {limit:,}. "
            "Shorten it and submit again (your draft is kept).",
            code="too_long",
            details={"chars": len(text), "limit": limit},
        )


def demonstration_submit(
    *,
    labeler: Any,
    token: uuid.UUID | str,
    text: str,
    annotation: dict[str, Any],
    time_spent_ms: int = 0,
) -> tuple[Demonstration, bool]:
    """Submit the demonstration with its prompt annotation and complete the assignment, in one
    transaction. Idempotent: a second call returns (the stored demonstration, False) and changes
    nothing. A refused submission (too long, lease lost) keeps the text as the draft."""
    assignment = _assignment(labeler=labeler, token=token, kind=WorkKind.DEMONSTRATION)
    prompt_id = assignment.item.prompt_id
    delta = _time_delta(time_spent_ms)
    try:
        _check_length(text=text, project=assignment.item.project)
        with transaction.atomic():
            locked = _submit_lock(assignment=assignment)
            existing = locked.demonstration
            if locked.state != AssignmentState.LEASED:
                # The lock may have waited for a concurrent submit of this task, whose writes the
                # locking statement's snapshot does not show: read them now.
                existing = (
                    Demonstration.objects.select_for_update()
                    .filter(prompt_id=prompt_id, labeler=labeler)
                    .first()
                )
            if existing is not None and existing.state != DemonstrationState.DRAFT:
                if locked.state == AssignmentState.SUBMITTED:
                    return existing, False
                raise _already_written()
            data = annotation_clean(data=annotation, config=locked.schema_config)
            if locked.state == AssignmentState.LEASED and connection.vendor == "postgresql":
                return _submit_leased(
                    assignment=assignment,
                    version=locked.schema_version,
                    data=data,
                    text=text,
                    delta=delta,
                ), True
            _annotation_store(
                prompt_id=prompt_id, labeler=labeler, version=locked.schema_version, data=data
            )
            assignment_complete(assignment=assignment)
            demonstration = _demonstration_store(
                existing=existing, prompt_id=prompt_id, labeler=labeler, text=text, delta=delta
            )
    except ApplicationError as exc:
        if exc.code in ("too_long", "lease_lost", "busy", "category_required", "unknown_fields"):
            # by prompt, not token: in the 'busy' case another tab may have the task again
            with contextlib.suppress(ApplicationError):  # the refusal is what the labeler sees
                _draft_store(prompt_id=prompt_id, labeler=labeler, text=text, delta=0)
        raise
    return demonstration, True


def _already_written() -> ApplicationError:
    return ApplicationError(
        "You wrote a demonstration for this prompt already; skip this task.",
        code="already_written",
        status_code=409,
    )


@dataclass(frozen=True)
class _Locked:
    state: str
    schema_version: int
    schema_config: dict[str, Any]
    demonstration: Demonstration | None


def _submit_lock(*, assignment: Assignment) -> _Locked:
    """Lock the assignment; with it, its state, the project's current label schema and the
    labeler's demonstration of the prompt, in one statement."""
    lock = " FOR UPDATE OF a" if connection.features.has_select_for_update_of else ""
    row = fetch_one(
        f"""
        SELECT a.state, s.version, s.config, {columns(Demonstration, "d")}
        FROM annotations_assignment a
        JOIN annotations_labelschema s ON s.project_id = %(project)s AND s.version = (
            SELECT max(version) FROM annotations_labelschema WHERE project_id = %(project)s)
        LEFT JOIN annotations_demonstration d
            ON d.prompt_id = %(prompt)s AND d.labeler_id = a.labeler_id
        WHERE a.id = %(assignment)s{lock}
        """,  # noqa: S608 (column lists from the models)
        {
            "project": assignment.item.project_id,
            "prompt": assignment.item.prompt_id,
            "assignment": assignment.pk,
        },
    )
    config = LabelSchema._meta.get_field("config").from_db_value(row[2], None, connection)
    return _Locked(
        state=row[0],
        schema_version=row[1],
        schema_config=config,
        demonstration=instance(Demonstration, row, 3)[0],
    )


# Complete a live lease (the caller holds its lock and saw state 'leased'), count it on the item,
# store the prompt annotation and the demonstration (a draft becomes the submission, keeping its
# time on task), in one statement. Nothing comes back when the demonstration stopped being a
# draft meanwhile; the caller rolls the whole statement back then.
_SUBMIT_SQL = f"""
WITH {COMPLETE_CTE}, annotated AS (
    INSERT INTO annotations_promptannotation
        (prompt_id, labeler_id, schema_version, data, created_at, updated_at)
    VALUES (%(prompt)s, %(labeler)s, %(version)s, %(data)s, %(now)s, %(now)s)
    ON CONFLICT (prompt_id, labeler_id) DO UPDATE SET schema_version = EXCLUDED.schema_version,
        data = EXCLUDED.data, updated_at = EXCLUDED.updated_at
    RETURNING id
), written AS (
    INSERT INTO annotations_demonstration AS d
        (prompt_id, labeler_id, text, state, time_spent_ms, original_text, review_comment,
         reviewed_by_id, reviewed_at, submitted_at, updated_at, created_at)
    VALUES (%(prompt)s, %(labeler)s, %(text)s, 'submitted', %(delta)s, '', '', NULL, NULL,
            %(now)s, %(now)s, %(now)s)
    ON CONFLICT (prompt_id, labeler_id) DO UPDATE SET text = EXCLUDED.text, state = 'submitted',
        time_spent_ms = d.time_spent_ms + EXCLUDED.time_spent_ms,
        submitted_at = EXCLUDED.submitted_at, updated_at = EXCLUDED.updated_at
    WHERE d.state = 'draft'
    RETURNING d.*
)
SELECT {columns(Demonstration, "written")}, (SELECT count(*) FROM counted),
       (SELECT count(*) FROM annotated)
FROM written
"""  # noqa: S608 (column lists from the models)


def _submit_leased(
    *, assignment: Assignment, version: int, data: dict, text: str, delta: int
) -> Demonstration:
    row = fetch_one(
        _SUBMIT_SQL,
        {
            "assignment": assignment.pk,
            "prompt": assignment.item.prompt_id,
            "labeler": assignment.labeler_id,
            "version": version,
            "data": json.dumps(data),
            "text": text,
            "delta": delta,
            "now": timezone.now(),
        },
    )
    if row is None:
        raise _already_written()  # rolls back the whole statement with the transaction
    return instance(Demonstration, row)[0]


def _demonstration_store(
    *, existing: Demonstration | None, prompt_id: int, labeler: Any, text: str, delta: int
) -> Demonstration:
    now = timezone.now()
    if existing is None:
        return Demonstration.objects.create(
            prompt_id=prompt_id,
            labeler=labeler,
            text=text,
            state=DemonstrationState.SUBMITTED,
            time_spent_ms=delta,
            submitted_at=now,
        )
    existing.text = text
    existing.state = DemonstrationState.SUBMITTED
    existing.time_spent_ms += delta
    existing.submitted_at = now
    existing.save(update_fields=["text", "state", "time_spent_ms", "submitted_at", "updated_at"])
    return existing


def prompt_annotation_submit(
    *, labeler: Any, token: uuid.UUID | str, annotation: dict[str, Any]
) -> bool:
    """Store the labeler's prompt annotation and complete the assignment, atomically.
    Idempotent: returns False when the assignment was submitted already (the answers are kept
    as first submitted)."""
    assignment = _assignment(labeler=labeler, token=token, kind=WorkKind.PROMPT_ANNOTATION)
    with transaction.atomic():
        if not assignment_complete(assignment=assignment):
            return False
        schema = label_schema_current(project=assignment.item.project)
        _annotation_store(
            prompt_id=assignment.item.prompt_id,
            labeler=labeler,
            version=schema.version,
            data=annotation_clean(data=annotation, config=schema.config),
        )
    return True


def prompt_work_queue(
    *,
    project: Project,
    kind: str,
    count: int,
    split: str = "",
    category: str = "",
    only_unqueued: bool = True,
    priority: int = 0,
) -> list[WorkItem]:
    """Queue demonstration or prompt-annotation work for up to `count` prompts (oldest first),
    filtered by split and category, by default only prompts never queued for this kind. Atomic;
    the project row is locked so that two concurrent calls never queue one prompt twice."""
    if kind not in PROMPT_KINDS:
        raise ApplicationError(
            f"Queue {' or '.join(PROMPT_KINDS)} work for prompts, not {kind!r}.", code="wrong_kind"
        )
    if count < 1:
        raise ApplicationError("Queue at least one prompt.", code="invalid_count")
    with transaction.atomic():
        Project.objects.select_for_update().filter(pk=project.pk).first()
        prompts = Prompt.objects.filter(project=project).order_by("id")
        if split:
            prompts = prompts.filter(split=split)
        if category:
            prompts = prompts.filter(category=category)
        if only_unqueued:
            queued = WorkItem.objects.filter(prompt=OuterRef("pk"), kind=kind)
            prompts = prompts.exclude(Exists(queued))
        chosen = list(prompts.only("id")[:count])
        return work_items_create(project=project, kind=kind, prompts=chosen, priority=priority)


def work_priorities_update(*, project: Project, priorities: dict[str, Any]) -> Project:
    """Set the project's priorities between kinds of work (higher is handed out first)."""
    unknown = set(priorities) - set(WorkKind.values)
    if unknown:
        raise ApplicationError(f"Unknown kinds of work: {sorted(unknown)}.", code="unknown_kind")
    cleaned: dict[str, int] = {}
    for kind in WorkKind.values:
        value = priorities.get(kind, (project.work_priorities or {}).get(kind, 0))
        try:
            cleaned[kind] = int(value)
        except (TypeError, ValueError):
            raise ApplicationError(
                f"The priority of {kind} must be a whole number.", code="invalid_priority"
            ) from None
        if not 0 <= cleaned[kind] <= 1000:
            raise ApplicationError(
                f"Priorities go from 0 to 1000; {kind} has {cleaned[kind]}.",
                code="invalid_priority",
            )
    project.work_priorities = cleaned
    project.save(update_fields=["work_priorities"])
    return project
