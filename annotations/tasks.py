"""Celery tasks: thin and idempotent. Ids in, a service call, state kept in the job row.

Each task names its queue, its time limits and its retry policy.
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from celery import shared_task
from celery.app.task import Task
from celery.exceptions import Retry
from django.conf import settings

from annotations.job_kinds import TASK_QUEUES
from annotations.services.generation import generation_run
from annotations.services.jobs import job_fail, job_progress
from annotations.services.outputs_import import outputs_import_run
from annotations.services.prompts import prompt_import_run
from models_service.client import InferenceRequestError, InferenceUnavailable


@contextmanager
def failing_job_on_error(job_id: int) -> Iterator[None]:
    """An unexpected error fails the job with the reason (then propagates to the worker's log),
    so no job is left 'running' forever."""
    try:
        yield
    except Retry:
        raise
    except Exception as exc:
        job_fail(job_id=job_id, message=f"The job stopped on an unexpected error: {exc!r}.")
        raise


def task(*, name: str, **options: Any) -> Callable:
    """shared_task on the queue that annotations/job_kinds.py names for it."""
    if name not in TASK_QUEUES:
        raise LookupError(f"Add {name!r} to TASK_QUEUES in annotations/job_kinds.py.")
    return shared_task(name=name, queue=TASK_QUEUES[name], **options)


@task(
    name="annotations.import_prompts",
    acks_late=True,  # a crash mid-import rolls back; the redelivered message imports afresh
    soft_time_limit=3600,
    time_limit=3660,
    max_retries=0,
)
def import_prompts(job_id: int) -> None:
    with failing_job_on_error(job_id):
        prompt_import_run(job_id=job_id)


@task(
    bind=True,
    name="annotations.generate_outputs",
    acks_late=True,  # a redelivered message continues the job; stored batches are skipped
    soft_time_limit=6 * 3600,
    time_limit=6 * 3600 + 120,
    max_retries=None,  # counted against LABELAPP_GENERATION_MAX_RETRIES below
)
def generate_outputs(self: Task, job_id: int) -> None:
    """Sample a generation job. While the service is unreachable, retry with exponential backoff;
    after the last try, fail the job with the reason."""
    with failing_job_on_error(job_id):
        try:
            generation_run(job_id=job_id)
        except InferenceUnavailable as exc:
            _retry_or_fail(self, job_id=job_id, exc=exc)
        except InferenceRequestError as exc:
            job_fail(
                job_id=job_id, message=f"The inference service refused the request: {exc.message}"
            )


def _retry_or_fail(task: Task, *, job_id: int, exc: Exception) -> None:
    limit = settings.LABELAPP_GENERATION_MAX_RETRIES
    tries = task.request.retries + 1
    if tries > limit:
        job_fail(
            job_id=job_id,
            message=f"The inference service at {settings.LABELAPP_INFERENCE_URL} did not answer "
            f"after {tries} tries ({exc}). Start it (or fix LABELAPP_INFERENCE_URL) and run the "
            "job again.",
        )
        return
    countdown = min(300, settings.LABELAPP_GENERATION_RETRY_SECONDS * 2 ** (tries - 1))
    job_progress(
        job_id=job_id,
        message=f"Waiting for the inference service ({exc}); try {tries + 1} of {limit + 1} "
        f"in {countdown} s.",
    )
    raise task.retry(countdown=countdown, exc=exc) from exc


@task(
    name="annotations.import_outputs",
    acks_late=True,
    soft_time_limit=3600,
    time_limit=3660,
    max_retries=0,
)
def import_outputs(job_id: int) -> None:
    with failing_job_on_error(job_id):
        outputs_import_run(job_id=job_id)


@task(
    name="annotations.export_dataset",
    acks_late=True,  # an export writes to a temporary folder and is listed only when complete
    soft_time_limit=4 * 3600,
    time_limit=4 * 3600 + 120,
    max_retries=0,
)
def export_dataset(job_id: int) -> None:
    from annotations.services.exports import export_run

    with failing_job_on_error(job_id):
        export_run(job_id=job_id)


@task(
    bind=True,
    name="annotations.train_model",
    # Acknowledged on receipt: a training run outlives Redis' visibility timeout, and a late ack
    # would have it delivered twice. The job row and the reaper below make it survive a crash.
    acks_late=False,
    soft_time_limit=None,
    time_limit=None,
    max_retries=0,
)
def train_model(self: Task, job_id: int) -> None:
    from annotations.services.training import training_run

    with failing_job_on_error(job_id):
        training_run(job_id=job_id, runner=f"{self.request.hostname}:{self.request.id}")


@task(
    name="annotations.reap_training_jobs",
    soft_time_limit=60,
    time_limit=90,
    max_retries=0,
)
def reap_training_jobs() -> list[int]:
    """Queue again training jobs whose worker died (heartbeat stopped); they resume."""
    from annotations.services.training import training_jobs_reap

    return training_jobs_reap()


@task(
    name="annotations.expire_leases",
    soft_time_limit=60,
    time_limit=90,
    max_retries=0,
)
def expire_leases() -> int:
    """Return expired leases to the pool (claims also do this for their own project)."""
    from annotations.services.queue import leases_expire

    total = 0
    while (returned := leases_expire()) > 0:
        total += returned
    return total
