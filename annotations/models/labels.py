"""What labelers produce: prompt annotations, demonstrations, rankings and conversations."""

from django.conf import settings
from django.db import models

from annotations.models.projects import Project


class PromptAnnotation(models.Model):
    """One labeler's per-prompt answers: category, prompt flags, PII and its sub-fields."""

    prompt = models.ForeignKey(
        "annotations.Prompt", on_delete=models.CASCADE, related_name="annotations"
    )
    labeler = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    schema_version = models.PositiveIntegerField()
    data = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["prompt", "labeler"], name="prompt_annotation_once")
        ]

    def __str__(self) -> str:
        return f"annotation of prompt {self.prompt_id} by {self.labeler_id}"


class DemonstrationState(models.TextChoices):
    DRAFT = "draft", "Draft"
    SUBMITTED = "submitted", "Submitted"
    ACCEPTED = "accepted", "Accepted"
    REJECTED = "rejected", "Rejected"


class Demonstration(models.Model):
    prompt = models.ForeignKey(
        "annotations.Prompt", on_delete=models.CASCADE, related_name="demonstrations"
    )
    labeler = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="demonstrations"
    )
    text = models.TextField(blank=True)
    state = models.CharField(
        max_length=10, choices=DemonstrationState.choices, default=DemonstrationState.DRAFT
    )
    time_spent_ms = models.PositiveBigIntegerField(default=0)
    original_text = models.TextField(
        blank=True, help_text="The labeler's text before a reviewer edited it."
    )
    review_comment = models.TextField(blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["prompt", "labeler"], name="demonstration_once")
        ]
        indexes = [models.Index(fields=["labeler", "state"], name="demonstration_labeler_state")]

    def __str__(self) -> str:
        return f"demonstration of prompt {self.prompt_id} by {self.labeler_id} ({self.state})"


class RankingState(models.TextChoices):
    DRAFT = "draft", "Draft"
    SUBMITTED = "submitted", "Submitted"


class Ranking(models.Model):
    """One labeler's answer to a comparison task.

    groups: completion ids best-first, one list per rank; several ids in a list are a tie.
    shown_order: the completion ids in the order this labeler saw them.
    ratings: {completion_id: {"likert": int, "fields": {key: "yes"|"no"|"na"}, "notes": str}}.
    """

    task = models.ForeignKey(
        "annotations.ComparisonTask", on_delete=models.CASCADE, related_name="rankings"
    )
    labeler = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="rankings"
    )
    schema_version = models.PositiveIntegerField()
    state = models.CharField(
        max_length=10, choices=RankingState.choices, default=RankingState.DRAFT
    )
    groups = models.JSONField(default=list)
    shown_order = models.JSONField(default=list)
    ratings = models.JSONField(default=dict)
    none_acceptable = models.BooleanField(default=False)
    notes = models.TextField(blank=True)
    time_spent_ms = models.PositiveBigIntegerField(default=0)
    submitted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["task", "labeler"], name="ranking_once")]
        indexes = [models.Index(fields=["task", "state"], name="ranking_task_state")]

    def __str__(self) -> str:
        return f"ranking of task {self.task_id} by {self.labeler_id} ({self.state})"


class Conversation(models.Model):
    """A chat written by one labeler playing both the user and the assistant."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="conversations")
    labeler = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="conversations"
    )
    seed_prompt = models.ForeignKey(
        "annotations.Prompt", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    state = models.CharField(max_length=10, choices=DemonstrationState.choices, default="draft")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"conversation {self.pk} by {self.labeler_id}"


class TurnRole(models.TextChoices):
    SYSTEM = "system", "System"
    USER = "user", "User"
    ASSISTANT = "assistant", "Assistant"


class Turn(models.Model):
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="turns")
    index = models.PositiveIntegerField()
    role = models.CharField(max_length=10, choices=TurnRole.choices)
    text = models.TextField()
    suggestions = models.JSONField(
        default=list, blank=True, help_text="Model suggestions shown while writing this turn."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["conversation", "index"]
        constraints = [
            models.UniqueConstraint(fields=["conversation", "index"], name="turn_index_unique")
        ]

    def __str__(self) -> str:
        return f"{self.conversation_id}#{self.index} {self.role}"
