"""Waiting for jobs that a real worker runs."""

import time
from collections.abc import Callable

from annotations.models import Job


def wait_for(
    job_id: int, *, until: Callable[[Job], bool] | None = None, timeout: float = 240
) -> Job:
    """Poll the job row until `until(job)` (default: the job finished); fail with its state,
    message and log after `timeout` seconds."""
    until = until or (lambda job: job.is_finished)
    deadline = time.monotonic() + timeout
    while True:
        job = Job.objects.get(pk=job_id)
        if until(job):
            return job
        if time.monotonic() > deadline:
            raise AssertionError(
                f"job {job_id} is {job.state} after {timeout}s: {job.message}\n{job.log_tail}"
            )
        time.sleep(0.1)
