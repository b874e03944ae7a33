from typing import Any

from django.db.models import QuerySet

from annotations.models import DatasetExport, Job, JobMetric, ModelVersion, Project
from annotations.models.jobs import TRAINING_KINDS, ExportKind, JobKind
from annotations.models.outputs import ModelKind
from annotations.services.training import DATA_KIND


def training_jobs(*, project: Project | None = None) -> QuerySet[Job]:
    jobs = Job.objects.filter(kind__in=TRAINING_KINDS).select_related(
        "project", "created_by", "dataset"
    )
    return jobs.filter(project=project) if project else jobs


def _export_choice(export: DatasetExport) -> tuple[str, str]:
    return (
        str(export.pk),
        f"v{export.version} {export.get_kind_display()} "
        f"({export.row_count} rows, {export.created_at:%Y-%m-%d})",
    )


def training_form_choices(*, project: Project, kind: str) -> dict[str, list]:
    exports = DatasetExport.objects.filter(project=project, ready=True).order_by("-version")
    versions = ModelVersion.objects.order_by("-created_at", "name")
    none = [("", "—")]
    return {
        "dataset": [_export_choice(e) for e in exports if e.kind == DATA_KIND[JobKind(kind)]],
        "demonstrations": none + [_export_choice(e) for e in exports if e.kind == ExportKind.SFT],
        "pretrain": none + [_export_choice(e) for e in exports if e.kind == ExportKind.SFT],
        "base_model": [(v.name, f"{v.name} ({v.get_kind_display()})") for v in versions],
        "reward_model": [(v.name, v.name) for v in versions if v.kind == ModelKind.REWARD],
    }


def job_metrics_series(*, job: Job) -> dict[str, Any]:
    """{"steps": [...], "series": {metric: [...]}} for the charts, in one query."""
    rows = list(JobMetric.objects.filter(job=job).order_by("step").values_list("step", "values"))
    names = sorted(
        {
            key
            for _, values in rows
            for key, value in values.items()
            if isinstance(value, int | float)
        }
    )
    return {
        "steps": [step for step, _ in rows],
        "series": {name: [values.get(name) for _, values in rows] for name in names},
    }


def job_samples(*, job: Job, steps: int = 5) -> list[dict[str, Any]]:
    """The tables of sample generations of the last `steps` steps that logged one, newest first:
    [{"step", "rows": [{"prompt", "response", "reward", "ended"}]}]."""
    rows = (
        JobMetric.objects.filter(job=job, values__has_key="samples")
        .order_by("-step")
        .values_list("step", "values__samples")[:steps]
    )
    return [{"step": step, "rows": samples} for step, samples in rows]
