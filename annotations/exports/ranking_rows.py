"""Reward-model rows from rankings: pairs (chosen/rejected) or whole K-way rankings."""

from collections.abc import Iterator

from django.db.models import QuerySet

from annotations.domain.ranking import consensus_ranked_pairs, ranking_pairs
from annotations.exports.batches import Batch
from annotations.exports.filters import ExportFilters, dates_q, prompt_q
from annotations.exports.schemas import Row
from annotations.models import (
    Completion,
    Project,
    Ranking,
)
from annotations.models.jobs import ExportKind
from annotations.models.labels import RankingState

_RANKING_FIELDS = (
    "id", "task_id", "labeler_id", "groups", "none_acceptable", "schema_version",
    "task__prompt_id", "task__prompt__text", "task__prompt__split", "task__prompt__source",
)  # fmt: skip


def rankings_selected(project: Project, filters: ExportFilters) -> QuerySet:
    rankings = Ranking.objects.filter(
        prompt_q(filters, "task__prompt__"),
        dates_q(filters, "submitted_at"),
        task__project=project,
        state=RankingState.SUBMITTED,
    )
    if filters.labelers:
        rankings = rankings.filter(labeler_id__in=filters.labelers)
    if filters.skip_none_acceptable:
        rankings = rankings.filter(none_acceptable=False)
    return rankings.order_by("task_id", "id").values_list(*_RANKING_FIELDS)


def _taskchunks(rankings: QuerySet, chunk_size: int) -> Iterator[list[tuple]]:
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


def ranking_batches(
    rankings: QuerySet, kind: str, filters: ExportFilters, chunk_size: int
) -> Iterator[Batch]:
    build = _pair_rows if kind == ExportKind.RM_PAIRS else _ranking_row
    # A ranking gives up to C(9,2) = 36 pairs: smaller chunks keep a batch's rows few.
    per_batch = max(1, chunk_size // 4) if kind == ExportKind.RM_PAIRS else chunk_size
    for chunk in _taskchunks(rankings, per_batch):
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
