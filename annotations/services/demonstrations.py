"""Demonstrations: autosaved drafts and idempotent submission with the prompt annotation."""

import contextlib
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from annotations.errors import ApplicationError, ErrorCode
from annotations.hotpath import PORTABLE, DemonstrationWrite, hot_path
from annotations.models import Assignment, Demonstration, Project
from annotations.models.labels import DemonstrationState
from annotations.models.projects import WorkKind
from annotations.models.work import AssignmentState
from annotations.services.prompt_annotations import annotation_clean
from annotations.services.queue import assignment_complete, assignment_for_token
from annotations.users import User

MAX_DRAFT_CHARS = 200_000  # a hard cap on drafts; the project's limit applies when submitting
MAX_TIME_DELTA_MS = 15 * 60 * 1000  # one save never adds more than this to time on task


@dataclass(frozen=True)
class DraftSaved:
    saved_at: datetime
    chars: int


def _time_delta(ms: int | None) -> int:
    return max(0, min(int(ms or 0), MAX_TIME_DELTA_MS))


def demonstration_draft_save(
    *, labeler: User, token: uuid.UUID | str, text: str, time_spent_ms: int = 0
) -> DraftSaved:
    """Store the labeler's draft for the task's prompt and add `time_spent_ms` (the time since
    the last save) to its time on task. Atomic; a submitted demonstration is never changed
    (ApplicationError 409)."""
    with transaction.atomic():
        assignment = assignment_for_token(
            labeler=labeler, token=token, kind=WorkKind.DEMONSTRATION, lock=True
        )
        return _draft_store(
            prompt_id=assignment.item.prompt_pk, labeler=labeler, text=text, delta=time_spent_ms
        )


def _draft_store(*, prompt_id: int, labeler: User, text: str, delta: int) -> DraftSaved:
    if len(text) > MAX_DRAFT_CHARS:
        raise ApplicationError(
            f"A draft holds at most {MAX_DRAFT_CHARS:,} characters; this one has {len(text):,}.",
            code=ErrorCode.TOO_LONG,
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
                    code=ErrorCode.ALREADY_SUBMITTED,
                )
    return DraftSaved(saved_at=now, chars=len(text))


def _check_length(*, text: str, project: Project) -> None:
    if not text.strip():
        raise ApplicationError("Write the demonstration before submitting.", code=ErrorCode.EMPTY)
    limit = project.max_demonstration_chars
    if len(text) > limit:
        raise ApplicationError(
            f"The demonstration has {len(text):,} characters; this project allows {limit:,}. "
            "Shorten it and submit again (your draft is kept).",
            code=ErrorCode.TOO_LONG,
            details={"chars": len(text), "limit": limit},
        )


def demonstration_submit(
    *,
    labeler: User,
    token: uuid.UUID | str,
    text: str,
    annotation: dict[str, Any],
    time_spent_ms: int = 0,
) -> tuple[Demonstration, bool]:
    """Submit the demonstration with its prompt annotation and complete the assignment, in one
    transaction. Idempotent: a second call returns (the stored demonstration, False) and changes
    nothing. A refused submission (too long, lease lost) keeps the text as the draft."""
    prompt_id = None
    try:
        with transaction.atomic():
            assignment = assignment_for_token(
                labeler=labeler, token=token, kind=WorkKind.DEMONSTRATION, lock=True
            )
            prompt_id = assignment.item.prompt_pk
            _check_length(text=text, project=assignment.item.project)
            schema, existing = hot_path().demonstration_context(assignment=assignment)
            if existing is not None and existing.state != DemonstrationState.DRAFT:
                if assignment.state == AssignmentState.SUBMITTED:
                    return existing, False
                raise _already_written()
            data = annotation_clean(data=annotation, config=schema.config)
            demonstration = _store(assignment, existing, schema.version, data, text, time_spent_ms)
    except ApplicationError as exc:
        if prompt_id is not None and exc.code.keeps_draft:
            with contextlib.suppress(ApplicationError):  # the refusal is what the labeler sees
                _draft_store(prompt_id=prompt_id, labeler=labeler, text=text, delta=0)
        raise
    return demonstration, True


def _already_written() -> ApplicationError:
    return ApplicationError(
        "You wrote a demonstration for this prompt already; skip this task.",
        code=ErrorCode.ALREADY_WRITTEN,
    )


def _store(
    assignment: Assignment,
    existing: Demonstration | None,
    version: int,
    data: dict[str, Any],
    text: str,
    time_spent_ms: int,
) -> Demonstration:
    """Complete the assignment and store the annotation and the demonstration: in one hot-path
    operation for a live lease; a late submit (rare) goes through the ORM."""
    write = DemonstrationWrite(
        assignment=assignment,
        existing=existing,
        schema_version=version,
        data=data,
        text=text,
        delta_ms=_time_delta(time_spent_ms),
        now=timezone.now(),
    )
    if assignment.state != AssignmentState.LEASED:
        assignment_complete(assignment=assignment)  # a late submit, or ApplicationError
        return PORTABLE.demonstration_store(write=write)
    stored = hot_path().demonstration_submit_leased(write=write)
    if stored is None:
        raise _already_written()  # rolls the whole operation back with the transaction
    return stored
