"""Prompt annotations: one labeler's per-prompt answers (category, flags, PII), checked against
the project's label schema."""

import uuid
from typing import Any

from django.db import transaction

from annotations.errors import ApplicationError, ErrorCode
from annotations.models import PromptAnnotation
from annotations.models.projects import WorkKind
from annotations.selectors.projects import label_schema_current
from annotations.services.queue import assignment_complete, assignment_for_token
from annotations.users import User


def annotation_clean(*, data: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """The per-prompt answers in their stored shape, checked against the label schema."""
    categories = list(config.get("categories") or [])
    category = str(data.get("category") or "")
    if category not in categories:
        raise ApplicationError(
            "Choose the prompt's category" + (f" (not {category!r})." if category else "."),
            code=ErrorCode.CATEGORY_REQUIRED,
        )
    flag_keys = [f["key"] for f in config.get("prompt_flags") or []]
    pii_keys = [f["key"] for f in config.get("pii_subfields") or []]
    flags = data.get("flags") or {}
    subfields = data.get("pii_subfields") or {}
    unknown = (set(flags) - set(flag_keys)) | (set(subfields) - set(pii_keys))
    if unknown:
        raise ApplicationError(
            f"Unknown fields {sorted(unknown)}; this schema has {flag_keys + pii_keys}.",
            code=ErrorCode.UNKNOWN_FIELDS,
        )
    pii = bool(data.get("pii"))
    return {
        "category": category,
        "flags": {key: bool(flags.get(key)) for key in flag_keys},
        "pii": pii,
        "pii_subfields": {key: pii and bool(subfields.get(key)) for key in pii_keys},
    }


def annotation_store(*, prompt_id: int, labeler_id: int, version: int, data: dict) -> None:
    PromptAnnotation.objects.bulk_create(
        [
            PromptAnnotation(
                prompt_id=prompt_id, labeler_id=labeler_id, schema_version=version, data=data
            )
        ],
        update_conflicts=True,
        unique_fields=["prompt", "labeler"],
        update_fields=["schema_version", "data", "updated_at"],
    )


def prompt_annotation_submit(
    *, labeler: User, token: uuid.UUID | str, annotation: dict[str, Any]
) -> bool:
    """Store the labeler's prompt annotation and complete the assignment, atomically.
    Idempotent: returns False when the assignment was submitted already (the answers are kept
    as first submitted)."""
    with transaction.atomic():
        assignment = assignment_for_token(
            labeler=labeler, token=token, kind=WorkKind.PROMPT_ANNOTATION, lock=True
        )
        if not assignment_complete(assignment=assignment):
            return False
        schema = label_schema_current(project=assignment.item.project)
        annotation_store(
            prompt_id=assignment.item.prompt_pk,
            labeler_id=labeler.pk,
            version=schema.version,
            data=annotation_clean(data=annotation, config=schema.config),
        )
    return True
