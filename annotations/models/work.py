"""The work queue: one mechanism hands out every kind of work (see services/queue.py)."""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from annotations.models.projects import Project, WorkKind

# The one eligibility rule of the queue: an item takes one more labeler while the labels done
# and the leases held stay below the labels it needs. The counters live on the item row, so a
# claimer that waited for the row re-checks the rule against the values it finds.
HAS_ROOM = Q(done_count__lt=models.F("required_labels") - models.F("active_leases"))


class WorkItemQuerySet(models.QuerySet["WorkItem"]):
    def has_room(self) -> "WorkItemQuerySet":
        return self.filter(HAS_ROOM)

    def claimable_by(self, *, labeler_id: int) -> "WorkItemQuerySet":
        """Open items with room that this labeler has not done, skipped or held (a lease that
        expired but has not been returned yet still counts as held)."""
        taken = Assignment.objects.filter(labeler_id=labeler_id, state__in=TAKEN_STATES).values(
            "item_id"
        )
        return self.has_room().filter(is_open=True).exclude(pk__in=taken)


class WorkItem(models.Model):
    """One unit of work that `required_labels` distinct labelers each do once."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="work_items")
    kind = models.CharField(max_length=20, choices=WorkKind.choices)
    prompt = models.ForeignKey(
        "annotations.Prompt", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    comparison = models.ForeignKey(
        "annotations.ComparisonTask",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="work_items",
    )
    priority = models.IntegerField(default=0)
    required_labels = models.PositiveSmallIntegerField(default=1)
    done_count = models.PositiveSmallIntegerField(default=0)
    active_leases = models.PositiveSmallIntegerField(default=0)
    is_open = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = WorkItemQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(
                fields=["project", "kind", "-priority", "id"],
                name="workitem_open_queue",
                condition=Q(is_open=True),
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(done_count__lte=models.F("required_labels")),
                name="workitem_done_le_required",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk}"

    @property
    def prompt_pk(self) -> int:
        """The item's prompt, for the kinds of work that always have one."""
        if self.prompt_id is None:
            raise ValueError(f"Work item {self.pk} ({self.kind}) has no prompt.")
        return self.prompt_id

    @property
    def comparison_pk(self) -> int:
        """The item's comparison task, for ranking work."""
        if self.comparison_id is None:
            raise ValueError(f"Work item {self.pk} ({self.kind}) has no comparison.")
        return self.comparison_id


class AssignmentState(models.TextChoices):
    LEASED = "leased", "Leased"
    SUBMITTED = "submitted", "Submitted"
    SKIPPED = "skipped", "Skipped"
    EXPIRED = "expired", "Expired"
    RELEASED = "released", "Released by an admin"


# The item is not offered to this labeler again while their assignment is in one of these states.
TAKEN_STATES = (AssignmentState.SUBMITTED, AssignmentState.SKIPPED, AssignmentState.LEASED)
# A new claim of the same item may reuse an assignment row in one of these states.
REUSABLE_STATES = (AssignmentState.EXPIRED, AssignmentState.RELEASED)


class Assignment(models.Model):
    """A labeler's lease on a work item, and afterwards the record of what became of it."""

    item = models.ForeignKey(WorkItem, on_delete=models.CASCADE, related_name="assignments")
    labeler = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assignments"
    )
    token = models.UUIDField(default=uuid.uuid4, unique=True)
    state = models.CharField(
        max_length=10, choices=AssignmentState.choices, default=AssignmentState.LEASED
    )
    leased_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    skip_reason = models.TextField(blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["item", "labeler"], name="assignment_once_per_labeler")
        ]
        indexes = [
            models.Index(
                fields=["expires_at"],
                name="assignment_live_leases",
                condition=Q(state="leased"),
            ),
            models.Index(fields=["labeler", "state"], name="assignment_labeler_state"),
        ]

    def __str__(self) -> str:
        return f"{self.item_id} -> {self.labeler_id} ({self.state})"
