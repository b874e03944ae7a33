"""Long work (imports, generation, exports, training) kept in job rows, not in the broker."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from annotations.models.projects import Project


class JobKind(models.TextChoices):
    IMPORT_PROMPTS = "import_prompts", "Prompt import"
    GENERATION = "generation", "Generation"
    EXPORT = "export", "Dataset export"
    SFT = "sft", "SFT training"
    REWARD = "reward", "Reward-model training"
    PPO = "ppo", "PPO-ptx training"
    RLOO = "rloo", "RLOO training"
    EVALUATION = "evaluation", "Evaluation"


class JobState(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


FINISHED_STATES = (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)
TRAINING_KINDS = (JobKind.SFT, JobKind.REWARD, JobKind.PPO, JobKind.RLOO)


class Job(models.Model):
    kind = models.CharField(max_length=20, choices=JobKind.choices)
    project = models.ForeignKey(
        Project, null=True, blank=True, on_delete=models.CASCADE, related_name="jobs"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    state = models.CharField(max_length=10, choices=JobState.choices, default=JobState.QUEUED)
    params = models.JSONField(default=dict, blank=True)
    progress_done = models.BigIntegerField(default=0)
    progress_total = models.BigIntegerField(default=0)
    message = models.TextField(blank=True, help_text="What is happening now, or why it failed.")
    result = models.JSONField(default=dict, blank=True)
    log_tail = models.TextField(blank=True)
    cancel_requested = models.BooleanField(default=False)
    attempts = models.PositiveIntegerField(default=0)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    checkpoint_path = models.CharField(max_length=500, blank=True)
    code_version = models.CharField(max_length=64, blank=True)
    seed = models.BigIntegerField(null=True, blank=True)
    dataset = models.ForeignKey(
        "annotations.DatasetExport",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(
                fields=["heartbeat_at"], name="job_running_heartbeat", condition=Q(state="running")
            ),
            models.Index(fields=["kind", "state"], name="job_kind_state"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk}"

    @property
    def is_finished(self) -> bool:
        return self.state in FINISHED_STATES

    @property
    def is_training(self) -> bool:
        return self.kind in TRAINING_KINDS

    @property
    def percent(self) -> int:
        if self.state == JobState.SUCCEEDED:
            return 100
        if not self.progress_total:
            return 0
        return min(100, int(100 * self.progress_done / self.progress_total))


class JobMetric(models.Model):
    """Metrics a job reports at one step (loss, accuracy, reward, KL, ...)."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="metrics")
    step = models.PositiveIntegerField()
    values = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["job", "step"]
        constraints = [
            models.UniqueConstraint(fields=["job", "step"], name="job_metric_step_unique")
        ]

    def __str__(self) -> str:
        return f"{self.job_id} step {self.step}"


class ExportKind(models.TextChoices):
    SFT = "sft", "SFT (prompt/completion)"
    RM_PAIRS = "rm_pairs", "RM pairs (prompt/chosen/rejected)"
    RM_RANKINGS = "rm_rankings", "RM rankings (K-way)"
    PPO_PROMPTS = "ppo_prompts", "PPO prompts"
    EVALUATION = "evaluation", "Evaluation set"


class DatasetExport(models.Model):
    """An immutable, versioned snapshot of a dataset: files, manifest and dataset card."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="exports")
    kind = models.CharField(max_length=12, choices=ExportKind.choices)
    format = models.CharField(max_length=12, default="jsonl")
    version = models.PositiveIntegerField()
    filters = models.JSONField(default=dict, blank=True)
    manifest = models.JSONField(default=dict, blank=True)
    directory = models.CharField(max_length=500, blank=True)
    row_count = models.BigIntegerField(default=0)
    ready = models.BooleanField(default=False)
    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "kind", "version"], name="export_version_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.project_id} {self.kind} v{self.version}"
