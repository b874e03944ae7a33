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
from django.db import DatabaseError, connection, transaction
from django.db.models import Case, F, Value, When
from django.utils import timezone

from annotations.errors import ApplicationError
from annotations.models import Assignment, Project, Prompt, WorkItem
from annotations.models.projects import WorkKind
from annotations.models.work import AssignmentState
from annotations.rows import columns, fetch_one, instance
from annotations.selectors.access import assignment_find

REAP_BATCH = 200

# Expired leases back to the pool: only rows it can lock at once (the lease and its item, SKIP
# LOCKED), so it never waits for a lock and cannot deadlock with claims.
_REAP_CTE = """
WITH expired AS (
    SELECT a.id, a.item_id
    FROM annotations_assignment a
    JOIN annotations_workitem w ON w.id = a.item_id
    WHERE a.state = 'leased' AND a.expires_at < %(now)s {project_filter}
    ORDER BY a.expires_at
    LIMIT %(limit)s
    FOR UPDATE OF a, w SKIP LOCKED
), marked AS (
    UPDATE annotations_assignment AS a SET state = 'expired', finished_at = %(now)s
    FROM expired WHERE a.id = expired.id
    RETURNING expired.item_id
), counts AS (
    SELECT item_id, count(*) AS n FROM marked GROUP BY item_id
), returned AS (
    UPDATE annotations_workitem AS w SET active_leases = w.active_leases - counts.n
    FROM counts WHERE w.id = counts.item_id
    RETURNING w.id
)
"""


def leases_expire(*, project: Project | None = None, limit: int = REAP_BATCH) -> int:
    """Return up to `limit` expired leases to the pool; how many it returned. Safe to run
    concurrently, and never waits for a lock."""
    now = timezone.now()
    if connection.vendor != "postgresql":
        return _leases_expire_portable(project=project, now=now, limit=limit)
    project_filter = "AND w.project_id = %(project)s" if project is not None else ""
    reap = _REAP_CTE.format(project_filter=project_filter)
    sql = reap + "SELECT count(*) FROM marked, (SELECT count(*) FROM returned) AS r"  # noqa: S608
    with transaction.atomic(savepoint=False):
        return fetch_one(
            sql, {"now": now, "limit": limit, "project": project.pk if project else None}
        )[0]


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
                labeler=labeler,
                state__in=[
                    AssignmentState.SUBMITTED,
                    AssignmentState.SKIPPED,
                    AssignmentState.LEASED,
                ],
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
    None when nothing is left for this labeler. The assignment comes with its item and prompt."""
    now = timezone.now()
    wanted = _kinds_by_priority(project, kinds)
    if connection.vendor != "postgresql":
        return _claim_portable(labeler=labeler, project=project, wanted=wanted, now=now)
    params = {
        "project": project.pk,
        "labeler": labeler.pk,
        "kinds": wanted,
        "now": now,
        "limit": REAP_BATCH,
    }
    with transaction.atomic():
        fetch_one(_LOCK_SQL, [labeler.pk])
        live_id, open_kinds, _ = fetch_one(_BEFORE_CLAIM_SQL, params)
        if live_id is not None:
            return Claim(assignment=_task_load(live_id), resumed=True)
        params.update(expires=now + timedelta(minutes=project.lease_minutes))
        for kind in [k for k in wanted if k in open_kinds]:
            row = fetch_one(_CLAIM_SQL, {**params, "kind": kind, "token": uuid.uuid4()})
            if row is not None:
                return Claim(assignment=_task_from_row(row), resumed=False)
    return None


# One claim at a time per labeler (two tabs cannot take two slots of one item). The reads that
# follow are separate statements, so they see what a claim this one waited for committed.
_LOCK_SQL = f"SELECT 1 FROM {get_user_model()._meta.db_table} WHERE id = %s FOR UPDATE"  # noqa: S608

# Return the project's expired leases; in the same statement, a live lease of the labeler to
# resume and which of the wanted kinds have open items.
_LIVE_AND_OPEN_KINDS = """
SELECT (
    SELECT a.id FROM annotations_assignment a JOIN annotations_workitem w ON w.id = a.item_id
    WHERE a.labeler_id = %(labeler)s AND a.state = 'leased' AND a.expires_at > %(now)s
      AND w.project_id = %(project)s AND w.kind = ANY(%(kinds)s::text[])
    ORDER BY a.leased_at LIMIT 1
), ARRAY(
    SELECT k.kind FROM unnest(%(kinds)s::text[]) AS k(kind)
    WHERE EXISTS (SELECT 1 FROM annotations_workitem w
                  WHERE w.project_id = %(project)s AND w.kind = k.kind AND w.is_open)
), (SELECT count(*) FROM returned)
"""
_BEFORE_CLAIM_SQL = (
    _REAP_CTE.format(project_filter="AND w.project_id = %(project)s") + _LIVE_AND_OPEN_KINDS
)

# Take the next open item of one kind and lease it, in one statement: the candidate row is locked
# (SKIP LOCKED), the labeler's assignment inserted or, after an expiry or a release, reused, and
# the item's lease counter bumped for it; the new assignment comes back with its item and prompt.
# A concurrent claimer that finds the row updated re-checks
# `done_count < required_labels - active_leases` against the new values. An assignment row that
# is no longer expired or released when the insert meets it (a late submit from another tab
# committed meanwhile) is left alone and nothing is bumped: this claim finds nothing of the kind.
_CLAIM_SQL = f"""
WITH candidate AS (
    SELECT w.id FROM annotations_workitem w
    WHERE w.project_id = %(project)s AND w.kind = %(kind)s AND w.is_open
      AND w.done_count < w.required_labels - w.active_leases
      AND w.id NOT IN (
          SELECT a.item_id FROM annotations_assignment a
          WHERE a.labeler_id = %(labeler)s AND a.state IN ('submitted', 'skipped', 'leased'))
    ORDER BY w.priority DESC, w.id
    LIMIT 1
    FOR UPDATE SKIP LOCKED
), leased AS (
    INSERT INTO annotations_assignment AS a
        (item_id, labeler_id, token, state, leased_at, expires_at, finished_at, skip_reason)
    SELECT candidate.id, %(labeler)s::bigint, %(token)s::uuid, 'leased', %(now)s::timestamptz,
           %(expires)s::timestamptz, NULL::timestamptz, ''
    FROM candidate
    ON CONFLICT (item_id, labeler_id) DO UPDATE SET
        state = 'leased', token = EXCLUDED.token, leased_at = EXCLUDED.leased_at,
        expires_at = EXCLUDED.expires_at, finished_at = NULL, skip_reason = ''
    WHERE a.state IN ('expired', 'released')
    RETURNING *
), bumped AS (
    UPDATE annotations_workitem w SET active_leases = w.active_leases + 1
    FROM leased WHERE w.id = leased.item_id
    RETURNING w.*
)
SELECT {columns(Assignment, "leased")}, {columns(WorkItem, "bumped")}, {columns(Prompt, "p")}
FROM leased JOIN bumped ON bumped.id = leased.item_id
LEFT JOIN annotations_prompt p ON p.id = bumped.prompt_id
"""  # noqa: S608 (column lists from the models)

_TASK_SQL = f"""
SELECT {columns(Assignment, "a")}, {columns(WorkItem, "w")}, {columns(Prompt, "p")}
FROM annotations_assignment a JOIN annotations_workitem w ON w.id = a.item_id
LEFT JOIN annotations_prompt p ON p.id = w.prompt_id
WHERE a.id = %s
"""  # noqa: S608 (column lists from the models)


def _task_from_row(row: Any) -> Assignment:
    assignment, end = instance(Assignment, row)
    item, end = instance(WorkItem, row, end)
    item.prompt = instance(Prompt, row, end)[0]
    assignment.item = item
    return assignment


def _task_load(assignment_id: int) -> Assignment:
    return _task_from_row(fetch_one(_TASK_SQL, [assignment_id]))


def _with_item(assignments: Any) -> Any:
    return assignments.select_related("item", "item__prompt")


def _claim_portable(*, labeler: Any, project: Project, wanted: list[str], now: Any) -> Claim | None:
    """The same on SQLite (`make run`), where one writer at a time makes the races moot."""
    with transaction.atomic():
        get_user_model().objects.select_for_update().filter(pk=labeler.pk).first()
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
            item = _next_item(project=project, kind=kind, labeler=labeler)
            if item is not None:
                leased = _lease(item=item, labeler=labeler, now=now, expires=expires)
                return Claim(
                    assignment=_with_item(Assignment.objects).get(pk=leased.pk), resumed=False
                )
    return None


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
    """The labeler's own assignment with this token (any state), with its item and project;
    404-style error otherwise."""
    assignment = assignment_find(labeler_id=labeler.pk, token=token)
    if assignment is None:
        raise ApplicationError(
            "This task is not yours or no longer exists. Take the next task.",
            code="not_found",
            status_code=404,
        )
    return assignment


# A live lease becomes a submission and is counted on its item, in one statement.
# A live lease becomes a submission and is counted on its item: the CTEs `done` and `counted`,
# shared with the submits that write their label in the same statement.
COMPLETE_CTE = """
done AS (
    UPDATE annotations_assignment SET state = 'submitted', finished_at = %(now)s
    WHERE id = %(assignment)s AND state = 'leased'
    RETURNING item_id
), counted AS (
    UPDATE annotations_workitem w SET done_count = w.done_count + 1,
        active_leases = w.active_leases - 1, is_open = w.done_count + 1 < w.required_labels
    FROM done WHERE w.id = done.item_id
    RETURNING w.id
)"""
_COMPLETE_SQL = f"WITH {COMPLETE_CTE} SELECT count(*) FROM counted"  # noqa: S608


def assignment_complete(*, assignment: Assignment) -> bool:
    """Mark a leased assignment submitted and count it on its item, inside the caller's
    transaction. Returns False when it was submitted already (idempotent). A lease that expired
    meanwhile is still accepted while the item needs labels; otherwise ApplicationError."""
    now = timezone.now()
    if connection.vendor == "postgresql":
        if fetch_one(_COMPLETE_SQL, {"assignment": assignment.pk, "now": now})[0]:
            return True
    elif Assignment.objects.filter(pk=assignment.pk, state=AssignmentState.LEASED).update(
        state=AssignmentState.SUBMITTED, finished_at=now
    ):
        _count_done(item_id=assignment.item_id, released_lease=True)
        return True
    current = Assignment.objects.select_for_update().get(pk=assignment.pk)
    if current.state == AssignmentState.SUBMITTED:
        return False
    if current.state in (AssignmentState.EXPIRED, AssignmentState.RELEASED):
        item = _item_lock_briefly(item_id=assignment.item_id)
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


def _item_lock_briefly(*, item_id: int) -> WorkItem:
    """Lock the item for a late submit, which already holds its assignment row. A claim of the same
    labeler may hold the item and wait for that row: give up before PostgreSQL's deadlock check
    (1 s by default) would abort one of the two, with a clear 'busy' instead."""
    if connection.vendor != "postgresql":
        return WorkItem.objects.select_for_update().get(pk=item_id)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL lock_timeout = '500ms'")
        item = WorkItem.objects.select_for_update().get(pk=item_id)
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL lock_timeout TO DEFAULT")
        return item
    except DatabaseError as exc:
        if getattr(exc.__cause__, "pgcode", None) != "55P03":  # lock_not_available
            raise
        raise ApplicationError(
            "This task is being handed out at this moment; submit again in a moment.",
            code="busy",
            status_code=409,
        ) from None


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
