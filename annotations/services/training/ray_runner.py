"""The second training backend: reward-model and PPO jobs submitted to an existing Ray cluster
running OpenRLHF, followed through Ray's job API into the same job rows, charts and registry.

Our own trainer serves one node; OpenRLHF spreads actor, critic, reference and reward models over
a cluster. The cluster must see the job's folder (shared storage, MEDIA_ROOT) and the models.
Settings (admins'): LABELAPP_RAY_ADDRESS (the dashboard, e.g. http://ray-head:8265),
LABELAPP_RAY_ENV (environment of the entrypoint), LABELAPP_OPENRLHF_COMMANDS (the command that
starts each kind, OpenRLHF's by default), LABELAPP_RAY_POLL_SECONDS.
"""

import os
import time
from pathlib import Path
from typing import Any

from django.conf import settings

from annotations.models import Job
from annotations.models.jobs import JobKind
from annotations.services.jobs import job_fail, job_log, job_mark_cancelled
from annotations.services.training.lease import _Heartbeat
from annotations.services.training.runner import _finish, _record
from annotations.services.training.start import TRAINER_KIND
from models_service.training import openrlhf
from models_service.training.ray_jobs import RayJobError, RayJobsClient
from models_service.training.runtime import read_jsonl

BACKEND = "ray_openrlhf"
MAX_LOG_LINES_PER_POLL = 50


def ray_address() -> str:
    return str(
        getattr(settings, "LABELAPP_RAY_ADDRESS", "") or os.environ.get("LABELAPP_RAY_ADDRESS", "")
    )


def _setting(name: str, default: Any) -> Any:
    return getattr(settings, name, None) or default


def _datasets(job: Job, folder: Path) -> Path:
    """Our export in the columns OpenRLHF reads: (prompt, chosen, rejected) pairs for the reward
    model, `prompt` for PPO."""
    rows = read_jsonl(Path(job.params["data"]["train"]))
    if job.kind == JobKind.REWARD:
        path = folder / "pairs.jsonl"
        openrlhf.write_rows(path, openrlhf.pairs_rows(rows))
    else:
        path = folder / "prompts.jsonl"
        openrlhf.write_rows(path, ({"prompt": row["prompt"]} for row in rows))
    return path


def _entrypoint(job: Job, output_dir: Path) -> str:
    params, kind = job.params, TRAINER_KIND[job.kind]
    data = _datasets(job, output_dir / "openrlhf-data")
    common = {
        "output": output_dir,
        "hp": params["hyperparameters"],
        "seed": job.seed or 0,
        "cluster": params.get("cluster") or {},
    }
    if kind == "reward":
        arguments = openrlhf.reward_command(
            base_model=params["base_model_dir"], pairs=data, **common
        )
    else:
        arguments = openrlhf.ppo_command(
            base_model=params["base_model_dir"],
            reward_model=params["reward_model_dir"],
            prompts=data,
            **common,
        )
    commands = _setting("LABELAPP_OPENRLHF_COMMANDS", openrlhf.ENTRYPOINTS)
    return openrlhf.entrypoint(kind, arguments, prefix=commands.get(kind))


class _Follower:
    """Turns what Ray reports of one job into our job row: metrics per step, log lines, the
    newest checkpoint."""

    def __init__(self, job: Job, output_dir: Path) -> None:
        self.job, self.output_dir = job, output_dir
        self.step, self.seen = job.progress_done, 0
        self.metrics: dict[str, Any] = {}
        self.checkpoint = job.checkpoint_path

    def logs(self, text: str) -> None:
        fresh, self.seen = text[self.seen :], len(text)
        lines = [
            line.strip()
            for line in fresh.replace("\r", "\n").split("\n")
            if line.strip() and not openrlhf.PROGRESS.search(line)
        ]
        for line in lines[-MAX_LOG_LINES_PER_POLL:]:
            job_log(job_id=self.job.pk, line=line[:500])
        for step, total, metrics in openrlhf.progress(text):
            if step > self.step:
                _record(
                    self.job,
                    {"event": "progress", "step": step, "total": total, "metrics": metrics},
                    self.output_dir / "CANCEL",
                )
                self.step, self.metrics = step, metrics

    def checkpoints(self) -> None:
        folder = self.output_dir / "checkpoints"
        found = sorted(folder.iterdir(), key=lambda p: p.stat().st_mtime) if folder.is_dir() else []
        if found and str(found[-1]) != self.checkpoint:
            self.checkpoint = str(found[-1])
            Job.objects.filter(pk=self.job.pk).update(checkpoint_path=self.checkpoint)
            job_log(job_id=self.job.pk, line=f"OpenRLHF checkpoint: {self.checkpoint}")


def ray_training_run(job: Job, output_dir: Path) -> None:
    """Submit the job to Ray (once: a resumed runner follows the same submission), follow it to
    its end, register the trained model. Cancel stops the Ray job; a Ray job that fails or is
    stopped by someone else fails ours with Ray's message."""
    client = RayJobsClient(ray_address())
    submission = job.result.get("ray_job")
    try:
        if not submission:
            submission = client.submit(
                entrypoint=_entrypoint(job, output_dir),
                submission_id=f"labelapp-job{job.pk}",
                env_vars=_setting("LABELAPP_RAY_ENV", {}),
                metadata={"labelapp_job": str(job.pk), "kind": job.kind},
            )
            Job.objects.filter(pk=job.pk).update(result={**job.result, "ray_job": submission})
            job_log(job_id=job.pk, line=f"submitted to Ray at {client.address} as {submission}")
        status = _follow(job, client, submission, output_dir)
    except RayJobError as error:
        job_fail(job_id=job.pk, message=f"Ray backend: {error}")
        return
    job.refresh_from_db()
    if status.status == "SUCCEEDED":
        model_dir = output_dir / "model"
        if job.kind == JobKind.REWARD:
            openrlhf.as_sequence_classifier(model_dir)
        metrics = _last_metrics(job)
        _finish(job, {"event": "done", "model_dir": str(model_dir), "metrics": metrics})
    elif status.status == "STOPPED" and job.cancel_requested:
        job_mark_cancelled(job_id=job.pk, result={**job.result, "checkpoint": job.checkpoint_path})
    else:
        job_fail(
            job_id=job.pk,
            message=f"The Ray job {submission} {status.status.lower()}: {status.message}",
        )


def _follow(job: Job, client: RayJobsClient, submission: str, output_dir: Path):
    cancel_file = output_dir / "CANCEL"
    heartbeat = _Heartbeat(job_id=job.pk, cancel_file=cancel_file)
    follower, stopping = _Follower(job, output_dir), False
    heartbeat.start()
    try:
        while True:
            status = client.status(submission)
            follower.logs(client.logs(submission))
            follower.checkpoints()
            if status.finished:
                return status
            if cancel_file.exists() and not stopping:
                client.stop(submission)
                stopping = True
                job_log(job_id=job.pk, line=f"asked Ray to stop {submission}")
            time.sleep(float(_setting("LABELAPP_RAY_POLL_SECONDS", 5)))
    finally:
        heartbeat.stopped.set()
        heartbeat.join()


def _last_metrics(job: Job) -> dict[str, Any]:
    last = job.metrics.order_by("-step").first()
    return dict(last.values) if last else {}
