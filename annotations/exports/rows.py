"""Rows of each export kind, read in chunks through server-side cursors.

Each builder returns the number of units it will read (for the progress bar) and an iterator
of batches. A batch costs a bounded number of queries whatever its size: rankings come ordered
by comparison with the comparisons' completions fetched once per chunk, demonstrations come
with their prompt in the same query, conversations with their turns prefetched per chunk.
"""

from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow as pa

from annotations.exports.batches import CHUNK_SIZE, Batch
from annotations.exports.filters import ExportFilters
from annotations.exports.prompt_rows import prompt_batches, prompts_selected
from annotations.exports.ranking_rows import ranking_batches, rankings_selected
from annotations.exports.schemas import Row, schema_for
from annotations.exports.sft_rows import sft_plan
from annotations.models import Project
from annotations.models.jobs import ExportKind

__all__ = ["CHUNK_SIZE", "Batch", "Row", "RowPlan", "rows_plan"]


@dataclass
class RowPlan:
    total: int
    batches: Iterator[Batch]
    schema: pa.Schema


def rows_plan(
    *, kind: str, project: Project, filters: ExportFilters, chunk_size: int = CHUNK_SIZE
) -> RowPlan:
    """The rows of one export: how many units will be read, and the batches."""
    schema = schema_for(kind=kind, filters=filters)
    if kind == ExportKind.SFT:
        total, batches = sft_plan(project, filters, chunk_size)
    elif kind in (ExportKind.RM_PAIRS, ExportKind.RM_RANKINGS):
        rankings = rankings_selected(project, filters)
        total = rankings.count()
        batches = ranking_batches(rankings, kind, filters, chunk_size)
    else:
        prompts = prompts_selected(project, filters)
        total = prompts.count()
        batches = prompt_batches(prompts, kind, chunk_size)
    return RowPlan(total=total, batches=batches, schema=schema)
