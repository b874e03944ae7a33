"""Projects, their versioned label schemas, and where each customer's prompts go."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from annotations.label_schema import default_schema_config

K_LIMITS = (4, 9)  # InstructGPT samples K = 4..9 outputs per prompt


class Split(models.TextChoices):
    TRAIN = "train", "Train"
    VALID = "valid", "Valid"
    TEST = "test", "Test"


class WorkKind(models.TextChoices):
    DEMONSTRATION = "demonstration", "Write a demonstration"
    PROMPT_WRITING = "prompt_writing", "Write prompts"
    PROMPT_ANNOTATION = "prompt_annotation", "Annotate a prompt"
    RANKING = "ranking", "Rate and rank outputs"
    CHAT = "chat", "Write a conversation"


def default_work_priorities() -> dict[str, int]:
    return {
        WorkKind.RANKING: 50,
        WorkKind.DEMONSTRATION: 40,
        WorkKind.CHAT: 30,
        WorkKind.PROMPT_ANNOTATION: 20,
        WorkKind.PROMPT_WRITING: 10,
    }


class Project(models.Model):
    name = models.CharField(max_length=200, unique=True)
    slug = models.SlugField(max_length=100, unique=True)
    guidelines = models.TextField(blank=True, help_text="Markdown, shown to labelers.")
    k_min = models.PositiveSmallIntegerField(default=4)
    k_max = models.PositiveSmallIntegerField(default=9)
    labelers_per_item = models.PositiveSmallIntegerField(default=1)
    lease_minutes = models.PositiveIntegerField(default=30)
    revision_window_minutes = models.PositiveIntegerField(default=60)
    split_train = models.FloatField(default=0.8)
    split_valid = models.FloatField(default=0.1)
    split_test = models.FloatField(default=0.1)
    max_prompts_per_customer = models.PositiveIntegerField(default=200)
    dedup_prefix_chars = models.PositiveIntegerField(
        default=100,
        help_text="Prompts sharing this many normalised leading characters are duplicates.",
    )
    max_prompt_tokens = models.PositiveIntegerField(default=1000)
    max_prompt_chars = models.PositiveIntegerField(default=20000)
    max_demonstration_chars = models.PositiveIntegerField(default=8000)
    remove_pii_from_train = models.BooleanField(default=True)
    work_priorities = models.JSONField(default=default_work_priorities)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(k_min__gte=K_LIMITS[0])
                & Q(k_max__lte=K_LIMITS[1])
                & Q(k_min__lte=models.F("k_max")),
                name="project_k_range",
            ),
            models.CheckConstraint(
                condition=Q(labelers_per_item__gte=1), name="project_labelers_per_item"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if not (K_LIMITS[0] <= self.k_min <= self.k_max <= K_LIMITS[1]):
            errors["k_min"] = (
                f"K must satisfy {K_LIMITS[0]} <= k_min <= k_max <= {K_LIMITS[1]}; "
                f"got {self.k_min}..{self.k_max}."
            )
        ratios = (self.split_train, self.split_valid, self.split_test)
        if any(r < 0 for r in ratios) or abs(sum(ratios) - 1.0) > 1e-6:
            errors["split_train"] = (
                "Split ratios must be non-negative and add up to 1 "
                f"(train {self.split_train} + valid {self.split_valid} + test {self.split_test})."
            )
        if errors:
            raise ValidationError(errors)

    @property
    def split_ratios(self) -> list[tuple[str, float]]:
        return [
            (Split.TRAIN, self.split_train),
            (Split.VALID, self.split_valid),
            (Split.TEST, self.split_test),
        ]


class LabelSchema(models.Model):
    """One version of a project's labels. Versions are never edited; a change is a new version."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="schemas")
    version = models.PositiveIntegerField()
    config = models.JSONField(default=default_schema_config)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["project", "version"], name="schema_version_unique")
        ]

    def __str__(self) -> str:
        return f"{self.project} schema v{self.version}"


class CustomerSplit(models.Model):
    """The split a customer's prompts go to, fixed the first time the customer is seen."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="customer_splits")
    customer_id = models.CharField(max_length=200)
    split = models.CharField(max_length=8, choices=Split.choices)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "customer_id"], name="customer_split_unique")
        ]

    def __str__(self) -> str:
        return f"{self.customer_id} -> {self.split}"
