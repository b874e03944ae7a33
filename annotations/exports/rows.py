"""Rows of each export kind, read in chunks through server-side cursors.

Each builder returns the number of units it will read (for the progress bar) and an iterator
of batches. A batch costs a bounded number of queries whatever its size: rankings come ordered
by comparison with the comparisons' completions fetched once per chunk, demonstrations come
with their prompt in the same query, conversations with their turns prefetched per chunk.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

import pyarrow as pa
from django.db.models import Prefetch, Q, QuerySet

from annotations.domain.ranking import consensus_ranked_pairs, ranking_pairs
from annotations.exports.filters import ExportFilters
from annotations.models import (
    Completion,
    Conversation,
    Demonstration,
    Project,
    Prompt,
    Ranking,
    Turn,
)
from annotations.models.jobs import ExportKind
from annotations.models.labels import DemonstrationState, RankingState

Row = dict[str, Any]
CHUNK_SIZE = 2000

_ID = pa.int64()
_STR = pa.string()
_MESSAGES = pa.list_(pa.struct([("role", _STR), ("content", _STR)]))
_TRACE = [("split", _STR), ("source", _STR), ("prompt_id", _ID)]
_RANKING_TRACE = [("comparison_id", _ID), ("ranking_id", _ID), ("labeler_id", _ID)]
SCHEMAS: dict[str, pa.Schema] = {
    "sft": pa.schema(
        [
            ("prompt", _STR),
            ("completion", _STR),
            *_TRACE,
            ("demonstration_id", _ID),
            ("labeler_id", _ID),
        ]
    ),
    "sft_chat": pa.schema(
        [
            ("messages", _MESSAGES),
            *_TRACE,
            ("demonstration_id", _ID),
            ("conversation_id", _ID),
            ("labeler_id", _ID),
        ]
    ),
    ExportKind.RM_PAIRS: pa.schema(
        [
            ("prompt", _STR),
            ("chosen", _STR),
            ("rejected", _STR),
            *_TRACE,
            *_RANKING_TRACE,
            ("labeler_count", _ID),
            ("chosen_id", _ID),
            ("rejected_id", _ID),
        ]
    ),
    ExportKind.RM_RANKINGS: pa.schema(
        [
            ("prompt", _STR),
            ("completions", pa.list_(_STR)),
            ("rank_groups", pa.list_(pa.list_(_ID))),
            *_TRACE,
            *_RANKING_TRACE,
            ("labeler_count", _ID),
            ("completion_ids", pa.list_(_ID)),
            ("none_acceptable", pa.bool_()),
        ]
    ),
    ExportKind.PPO_PROMPTS: pa.schema([("prompt", _STR), *_TRACE, ("category", _STR)]),
    ExportKind.EVALUATION: pa.schema(
        [
            ("prompt", _STR),
            ("prompt_id", _ID),
            ("category", _STR),
            ("split", _STR),
            ("source", _STR),
        ]
    ),
}


@dataclass
class Batch:
    """Rows read from `units` source records (rankings, demonstrations, prompts)."""

    units: int
    rows: list[Row]
    schema_versions: set[int] = field(default_factory=set)


@dataclass
class RowPlan:
    total: int
    batches: Iterator[Batch]
    schema: pa.Schema


def schema_for(*, kind: str, filters: ExportFilters) -> pa.Schema:
    if kind == ExportKind.SFT and filters.chat:
        return SCHEMAS["sft_chat"]
    return SCHEMAS[kind]


def rows_plan(
    *, kind: str, project: Project, filters: ExportFilters, chunk_size: int = CHUNK_SIZE
) -> RowPlan:
    """The rows of one export: how many units will be read, and the batches."""
    schema = schema_for(kind=kind, filters=filters)
    if kind == ExportKind.SFT:
        total, batches = _sft(project, filters, chunk_size)
    elif kind in (ExportKind.RM_PAIRS, ExportKind.RM_RANKINGS):
        rankings = _rankings(project, filters)
        total = rankings.count()
        batches = _ranking_batches(rankings, kind, filters, chunk_size)
    else:
        prompts = _prompts(project, filters)
        total = prompts.count()
        batches = _prompt_batches(prompts, kind, chunk_size)
    return RowPlan(total=total, batches=batches, schema=schema)


def _prompt_q(filters: ExportFilters, prefix: str) -> Q:
    q = Q()
    if filters.splits:
        q &= Q(**{f"{prefix}split__in": filters.splits})
    if filters.sources:
        q &= Q(**{f"{prefix}source__in": filters.sources})
    return q


def _dates_q(filters: ExportFilters, name: str) -> Q:
    q = Q()
    if filters.date_from:
        q &= Q(**{f"{name}__date__gte": filters.date_from})
    if filters.date_to:
        q &= Q(**{f"{name}__date__lte": filters.date_to})
    return q


def _chunks(iterable: Any, size: int) -> Iterator[list[Any]]:
    iterator = iter(iterable)
    while chunk := list(islice(iterator, size)):
        yield chunk


# --- SFT ---------------------------------------------------------------------------------------


def _sft(project: Project, filters: ExportFilters, chunk_size: int) -> tuple[int, Iterator[Batch]]:
    states: list[str] = (
        [DemonstrationState.ACCEPTED]
        if filters.accepted_only
        else [DemonstrationState.ACCEPTED, DemonstrationState.SUBMITTED]
    )
    rows = Demonstration.objects.filter(
        _prompt_q(filters, "prompt__"),
        _dates_q(filters, "submitted_at"),
        prompt__project=project,
        state__in=states,
    )
    if filters.labelers:
        rows = rows.filter(labeler_id__in=filters.labelers)
    demonstrations = rows.order_by("id").values_list(
        "id", "labeler_id", "text", "prompt_id", "prompt__text", "prompt__messages",
        "prompt__split", "prompt__source",
    )  # fmt: skip
    total = demonstrations.count()
    conversations = None
    if filters.chat:
        conversations = _conversations(project, filters, states)
        total += conversations.count()
    return total, _sft_batches(demonstrations, conversations, filters.chat, chunk_size)


def _conversations(project: Project, filters: ExportFilters, states: list[str]) -> QuerySet:
    conversations = Conversation.objects.filter(
        _dates_q(filters, "updated_at"), project=project, state__in=states
    )
    if filters.splits or filters.sources:
        # A conversation without a seed prompt is labeler-written training data.
        seedless = Q(seed_prompt=None)
        if filters.splits and "train" not in filters.splits:
            seedless = Q(pk__in=[])
        if filters.sources and "labeler" not in filters.sources:
            seedless = Q(pk__in=[])
        conversations = conversations.filter(_prompt_q(filters, "seed_prompt__") | seedless)
    if filters.labelers:
        conversations = conversations.filter(labeler_id__in=filters.labelers)
    return (
        conversations.select_related("seed_prompt")
        .prefetch_related(Prefetch("turns", queryset=Turn.objects.order_by("index")))
        .order_by("id")
    )


def _sft_batches(
    demonstrations: QuerySet, conversations: QuerySet | None, chat: bool, chunk_size: int
) -> Iterator[Batch]:
    for chunk in _chunks(demonstrations.iterator(chunk_size=chunk_size), chunk_size):
        rows = []
        for pk, labeler_id, text, prompt_id, prompt, messages, split, source in chunk:
            trace = {"split": split, "source": source, "prompt_id": prompt_id}
            if chat:
                turns = list(messages or [{"role": "user", "content": prompt}])
                rows.append(
                    {
                        "messages": [*turns, {"role": "assistant", "content": text}],
                        **trace,
                        "demonstration_id": pk,
                        "conversation_id": None,
                        "labeler_id": labeler_id,
                    }
                )
            else:
                rows.append(
                    {
                        "prompt": prompt,
                        "completion": text,
                        **trace,
                        "demonstration_id": pk,
                        "labeler_id": labeler_id,
                    }
                )
        yield Batch(units=len(chunk), rows=rows)
    if conversations is None:
        return
    for chunk in _chunks(conversations.iterator(chunk_size=chunk_size), chunk_size):
        rows = []
        for conversation in chunk:
            seed = conversation.seed_prompt
            turns = [{"role": t.role, "content": t.text} for t in conversation.turns.all()]
            if not turns or turns[-1]["role"] != "assistant":
                continue  # nothing for the policy to learn from
            rows.append(
                {
                    "messages": turns,
                    "split": seed.split if seed else "train",
                    "source": seed.source if seed else "labeler",
                    "prompt_id": seed.pk if seed else None,
                    "demonstration_id": None,
                    "conversation_id": conversation.pk,
                    "labeler_id": conversation.labeler_id,
                }
            )
        yield Batch(units=len(chunk), rows=rows)


# --- rankings ----------------------------------------------------------------------------------

_RANKING_FIELDS = (
    "id", "task_id", "labeler_id", "groups", "none_acceptable", "schema_version",
    "task__prompt_id", "task__prompt__text", "task__prompt__split", "task__prompt__source",
)  # fmt: skip


def _rankings(project: Project, filters: ExportFilters) -> QuerySet:
    rankings = Ranking.objects.filter(
        _prompt_q(filters, "task__prompt__"),
        _dates_q(filters, "submitted_at"),
        task__project=project,
        state=RankingState.SUBMITTED,
    )
    if filters.labelers:
        rankings = rankings.filter(labeler_id__in=filters.labelers)
    if filters.skip_none_acceptable:
        rankings = rankings.filter(none_acceptable=False)
    return rankings.order_by("task_id", "id").values_list(*_RANKING_FIELDS)


def _task_chunks(rankings: QuerySet, chunk_size: int) -> Iterator[list[tuple]]:
    """Chunks of about chunk_size rankings that never split one comparison's rankings."""
    pending: list[tuple] = []
    for ranking in rankings.iterator(chunk_size=chunk_size):
        if len(pending) >= chunk_size and ranking[1] != pending[-1][1]:
            yield pending
            pending = []
        pending.append(ranking)
    if pending:
        yield pending


def _completions(task_ids: set[int]) -> dict[int, list[tuple[int, str]]]:
    """Each comparison's (completion id, text), in position order: one query per chunk."""
    found: dict[int, list[tuple[int, str]]] = {}
    rows = (
        Completion.objects.filter(comparison_id__in=task_ids)
        .order_by("comparison_id", "position")
        .values_list("comparison_id", "id", "text")
    )
    for task_id, pk, text in rows:
        found.setdefault(task_id, []).append((pk, text))
    return found


def _ranking_batches(
    rankings: QuerySet, kind: str, filters: ExportFilters, chunk_size: int
) -> Iterator[Batch]:
    build = _pair_rows if kind == ExportKind.RM_PAIRS else _ranking_row
    # A ranking gives up to C(9,2) = 36 pairs: smaller chunks keep a batch's rows few.
    per_batch = max(1, chunk_size // 4) if kind == ExportKind.RM_PAIRS else chunk_size
    for chunk in _task_chunks(rankings, per_batch):
        completions = _completions({r[1] for r in chunk})
        rows: list[Row] = []
        for answers in _answers(chunk, consensus=filters.consensus):
            build(rows, answers, completions.get(answers[0][1], []))
        yield Batch(units=len(chunk), rows=rows, schema_versions={r[5] for r in chunk})


def _answers(chunk: list[tuple], *, consensus: bool) -> Iterator[list[tuple]]:
    """Every ranking on its own, or the rankings of each comparison together (consensus)."""
    if not consensus:
        for ranking in chunk:
            yield [ranking]
        return
    start = 0
    for index in range(1, len(chunk) + 1):
        if index == len(chunk) or chunk[index][1] != chunk[start][1]:
            yield chunk[start:index]
            start = index


def _groups_of(answers: list[tuple]) -> list[list[int]]:
    if len(answers) == 1:
        return [list(group) for group in answers[0][3]]
    return consensus_ranked_pairs([a[3] for a in answers])


def _base(answers: list[tuple]) -> Row:
    first = answers[0]
    single = len(answers) == 1
    return {
        "prompt": first[7],
        "split": first[8],
        "source": first[9],
        "prompt_id": first[6],
        "comparison_id": first[1],
        "ranking_id": first[0] if single else None,
        "labeler_id": first[2] if single else None,
        "labeler_count": len(answers),
    }


def _pair_rows(rows: list[Row], answers: list[tuple], completions: list[tuple[int, str]]) -> None:
    text = dict(completions)
    base = _base(answers)
    prompt = base.pop("prompt")
    for winner, loser in ranking_pairs(_groups_of(answers)):
        rows.append(
            {
                "prompt": prompt,
                "chosen": text[winner],
                "rejected": text[loser],
                **base,
                "chosen_id": winner,
                "rejected_id": loser,
            }
        )


def _ranking_row(rows: list[Row], answers: list[tuple], completions: list[tuple[int, str]]) -> None:
    index = {pk: i for i, (pk, _) in enumerate(completions)}
    base = _base(answers)
    prompt = base.pop("prompt")
    rows.append(
        {
            "prompt": prompt,
            "completions": [text for _, text in completions],
            "rank_groups": [[index[pk] for pk in group] for group in _groups_of(answers)],
            **base,
            "completion_ids": [pk for pk, _ in completions],
            "none_acceptable": any(a[4] for a in answers),
        }
    )


# --- prompts -----------------------------------------------------------------------------------


def _prompts(project: Project, filters: ExportFilters) -> QuerySet:
    prompts = Prompt.objects.filter(
        _prompt_q(filters, ""), _dates_q(filters, "created_at"), project=project
    )
    if filters.labelers:
        prompts = prompts.filter(created_by_id__in=filters.labelers)
    return prompts.order_by("id").values_list("id", "text", "split", "source", "category")


def _prompt_batches(prompts: QuerySet, kind: str, chunk_size: int) -> Iterator[Batch]:
    for chunk in _chunks(prompts.iterator(chunk_size=chunk_size), chunk_size):
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
