"""Projects and their label schemas."""

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max

from annotations.errors import ApplicationError, ErrorCode
from annotations.label_schema import default_schema_config, validate_schema_config
from annotations.models import LabelSchema, Project
from annotations.users import User

PROJECT_FIELDS = {
    "name",
    "slug",
    "guidelines",
    "k_min",
    "k_max",
    "labelers_per_item",
    "lease_minutes",
    "revision_window_minutes",
    "split_train",
    "split_valid",
    "split_test",
    "max_prompts_per_customer",
    "dedup_prefix_chars",
    "max_prompt_tokens",
    "max_prompt_chars",
    "max_demonstration_chars",
    "remove_pii_from_train",
    "work_priorities",
}


def _apply(project: Project, data: dict[str, Any]) -> None:
    unknown = set(data) - PROJECT_FIELDS
    if unknown:
        raise ApplicationError(
            f"Unknown project settings: {sorted(unknown)}.", code=ErrorCode.INVALID_PROJECT
        )
    for key, value in data.items():
        setattr(project, key, value)
    try:
        project.full_clean()
    except ValidationError as exc:
        messages = [f"{field}: {' '.join(errs)}" for field, errs in exc.message_dict.items()]
        raise ApplicationError(
            "The project settings are not valid: " + "; ".join(messages),
            code=ErrorCode.INVALID_PROJECT,
            details={"fields": exc.message_dict},
        ) from exc


@transaction.atomic
def project_create(*, user: User, data: dict[str, Any]) -> Project:
    """A project with label schema version 1 (the default InstructGPT labels)."""
    project = Project()
    _apply(project, data)
    project.save()
    LabelSchema.objects.create(
        project=project, version=1, config=default_schema_config(), created_by=user
    )
    return project


@transaction.atomic
def project_update(*, project: Project, data: dict[str, Any]) -> Project:
    _apply(project, data)
    project.save()
    return project


@transaction.atomic
def label_schema_create(*, project: Project, user: User, config: Any) -> LabelSchema:
    """A new schema version; earlier labels keep the version they were made with."""
    validate_schema_config(config)
    Project.objects.select_for_update().get(pk=project.pk)
    latest = project.schemas.aggregate(v=Max("version"))["v"] or 0
    return LabelSchema.objects.create(
        project=project, version=latest + 1, config=config, created_by=user
    )
