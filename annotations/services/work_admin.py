"""Work administration: queueing prompts for labelers and the priorities between kinds of work."""

from typing import Any

from django.db import transaction
from django.db.models import Exists, OuterRef

from annotations.errors import ApplicationError, ErrorCode
from annotations.models import Project, Prompt, WorkItem
from annotations.models.projects import WorkKind
from annotations.services.queue import work_items_create

PROMPT_KINDS = (WorkKind.DEMONSTRATION, WorkKind.PROMPT_ANNOTATION)


def prompt_work_queue(
    *,
    project: Project,
    kind: str,
    count: int,
    split: str = "",
    category: str = "",
    only_unqueued: bool = True,
    priority: int = 0,
) -> list[WorkItem]:
    """Queue demonstration or prompt-annotation work for up to `count` prompts (oldest first),
    filtered by split and category, by default only prompts never queued for this kind. Atomic;
    the project row is locked so that two concurrent calls never queue one prompt twice."""
    if kind not in PROMPT_KINDS:
        raise ApplicationError(
            f"Queue {' or '.join(PROMPT_KINDS)} work for prompts, not {kind!r}.",
            code=ErrorCode.WRONG_KIND,
        )
    if count < 1:
        raise ApplicationError("Queue at least one prompt.", code=ErrorCode.INVALID_COUNT)
    with transaction.atomic():
        Project.objects.select_for_update().filter(pk=project.pk).first()
        prompts = Prompt.objects.filter(project=project).order_by("id")
        if split:
            prompts = prompts.filter(split=split)
        if category:
            prompts = prompts.filter(category=category)
        if only_unqueued:
            queued = WorkItem.objects.filter(prompt=OuterRef("pk"), kind=kind)
            prompts = prompts.exclude(Exists(queued))
        chosen = list(prompts.only("id")[:count])
        return work_items_create(project=project, kind=kind, prompts=chosen, priority=priority)


def prompt_writing_queue(*, project: Project, count: int, priority: int = 0) -> list[WorkItem]:
    """Queue `count` prompt-writing tasks (each done once by `labelers_per_item` labelers)."""
    if not 1 <= count <= 10_000:
        raise ApplicationError(
            "Queue between 1 and 10,000 prompt-writing tasks.", code=ErrorCode.COUNT
        )
    return work_items_create(
        project=project, kind=WorkKind.PROMPT_WRITING, count=count, priority=priority
    )


def work_priorities_update(*, project: Project, priorities: dict[str, Any]) -> Project:
    """Set the project's priorities between kinds of work (higher is handed out first)."""
    unknown = set(priorities) - set(WorkKind.values)
    if unknown:
        raise ApplicationError(
            f"Unknown kinds of work: {sorted(unknown)}.", code=ErrorCode.UNKNOWN_KIND
        )
    cleaned: dict[str, int] = {}
    for kind in WorkKind.values:
        value = priorities.get(kind, (project.work_priorities or {}).get(kind, 0))
        try:
            cleaned[kind] = int(value)
        except (TypeError, ValueError):
            raise ApplicationError(
                f"The priority of {kind} must be a whole number.", code=ErrorCode.INVALID_PRIORITY
            ) from None
        if not 0 <= cleaned[kind] <= 1000:
            raise ApplicationError(
                f"Priorities go from 0 to 1000; {kind} has {cleaned[kind]}.",
                code=ErrorCode.INVALID_PRIORITY,
            )
    project.work_priorities = cleaned
    project.save(update_fields=["work_priorities"])
    return project
