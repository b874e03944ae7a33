"""Running a training job in the gpu worker.

The worker spawns `python -m models_service.training.run SPEC.json` (a fresh process: CUDA is never
initialised in the worker) and follows its JSON-lines events: progress and metrics, checkpoints,
the log, and the outcome. The job row holds everything: state, heartbeat, progress, metrics per
step, log tail, checkpoint, dataset snapshot, code version, hyperparameters and seed. A child that
dies is restarted from its last checkpoint, up to MAX_ATTEMPTS in all.
"""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from annotations.models import Job, JobMetric, ModelVersion
from annotations.models.jobs import JobKind
from annotations.models.outputs import ModelKind
from annotations.services.jobs import job_fail, job_log, job_mark_cancelled, job_succeed
from annotations.services.model_versions import model_version_register
from annotations.services.training.lease import MAX_ATTEMPTS, _Heartbeat, training_claim
from annotations.services.training.processes import TrainerProcesses, rank_failure
from annotations.services.training.start import (
    MODEL_KIND,
    TRAINER_KIND,
    rollout_server_settings,
)
from models_service.training.launch import LaunchPlan, launcher_commands
from models_service.training.lora import ADAPTER_DIR

SAMPLES_KEY = "samples"  # a step's table of sample generations, beside its metrics


def _output_dir(job: Job) -> Path:
    path = Path(settings.MEDIA_ROOT) / "training" / f"job-{job.pk}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _spec(job: Job, output_dir: Path) -> dict[str, Any]:
    params = job.params
    return {
        "kind": TRAINER_KIND[job.kind],
        "base_model": params["base_model_dir"],
        "output_dir": str(output_dir),
        "data": params["data"],
        "hyperparameters": params["hyperparameters"],
        "seed": job.seed or 0,
        "resume_from": job.checkpoint_path or None,
        "cancel_file": str(output_dir / "CANCEL"),
        "reward_model": params.get("reward_model_dir"),
        "rollout": rollout_server_settings()
        if params["hyperparameters"].get("rollout_backend") == "server"
        else None,
    }


def _record(job: Job, event: dict[str, Any], cancel_file: Path) -> None:
    kind = event.get("event")
    now = timezone.now()
    if kind == "progress":
        step, total = int(event["step"]), int(event["total"])
        values = dict(event.get("metrics", {}))
        if event.get("samples"):
            values[SAMPLES_KEY] = event["samples"]
        JobMetric.objects.update_or_create(job=job, step=step, defaults={"values": values})
        elapsed = (now - job.started_at).total_seconds() if job.started_at else 0
        Job.objects.filter(pk=job.pk).update(
            progress_done=step,
            progress_total=total,
            heartbeat_at=now,
            message=f"Step {step} of {total}." + _eta(step, total, elapsed),
        )
        if Job.objects.filter(pk=job.pk, cancel_requested=True).exists():
            cancel_file.touch()
    elif kind == "checkpoint":
        Job.objects.filter(pk=job.pk).update(checkpoint_path=event["path"], heartbeat_at=now)
        job_log(job_id=job.pk, line=f"checkpoint at step {event.get('step')}: {event['path']}")
        if job.kind == JobKind.PPO:
            _register_checkpoint(job, event)
    elif kind == "log":
        job_log(job_id=job.pk, line=str(event.get("message", "")))


def _register_checkpoint(job: Job, event: dict[str, Any]) -> None:
    """Each PPO checkpoint becomes a model version carrying its reward and KL, so that
    over-optimisation (reward rising while KL grows) can be seen and sampled from."""
    model_path = Path(event["path"]) / "model"
    if not (model_path / "config.json").is_file():
        return
    metrics = event.get("metrics", {})
    name = f"{_version_prefix(job)}-step{int(event.get('step', 0))}"
    with transaction.atomic():
        if not ModelVersion.objects.filter(name=name).exists():
            model_version_register(
                name=name,
                kind=ModelKind.POLICY,
                path=str(model_path),
                job=job,
                parent=ModelVersion.objects.filter(name=job.params["base_model"]).first(),
                metrics={
                    k: metrics[k]
                    for k in ("reward", "kl", "loss")
                    if isinstance(metrics.get(k), int | float)
                },
            )


def _version_prefix(job: Job) -> str:
    prefix = job.project.slug if job.project else "model"
    return f"{prefix}-{TRAINER_KIND[job.kind]}-job{job.pk}"


def _eta(step: int, total: int, elapsed: float) -> str:
    if step <= 0 or total <= step or elapsed <= 0:
        return ""
    return f" About {int(elapsed / step * (total - step))} s left."


@dataclass(frozen=True)
class Attempt:
    """How one run of the trainer ended: its outcome event, or why it stopped without one."""

    outcome: dict[str, Any] | None
    failure: str | None = None


def _run_child(job: Job, output_dir: Path) -> Attempt:
    """Run the trainer once (the launcher of every host, or the trainer alone) and follow it."""
    spec_path = output_dir / f"spec-{job.attempts}.json"
    spec_path.write_text(json.dumps(_spec(job, output_dir), indent=2))
    cancel_file = output_dir / "CANCEL"
    plan = LaunchPlan.from_dict(job.params.get("launch"))
    trainer = TrainerProcesses(launcher_commands(plan, spec_path), output_dir / "trainer.log")
    heartbeat = _Heartbeat(job_id=job.pk, cancel_file=cancel_file)
    outcome, ranks = None, {}
    trainer.start()
    Job.objects.filter(pk=job.pk).update(result={**job.result, "pid": trainer.pid, "ranks": {}})
    heartbeat.start()
    try:
        for event in trainer.events():
            kind = event.get("event")
            if kind == "rank":
                ranks[str(event["rank"])] = {"pid": event["pid"], "host": event.get("host")}
                Job.objects.filter(pk=job.pk).update(
                    result={**job.result, "pid": trainer.pid, "ranks": ranks}
                )
            elif kind in ("done", "error", "cancelled"):
                # A rank's own error outranks the main rank's later outcome.
                outcome = outcome if outcome and outcome["event"] == "error" else event
            else:
                _record(job, event, cancel_file)
        trainer.wait()
    finally:
        trainer.stop(ranks)
        heartbeat.stopped.set()
        heartbeat.join()
    if plan.uses_launcher and (outcome is None or outcome["event"] == "error"):
        # The rank that died first, not a survivor's complaint that its peer went away.
        failure = rank_failure(trainer.new_log(), ranks, plan.world_size)
        own_error = outcome is not None and failure and outcome.get("rank", 0) == failure[0]
        if failure and not own_error:
            if outcome is not None:
                job_log(job_id=job.pk, line=str(outcome.get("message", "")))
            return Attempt(None, failure[1])
    return Attempt(outcome)  # with no outcome the trainer was killed: it resumes


def training_run(*, job_id: int, runner: str) -> None:
    """Run a training job to its end (called by the gpu worker). Restarts a trainer that died,
    from its last checkpoint, up to MAX_ATTEMPTS in all; a rank that died while its launcher
    lived (out of memory, a crash in one process) fails the job at once, naming the rank."""
    job = training_claim(job_id=job_id, runner=runner)
    if job is None:
        return
    output_dir = _output_dir(job)
    if job.params.get("backend") == "ray_openrlhf":
        from annotations.services.training.ray_runner import ray_training_run

        ray_training_run(job, output_dir)
        return
    while True:
        attempt = _run_child(job, output_dir)
        job.refresh_from_db()
        if attempt.outcome is not None:
            _finish(job, attempt.outcome)
            return
        checkpoint = job.checkpoint_path or "none"
        if attempt.failure:
            job_fail(
                job_id=job.pk,
                message=f"{attempt.failure} The last checkpoint is {checkpoint}. "
                f"See {output_dir}/trainer.log.",
            )
            return
        if job.attempts >= MAX_ATTEMPTS:
            job_fail(
                job_id=job.pk,
                message=f"The trainer died {job.attempts} times; the last "
                f"checkpoint is {checkpoint}. See {output_dir}/trainer.log.",
            )
            return
        job_log(
            job_id=job.pk,
            line=f"The trainer died; resuming from {job.checkpoint_path or 'the start'}.",
        )
        Job.objects.filter(pk=job.pk).update(attempts=F("attempts") + 1)
        job.refresh_from_db()


def _finish(job: Job, outcome: dict[str, Any]) -> None:
    event = outcome["event"]
    if event == "cancelled":
        job_mark_cancelled(job_id=job.pk, result={"checkpoint": job.checkpoint_path})
        return
    if event == "error":
        job_fail(job_id=job.pk, message=f"Training failed: {outcome.get('message', '')}")
        return
    metrics = outcome.get("metrics", {})
    with transaction.atomic():
        version = model_version_register(
            name=_version_prefix(job),
            kind=MODEL_KIND[job.kind],
            path=outcome["model_dir"],
            parent=ModelVersion.objects.filter(name=job.params["base_model"]).first(),
            job=job,
            metrics={k: v for k, v in metrics.items() if isinstance(v, int | float)},
        )
        result = {"model_version": version.name, "metrics": metrics}
        if "ray_job" in job.result:  # the Ray backend's submission, for its logs on the cluster
            result["ray_job"] = job.result["ray_job"]
        adapter = Path(outcome["model_dir"]) / ADAPTER_DIR
        if adapter.is_dir():  # a LoRA job: the adapter itself, beside the merged weights
            result["adapter"] = str(adapter)
        job_succeed(
            job_id=job.pk,
            result=result,
            message=f"Trained {version.name}; the inference service serves it now.",
        )
