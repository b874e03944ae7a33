"""Comparison tasks: a prompt with K sampled outputs, queued for labelers to rate and rank."""

from typing import Any

from django.db import transaction

from annotations.errors import ApplicationError, ErrorCode
from annotations.models import ComparisonTask, Completion, ModelVersion, Project, Prompt
from annotations.models.projects import WorkKind
from annotations.services.queue import work_items_create

OUTPUT_KEYS = {"text", "model_name", "params", "seed", "finish_reason"}


def _check_outputs(*, project: Project, outputs: list[dict[str, Any]]) -> None:
    count = len(outputs)
    if not project.k_min <= count <= project.k_max:
        raise ApplicationError(
            f"A comparison in project {project.slug!r} needs between {project.k_min} and "
            f"{project.k_max} outputs (the project's K range); got {count}.",
            code=ErrorCode.INVALID_K,
            details={"k": count, "k_min": project.k_min, "k_max": project.k_max},
        )
    for index, output in enumerate(outputs):
        unknown = set(output) - OUTPUT_KEYS
        if unknown:
            raise ApplicationError(
                f"Output {index + 1} has unknown keys {sorted(unknown)}; "
                f"use {sorted(OUTPUT_KEYS)}.",
                code=ErrorCode.INVALID_OUTPUT,
            )
        if not isinstance(output.get("text"), str) or not output["text"].strip():
            raise ApplicationError(
                f"Output {index + 1} needs a non-empty 'text'.", code=ErrorCode.INVALID_OUTPUT
            )
        if not isinstance(output.get("model_name"), str) or not output["model_name"]:
            raise ApplicationError(
                f"Output {index + 1} needs the 'model_name' that produced it.",
                code=ErrorCode.INVALID_OUTPUT,
            )


@transaction.atomic
def comparisons_store(
    *,
    project: Project,
    job: Any,
    outputs: dict[int, list[dict[str, Any]]],
    priority: int = 0,
) -> list[ComparisonTask]:
    """Store {prompt id: outputs} as comparison tasks with their completions and ranking work.
    Prompts that already have a comparison for this job are skipped. Returns the new ones."""
    if job is not None:
        done = set(
            ComparisonTask.objects.filter(job=job, prompt_id__in=outputs).values_list(
                "prompt_id", flat=True
            )
        )
        outputs = {pid: rows for pid, rows in outputs.items() if pid not in done}
    if not outputs:
        return []
    names = {row["model_name"] for rows in outputs.values() for row in rows}
    versions = dict(ModelVersion.objects.filter(name__in=names).values_list("name", "pk"))
    comparisons = ComparisonTask.objects.bulk_create(
        [ComparisonTask(project=project, prompt_id=pid, job=job) for pid in outputs]
    )
    Completion.objects.bulk_create(
        [
            Completion(
                comparison=comparison,
                prompt_id=comparison.prompt_id,
                model_version_id=versions.get(row["model_name"]),
                model_name=row["model_name"],
                text=row["text"].replace("\x00", "\ufffd"),  # PostgreSQL text cannot hold NUL
                params=row.get("params", {}),
                seed=row.get("seed"),
                finish_reason=row.get("finish_reason", ""),
                position=position,
            )
            for comparison in comparisons
            for position, row in enumerate(outputs[comparison.prompt_id])
        ]
    )
    work_items_create(
        project=project, kind=WorkKind.RANKING, comparisons=comparisons, priority=priority
    )
    return comparisons


@transaction.atomic
def comparison_create(
    *,
    project: Project,
    prompt: Prompt,
    outputs: list[dict[str, Any]],
    job: Any = None,
    priority: int = 0,
) -> ComparisonTask:
    """Store a comparison of len(outputs) completions of `prompt` and queue one ranking work
    item for it (the project's labelers-per-item). All or nothing: a K outside the project's
    k_min..k_max or a malformed output raises ApplicationError and stores nothing."""
    if prompt.project_id != project.pk:
        raise ApplicationError(
            "The prompt belongs to another project.", code=ErrorCode.INVALID_PROMPT
        )
    _check_outputs(project=project, outputs=outputs)
    created = comparisons_store(
        project=project, job=job, outputs={prompt.pk: outputs}, priority=priority
    )
    if not created:
        raise ApplicationError(
            "This prompt already has a comparison from this job.",
            code=ErrorCode.DUPLICATE_COMPARISON,
        )
    return created[0]
