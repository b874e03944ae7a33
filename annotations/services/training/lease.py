"""The training job's lease: claim, heartbeat and reaper.

No job runs twice at once: `training_claim` takes a queued job, or a running one only when its
heartbeat has stopped. A worker that dies is found by `training_jobs_reap` (beat) and its job
queued again, up to MAX_ATTEMPTS.
"""

import threading
from datetime import timedelta
from functools import partial
from pathlib import Path

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from annotations.job_kinds import job_task_send
from annotations.models import Job
from annotations.models.jobs import FINISHED_STATES, TRAINING_KINDS, JobState
from annotations.services.jobs import job_fail, job_mark_cancelled

MAX_ATTEMPTS = 3
HEARTBEAT_SECONDS = 5
STALE_AFTER = timedelta(seconds=90)


def training_claim(*, job_id: int, runner: str) -> Job | None:
    """Take the job for this runner: a queued job, or a running one whose heartbeat stopped.
    None when it is finished, cancelled before start, or alive in another runner."""
    now = timezone.now()
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job_id)
        if job.state in FINISHED_STATES:
            return None
        if job.cancel_requested:
            job_mark_cancelled(job_id=job_id)
            return None
        alive = job.heartbeat_at is not None and now - job.heartbeat_at < STALE_AFTER
        if job.state == JobState.RUNNING and alive:
            return None
        Job.objects.filter(pk=job_id).update(
            state=JobState.RUNNING,
            started_at=job.started_at or now,
            heartbeat_at=now,
            attempts=F("attempts") + 1,
            result={**job.result, "runner": runner},
        )
    job.refresh_from_db()
    return job


class _Heartbeat(threading.Thread):
    """Beats the job row while the child runs and turns a cancel request into the cancel file."""

    def __init__(self, *, job_id: int, cancel_file: Path) -> None:
        super().__init__(daemon=True)
        self.job_id, self.cancel_file = job_id, cancel_file
        self.stopped = threading.Event()

    def run(self) -> None:
        from django.db import connection

        try:
            while not self.stopped.wait(HEARTBEAT_SECONDS):
                Job.objects.filter(pk=self.job_id).update(heartbeat_at=timezone.now())
                if Job.objects.filter(pk=self.job_id, cancel_requested=True).exists():
                    self.cancel_file.touch()
        finally:
            connection.close()


def training_jobs_reap() -> list[int]:
    """Queue again the running training jobs whose heartbeat stopped (their worker died): they
    resume from their last checkpoint. Jobs that used all their attempts fail with the reason."""
    stale = timezone.now() - STALE_AFTER
    requeued = []
    with transaction.atomic():
        jobs = Job.objects.select_for_update(skip_locked=True).filter(
            Q(heartbeat_at__lt=stale) | Q(heartbeat_at__isnull=True),
            kind__in=TRAINING_KINDS,
            state=JobState.RUNNING,
        )
        for job in jobs:
            if job.attempts >= MAX_ATTEMPTS:
                job_fail(
                    job_id=job.pk,
                    message=f"The worker running this job stopped answering "
                    f"{job.attempts} times; last checkpoint {job.checkpoint_path or 'none'}.",
                )
                continue
            Job.objects.filter(pk=job.pk).update(
                state=JobState.QUEUED,
                message=f"The worker stopped answering; queued again to resume from "
                f"{job.checkpoint_path or 'the start'}.",
            )
            requeued.append(job.pk)
            transaction.on_commit(partial(job_task_send, job_id=job.pk, kind=job.kind))
    return requeued
