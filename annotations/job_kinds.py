"""Every kind of job and the Celery task that runs it, by name, with the queue it runs on.

Services send jobs through `job_task_send` (by task name); `annotations/tasks.py` implements the
names. Neither imports the other.
"""

from enum import StrEnum
from typing import Any

from annotations.models.jobs import JobKind


class Queue(StrEnum):
    DEFAULT = "default"  # imports, exports, statistics, maintenance
    GENERATION = "generation"  # calls the inference service
    GPU = "gpu"  # one training job at a time per worker


# Task name -> its queue: read by the Celery router and by the task decorator.
TASK_QUEUES: dict[str, Queue] = {
    "annotations.import_prompts": Queue.DEFAULT,
    "annotations.import_outputs": Queue.DEFAULT,
    "annotations.export_dataset": Queue.DEFAULT,
    "annotations.generate_outputs": Queue.GENERATION,
    "annotations.train_model": Queue.GPU,
    "annotations.reap_training_jobs": Queue.DEFAULT,
    "annotations.expire_leases": Queue.DEFAULT,
}

JOB_TASKS: dict[str, str] = {
    JobKind.IMPORT_PROMPTS: "annotations.import_prompts",
    JobKind.GENERATION: "annotations.generate_outputs",
    JobKind.EXPORT: "annotations.export_dataset",
    JobKind.SFT: "annotations.train_model",
    JobKind.REWARD: "annotations.train_model",
    JobKind.PPO: "annotations.train_model",
    JobKind.RLOO: "annotations.train_model",
}


def job_task_name(kind: str, params: dict[str, Any] | None = None) -> str:
    """The task that runs a job of this kind (an output import is a generation job from a
    file)."""
    if kind == JobKind.GENERATION and (params or {}).get("source") == "file":
        return "annotations.import_outputs"
    return JOB_TASKS[kind]


def job_task_send(*, job_id: int, kind: str, params: dict[str, Any] | None = None) -> None:
    """Send the job's task message (call it after the job row is committed)."""
    from labelapp.celery import app

    name = job_task_name(kind, params)
    app.send_task(name, args=[job_id], queue=TASK_QUEUES[name])


def route_task(
    name: str, args: Any, kwargs: Any, options: Any, task: Any = None, **kw: Any
) -> dict[str, str]:
    """Celery router (settings.CELERY_TASK_ROUTES): every task goes to the queue named above."""
    return {"queue": TASK_QUEUES.get(name, Queue.DEFAULT)}
