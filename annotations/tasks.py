"""Celery tasks: thin and idempotent. Ids in, a service call, state kept in the job row.

Each task names its queue, its time limits and its retry policy.
"""

from enum import StrEnum

from celery import shared_task
from celery.app.task import Task

from annotations.models.jobs import JobKind
from annotations.services.prompts import prompt_import_run


class Queue(StrEnum):
    DEFAULT = "default"  # imports, exports, statistics, maintenance
    GENERATION = "generation"  # calls the inference service
    GPU = "gpu"  # one training job at a time per worker


@shared_task(
    name="annotations.import_prompts",
    queue=Queue.DEFAULT,
    acks_late=True,  # a crash mid-import rolls back; the redelivered message imports afresh
    soft_time_limit=3600,
    time_limit=3660,
    max_retries=0,
)
def import_prompts(job_id: int) -> None:
    prompt_import_run(job_id=job_id)


def task_for_kind(kind: str) -> Task:
    tasks: dict[str, Task] = {JobKind.IMPORT_PROMPTS: import_prompts}
    return tasks[kind]


@shared_task(
    name="annotations.expire_leases",
    queue=Queue.DEFAULT,
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
