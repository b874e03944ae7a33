"""The work queue: every kind of work is handed out by these functions.

Claiming is one short transaction: the labeler's row is locked (one claim at a time per labeler),
expired leases of the project are returned to the pool, and the next open item is taken with
`FOR UPDATE SKIP LOCKED` in priority order. The item row carries `done_count + active_leases`,
so a concurrent claimer that waited on the row re-checks the condition against the new values
(no subquery can go stale). A unique (item, labeler) row backs up "never the same item twice".
"""

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Case, F, Value, When
from django.utils import timezone

from annotations.errors import ApplicationError
from annotations.models import Assignment, Project, WorkItem
from annotations.models.projects import WorkKind
from annotations.models.work import AssignmentState

REAP_BATCH = 200

_REAP_SQL = """
WITH expired AS (
    SELECT a.id, a.item_id
    FROM annotations_assignment a
    JOIN annotations_workitem w ON w.id = a.item_id
    WHERE a.state = 'leased' AND a.expires_at < %(now)s {project_filter}
    ORDER BY a.expires_at
    LIMIT %(limit)s
    FOR UPDATE OF a SKIP LOCKED
), marked AS (
    UPDATE annotations_assignment AS a SET state = 'expired', finished_at = %(now)s
    FROM expired WHERE a.id = expired.id
    RETURNING expired.item_id
), counts AS (
    SELECT item_id, count(*) AS n FROM marked GROUP BY item_id
)
UPDATE annotations_workitem AS w SET active_leases = w.active_leases - counts.n
FROM counts WHERE w.id = counts.item_id
"""


def leases_expire(*, project: Project | None = None, limit: int = REAP_BATCH) -> int:
    """Return expired leases to the pool. Safe to run concurrently (SKIP LOCKED)."""
    now = timezone.now()
    if connection.vendor != "postgresql":
        return _leases_expire_portable(project=project, now=now, limit=limit)
    project_filter = "AND w.project_id = %(project)s" if project is not None else ""
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        cursor.execute(
            _REAP_SQL.format(project_filter=project_filter),
            {"now": now, "limit": limit, "project": project.pk if project else None},
        )
        return cursor.rowcount


def _leases_expire_portable(*, project: Project | None, now: Any, limit: int) -> int:
    """The same for SQLite (`make run`), where one writer at a time makes locking moot."""
    expired = Assignment.objects.filter(state=AssignmentState.LEASED, expires_at__lt=now)
    if project is not None:
        expired = expired.filter(item__project=project)
    count = 0
    with transaction.atomic():
        for assignment in expired[:limit]:
            Assignment.objects.filter(pk=assignment.pk).update(
                state=AssignmentState.EXPIRED, finished_at=now
            )
            WorkItem.objects.filter(pk=assignment.item_id).update(
                active_leases=F("active_leases") - 1
            )
            count += 1
    return count


def _kinds_by_priority(project: Project, kinds: list[str] | None) -> list[str]:
    wanted = kinds or list(WorkKind.values)
    priorities = project.work_priorities or {}
    return sorted(wanted, key=lambda kind: -int(priorities.get(kind, 0)))


def _next_item(*, project: Project, kind: str, labeler: Any) -> WorkItem | None:
    return (
        WorkItem.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(project=project, kind=kind, is_open=True)
        .filter(done_count__lt=F("required_labels") - F("active_leases"))
        .exclude(
            pk__in=Assignment.objects.filter(
                labeler=labeler, state__in=[AssignmentState.SUBMITTED, AssignmentState.SKIPPED]
            ).values("item_id")
        )
        .order_by("-priority", "id")
        .first()
    )


@dataclass(frozen=True)
class Claim:
    assignment: Assignment
    resumed: bool


def task_claim_next(
    *, labeler: Any, project: Project, kinds: list[str] | None = None
) -> Claim | None:
    """Lease the labeler one item of the given kinds (all kinds in the project's priority order
    when None). A live lease the labeler already holds is returned first (resumed=True).
    None when nothing is left for this labeler."""
    now = timezone.now()
    wanted = _kinds_by_priority(project, kinds)
    with transaction.atomic():
        _lock_labeler(labeler.pk)
        live = (
            _with_item(Assignment.objects)
            .filter(
                labeler=labeler,
                state=AssignmentState.LEASED,
                expires_at__gt=now,
                item__project=project,
                item__kind__in=wanted,
            )
            .order_by("leased_at")
            .first()
        )
        if live is not None:
            return Claim(assignment=live, resumed=True)
        leases_expire(project=project)
        expires = now + timedelta(minutes=project.lease_minutes)
        for kind in wanted:
            assignment_id = _claim_kind(
                project=project, kind=kind, labeler=labeler, now=now, expires=expires
            )
            if assignment_id is not None:
                return Claim(
                    assignment=_with_item(Assignment.objects).get(pk=assignment_id), resumed=False
                )
    return None


def _with_item(assignments: Any) -> Any:
    return assignments.select_related("item", "item__prompt", "item__comparison")


def _lock_labeler(labeler_id: int) -> None:
    """One claim at a time per labeler (two tabs cannot take two slots of one item)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM auth_user WHERE id = %s FOR UPDATE", [labeler_id])
    else:
        get_user_model().objects.select_for_update().filter(pk=labeler_id).first()


# Take the next open item of one kind and lease it, in one statement: the candidate row is locked
# (SKIP LOCKED), its lease counter bumped, and the labeler's assignment inserted or, after an
# expiry or a release, reused. A concurrent claimer that finds the row updated re-checks
# `done_count < required_labels - active_leases` against the new values.
_CLAIM_SQL = """
WITH candidate AS (
    SELECT w.id FROM annotations_workitem w
    WHERE w.project_id = %(project)s AND w.kind = %(kind)s AND w.is_open
      AND w.done_count < w.required_labels - w.active_leases
      AND w.id NOT IN (
          SELECT a.item_id FROM annotations_assignment a
          WHERE a.labeler_id = %(labeler)s AND a.state IN ('submitted', 'skipped'))
    ORDER BY w.priority DESC, w.id
    LIMIT 1
    FOR UPDATE SKIP LOCKED
), bumped AS (
    UPDATE annotations_workitem w SET active_leases = w.active_leases + 1
    FROM candidate WHERE w.id = candidate.id
    RETURNING w.id
)
INSERT INTO annotations_assignment
    (item_id, labeler_id, token, state, leased_at, expires_at, finished_at, skip_reason)
SELECT bumped.id, %(labeler)s, %(token)s, 'leased', %(now)s, %(expires)s, NULL, ''
FROM bumped
ON CONFLICT (item_id, labeler_id) DO UPDATE SET
    state = 'leased', token = EXCLUDED.token, leased_at = EXCLUDED.leased_at,
    expires_at = EXCLUDED.expires_at, finished_at = NULL, skip_reason = ''
RETURNING id
"""


def _claim_kind(*, project: Project, kind: str, labeler: Any, now: Any, expires: Any) -> int | None:
    """The id of the labeler's new assignment on the next item of `kind`, or None."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                _CLAIM_SQL,
                {
                    "project": project.pk,
                    "kind": kind,
                    "labeler": labeler.pk,
                    "token": uuid.uuid4(),
                    "now": now,
                    "expires": expires,
                },
            )
            row = cursor.fetchone()
        return row[0] if row else None
    item = _next_item(project=project, kind=kind, labeler=labeler)
    if item is None:
        return None
    return _lease(item=item, labeler=labeler, now=now, expires=expires).pk


def _lease(*, item: WorkItem, labeler: Any, now: Any, expires: Any) -> Assignment:
    """The portable lease (SQLite, where one writer at a time makes the race moot)."""
    (assignment,) = Assignment.objects.bulk_create(
        [
            Assignment(
                item=item,
                labeler=labeler,
                state=AssignmentState.LEASED,
                token=uuid.uuid4(),
                leased_at=now,
                expires_at=expires,
                finished_at=None,
                skip_reason="",
            )
        ],
        update_conflicts=True,
        unique_fields=["item", "labeler"],
        update_fields=["state", "token", "leased_at", "expires_at", "finished_at", "skip_reason"],
    )
    WorkItem.objects.filter(pk=item.pk).update(active_leases=F("active_leases") + 1)
    return assignment


def assignment_for_token(*, labeler: Any, token: uuid.UUID | str) -> Assignment:
    """The labeler's own assignment with this token (any state); 404-style error otherwise."""
    assignment = (
        Assignment.objects.select_related("item", "item__project")
        .filter(labeler=labeler, token=token)
        .first()
    )
    if assignment is None:
        raise ApplicationError(
            "This task is not yours or no longer exists. Take the next task.",
            code="not_found",
            status_code=404,
        )
    return assignment


def assignment_complete(*, assignment: Assignment) -> bool:
    """Mark a leased assignment submitted and count it on its item, inside the caller's
    transaction. Returns False when it was submitted already (idempotent). A lease that expired
    meanwhile is still accepted while the item needs labels; otherwise ApplicationError."""
    now = timezone.now()
    updated = Assignment.objects.filter(pk=assignment.pk, state=AssignmentState.LEASED).update(
        state=AssignmentState.SUBMITTED, finished_at=now
    )
    if updated:
        _count_done(item_id=assignment.item_id, released_lease=True)
        return True
    current = Assignment.objects.select_for_update().get(pk=assignment.pk)
    if current.state == AssignmentState.SUBMITTED:
        return False
    if current.state in (AssignmentState.EXPIRED, AssignmentState.RELEASED):
        item = WorkItem.objects.select_for_update().get(pk=assignment.item_id)
        late = Assignment.objects.filter(
            pk=assignment.pk, state__in=[AssignmentState.EXPIRED, AssignmentState.RELEASED]
        )
        if item.done_count + item.active_leases < item.required_labels:
            if not late.update(state=AssignmentState.SUBMITTED, finished_at=now):
                return False  # a concurrent late submit of the same assignment counted it
            _count_done(item_id=item.pk, released_lease=False)
            return True
        raise ApplicationError(
            "Your lease on this task ran out and others finished it; your work is kept as a "
            "draft. Take the next task.",
            code="lease_lost",
            status_code=409,
        )
    raise ApplicationError(
        "You skipped this task; take the next one.", code="skipped", status_code=409
    )


def _count_done(*, item_id: int, released_lease: bool) -> None:
    lease_delta = 1 if released_lease else 0
    WorkItem.objects.filter(pk=item_id).update(
        done_count=F("done_count") + 1,
        active_leases=F("active_leases") - lease_delta,
        is_open=Case(
            When(done_count__lt=F("required_labels") - 1, then=Value(True)), default=Value(False)
        ),
    )


@transaction.atomic
def assignment_skip(*, labeler: Any, token: uuid.UUID | str, reason: str) -> Assignment:
    """Give the item back with a reason. The labeler is not offered it again."""
    reason = reason.strip()
    if not reason:
        raise ApplicationError("Say why you skip (e.g. 'unclear prompt').", code="reason_required")
    assignment = assignment_for_token(labeler=labeler, token=token)
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
