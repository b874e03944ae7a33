"""Reads for the labeler workspace, the lease view and the review queue."""

from dataclasses import dataclass
from datetime import datetime, time
from typing import Any

from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet
from django.utils import timezone

from annotations.models import Assignment, Demonstration, Project, WorkItem
from annotations.models.labels import DemonstrationState
from annotations.models.projects import WorkKind
from annotations.models.work import AssignmentState
from annotations.users import User

LABELER_KINDS = (
    WorkKind.RANKING,
    WorkKind.DEMONSTRATION,
    WorkKind.PROMPT_ANNOTATION,
    WorkKind.PROMPT_WRITING,
)
REVIEWED = (DemonstrationState.ACCEPTED, DemonstrationState.REJECTED)


@dataclass(frozen=True)
class OpenWork:
    project_slug: str
    project_name: str
    kind: str
    label: str
    count: int


def labeler_open_work(*, labeler: User) -> list[OpenWork]:
    """Open items per project and kind that this labeler could still take (one query)."""
    rows = (
        WorkItem.objects.filter(
            is_open=True,
            kind__in=LABELER_KINDS,
            done_count__lt=F("required_labels") - F("active_leases"),
        )
        .exclude(
            pk__in=Assignment.objects.filter(
                labeler=labeler, state__in=[AssignmentState.SUBMITTED, AssignmentState.SKIPPED]
            ).values("item_id")
        )
        .values("project__slug", "project__name", "kind")
        .annotate(n=Count("id"))
        .order_by("project__name", "kind")
    )
    labels = dict(WorkKind.choices)
    return [
        OpenWork(
            project_slug=row["project__slug"],
            project_name=row["project__name"],
            kind=row["kind"],
            label=labels[row["kind"]],
            count=row["n"],
        )
        for row in rows
    ]


def labeler_today(*, labeler: User) -> dict[str, Any]:
    """What the labeler submitted and skipped since midnight (server time), per kind."""
    start = timezone.make_aware(datetime.combine(timezone.localdate(), time.min))
    rows = (
        Assignment.objects.filter(labeler=labeler, finished_at__gte=start)
        .filter(state__in=[AssignmentState.SUBMITTED, AssignmentState.SKIPPED])
        .values("item__kind", "state")
        .annotate(n=Count("id"))
    )
    labels = dict(WorkKind.choices)
    per_kind: dict[str, int] = {}
    skipped = 0
    for row in rows:
        if row["state"] == AssignmentState.SKIPPED:
            skipped += row["n"]
        else:
            label = labels.get(row["item__kind"], row["item__kind"])
            per_kind[label] = per_kind.get(label, 0) + row["n"]
    return {"per_kind": per_kind, "total": sum(per_kind.values()), "skipped": skipped}


def labeler_acceptance(*, labeler: User) -> dict[str, Any]:
    """Accepted and rejected demonstrations, and the acceptance rate (None before any review)."""
    counts = Demonstration.objects.filter(labeler=labeler).aggregate(
        accepted=Count("id", filter=Q(state=DemonstrationState.ACCEPTED)),
        rejected=Count("id", filter=Q(state=DemonstrationState.REJECTED)),
        waiting=Count("id", filter=Q(state=DemonstrationState.SUBMITTED)),
    )
    reviewed = counts["accepted"] + counts["rejected"]
    counts["rate"] = round(100 * counts["accepted"] / reviewed) if reviewed else None
    return counts


def labeler_reviewed(*, labeler: User, limit: int = 20) -> QuerySet[Demonstration]:
    """The labeler's reviewed demonstrations, newest review first, with the prompt."""
    return (
        Demonstration.objects.filter(labeler=labeler, state__in=REVIEWED)
        .select_related("prompt")
        .order_by("-reviewed_at")[:limit]
    )


def labeler_drafts(*, labeler: User) -> QuerySet[Assignment]:
    """Demonstration tasks the labeler holds or held with an unsubmitted draft (to come back to)."""
    draft = Demonstration.objects.filter(
        labeler=labeler, prompt_id=OuterRef("item__prompt_id"), state=DemonstrationState.DRAFT
    )
    return (
        Assignment.objects.filter(labeler=labeler, item__kind=WorkKind.DEMONSTRATION)
        .exclude(state__in=[AssignmentState.SUBMITTED, AssignmentState.SKIPPED])
        .filter(Exists(draft))
        .select_related("item__project", "item__prompt")
        .order_by("-leased_at")[:20]
    )


def leases_live(*, project: Project) -> QuerySet[Assignment]:
    """Live leases in the project: who holds what, and until when."""
    return (
        Assignment.objects.filter(
            item__project=project, state=AssignmentState.LEASED, expires_at__gt=timezone.now()
        )
        .select_related("labeler", "item", "item__prompt")
        .order_by("expires_at")
    )


def work_counts(*, project: Project) -> list[dict[str, Any]]:
    """Per kind: open items, items done, live leases (one query)."""
    rows = (
        WorkItem.objects.filter(project=project)
        .values("kind")
        .annotate(
            open=Count("id", filter=Q(is_open=True)),
            done=Count("id", filter=Q(is_open=False)),
        )
        .order_by("kind")
    )
    labels = dict(WorkKind.choices)
    return [{**row, "label": labels.get(row["kind"], row["kind"])} for row in rows]


def demonstrations_for_review(*, reviewer: User, limit: int = 50) -> QuerySet[Demonstration]:
    """Submitted demonstrations waiting for review, others' only, oldest first."""
    return (
        Demonstration.objects.filter(state=DemonstrationState.SUBMITTED)
        .exclude(labeler=reviewer)
        .select_related("prompt", "prompt__project", "labeler")
        .order_by("submitted_at")[:limit]
    )


def demonstration_for_task(*, labeler: User, prompt_id: int | None) -> Demonstration | None:
    """The labeler's demonstration (draft or not) of the task's prompt."""
    if prompt_id is None:
        return None
    return Demonstration.objects.filter(labeler=labeler, prompt_id=prompt_id).first()
