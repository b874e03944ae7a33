"""Checking and queueing training jobs (SFT, reward model, PPO-ptx, RLOO).

`training_start` validates a request against the snapshot, the models and the trainer's own
hyperparameter dataclasses, and queues one job on the gpu queue; nothing is created on error.
"""

import math
import secrets
from dataclasses import fields
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction

from annotations.errors import ApplicationError, ErrorCode
from annotations.models import DatasetExport, Job, ModelVersion, Project
from annotations.models.jobs import ExportKind, JobKind
from annotations.models.outputs import ModelKind
from annotations.services.jobs import code_version, job_create
from models_service.training.hyperparameters import BY_KIND
from models_service.training.launch import LaunchPlan, plan_problems

TRAINER_KIND: dict[str, str] = {
    JobKind.SFT: "sft",
    JobKind.REWARD: "reward",
    JobKind.PPO: "ppo",
    JobKind.RLOO: "rloo",
}
DATA_KIND: dict[str, str] = {
    JobKind.SFT: ExportKind.SFT,
    JobKind.REWARD: ExportKind.RM_RANKINGS,
    JobKind.PPO: ExportKind.PPO_PROMPTS,
    JobKind.RLOO: ExportKind.PPO_PROMPTS,
}
MODEL_KIND: dict[str, str] = {
    JobKind.SFT: ModelKind.POLICY,
    JobKind.REWARD: ModelKind.REWARD,
    JobKind.PPO: ModelKind.POLICY,
    JobKind.RLOO: ModelKind.POLICY,
}
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


def rollout_server_settings() -> dict[str, Any] | None:
    """The rollout server the site is configured with (LABELAPP_ROLLOUT_URL, _MODEL,
    _WEIGHTS_DIR, _API_KEY: set by admins, never taken from a request), or None."""
    import os

    def value(name: str, default: str = "") -> str:
        return str(getattr(settings, name, None) or os.environ.get(name, default))

    url, weights_dir = value("LABELAPP_ROLLOUT_URL"), value("LABELAPP_ROLLOUT_WEIGHTS_DIR")
    if not url or not weights_dir:
        return None
    return {
        "url": url,
        "model": value("LABELAPP_ROLLOUT_MODEL", "policy"),
        "weights_dir": weights_dir,
        "api_key": value("LABELAPP_ROLLOUT_API_KEY") or None,
    }


def _check_rollout(hyper: dict[str, Any]) -> None:
    backend = hyper.get("rollout_backend", "local")
    if backend not in ("local", "server"):
        raise ApplicationError(
            f"rollout_backend is local or server; got {backend!r}.",
            code=ErrorCode.INVALID_HYPERPARAMETERS,
        )
    if backend == "server" and rollout_server_settings() is None:
        raise ApplicationError(
            "rollout_backend server needs a rollout server: an admin sets LABELAPP_ROLLOUT_URL "
            "and LABELAPP_ROLLOUT_WEIGHTS_DIR (see README); use local meanwhile.",
            code=ErrorCode.NO_ROLLOUT_SERVER,
        )


CLUSTER_KEYS = {
    "nodes",
    "gpus_per_node",
    "vllm_engines",
    "vllm_tensor_parallel",
    "zero_stage",
    "colocate",
    "micro_batch",
    "bf16",
}


def _check_backend(
    kind: str, backend: str, plan: LaunchPlan, cluster: dict[str, Any] | None
) -> None:
    from annotations.services.training.ray_runner import BACKEND, ray_address

    if backend == "local":
        if cluster:
            raise ApplicationError(
                "Cluster placement applies to the ray_openrlhf backend only.",
                code=ErrorCode.INVALID_BACKEND,
            )
        return
    if backend != BACKEND:
        raise ApplicationError(
            f"backend is local or {BACKEND}; got {backend!r}.", code=ErrorCode.INVALID_BACKEND
        )
    if kind not in (JobKind.REWARD, JobKind.PPO):
        raise ApplicationError(
            f"The {BACKEND} backend trains reward models and PPO; "
            f"{JobKind(kind).label} runs on the local backend.",
            code=ErrorCode.INVALID_BACKEND,
        )
    if not ray_address():
        raise ApplicationError(
            "No Ray cluster is configured: an admin sets LABELAPP_RAY_ADDRESS (see README).",
            code=ErrorCode.NO_RAY_CLUSTER,
        )
    if plan.uses_launcher:
        raise ApplicationError(
            "Launch settings are for the local backend; the Ray cluster places the job itself "
            "(cluster settings).",
            code=ErrorCode.INVALID_BACKEND,
        )
    unknown = sorted(set(cluster or {}) - CLUSTER_KEYS)
    if unknown:
        raise ApplicationError(
            f"Unknown cluster settings {', '.join(unknown)}; known: "
            f"{', '.join(sorted(CLUSTER_KEYS))}.",
            code=ErrorCode.INVALID_BACKEND,
        )


def _check_launch(kind: str, raw: dict[str, Any] | None) -> LaunchPlan:
    try:
        plan = LaunchPlan.from_dict(raw)
    except (TypeError, ValueError) as error:
        raise ApplicationError(
            f"Launch settings not usable: {error}; processes and main_port are whole numbers.",
            code=ErrorCode.INVALID_LAUNCH,
        ) from error
    problems = plan_problems(kind, plan)
    if problems:
        raise ApplicationError(
            "Launch settings not usable: " + "; ".join(problems) + ".",
            code=ErrorCode.INVALID_LAUNCH,
        )
    return plan


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
    launch: dict[str, Any] | None = None,
    backend: str = "local",
    cluster: dict[str, Any] | None = None,
) -> Job:
    """Check a training request and queue it on the gpu queue. Nothing is created on error.

    `launch` chooses how the trainer runs (`models_service.training.launch`): a preset (single,
    ddp, fsdp, zero2, zero3), processes per host and the hosts of a multi-node job. `backend`
    "ray_openrlhf" sends a reward-model or PPO job to the Ray cluster running OpenRLHF instead,
    placed by `cluster` (nodes, gpus_per_node, vllm_engines, vllm_tensor_parallel, zero_stage)."""
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
    plan = _check_launch(TRAINER_KIND[kind], launch)
    _check_rollout(hyper)
    _check_backend(kind, backend, plan, cluster)
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
        "launch": plan.as_dict(),
        "backend": backend,
        "cluster": cluster or {},
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


def training_datasets(*, project: Project, kind: str) -> list[DatasetExport]:
    return list(
        DatasetExport.objects.filter(project=project, kind=DATA_KIND[kind], ready=True).order_by(
            "-version"
        )
    )
