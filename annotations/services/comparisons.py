"""Comparison tasks: a prompt with K sampled outputs, queued for labelers to rate and rank."""

from typing import Any

from django.db import transaction

from annotations.errors import ApplicationError
from annotations.models import ComparisonTask, Completion, Project, Prompt
from annotations.models.projects import WorkKind
from annotations.services.queue import work_items_create

OUTPUT_KEYS = {"text", "model_name", "model_version", "params", "seed", "finish_reason"}


def _check_outputs(*, project: Project, outputs: list[dict[str, Any]]) -> None:
    count = len(outputs)
    if not project.k_min <= count <= project.k_max:
        raise ApplicationError(
            f"A comparison in project {project.slug!r} needs between {project.k_min} and "
            f"{project.k_max} outputs (the project's K range); got {count}.",
            code="invalid_k",
            details={"k": count, "k_min": project.k_min, "k_max": project.k_max},
        )
    for index, output in enumerate(outputs):
        unknown = set(output) - OUTPUT_KEYS
        if unknown:
            raise ApplicationError(
                f"Output {index + 1} has unknown keys {sorted(unknown)}; "
                f"use {sorted(OUTPUT_KEYS)}.",
                code="invalid_output",
            )
        if not isinstance(output.get("text"), str) or not output["text"].strip():
            raise ApplicationError(
                f"Output {index + 1} needs a non-empty 'text'.", code="invalid_output"
            )
        if not isinstance(output.get("model_name"), str) or not output["model_name"]:
            raise ApplicationError(
                f"Output {index + 1} needs the 'model_name' that produced it.",
                code="invalid_output",
            )


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
            "The prompt belongs to another project.", code="invalid_prompt", status_code=400
        )
    _check_outputs(project=project, outputs=outputs)
    task = ComparisonTask.objects.create(project=project, prompt=prompt, job=job)
    Completion.objects.bulk_create(
        [
            Completion(
                comparison=task,
                prompt=prompt,
                position=position,
                text=output["text"],
                model_name=output["model_name"],
                model_version=output.get("model_version"),
                params=output.get("params") or {},
                seed=output.get("seed"),
                finish_reason=output.get("finish_reason") or "",
            )
            for position, output in enumerate(outputs)
        ]
    )
    work_items_create(project=project, kind=WorkKind.RANKING, comparisons=[task], priority=priority)
    return task
