"""Prompts written by labelers (plain, few-shot, user-based), through the intake filters."""

import uuid
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from annotations.errors import ApplicationError, ErrorCode
from annotations.models import Assignment, Prompt
from annotations.models.projects import WorkKind
from annotations.models.prompts import PromptKind, PromptSource
from annotations.models.work import AssignmentState
from annotations.services.prompts import prompt_create
from annotations.services.queue import (
    assignment_complete,
    assignment_for_token,
    labeler_lock,
)
from annotations.users import User

MIN_FEW_SHOT_PAIRS = 2


@dataclass(frozen=True)
class FewShotExample:
    """One training example: the prompt (instruction, the other pairs, the query) and its
    completion (the pair's response)."""

    prompt: str
    completion: str


def few_shot_render(*, instruction: str, pairs: list[dict[str, str]], query: str | None) -> str:
    """The text of a few-shot prompt: the instruction, the pairs, then an open query if given."""
    parts = [instruction.strip()]
    for pair in pairs:
        parts.append(f"Query: {pair['query'].strip()}\nResponse: {pair['response'].strip()}")
    if query is not None:
        parts.append(f"Query: {query.strip()}\nResponse:")
    return "\n\n".join(parts)


def few_shot_examples(few_shot: dict[str, Any]) -> list[FewShotExample]:
    """Expand a few-shot prompt {instruction, pairs: [{query, response}]} into one example per
    pair, each with the other pairs (in their order) as context. Pure."""
    pairs = list(few_shot.get("pairs") or [])
    instruction = str(few_shot.get("instruction") or "")
    return [
        FewShotExample(
            prompt=few_shot_render(
                instruction=instruction,
                pairs=pairs[:index] + pairs[index + 1 :],
                query=pair["query"],
            ),
            completion=pair["response"].strip(),
        )
        for index, pair in enumerate(pairs)
    ]


def _clean_pairs(pairs: list[dict[str, str]]) -> list[dict[str, str]]:
    cleaned = []
    for number, pair in enumerate(pairs, start=1):
        query, response = (pair.get("query") or "").strip(), (pair.get("response") or "").strip()
        if not query and not response:
            continue
        if not query or not response:
            raise ApplicationError(
                f"Pair {number} needs both a query and a response.", code=ErrorCode.INCOMPLETE_PAIR
            )
        cleaned.append({"query": query, "response": response})
    if len(cleaned) < MIN_FEW_SHOT_PAIRS:
        raise ApplicationError(
            f"A few-shot prompt needs at least {MIN_FEW_SHOT_PAIRS} query/response pairs.",
            code=ErrorCode.TOO_FEW_PAIRS,
        )
    return cleaned


def _prompt_fields(
    *, kind: str, text: str, instruction: str, pairs: list[dict[str, str]], use_case: str
) -> tuple[str, dict[str, Any]]:
    """(the prompt text, the extra Prompt fields) for one kind of written prompt."""
    if kind == PromptKind.FEW_SHOT:
        if not instruction.strip():
            raise ApplicationError("Write the instruction.", code=ErrorCode.INSTRUCTION_REQUIRED)
        cleaned = _clean_pairs(pairs)
        few_shot = {"instruction": instruction.strip(), "pairs": cleaned}
        text = few_shot_render(instruction=instruction, pairs=cleaned, query=None)
        return text, {"kind": kind, "few_shot": few_shot}
    if not text.strip():
        raise ApplicationError("Write the prompt.", code=ErrorCode.TEXT_REQUIRED)
    if kind == PromptKind.USER_BASED:
        if not use_case.strip():
            raise ApplicationError(
                "Say the use case the prompt is for.", code=ErrorCode.USE_CASE_REQUIRED
            )
        return text, {"kind": kind, "use_case": use_case.strip()}
    if kind == PromptKind.PLAIN:
        return text, {"kind": kind}
    raise ApplicationError(f"Unknown kind of prompt {kind!r}.", code=ErrorCode.UNKNOWN_KIND)


def prompt_write(
    *,
    labeler: User,
    token: uuid.UUID | str,
    kind: str,
    text: str = "",
    instruction: str = "",
    pairs: list[dict[str, str]] | None = None,
    use_case: str = "",
) -> Prompt:
    """Add the labeler's prompt to the pool (source=labeler, customer "labeler:<id>") through
    `prompt_create`'s filters and complete the prompt-writing assignment, in one transaction.
    A refusal (duplicate, too long, ...) stores nothing and leaves the task open; a task that
    was submitted already is refused (ApplicationError 409)."""
    assignment = assignment_for_token(labeler=labeler, token=token, kind=WorkKind.PROMPT_WRITING)
    prompt_text, extra = _prompt_fields(
        kind=kind, text=text, instruction=instruction, pairs=pairs or [], use_case=use_case
    )
    with transaction.atomic():
        labeler_lock(labeler_id=labeler.pk)
        state = Assignment.objects.values_list("state", flat=True).get(pk=assignment.pk)
        if state in (AssignmentState.SUBMITTED, AssignmentState.SKIPPED):
            raise ApplicationError(
                f"This task is {state} already; take the next one.",
                code=ErrorCode.ALREADY_SUBMITTED,
            )
        prompt = prompt_create(
            project=assignment.item.project,
            user=labeler,
            text=prompt_text,
            customer_id=f"labeler:{labeler.pk}",
            source=PromptSource.LABELER,
            extra=extra,
        )
        assignment_complete(assignment=assignment)
    return prompt
