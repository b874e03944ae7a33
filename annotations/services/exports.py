"""Dataset exports: immutable, versioned snapshots written by a job.

A snapshot is written into a staging folder under MEDIA_ROOT/exports/.staging/, renamed into
place only when every file, the manifest and the dataset card are complete, and only then
marked ready. A failed, cancelled or interrupted export removes its staging folder and is never
listed as ready, so nothing reads a half-written file.
"""

import json
import logging
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from annotations.errors import ApplicationError, ErrorCode
from annotations.exports.card import dataset_card
from annotations.exports.filters import FORMATS, ExportFilters
from annotations.exports.rows import CHUNK_SIZE, Row, rows_plan
from annotations.exports.writers import FileInfo, SplitFiles
from annotations.models import DatasetExport, Job, Project
from annotations.models.jobs import ExportKind, JobKind
from annotations.selectors.exports import prompt_flag_labels, prompt_flag_rates
from annotations.services.jobs import (
    code_version,
    job_create,
    job_mark_cancelled,
    job_progress,
    job_start,
    job_succeed,
)
from annotations.users import User

logger = logging.getLogger(__name__)
STAGING = ".staging"


def exports_root() -> Path:
    return Path(settings.MEDIA_ROOT) / "exports"


def export_create(
    *,
    project: Project,
    user: User | None,
    kind: str,
    format: str,
    filters: dict[str, Any],
    enqueue: bool = True,
) -> DatasetExport:
    """Validate the request and create the export row (version = the next one for its project
    and kind) with its job, in one transaction. With enqueue the job's task is queued after
    commit; without, the caller runs `export_run` itself (the management command).
    ApplicationError says what is wrong; then nothing is stored."""
    if kind not in ExportKind.values:
        raise ApplicationError(
            f"Unknown export kind {kind!r}; choose from {ExportKind.values}.",
            code=ErrorCode.INVALID_KIND,
        )
    if format not in FORMATS:
        raise ApplicationError(
            f"Unknown format {format!r}; choose from {list(FORMATS)}.",
            code=ErrorCode.INVALID_FORMAT,
        )
    parsed = ExportFilters.from_params(filters, kind=kind)
    with transaction.atomic():
        Project.objects.select_for_update().filter(pk=project.pk).first()  # serialise versions
        last = DatasetExport.objects.filter(project=project, kind=kind).aggregate(Max("version"))
        export = DatasetExport.objects.create(
            project=project,
            kind=kind,
            format=format,
            version=(last["version__max"] or 0) + 1,
            filters=parsed.as_params(),
            created_by=user if getattr(user, "is_authenticated", False) else None,
        )
        params = {"export_id": export.pk, "kind": kind, "format": format}
        if enqueue:
            job = job_create(
                kind=JobKind.EXPORT, project=project, user=export.created_by, params=params
            )
        else:
            job = Job.objects.create(
                kind=JobKind.EXPORT, project=project, created_by=export.created_by, params=params
            )
        export.job = job
        export.save(update_fields=["job"])
    return export


@dataclass
class _Counts:
    rows: Counter = field(default_factory=Counter)
    prompts: dict[tuple[str, str], set[int]] = field(default_factory=dict)
    prompt_splits: dict[int, str] = field(default_factory=dict)
    schema_versions: set[int] = field(default_factory=set)

    def add(self, rows: list[Row]) -> None:
        for row in rows:
            split, source, prompt_id = row["split"], row["source"], row["prompt_id"]
            self.rows[(split, source)] += 1
            if prompt_id is not None:
                self.prompts.setdefault((split, source), set()).add(prompt_id)
                self.prompt_splits[prompt_id] = split

    def as_dict(self) -> dict[str, Any]:
        rows: dict[str, dict[str, int]] = {}
        prompts: dict[str, dict[str, int]] = {}
        for (split, source), count in sorted(self.rows.items()):
            rows.setdefault(split, {})[source] = count
            prompts.setdefault(split, {})[source] = len(self.prompts.get((split, source), ()))
        return {"total_rows": sum(self.rows.values()), "rows": rows, "prompts": prompts}


def export_run(*, job_id: int) -> DatasetExport | None:
    """Write the export of this job. Idempotent: a finished job, or an export already ready,
    is left as it is. On success the folder is complete and the row ready; on cancel or error
    the staging folder is removed and the row stays not ready (errors propagate so the task
    marks the job failed). Returns the export when it is ready."""
    job = job_start(job_id=job_id)
    if job is None:
        return None
    export = DatasetExport.objects.select_related("project", "created_by").get(
        pk=job.params["export_id"]
    )
    if export.ready:
        job_succeed(job_id=job_id, result=_result(export), message="Already exported.")
        return export
    staging = _staging_folder(export)
    try:
        manifest = _write(export=export, job_id=job_id, folder=staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if manifest is None:
        shutil.rmtree(staging, ignore_errors=True)
        job_mark_cancelled(job_id=job_id, result={"export_id": export.pk})
        return None
    final = _final_folder(export)
    if final.exists():  # left by a crash between rename and commit; never marked ready
        shutil.rmtree(final)
    staging.rename(final)
    try:
        with transaction.atomic():
            export.directory = str(final)
            export.manifest = manifest
            export.row_count = manifest["counts"]["total_rows"]
            export.ready = True
            export.save(update_fields=["directory", "manifest", "row_count", "ready"])
    except BaseException:
        shutil.rmtree(final, ignore_errors=True)
        raise
    job_succeed(
        job_id=job_id,
        result=_result(export),
        message=f"Exported {export.row_count} rows ({export.get_kind_display()} "
        f"v{export.version}).",
    )
    return export


def _result(export: DatasetExport) -> dict[str, Any]:
    return {
        "export_id": export.pk,
        "version": export.version,
        "rows": export.row_count,
        "files": ", ".join(f["name"] for f in export.manifest.get("files", [])),
    }


def _staging_folder(export: DatasetExport) -> Path:
    folder = exports_root() / STAGING / f"export-{export.pk}"
    shutil.rmtree(folder, ignore_errors=True)  # a previous attempt that died mid-write
    folder.mkdir(parents=True)
    return folder


def _final_folder(export: DatasetExport) -> Path:
    folder = exports_root() / export.project.slug / f"{export.kind}-v{export.version}"
    folder.parent.mkdir(parents=True, exist_ok=True)
    return folder


def _write(*, export: DatasetExport, job_id: int, folder: Path) -> dict[str, Any] | None:
    """Every file, then manifest.json and README.md; None when a cancel was requested."""
    filters = ExportFilters.from_params(export.filters, kind=export.kind)
    plan = rows_plan(
        kind=export.kind, project=export.project, filters=filters, chunk_size=CHUNK_SIZE
    )
    label = export.get_kind_display()
    if job_progress(job_id=job_id, done=0, total=plan.total, message=f"Exporting {label}."):
        return None
    files = SplitFiles(folder, fmt=export.format, schema=plan.schema)
    counts = _Counts()
    done = 0
    try:
        for batch in plan.batches:
            files.write(batch.rows)
            counts.add(batch.rows)
            counts.schema_versions |= batch.schema_versions
            done += batch.units
            if job_progress(job_id=job_id, done=done, message=f"Exporting {label}: {done} read."):
                files.abort()
                return None
        infos = files.close()
    except BaseException:
        files.abort()
        raise
    manifest = _manifest(export=export, counts=counts, infos=infos, fields=plan.schema.names)
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False))
    card = dataset_card(manifest=manifest, flag_labels=prompt_flag_labels(project=export.project))
    (folder / "README.md").write_text(card)
    return manifest


def _manifest(
    *, export: DatasetExport, counts: _Counts, infos: list[FileInfo], fields: list[str]
) -> dict[str, Any]:
    rates, annotation_versions = prompt_flag_rates(
        project=export.project, prompt_splits=counts.prompt_splits
    )
    return {
        "project": export.project.slug,
        "project_name": export.project.name,
        "kind": export.kind,
        "format": export.format,
        "version": export.version,
        "filters": export.filters,
        "fields": fields,
        "counts": counts.as_dict(),
        "annotation_rates": rates,
        "label_schema_versions": sorted(counts.schema_versions | annotation_versions),
        "code_version": code_version(),
        "created_at": timezone.now().isoformat(),
        "created_by": export.created_by.get_username() if export.created_by else None,
        "files": [info.as_dict() for info in infos],
    }


def export_delete(*, export: DatasetExport) -> None:
    """Remove the snapshot: its row, then its folder (after commit). Refused while its job is
    still running: cancel the job first."""
    if not export.ready and export.job is not None and not export.job.is_finished:
        raise ApplicationError(
            f"Export v{export.version} is still being written; cancel its job first.",
            code=ErrorCode.EXPORT_RUNNING,
        )
    directory = Path(export.directory) if export.directory else None
    root = exports_root().resolve()
    with transaction.atomic():
        DatasetExport.objects.filter(pk=export.pk).delete()
        if directory is not None and root in directory.resolve().parents:
            transaction.on_commit(lambda: shutil.rmtree(directory, ignore_errors=True))
