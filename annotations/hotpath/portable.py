"""The hot paths through the ORM: the reference implementation of `HotPath`, and the one that
runs on SQLite. Callers hold a transaction; `labeler_lock` comes first in every write."""

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Case, F, Value, When
from rest_framework.authtoken.models import Token

from annotations.models import (
    Assignment,
    ComparisonTask,
    Completion,
    Demonstration,
    LabelSchema,
    Project,
    PromptAnnotation,
    Ranking,
    WorkItem,
)
from annotations.models.labels import DemonstrationState
from annotations.models.work import AssignmentState
from annotations.roles import user_roles
from annotations.users import User


@dataclass(frozen=True)
class Claim:
    assignment: Assignment
    resumed: bool


@dataclass(frozen=True)
class DemonstrationWrite:
    """A demonstration submit: the assignment, the labeler's draft (if any), the annotation in
    its stored shape under a schema version, the text and the time since the last save."""

    assignment: Assignment
    existing: Demonstration | None
    schema_version: int
    data: dict[str, Any]
    text: str
    delta_ms: int
    now: datetime


@dataclass(frozen=True)
class RankingRows:
    task: ComparisonTask  # with its prompt
    schema: LabelSchema  # the stored ranking's version, else the project's current one
    ranking: Ranking | None


class PortableHotPath:
    """Every hot-path operation, written with the ORM."""

    def token_user(self, *, key: str) -> tuple[Any, Token] | None:
        """The API token with this key and its user, the user's roles read (see
        `annotations.roles.user_roles`); None when there is no such token."""
        token = Token.objects.select_related("user").filter(key=key).first()
        if token is None:
            return None
        user_roles(token.user)
        return token.user, token

    def project_by_slug(self, *, slug: str) -> Project | None:
        return Project.objects.filter(slug=slug).first()

    def labeler_lock(self, *, labeler_id: int) -> None:
        """Lock the labeler's row until the transaction ends. Claims, submits, drafts and skips
        of one labeler take it first, so they run one at a time: two tabs never take two slots
        of one item, reads after the lock see what the other tab committed, and a claim and a
        late submit of one labeler never wait for each other's rows in opposite orders."""
        users = get_user_model().objects
        list(users.select_for_update().filter(pk=labeler_id).values_list("pk"))

    def claim(
        self, *, labeler: User, project: Project, kinds: list[str], now: datetime, expires: datetime
    ) -> Claim | None:
        """Lock the labeler; return a live lease of theirs in these kinds, else lease the next
        item of the first kind (in the given order) that has one for them."""
        self.labeler_lock(labeler_id=labeler.pk)
        live = (
            Assignment.objects.select_related("item", "item__prompt")
            .filter(
                labeler=labeler,
                state=AssignmentState.LEASED,
                expires_at__gt=now,
                item__project=project,
                item__kind__in=kinds,
            )
            .order_by("leased_at")
            .first()
        )
        if live is not None:
            return Claim(assignment=live, resumed=True)
        for kind in kinds:
            item = (
                WorkItem.objects.claimable_by(labeler_id=labeler.pk)
                .filter(project=project, kind=kind)
                .select_related("prompt")
                .select_for_update(skip_locked=True, of=("self",))
                .order_by("-priority", "id")
                .first()
            )
            if item is not None:
                return Claim(assignment=self._lease(item, labeler, now, expires), resumed=False)
        return None

    def _lease(self, item: WorkItem, labeler: User, now: datetime, expires: datetime) -> Assignment:
        """A new assignment row, or the labeler's expired or released row of the item reused:
        only such a row can exist, since the item was claimable by the labeler and the
        labeler's lock keeps their other writes out."""
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
            update_fields=[
                "state",
                "token",
                "leased_at",
                "expires_at",
                "finished_at",
                "skip_reason",
            ],
        )
        WorkItem.objects.filter(pk=item.pk).update(active_leases=F("active_leases") + 1)
        item.active_leases += 1
        return assignment

    def assignment_find(
        self, *, labeler_id: int, token: uuid.UUID, kind: str | None = None
    ) -> Assignment | None:
        """The labeler's own assignment with this token (of this kind), any state, with its
        item and the item's project."""
        found = Assignment.objects.select_related("item", "item__project").filter(
            token=token, labeler_id=labeler_id
        )
        if kind:
            found = found.filter(item__kind=kind)
        return found.first()

    def demonstration_context(
        self, *, assignment: Assignment
    ) -> tuple[LabelSchema, Demonstration | None]:
        """The project's current label schema and the labeler's demonstration of the prompt."""
        schema = LabelSchema.objects.filter(project_id=assignment.item.project_id).order_by(
            "-version"
        )[0]
        existing = Demonstration.objects.filter(
            prompt_id=assignment.item.prompt_pk, labeler_id=assignment.labeler_id
        ).first()
        return schema, existing

    def demonstration_submit_leased(self, *, write: DemonstrationWrite) -> Demonstration | None:
        """For a live lease: complete and count it, store the prompt annotation and the
        demonstration (a draft becomes the submission, keeping its time on task). None when the
        lease or the draft stopped being one meanwhile; the caller rolls back then."""
        if write.existing is not None and write.existing.state != DemonstrationState.DRAFT:
            return None
        if not self.lease_complete(assignment=write.assignment, now=write.now):
            return None
        return self.demonstration_store(write=write)

    def demonstration_store(self, *, write: DemonstrationWrite) -> Demonstration:
        """Store the prompt annotation and the submitted demonstration (from the draft, if any);
        the assignment is the caller's business."""
        prompt_id, labeler_id = write.assignment.item.prompt_pk, write.assignment.labeler_id
        PromptAnnotation.objects.bulk_create(
            [
                PromptAnnotation(
                    prompt_id=prompt_id,
                    labeler_id=labeler_id,
                    schema_version=write.schema_version,
                    data=write.data,
                )
            ],
            update_conflicts=True,
            unique_fields=["prompt", "labeler"],
            update_fields=["schema_version", "data", "updated_at"],
        )
        existing = write.existing
        if existing is None:
            return Demonstration.objects.create(
                prompt_id=prompt_id,
                labeler_id=labeler_id,
                text=write.text,
                state=DemonstrationState.SUBMITTED,
                time_spent_ms=write.delta_ms,
                submitted_at=write.now,
            )
        existing.text, existing.state = write.text, DemonstrationState.SUBMITTED
        existing.time_spent_ms += write.delta_ms
        existing.submitted_at = write.now
        existing.save(
            update_fields=["text", "state", "time_spent_ms", "submitted_at", "updated_at"]
        )
        return existing

    def lease_complete(self, *, assignment: Assignment, now: datetime) -> bool:
        """A live lease becomes a submission, counted on its item; False (nothing written) when
        the assignment is not leased."""
        if not Assignment.objects.filter(pk=assignment.pk, state=AssignmentState.LEASED).update(
            state=AssignmentState.SUBMITTED, finished_at=now
        ):
            return False
        self.item_count_done(item_id=assignment.item_id, released_lease=True)
        return True

    def item_count_done(
        self, *, item_id: int, released_lease: bool, room_only: bool = False
    ) -> int:
        """Count one label done on the item (and give back its lease); with room_only, only
        while the item has room (a late submit). How many rows it changed."""
        items = WorkItem.objects.filter(pk=item_id)
        if room_only:
            items = items.has_room()
        return items.update(
            done_count=F("done_count") + 1,
            active_leases=F("active_leases") - (1 if released_lease else 0),
            is_open=Case(
                When(done_count__lt=F("required_labels") - 1, then=Value(True)),
                default=Value(False),
            ),
        )

    def ranking_rows(self, *, assignment: Assignment) -> RankingRows:
        task = ComparisonTask.objects.select_related("prompt").get(pk=assignment.item.comparison_pk)
        ranking = Ranking.objects.filter(task=task, labeler_id=assignment.labeler_id).first()
        schemas = LabelSchema.objects.filter(project_id=task.project_id)
        schema = (
            schemas.get(version=ranking.schema_version)
            if ranking is not None
            else schemas.order_by("-version")[0]
        )
        return RankingRows(task=task, schema=schema, ranking=ranking)

    def completions(self, *, task: ComparisonTask) -> list[Completion]:
        """The comparison's outputs in their stored order."""
        return list(Completion.objects.filter(comparison=task).order_by("position"))
