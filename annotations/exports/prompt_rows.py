"""Prompt rows (PPO prompts, evaluation prompts)."""

from collections.abc import Iterator

from django.db.models import QuerySet

from annotations.exports.batches import Batch, chunks
from annotations.exports.filters import ExportFilters, dates_q, prompt_q
from annotations.models import (
    Project,
    Prompt,
)
from annotations.models.jobs import ExportKind


def prompts_selected(project: Project, filters: ExportFilters) -> QuerySet:
    prompts = Prompt.objects.filter(
        prompt_q(filters, ""), dates_q(filters, "created_at"), project=project
    )
    if filters.labelers:
        prompts = prompts.filter(created_by_id__in=filters.labelers)
    return prompts.order_by("id").values_list("id", "text", "split", "source", "category")


def prompt_batches(prompts: QuerySet, kind: str, chunk_size: int) -> Iterator[Batch]:
    for chunk in chunks(prompts.iterator(chunk_size=chunk_size), chunk_size):
        if kind == ExportKind.PPO_PROMPTS:
            rows = [
                {"prompt": t, "split": s, "source": src, "prompt_id": pk, "category": c}
                for pk, t, s, src, c in chunk
            ]
        else:
            rows = [
                {"prompt": t, "prompt_id": pk, "category": c, "split": s, "source": src}
                for pk, t, s, src, c in chunk
            ]
        yield Batch(units=len(chunk), rows=rows)
