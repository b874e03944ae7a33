"""Prompts: the inputs every kind of work starts from."""

from django.conf import settings
from django.db import models

from annotations.label_schema import CATEGORIES
from annotations.models.projects import Project, Split


class PromptSource(models.TextChoices):
    LABELER = "labeler", "Written by a labeler"
    CUSTOMER = "customer", "Sent by a customer"


class PromptKind(models.TextChoices):
    PLAIN = "plain", "Plain"
    FEW_SHOT = "few_shot", "Few-shot"
    USER_BASED = "user_based", "User-based"


class Prompt(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="prompts")
    text = models.TextField()
    messages = models.JSONField(
        null=True,
        blank=True,
        help_text="Chat prompts: [{role, content}, ...]; text is the last turn.",
    )
    source = models.CharField(max_length=10, choices=PromptSource.choices)
    kind = models.CharField(max_length=12, choices=PromptKind.choices, default=PromptKind.PLAIN)
    few_shot = models.JSONField(
        null=True,
        blank=True,
        help_text="Few-shot prompts: {instruction, pairs: [{query, response}]}; "
        "each pair is a training example with the others as context.",
    )
    use_case = models.TextField(blank=True, help_text="User-based prompts: the stated use case.")
    customer_id = models.CharField(max_length=200)
    external_id = models.CharField(max_length=200, blank=True)
    category = models.CharField(max_length=20, choices=CATEGORIES, blank=True)
    split = models.CharField(max_length=8, choices=Split.choices)
    pii = models.BooleanField(default=False)
    pii_kinds = models.JSONField(default=list, blank=True)
    token_count = models.PositiveIntegerField(default=0)
    dedup_key = models.CharField(max_length=40)
    metadata = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    import_job = models.ForeignKey(
        "annotations.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "dedup_key"], name="prompt_dedup_unique")
        ]
        indexes = [
            models.Index(fields=["project", "split", "category"], name="prompt_split_category"),
            models.Index(fields=["project", "customer_id"], name="prompt_customer"),
        ]

    def __str__(self) -> str:
        return self.text[:60]
