"""The work queue: every kind of work is handed out by these functions.

A claim is one short transaction: the labeler's row is locked (one claim at a time per labeler,
so two tabs never take two slots of one item); a live lease the labeler holds comes back first;
otherwise, kind by kind in the project's priority order, the next item the labeler may take
(`WorkItem.objects.claimable_by`, the one eligibility rule) is locked with
`FOR UPDATE SKIP LOCKED` and leased. The item row carries `done_count` and `active_leases`, so a
concurrent claimer that waited on the row re-checks the rule against the new values. A unique
(item, labeler) row backs up "never the same item twice". Expired leases go back to the pool on
beat (`leases_expire`), never inside a claim.
"""

import uuid
from collections import defaultdict
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from annotations.errors import ApplicationError, ErrorCode
from annotations.hotpath import PORTABLE, Claim, hot_path
from annotations.models import Assignment, Project, WorkItem
from annotations.models.projects import WorkKind
from annotations.models.work import REUSABLE_STATES, AssignmentState
from annotations.selectors.access import assignment_find
from annotations.users import User

REAP_BATCH = 200


def leases_expire(*, project: Project | None = None, limit: int = REAP_BATCH) -> int:
    """Return up to `limit` expired leases to the pool; how many it returned. It takes only rows
    it can lock at once (the lease and its item, SKIP LOCKED), so it never waits for a lock and
    cannot deadlock with claims or submits; a row it skipped goes back on the next run."""
    now = timezone.now()
    expired = Assignment.objects.filter(state=AssignmentState.LEASED, expires_at__lt=now)
    if project is not None:
        expired = expired.filter(item__project=project)
    with transaction.atomic():
        rows = list(
            expired.select_related("item")
            .select_for_update(skip_locked=True, of=("self", "item"))
            .only("id", "item__id")
            .order_by("expires_at")[:limit]
        )
        if not rows:
            return 0
        Assignment.objects.filter(pk__in=[row.pk for row in rows]).update(
            state=AssignmentState.EXPIRED, finished_at=now
        )
        per_item: dict[int, int] = defaultdict(int)
        for row in rows:
            per_item[row.item_id] += 1
        items_by_count: dict[int, list[int]] = defaultdict(list)
        for item_id, count in per_item.items():
            items_by_count[count].append(item_id)
        for count, item_ids in items_by_count.items():
            WorkItem.objects.filter(pk__in=item_ids).update(
                active_leases=F("active_leases") - count
            )
    return len(rows)


def labeler_lock(*, labeler_id: int) -> None:
    """Lock the labeler's row until the caller's transaction ends (see `HotPath.labeler_lock`:
    one queue write at a time per labeler)."""
    hot_path().labeler_lock(labeler_id=labeler_id)


def _kinds_by_priority(project: Project, kinds: list[str] | None) -> list[str]:
    wanted = kinds or list(WorkKind.values)
    priorities = project.work_priorities or {}
    return sorted(wanted, key=lambda kind: -int(priorities.get(kind, 0)))


def task_claim_next(
    *, labeler: User, project: Project, kinds: list[str] | None = None
) -> Claim | None:
    """Lease the labeler one item of the given kinds (all kinds in the project's priority order
    when None), in one short transaction. A live lease the labeler already holds is returned
    first (resumed=True). None when nothing is left for this labeler. The assignment comes with
    its item and prompt."""
    now = timezone.now()
    with transaction.atomic():
        return hot_path().claim(
            labeler=labeler,
            project=project,
            kinds=_kinds_by_priority(project, kinds),
            now=now,
            expires=now + timedelta(minutes=project.lease_minutes),
        )


def assignment_for_token(
    *, labeler: User, token: uuid.UUID | str, kind: str | None = None, lock: bool = False
) -> Assignment:
    """The labeler's own assignment with this token, with its item and project; an
    ApplicationError when there is none (404), or, where `kind` is given, when it is of another
    kind or was skipped. With lock=True (for a write in the caller's transaction) the labeler's
    row is locked first (`labeler_lock`)."""
    if lock:
        labeler_lock(labeler_id=labeler.pk)
    assignment = assignment_find(labeler_id=labeler.pk, token=token)
    if assignment is None:
        raise ApplicationError(
            "This task is not yours or no longer exists. Take the next task.",
            code=ErrorCode.NOT_FOUND,
        )
    if kind is not None and assignment.item.kind != kind:
        raise ApplicationError(
            f"This task is a {assignment.item.get_kind_display().lower()} task, not "
            f"{WorkKind(kind).label.lower()}.",
            code=ErrorCode.WRONG_KIND,
        )
    if kind is not None and assignment.state == AssignmentState.SKIPPED:
        raise ApplicationError("You skipped this task; take the next one.", code=ErrorCode.SKIPPED)
    return assignment


def assignment_complete(*, assignment: Assignment) -> bool:
    """Mark a leased assignment submitted and count it on its item, inside the caller's
    transaction. Returns False when it was submitted already (idempotent). A lease that expired
    meanwhile is still accepted while the item has room; otherwise ApplicationError."""
    now = timezone.now()
    if hot_path().lease_complete(assignment=assignment, now=now):
        return True
    state = (
        Assignment.objects.select_for_update().values_list("state", flat=True).get(pk=assignment.pk)
    )
    if state == AssignmentState.SUBMITTED:
        return False
    if state not in REUSABLE_STATES:
        raise ApplicationError("You skipped this task; take the next one.", code=ErrorCode.SKIPPED)
    # A late submit: counted only while the item has room (the queue's one rule).
    counted = PORTABLE.item_count_done(
        item_id=assignment.item_id, released_lease=False, room_only=True
    )
    if not counted:
        raise ApplicationError(
            "Your lease on this task ran out and others finished it; your work is kept as a "
            "draft. Take the next task.",
            code=ErrorCode.LEASE_LOST,
        )
    Assignment.objects.filter(pk=assignment.pk).update(
        state=AssignmentState.SUBMITTED, finished_at=now
    )
    return True


@transaction.atomic
def assignment_skip(*, labeler: User, token: uuid.UUID | str, reason: str) -> Assignment:
    """Give the item back with a reason. The labeler is not offered it again."""
    reason = reason.strip()
    if not reason:
        raise ApplicationError(
            "Say why you skip (e.g. 'unclear prompt').", code=ErrorCode.REASON_REQUIRED
        )
    assignment = assignment_for_token(labeler=labeler, token=token, lock=True)
    updated = Assignment.objects.filter(pk=assignment.pk, state=AssignmentState.LEASED).update(
        state=AssignmentState.SKIPPED, finished_at=timezone.now(), skip_reason=reason[:1000]
    )
    if updated:
        WorkItem.objects.filter(pk=assignment.item_id).update(active_leases=F("active_leases") - 1)
    assignment.refresh_from_db()
    return assignment


@transaction.atomic
def assignment_release(*, assignment: Assignment) -> None:
    """An admin returns a held item to the pool; the labeler may be offered it again."""
    updated = Assignment.objects.filter(pk=assignment.pk, state=AssignmentState.LEASED).update(
        state=AssignmentState.RELEASED, finished_at=timezone.now()
    )
    if updated:
        WorkItem.objects.filter(pk=assignment.item_id).update(active_leases=F("active_leases") - 1)


def work_items_create(
    *,
    project: Project,
    kind: str,
    prompts: list[Any] | None = None,
    comparisons: list[Any] | None = None,
    count: int | None = None,
    priority: int = 0,
    required_labels: int | None = None,
) -> list[WorkItem]:
    """Queue work: one item per prompt or comparison (or `count` free items, e.g. prompt
    writing). Each needs `required_labels` labelers (default: the project's setting)."""
    required = required_labels or project.labelers_per_item
    if prompts is not None:
        items = [
            WorkItem(
                project=project, kind=kind, prompt=p, priority=priority, required_labels=required
            )
            for p in prompts
        ]
    elif comparisons is not None:
        items = [
            WorkItem(
                project=project,
                kind=kind,
                comparison=c,
                prompt_id=c.prompt_id,
                priority=priority,
                required_labels=required,
            )
            for c in comparisons
        ]
    else:
        items = [
            WorkItem(project=project, kind=kind, priority=priority, required_labels=required)
            for _ in range(count or 0)
        ]
    return WorkItem.objects.bulk_create(items, batch_size=1000)
