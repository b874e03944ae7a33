"""Training jobs: SFT, reward model, PPO-ptx and RLOO, run by the `gpu` queue's worker.

The worker spawns `python -m models_service.training.run SPEC.json` (a fresh process: CUDA is never
initialised in the worker) and follows its JSON-lines events: progress and metrics, checkpoints,
the log, and the outcome. The job row holds everything: state, heartbeat, progress, metrics per
step, log tail, checkpoint, dataset snapshot, code version, hyperparameters and seed.

No job runs twice at once: `training_claim` takes a queued job, or a running one only when its
heartbeat has stopped. A child that dies is restarted from its last checkpoint; a worker that dies
is found by `training_jobs_reap` (beat) and its job queued again, up to MAX_ATTEMPTS.
"""

import json
import math
import secrets
import subprocess
import sys
import threading
from dataclasses import fields
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from annotations.errors import ApplicationError, ErrorCode
from annotations.job_kinds import job_task_send
from annotations.models import DatasetExport, Job, JobMetric, ModelVersion, Project
from annotations.models.jobs import (
    FINISHED_STATES,
    TRAINING_KINDS,
    ExportKind,
    JobKind,
    JobState,
)
from annotations.models.outputs import ModelKind
from annotations.services.jobs import (
    code_version,
    job_create,
    job_fail,
    job_log,
    job_mark_cancelled,
    job_succeed,
)
from annotations.services.model_versions import model_version_register
from models_service import REPO_ROOT
from models_service.training.hyperparameters import BY_KIND

TRAINER_KIND = {
    JobKind.SFT: "sft",
    JobKind.REWARD: "reward",
    JobKind.PPO: "ppo",
    JobKind.RLOO: "rloo",
}
DATA_KIND = {
    JobKind.SFT: ExportKind.SFT,
    JobKind.REWARD: ExportKind.RM_RANKINGS,
    JobKind.PPO: ExportKind.PPO_PROMPTS,
    JobKind.RLOO: ExportKind.PPO_PROMPTS,
}
MODEL_KIND = {
    JobKind.SFT: ModelKind.POLICY,
    JobKind.REWARD: ModelKind.REWARD,
    JobKind.PPO: ModelKind.POLICY,
    JobKind.RLOO: ModelKind.POLICY,
}
MAX_ATTEMPTS = 3
HEARTBEAT_SECONDS = 5
STALE_AFTER = timedelta(seconds=90)
BUILTIN_DIRS = {"tiny": "tiny", "tiny-rm": "tiny-rm"}


def model_dir(version: ModelVersion) -> Path:
    """Where a version's weights are: its directory, or the built-in tiny models (built on first
    use). ApplicationError for a version the trainer cannot load from disk."""
    if version.path:
        return Path(version.path)
    if version.name in BUILTIN_DIRS:
        from models_service.tiny import ensure_tiny

        policy, reward = ensure_tiny(settings.LABELAPP_MODELS_DIR)
        return policy if version.name == "tiny" else reward
    raise ApplicationError(
        f"Model {version.name!r} has no local weights; register its directory to train from it.",
        code=ErrorCode.MODEL_NOT_LOCAL,
    )


def _check_hyperparameters(kind: str, raw: dict[str, Any]) -> dict[str, Any]:
    known = {field.name for field in fields(BY_KIND[kind])}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ApplicationError(
            f"Unknown hyperparameters {', '.join(unknown)}; "
            f"{kind} takes {', '.join(sorted(known))}.",
            code=ErrorCode.INVALID_HYPERPARAMETERS,
        )
    types = {field.name: str(field.type) for field in fields(BY_KIND[kind])}
    problems = [
        f"{name} {problem}"
        for name, value in raw.items()
        if (problem := _value_problem(types[name], value))
    ]
    if problems:
        raise ApplicationError(
            "Hyperparameters not usable: " + "; ".join(problems) + ".",
            code=ErrorCode.INVALID_HYPERPARAMETERS,
        )
    return raw


def _value_problem(type_name: str, value: Any) -> str | None:
    """Why `value` does not fit a hyperparameter declared as `type_name`, or None."""
    if value is None:
        return None if "None" in type_name else "must be set"
    if "bool" in type_name:
        return None if isinstance(value, bool) else "must be true or false"
    if "str" in type_name:
        return None if isinstance(value, str) else "must be text"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "must be a number"
    if "int" in type_name and "float" not in type_name and not isinstance(value, int):
        return "must be a whole number"
    if not math.isfinite(value) or value < -1:
        return "must be a finite number, at least 0 (-1 where it means 'no limit')"
    return None


def _dataset_file(dataset: DatasetExport, split: str) -> str | None:
    for name in (f"{split}.jsonl", f"{split}.jsonl.gz"):
        path = Path(dataset.directory) / name
        if path.is_file():
            return str(path)
    return None


def training_start(
    *,
    user: Any,
    kind: str,
    dataset: DatasetExport,
    base_model: ModelVersion,
    reward_model: ModelVersion | None = None,
    pretrain: DatasetExport | None = None,
    demonstrations: DatasetExport | None = None,
    hyperparameters: dict[str, Any] | None = None,
    seed: int | None = None,
) -> Job:
    """Check a training request and queue it on the gpu queue. Nothing is created on error."""
    if kind not in TRAINER_KIND:
        raise ApplicationError(f"Unknown training kind {kind!r}.", code=ErrorCode.INVALID_KIND)
    if not dataset.ready or dataset.kind != DATA_KIND[kind]:
        raise ApplicationError(
            f"{JobKind(kind).label} trains on a finished {ExportKind(DATA_KIND[kind]).label} "
            f"export; snapshot v{dataset.version} is a {dataset.get_kind_display()} export"
            f"{'' if dataset.ready else ' that is not finished'}.",
            code=ErrorCode.WRONG_DATASET,
        )
    train_file = _dataset_file(dataset, "train")
    if train_file is None:
        raise ApplicationError(
            "The snapshot has no train split to train on.", code=ErrorCode.NO_TRAIN
        )
    if kind in (JobKind.PPO, JobKind.RLOO) and (
        reward_model is None or reward_model.kind != ModelKind.REWARD
    ):
        raise ApplicationError(
            f"{JobKind(kind).label} needs a reward model.", code=ErrorCode.NO_REWARD
        )
    if base_model.kind != ModelKind.POLICY and kind != JobKind.REWARD:
        raise ApplicationError(
            f"{JobKind(kind).label} starts from a policy; {base_model.name} is a reward model.",
            code=ErrorCode.WRONG_BASE_MODEL,
        )
    for role, extra in (("demonstrations", demonstrations), ("pretrain", pretrain)):
        if extra is not None and not (extra.ready and extra.kind == ExportKind.SFT):
            raise ApplicationError(
                f"The {role} snapshot must be a finished SFT export; v{extra.version} is a "
                f"{extra.get_kind_display()} export{'' if extra.ready else ' not finished'}.",
                code=ErrorCode.WRONG_DATASET,
            )
    hyper = _check_hyperparameters(TRAINER_KIND[kind], hyperparameters or {})
    data = {"train": train_file, "valid": _dataset_file(dataset, "valid")}
    if demonstrations is not None:
        data["demonstrations"] = _dataset_file(demonstrations, "train")
    if pretrain is not None:
        data["pretrain"] = _dataset_file(pretrain, "train")
    params = {
        "base_model": base_model.name,
        "base_model_dir": str(model_dir(base_model)),
        "reward_model": reward_model.name if reward_model else None,
        "reward_model_dir": str(model_dir(reward_model)) if reward_model else None,
        "data": data,
        "hyperparameters": hyper,
    }
    with transaction.atomic():
        job = job_create(kind=kind, project=dataset.project, user=user, params=params)
        Job.objects.filter(pk=job.pk).update(
            dataset=dataset,
            seed=seed if seed is not None else secrets.randbelow(2**31),
            code_version=code_version(),
        )
    job.refresh_from_db()
    return job


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
    }


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


def _record(job: Job, event: dict[str, Any], cancel_file: Path) -> None:
    kind = event.get("event")
    now = timezone.now()
    if kind == "progress":
        step, total = int(event["step"]), int(event["total"])
        JobMetric.objects.update_or_create(
            job=job, step=step, defaults={"values": event.get("metrics", {})}
        )
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


def _run_child(job: Job, output_dir: Path) -> dict[str, Any] | None:
    """Run the trainer once; the last outcome event, or None when the child died without one."""
    spec_path = output_dir / f"spec-{job.attempts}.json"
    spec_path.write_text(json.dumps(_spec(job, output_dir), indent=2))
    cancel_file = output_dir / "CANCEL"
    log_path = output_dir / "trainer.log"
    heartbeat = _Heartbeat(job_id=job.pk, cancel_file=cancel_file)
    outcome = None
    with log_path.open("a") as stderr:
        child = subprocess.Popen(
            [sys.executable, "-m", "models_service.training.run", str(spec_path)],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        Job.objects.filter(pk=job.pk).update(result={**job.result, "pid": child.pid})
        heartbeat.start()
        try:
            for line in child.stdout:
                try:
                    event = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if event.get("event") in ("done", "error", "cancelled"):
                    outcome = event
                else:
                    _record(job, event, cancel_file)
            child.wait()
        finally:
            heartbeat.stopped.set()
            heartbeat.join()
    return outcome


def training_run(*, job_id: int, runner: str) -> None:
    """Run a training job to its end (called by the gpu worker). Restarts a child that died,
    from its last checkpoint, up to MAX_ATTEMPTS in all."""
    job = training_claim(job_id=job_id, runner=runner)
    if job is None:
        return
    output_dir = _output_dir(job)
    while True:
        outcome = _run_child(job, output_dir)
        job.refresh_from_db()
        if outcome is not None:
            _finish(job, outcome)
            return
        if job.attempts >= MAX_ATTEMPTS:
            job_fail(
                job_id=job.pk,
                message=f"The trainer died {job.attempts} times; the last "
                f"checkpoint is {job.checkpoint_path or 'none'}. See {output_dir}/trainer.log.",
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
        job_succeed(
            job_id=job.pk,
            result={"model_version": version.name, "metrics": metrics},
            message=f"Trained {version.name}; the inference service serves it now.",
        )


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
            transaction.on_commit(
                lambda pk=job.pk, kind=job.kind: job_task_send(job_id=pk, kind=kind)
            )
    return requeued


def training_datasets(*, project: Project, kind: str) -> list[DatasetExport]:
    return list(
        DatasetExport.objects.filter(project=project, kind=DATA_KIND[kind], ready=True).order_by(
            "-version"
        )
    )
