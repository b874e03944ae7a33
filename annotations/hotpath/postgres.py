"""The hot paths on PostgreSQL as a few hand-written statements: the same operations and results
as `PortableHotPath`, which it extends. Statement texts are built once per process from the
models (column lists, types) and from the ORM's own compiled querysets (the eligibility rule), so
a new field or a changed rule cannot leave this path behind. psycopg 3 prepares them on the
server after a few runs (settings: prepare_threshold)."""

from datetime import datetime
from functools import cache
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection
from rest_framework.authtoken.models import Token

from annotations.hotpath.portable import Claim, DemonstrationWrite, PortableHotPath, RankingRows
from annotations.hotpath.statements import (
    columns,
    fetch_one,
    insert_values,
    instance,
    params_of,
    sql_named,
)
from annotations.models import (
    Assignment,
    ComparisonTask,
    Completion,
    Demonstration,
    LabelSchema,
    Project,
    Prompt,
    PromptAnnotation,
    Ranking,
    WorkItem,
)
from annotations.models.labels import DemonstrationState
from annotations.models.work import REUSABLE_STATES, AssignmentState
from annotations.roles import roles_remember
from annotations.users import User

_LABELER, _PROJECT, _KIND = -7_000_001, -7_000_002, "\x1fkind"


@cache
def _claim_sql() -> tuple[str, dict[str, Any]]:
    """Take the next item of one kind and lease it, in one statement: the candidate (the compiled
    `claimable_by`) is locked SKIP LOCKED, the labeler's assignment inserted or, after an expiry
    or a release, reused, and the item's lease counter bumped; the assignment comes back with
    its item and prompt. A claimer that waited on the row re-checks the rule's counters."""
    candidate, constants = sql_named(
        WorkItem.objects.claimable_by(labeler_id=_LABELER)
        .filter(project_id=_PROJECT, kind=_KIND)
        .order_by("-priority", "id")
        .values("id")[:1]
        .query.sql_with_params(),
        {_LABELER: "labeler_id", _PROJECT: "project", _KIND: "kind"},
    )
    names, exprs = insert_values(Assignment, {"item_id": "candidate.id"})
    reuse = ", ".join(
        f'"{f.column}" = EXCLUDED."{f.column}"'
        for f in Assignment._meta.concrete_fields
        if f.attname not in ("id", "item_id", "labeler_id")
    )
    reusable = ", ".join(f"%(reusable{i})s" for i in range(len(REUSABLE_STATES)))
    sql = f"""
WITH candidate AS ({candidate} FOR UPDATE SKIP LOCKED),
leased AS (
    INSERT INTO annotations_assignment AS a ({names}) SELECT {exprs} FROM candidate
    ON CONFLICT (item_id, labeler_id) DO UPDATE SET {reuse} WHERE a.state IN ({reusable})
    RETURNING *
), bumped AS (
    UPDATE annotations_workitem w SET active_leases = w.active_leases + 1
    FROM leased WHERE w.id = leased.item_id
    RETURNING w.*
)
SELECT {columns(Assignment, "leased")}, {columns(WorkItem, "bumped")}, {columns(Prompt, "p")}
FROM leased JOIN bumped ON bumped.id = leased.item_id
LEFT JOIN annotations_prompt p ON p.id = bumped.prompt_id
"""  # noqa: S608 (names from the models and the ORM's compiled SQL)
    constants.update({f"reusable{i}": str(state) for i, state in enumerate(REUSABLE_STATES)})
    return sql, constants


_LIVE_AND_OPEN_KINDS = f"""
SELECT (
    SELECT a.id FROM annotations_assignment a JOIN annotations_workitem w ON w.id = a.item_id
    WHERE a.labeler_id = %(labeler)s AND a.state = '{AssignmentState.LEASED}'
      AND a.expires_at > %(now)s AND w.project_id = %(project)s
      AND w.kind = ANY(%(kinds)s::text[])
    ORDER BY a.leased_at LIMIT 1
), ARRAY(
    SELECT k.kind FROM unnest(%(kinds)s::text[]) AS k(kind)
    WHERE EXISTS (SELECT 1 FROM annotations_workitem w
                  WHERE w.project_id = %(project)s AND w.kind = k.kind AND w.is_open)
)
"""  # noqa: S608 (a state name from the models)

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


_FIND_SQL = f"""
SELECT {columns(Assignment, "a")}, {columns(WorkItem, "w")}, {columns(Project, "pr")}
FROM annotations_assignment a JOIN annotations_workitem w ON w.id = a.item_id
JOIN annotations_project pr ON pr.id = w.project_id
WHERE a.token = %(token)s AND a.labeler_id = %(labeler)s
  AND (%(kind)s::text IS NULL OR w.kind = %(kind)s::text)
"""  # noqa: S608 (column lists from the models)

_DEMONSTRATION_CONTEXT_SQL = f"""
SELECT {columns(LabelSchema, "s")}, {columns(Demonstration, "d")}
FROM annotations_labelschema s
LEFT JOIN annotations_demonstration d ON d.prompt_id = %(prompt)s AND d.labeler_id = %(labeler)s
WHERE s.project_id = %(project)s
ORDER BY s.version DESC LIMIT 1
"""  # noqa: S608 (column lists from the models)


# A live lease becomes a submission and is counted on its item: `counted` has its item's row.
_COMPLETE = f"""done AS (
    UPDATE annotations_assignment SET state = '{AssignmentState.SUBMITTED}', finished_at = %(now)s
    WHERE id = %(assignment)s AND state = '{AssignmentState.LEASED}'
    RETURNING item_id
), counted AS (
    UPDATE annotations_workitem w SET done_count = w.done_count + 1,
        active_leases = w.active_leases - 1, is_open = w.done_count + 1 < w.required_labels
    FROM done WHERE w.id = done.item_id
    RETURNING w.id
)"""  # noqa: S608 (state names from the models)
_COMPLETE_SQL = f"WITH {_COMPLETE} SELECT count(*) FROM counted"  # noqa: S608


@cache
def _submit_sql() -> str:
    """Complete a live lease and count it on its item, store the prompt annotation and the
    demonstration (a draft becomes the submission, keeping its time on task), in one statement.
    Nothing comes back when the lease or the draft stopped being one: the caller rolls back."""
    annotation_names, annotation_exprs = insert_values(PromptAnnotation, {})
    demonstration_names, demonstration_exprs = insert_values(Demonstration, {})
    return f"""
WITH {_COMPLETE}, annotated AS (
    INSERT INTO annotations_promptannotation ({annotation_names})
    SELECT {annotation_exprs} FROM counted
    ON CONFLICT (prompt_id, labeler_id) DO UPDATE SET schema_version = EXCLUDED.schema_version,
        data = EXCLUDED.data, updated_at = EXCLUDED.updated_at
    RETURNING id
), written AS (
    INSERT INTO annotations_demonstration AS d ({demonstration_names})
    SELECT {demonstration_exprs} FROM counted
    ON CONFLICT (prompt_id, labeler_id) DO UPDATE SET text = EXCLUDED.text,
        state = EXCLUDED.state, time_spent_ms = d.time_spent_ms + EXCLUDED.time_spent_ms,
        submitted_at = EXCLUDED.submitted_at, updated_at = EXCLUDED.updated_at
    WHERE d.state = '{DemonstrationState.DRAFT}'
    RETURNING d.*
)
SELECT {columns(Demonstration, "written")} FROM written
"""  # noqa: S608 (names from the models)


@cache
def _ranking_sql() -> str:
    return f"""
SELECT {columns(ComparisonTask, "t")}, {columns(Prompt, "p")}, {columns(LabelSchema, "s")},
       {columns(Ranking, "r")}
FROM annotations_comparisontask t
JOIN annotations_prompt p ON p.id = t.prompt_id
LEFT JOIN annotations_ranking r ON r.task_id = t.id AND r.labeler_id = %(labeler)s
JOIN annotations_labelschema s ON s.project_id = t.project_id AND s.version = COALESCE(
    r.schema_version,
    (SELECT max(version) FROM annotations_labelschema WHERE project_id = t.project_id))
WHERE t.id = %(task)s
"""  # noqa: S608 (column lists from the models)


_LOCK_SQL = f"SELECT 1 FROM {get_user_model()._meta.db_table} WHERE id = %s FOR UPDATE"  # noqa: S608
_COMPLETIONS_SQL = (
    f"SELECT {columns(Completion, 'c')} FROM annotations_completion c "  # noqa: S608
    "WHERE c.comparison_id = %s ORDER BY c.position"
)


_TOKEN_SQL = f"""
SELECT {columns(get_user_model(), "u")}, t.created,
       ARRAY(SELECT g.name FROM auth_user_groups ug JOIN auth_group g ON g.id = ug.group_id
             WHERE ug.user_id = u.id)
FROM authtoken_token t JOIN {get_user_model()._meta.db_table} u ON u.id = t.user_id
WHERE t.key = %s
"""  # noqa: S608 (column lists from the models)
_PROJECT_SQL = f"SELECT {columns(Project, 'p')} FROM annotations_project p WHERE p.slug = %s"  # noqa: S608


class PostgresHotPath(PortableHotPath):
    """`PortableHotPath`'s operations as hand-written statements."""

    def token_user(self, *, key: str) -> tuple[Any, Token] | None:
        row = fetch_one(_TOKEN_SQL, [key])
        if row is None:
            return None
        user, end = instance(get_user_model(), row)
        roles_remember(user, row[end + 1])
        token = Token.from_db(
            connection.alias, ["key", "user_id", "created"], [key, user.pk, row[end]]
        )
        token.user = user
        return user, token

    def project_by_slug(self, *, slug: str) -> Project | None:
        row = fetch_one(_PROJECT_SQL, [slug])
        return None if row is None else instance(Project, row)[0]

    def labeler_lock(self, *, labeler_id: int) -> None:
        fetch_one(_LOCK_SQL, [labeler_id])

    def claim(
        self, *, labeler: User, project: Project, kinds: list[str], now: datetime, expires: datetime
    ) -> Claim | None:
        self.labeler_lock(labeler_id=labeler.pk)
        params: dict[str, Any] = {
            "labeler": labeler.pk,
            "project": project.pk,
            "kinds": kinds,
            "now": now,
        }
        live_id, open_kinds = fetch_one(_LIVE_AND_OPEN_KINDS, params)
        if live_id is not None:
            return Claim(assignment=_task_from_row(fetch_one(_TASK_SQL, [live_id])), resumed=True)
        sql, constants = _claim_sql()
        for kind in [k for k in kinds if k in open_kinds]:
            lease = Assignment(
                item_id=0,
                labeler_id=labeler.pk,
                state=AssignmentState.LEASED,
                leased_at=now,
                expires_at=expires,
            )
            row = fetch_one(
                sql,
                {**constants, **params_of(lease), "project": project.pk, "kind": kind},
            )
            if row is not None:
                return Claim(assignment=_task_from_row(row), resumed=False)
        return None

    def assignment_find(
        self, *, labeler_id: int, token: Any, kind: str | None = None
    ) -> Assignment | None:
        row = fetch_one(_FIND_SQL, {"token": token, "labeler": labeler_id, "kind": kind})
        if row is None:
            return None
        assignment, end = instance(Assignment, row)
        item, end = instance(WorkItem, row, end)
        item.project = instance(Project, row, end)[0]
        assignment.item = item
        return assignment

    def demonstration_context(
        self, *, assignment: Assignment
    ) -> tuple[LabelSchema, Demonstration | None]:
        row = fetch_one(
            _DEMONSTRATION_CONTEXT_SQL,
            {
                "project": assignment.item.project_id,
                "prompt": assignment.item.prompt_pk,
                "labeler": assignment.labeler_id,
            },
        )
        schema, end = instance(LabelSchema, row)
        return schema, instance(Demonstration, row, end)[0]

    def demonstration_submit_leased(self, *, write: DemonstrationWrite) -> Demonstration | None:
        if write.existing is not None and write.existing.state != DemonstrationState.DRAFT:
            return None
        prompt_id, labeler_id = write.assignment.item.prompt_pk, write.assignment.labeler_id
        annotation = PromptAnnotation(
            prompt_id=prompt_id,
            labeler_id=labeler_id,
            schema_version=write.schema_version,
            data=write.data,
        )
        demonstration = Demonstration(
            prompt_id=prompt_id,
            labeler_id=labeler_id,
            text=write.text,
            state=DemonstrationState.SUBMITTED,
            time_spent_ms=write.delta_ms,
            submitted_at=write.now,
        )
        # The two rows share some parameter names, with equal values (prompt, labeler, times).
        params = {**params_of(annotation), **params_of(demonstration)}
        params.update(assignment=write.assignment.pk, now=write.now)
        row = fetch_one(_submit_sql(), params)
        return None if row is None else instance(Demonstration, row)[0]

    def lease_complete(self, *, assignment: Assignment, now: datetime) -> bool:
        return bool(fetch_one(_COMPLETE_SQL, {"assignment": assignment.pk, "now": now})[0])

    def ranking_rows(self, *, assignment: Assignment) -> RankingRows:
        row = fetch_one(
            _ranking_sql(),
            {"task": assignment.item.comparison_pk, "labeler": assignment.labeler_id},
        )
        task, end = instance(ComparisonTask, row)
        task.prompt, end = instance(Prompt, row, end)
        schema, end = instance(LabelSchema, row, end)
        return RankingRows(task=task, schema=schema, ranking=instance(Ranking, row, end)[0])

    def completions(self, *, task: ComparisonTask) -> list[Completion]:
        with connection.cursor() as cursor:
            cursor.execute(_COMPLETIONS_SQL, [task.pk])
            return [instance(Completion, row)[0] for row in cursor.fetchall()]


POSTGRES = PostgresHotPath()
