"""Models that produce outputs, the outputs, and the comparison tasks that group K of them."""

from django.db import models

from annotations.models.projects import Project


class ModelKind(models.TextChoices):
    POLICY = "policy", "Policy (causal LM)"
    REWARD = "reward", "Reward model"


class ModelVersion(models.Model):
    """A policy or reward model: where its weights are, what it came from, which job made it."""

    name = models.CharField(
        max_length=200, unique=True, help_text="The id the inference service serves it under."
    )
    kind = models.CharField(max_length=10, choices=ModelKind.choices, default=ModelKind.POLICY)
    path = models.CharField(max_length=500, blank=True, help_text="Local Hugging Face directory.")
    hub_id = models.CharField(max_length=300, blank=True)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children"
    )
    job = models.ForeignKey(
        "annotations.Job",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="model_versions",
    )
    metrics = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name


class ComparisonTask(models.Model):
    """A prompt (or conversation prefix) with K completions to rate and rank."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="comparisons")
    prompt = models.ForeignKey(
        "annotations.Prompt", on_delete=models.CASCADE, related_name="comparisons"
    )
    conversation = models.ForeignKey(
        "annotations.Conversation",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
    )
    context = models.JSONField(
        null=True, blank=True, help_text="Chat comparisons: the messages before the ranked reply."
    )
    job = models.ForeignKey(
        "annotations.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["prompt", "job"],
                name="comparison_once_per_job",
                condition=models.Q(job__isnull=False, conversation__isnull=True),
            )
        ]

    def __str__(self) -> str:
        return f"comparison {self.pk} of prompt {self.prompt_id}"


class Completion(models.Model):
    """One sampled output, with everything needed to sample it again."""

    comparison = models.ForeignKey(
        ComparisonTask, null=True, blank=True, on_delete=models.CASCADE, related_name="completions"
    )
    prompt = models.ForeignKey(
        "annotations.Prompt", on_delete=models.CASCADE, related_name="completions"
    )
    model_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="completions"
    )
    model_name = models.CharField(max_length=200)
    text = models.TextField()
    params = models.JSONField(default=dict, blank=True)
    seed = models.BigIntegerField(null=True, blank=True)
    finish_reason = models.CharField(max_length=20, blank=True)
    position = models.PositiveSmallIntegerField(default=0, help_text="Index within its comparison.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["comparison", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["comparison", "position"],
                name="completion_position_unique",
                condition=models.Q(comparison__isnull=False),
            )
        ]

    def __str__(self) -> str:
        return f"{self.model_name}: {self.text[:40]}"
