"""Prompt intake: file imports (as jobs, or directly from a shell) and single prompts."""

import gzip
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, cast

from django.conf import settings
from django.db import transaction

from annotations.errors import ApplicationError, ErrorCode
from annotations.intake.pipeline import IntakeReport, PromptIntake
from annotations.intake.rows import FORMATS, PromptRow, RowError, check_row, iter_raw_rows
from annotations.models import Job, Project, Prompt
from annotations.models.jobs import JobKind
from annotations.services.jobs import job_create, job_fail, job_progress, job_start, job_succeed
from annotations.users import User

CHUNK_ROWS = 2000
IMPORT_STARTS = "Importing all rows in one transaction"
Progress = Callable[[int, str], bool]  # (bytes read, phase) -> cancel requested


class ImportCancelled(Exception):
    pass


def _imports_dir() -> Path:
    path = Path(settings.MEDIA_ROOT) / "imports"
    path.mkdir(parents=True, exist_ok=True)
    return path


def prompt_upload_store(*, upload: Any) -> Path:
    """Copy an uploaded file to the imports folder in chunks (never whole in memory)."""
    if upload.size > settings.LABELAPP_MAX_UPLOAD_BYTES:
        raise ApplicationError(
            f"The file is {upload.size:,} bytes; the limit is "
            f"{settings.LABELAPP_MAX_UPLOAD_BYTES:,}. Split it into smaller files.",
            code=ErrorCode.FILE_TOO_LARGE,
        )
    suffix = ".gz" if upload.name.lower().endswith(".gz") else ""
    path = _imports_dir() / f"{uuid.uuid4().hex}{suffix}"
    with path.open("wb") as out:
        for chunk in upload.chunks():
            out.write(chunk)
    return path


def _check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise ApplicationError(
            f"Unknown file format {fmt!r}; use one of {', '.join(FORMATS)} "
            "(or name the file .jsonl or .csv).",
            code=ErrorCode.UNKNOWN_FORMAT,
        )
    return fmt


def prompt_import_start(
    *, project: Project, user: User, path: Path, filename: str, fmt: str, skip_invalid: bool
) -> Job:
    """Queue an import job for a stored file. The import itself runs in a worker."""
    _check_format(fmt)
    return job_create(
        kind=JobKind.IMPORT_PROMPTS,
        project=project,
        user=user,
        params={
            "path": str(path),
            "filename": filename,
            "format": fmt,
            "skip_invalid": skip_invalid,
            "size": path.stat().st_size,
        },
    )


@contextmanager
def _open(path: Path) -> Iterator[tuple[IO[bytes], IO[bytes]]]:
    """(stream to read rows from, raw file whose position tells progress)."""
    with path.open("rb") as raw:
        if path.suffix == ".gz":
            with gzip.open(raw, "rb") as unzipped:
                yield cast(IO[bytes], unzipped), raw
        else:
            yield raw, raw


def _valid_rows(
    path: Path, fmt: str, report: IntakeReport, progress: Progress | None, phase: str
) -> Iterator[PromptRow]:
    with _open(path) as (stream, raw):
        for count, (line, value, problem) in enumerate(iter_raw_rows(stream, fmt), start=1):
            if count % CHUNK_ROWS == 0 and progress and progress(raw.tell(), phase):
                raise ImportCancelled
            report.rows += 1
            if value is None:  # not an object: `problem` says why
                report.error(line, f"Line {line} {problem}.")
                continue
            checked = check_row(line, value)
            if isinstance(checked, RowError):
                report.error(line, f"Line {line}: {checked.message}.")
                continue
            yield checked


def prompt_import_file(
    *,
    project: Project,
    path: Path,
    fmt: str,
    skip_invalid: bool,
    user: User | None = None,
    import_job: Job | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Import a JSONL or CSV file of prompts; return the report.

    All or nothing: the prompts are stored in one transaction. A file with invalid rows imports
    nothing (ApplicationError carrying the report) unless skip_invalid is set, in which case the
    invalid rows are reported and the rest imported.
    """
    _check_format(fmt)
    if not skip_invalid:
        checking = IntakeReport()
        for _ in _valid_rows(path, fmt, checking, progress, "Checking rows"):
            pass
        if checking.invalid:
            raise ApplicationError(
                f"{checking.invalid} of {checking.rows} rows are not valid; nothing was imported. "
                "Fix them, or import again choosing to skip invalid rows.",
                code=ErrorCode.INVALID_ROWS,
                details={"report": checking.as_dict()},
            )
        if checking.rows == 0:
            raise ApplicationError(
                "The file holds no prompts; each row needs at least 'text' and 'customer_id'.",
                code=ErrorCode.EMPTY_FILE,
                details={"report": checking.as_dict()},
            )
    if progress is not None:
        progress(0, IMPORT_STARTS)
    with transaction.atomic():
        locked = Project.objects.select_for_update().get(pk=project.pk)
        intake = PromptIntake(project=locked, created_by=user, import_job=import_job)
        chunk: list[PromptRow] = []
        for row in _valid_rows(path, fmt, intake.report, progress, "Importing"):
            chunk.append(row)
            if len(chunk) >= CHUNK_ROWS:
                intake.add(chunk)
                chunk = []
        if chunk:
            intake.add(chunk)
    return intake.report.as_dict()


def prompt_import_run(*, job_id: int) -> None:
    """Run a queued import job (called by the worker). Safe to call twice: a finished job is left
    alone, and a rerun after a crash starts from nothing since the import is one transaction."""
    job = job_start(job_id=job_id)
    if job is None:
        return
    params = job.params
    size = max(int(params.get("size") or 0), 1)
    passes = 1 if params["skip_invalid"] else 2

    def progress(done: int, phase: str) -> bool:
        if phase == "Importing":
            # Inside the all-or-nothing transaction: writing the job row would hold its lock
            # (a cancel request would wait) and stay invisible until commit. Only read the flag.
            return Job.objects.filter(pk=job_id, cancel_requested=True).exists()
        if phase == IMPORT_STARTS:
            done = size * (passes - 1)  # the checking pass is done; the import shows at once
        return job_progress(job_id=job_id, done=done, total=size * passes, message=phase)

    assert job.project is not None, "an import job belongs to a project"
    try:
        report = prompt_import_file(
            project=job.project,
            path=Path(params["path"]),
            fmt=params["format"],
            skip_invalid=params["skip_invalid"],
            user=job.created_by,
            import_job=job,
            progress=progress,
        )
    except ImportCancelled:
        from annotations.services.jobs import job_mark_cancelled

        job_mark_cancelled(job_id=job_id)
        return
    except ApplicationError as exc:
        job_fail(job_id=job_id, message=exc.message, result=exc.details.get("report"))
        return
    except FileNotFoundError:
        job_fail(job_id=job_id, message="The uploaded file is gone; upload it again.")
        return
    job_succeed(
        job_id=job_id,
        result=report,
        message=f"Imported {report['imported']} of {report['rows']} rows.",
    )


def prompt_create(
    *,
    project: Project,
    user: User,
    text: str,
    customer_id: str,
    source: str = "customer",
    category: str = "",
    extra: dict[str, Any] | None = None,
) -> Prompt:
    """Store one prompt through the same filters as imports. Raises ApplicationError saying which
    filter refused it; then nothing is stored."""
    checked = check_row(
        1, {"text": text, "customer_id": customer_id, "source": source, "category": category}
    )
    if isinstance(checked, RowError):
        raise ApplicationError(checked.message.capitalize() + ".", code=ErrorCode.INVALID_PROMPT)
    with transaction.atomic():
        locked = Project.objects.select_for_update().get(pk=project.pk)
        intake = PromptIntake(project=locked, created_by=user, extra=extra)
        created = intake.add([checked])
    if not created:
        reason = intake.report.rejected[0]["reason"] if intake.report.rejected else "filtered"
        raise ApplicationError(
            f"The prompt was not added: {reason}.", code=ErrorCode.PROMPT_REJECTED
        )
    return created[0]
