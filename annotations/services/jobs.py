"""Job rows: the one place where long work records its state, progress and outcome."""

import logging
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from annotations.errors import ApplicationError, ErrorCode
from annotations.job_kinds import job_task_send
from annotations.models import Job
from annotations.models.jobs import FINISHED_STATES, JobKind, JobState
from annotations.users import User

logger = logging.getLogger(__name__)
LOG_TAIL_CHARS = 8000


def code_version() -> str:
    """The git commit of the running code (short), else the package version, else 'unknown'."""
    import importlib.metadata
    import subprocess

    from django.conf import settings

    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=settings.BASE_DIR,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        return importlib.metadata.version("labelapp")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def job_create(*, kind: str, project: Any, user: User | None, params: dict[str, Any]) -> Job:
    """Create a queued job and enqueue its task once the transaction commits."""
    job = Job.objects.create(kind=kind, project=project, created_by=user, params=params)
    transaction.on_commit(lambda: job_task_send(job_id=job.pk, kind=kind, params=params))
    return job


def job_start(*, job_id: int) -> Job | None:
    """Mark the job running; None when it is finished already (a redelivered message)."""
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job_id)
        if job.state in FINISHED_STATES:
            return None
        if job.cancel_requested:
            _finish(job, JobState.CANCELLED, "Cancelled before it started.")
            return None
        now = timezone.now()
        job.state = JobState.RUNNING
        job.started_at = job.started_at or now
        job.heartbeat_at = now
        job.attempts = F("attempts") + 1
        job.save(update_fields=["state", "started_at", "heartbeat_at", "attempts"])
    job.refresh_from_db()
    return job


def job_progress(
    *, job_id: int, done: int | None = None, total: int | None = None, message: str | None = None
) -> bool:
    """Record progress and a heartbeat. Returns True when a cancel was requested."""
    fields: dict[str, Any] = {"heartbeat_at": timezone.now()}
    if done is not None:
        fields["progress_done"] = done
    if total is not None:
        fields["progress_total"] = total
    if message is not None:
        fields["message"] = message
    Job.objects.filter(pk=job_id, state=JobState.RUNNING).update(**fields)
    return Job.objects.filter(pk=job_id, cancel_requested=True).exists()


def job_log(*, job_id: int, line: str) -> None:
    job = Job.objects.only("log_tail").get(pk=job_id)
    tail = (job.log_tail + line.rstrip("\n") + "\n")[-LOG_TAIL_CHARS:]
    Job.objects.filter(pk=job_id).update(log_tail=tail)


def _finish(job: Job, state: str, message: str, result: dict | None = None) -> None:
    job.state = state
    job.message = message
    job.finished_at = timezone.now()
    fields = ["state", "message", "finished_at"]
    if result is not None:
        job.result = result
        fields.append("result")
    if state == JobState.SUCCEEDED:
        job.progress_done = max(job.progress_done, job.progress_total)
        fields.append("progress_done")
    job.save(update_fields=fields)


def job_succeed(*, job_id: int, result: dict[str, Any], message: str = "Done.") -> None:
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job_id)
        _finish(job, JobState.SUCCEEDED, message, result)


def job_fail(*, job_id: int, message: str, result: dict[str, Any] | None = None) -> None:
    logger.warning("job %s failed: %s", job_id, message)
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job_id)
        _finish(job, JobState.FAILED, message, result)


def job_mark_cancelled(*, job_id: int, result: dict[str, Any] | None = None) -> None:
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job_id)
        _finish(job, JobState.CANCELLED, "Cancelled.", result)


def job_request_cancel(*, job: Job) -> Job:
    """Ask a job to stop. It stops at its next progress report; a queued job never starts."""
    if job.is_finished:
        raise ApplicationError(
            f"This job is already {job.state}; there is nothing to cancel.",
            code=ErrorCode.JOB_FINISHED,
        )
    Job.objects.filter(pk=job.pk).update(cancel_requested=True)
    job.refresh_from_db()
    return job


def job_rerun(*, job: Job, user: User, params: dict[str, Any] | None = None) -> Job:
    """A new job of the same kind with the same (or amended) parameters."""
    if job.kind != JobKind.IMPORT_PROMPTS:
        raise ApplicationError(
            "Only imports can be re-run from here.", code=ErrorCode.NOT_RERUNNABLE
        )
    return job_create(
        kind=job.kind, project=job.project, user=user, params={**job.params, **(params or {})}
    )
