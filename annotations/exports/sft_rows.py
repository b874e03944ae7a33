"""SFT rows: demonstrations (prompt/completion) and, in chat format, conversations (messages)."""

from collections.abc import Iterator

from django.db.models import Prefetch, Q, QuerySet

from annotations.exports.batches import Batch, chunks
from annotations.exports.filters import ExportFilters, dates_q, prompt_q
from annotations.models import (
    Conversation,
    Demonstration,
    Project,
    Turn,
)
from annotations.models.labels import DemonstrationState


def sft_plan(
    project: Project, filters: ExportFilters, chunk_size: int
) -> tuple[int, Iterator[Batch]]:
    states: list[str] = (
        [DemonstrationState.ACCEPTED]
        if filters.accepted_only
        else [DemonstrationState.ACCEPTED, DemonstrationState.SUBMITTED]
    )
    rows = Demonstration.objects.filter(
        prompt_q(filters, "prompt__"),
        dates_q(filters, "submitted_at"),
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
        dates_q(filters, "updated_at"), project=project, state__in=states
    )
    if filters.splits or filters.sources:
        # A conversation without a seed prompt is labeler-written training data.
        seedless = Q(seed_prompt=None)
        if filters.splits and "train" not in filters.splits:
            seedless = Q(pk__in=[])
        if filters.sources and "labeler" not in filters.sources:
            seedless = Q(pk__in=[])
        conversations = conversations.filter(prompt_q(filters, "seed_prompt__") | seedless)
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
    for chunk in chunks(demonstrations.iterator(chunk_size=chunk_size), chunk_size):
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
    for chunk in chunks(conversations.iterator(chunk_size=chunk_size), chunk_size):
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
