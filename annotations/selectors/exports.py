"""Reads for dataset exports: the snapshots of a project, labeler choices, annotation rates."""

from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import QuerySet

from annotations.models import DatasetExport, LabelSchema, Project, PromptAnnotation
from annotations.roles import Role


def exports_for_project(*, project: Project) -> QuerySet[DatasetExport]:
    """Every snapshot of the project, newest first, with its job and author."""
    return DatasetExport.objects.filter(project=project).select_related("job", "created_by")


def export_labeler_choices() -> list[tuple[int, str]]:
    """(id, username) of everyone who labels, for the labelers filter."""
    users = (
        get_user_model()
        .objects.filter(groups__name__in=[Role.LABELER, Role.REVIEWER])
        .distinct()
        .order_by("username")
    )
    return list(users.values_list("pk", "username"))


def prompt_flag_labels(*, project: Project) -> dict[str, str]:
    """Prompt flag key -> label, from the project's newest label schema (plus PII)."""
    schema = LabelSchema.objects.filter(project=project).order_by("-version").first()
    flags = (schema.config.get("prompt_flags") if schema else None) or []
    return {**{f["key"]: f["label"] for f in flags}, "pii": "Contains PII"}


def prompt_flag_rates(
    *, project: Project, prompt_splits: dict[int, str], chunk_size: int = 5000
) -> tuple[dict[str, Any], set[int]]:
    """Per split: how many of these prompts were annotated, and the share with each flag (a
    prompt counts once when any labeler gave it the flag); and the schema versions seen."""
    annotated: dict[str, set[int]] = {}
    flagged: dict[str, dict[str, set[int]]] = {}
    versions: set[int] = set()
    annotations = (
        PromptAnnotation.objects.filter(prompt__project=project)
        .order_by("id")
        .values_list("prompt_id", "schema_version", "data")
    )
    for prompt_id, version, data in annotations.iterator(chunk_size=chunk_size):
        split = prompt_splits.get(prompt_id)
        if split is None:
            continue
        versions.add(version)
        annotated.setdefault(split, set()).add(prompt_id)
        marks = dict((data or {}).get("flags") or {}, pii=(data or {}).get("pii"))
        for key, value in marks.items():
            if value:
                flagged.setdefault(split, {}).setdefault(key, set()).add(prompt_id)
    rates: dict[str, Any] = {}
    for split in sorted(set(prompt_splits.values())):
        count = len(annotated.get(split, ()))
        shares = {key: round(len(ids) / count, 4) for key, ids in flagged.get(split, {}).items()}
        rates[split] = {"annotated": count, "rates": dict(sorted(shares.items()))}
    return rates, versions
