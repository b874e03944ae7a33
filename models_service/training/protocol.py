"""The runner <-> trainer protocol: the job spec (JSON) and the events written back (JSON lines).

Every event is one JSON object on one line of the event stream, flushed at once, with an `event`
field: `progress`, `checkpoint`, `log`, `done`, `error`, `cancelled`, or `rank` (a process of a
multi-process job announcing itself). Metric values that are not
finite numbers are written as null, so every line is strict JSON.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TextIO, TypeVar

Kind = Literal["sft", "reward", "ppo", "rloo"]
KINDS: tuple[str, ...] = ("sft", "reward", "ppo", "rloo")


class SpecError(ValueError):
    """The job spec is malformed; the message says which field and what is expected."""


@dataclass(frozen=True)
class DataPaths:
    """JSONL files of one job; only `train` is always required."""

    train: Path
    valid: Path | None = None
    demonstrations: Path | None = None
    pretrain: Path | None = None


@dataclass(frozen=True)
class TrainingSpec:
    """One training job, as the runner writes it to SPEC.json."""

    kind: Kind
    base_model: Path
    output_dir: Path
    data: DataPaths
    hyperparameters: dict[str, Any]
    seed: int = 0
    resume_from: Path | None = None
    cancel_file: Path | None = None
    reward_model: Path | None = None

    @property
    def reward_model_dir(self) -> Path:
        """The reward model of a PPO or RLOO spec (parsing refuses those without one)."""
        if self.reward_model is None:
            raise SpecError(f"kind {self.kind} has no reward_model")
        return self.reward_model

    rollout: dict[str, Any] | None = None  # an OpenAI-compatible rollout server (`rollout_server`)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> TrainingSpec:
        """Validate and convert; raises SpecError naming the first bad field."""
        if not isinstance(raw, dict):
            raise SpecError("the spec must be a JSON object")
        kind = raw.get("kind")
        if kind not in KINDS:
            raise SpecError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}")
        for name in ("base_model", "output_dir"):
            if not isinstance(raw.get(name), str) or not raw[name]:
                raise SpecError(f"{name} must be a non-empty path string")
        data = raw.get("data")
        if not isinstance(data, dict) or not isinstance(data.get("train"), str):
            raise SpecError("data.train must be the path of a JSONL file")
        hyperparameters = raw.get("hyperparameters") or {}
        if not isinstance(hyperparameters, dict):
            raise SpecError("hyperparameters must be a JSON object")
        seed = raw.get("seed", 0)
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise SpecError(f"seed must be an integer; got {seed!r}")
        if kind in ("ppo", "rloo") and not raw.get("reward_model"):
            raise SpecError(f"kind {kind} needs reward_model (a reward model directory)")
        rollout = raw.get("rollout")
        if rollout is not None and not (
            isinstance(rollout, dict) and {"url", "model", "weights_dir"} <= set(rollout)
        ):
            raise SpecError("rollout must be null or an object with url, model and weights_dir")
        return cls(
            kind=kind,
            base_model=Path(raw["base_model"]),
            output_dir=Path(raw["output_dir"]),
            data=DataPaths(
                train=Path(data["train"]),
                valid=_optional_path(data.get("valid")),
                demonstrations=_optional_path(data.get("demonstrations")),
                pretrain=_optional_path(data.get("pretrain")),
            ),
            hyperparameters=hyperparameters,
            seed=seed,
            resume_from=_optional_path(raw.get("resume_from")),
            cancel_file=_optional_path(raw.get("cancel_file")),
            reward_model=_optional_path(raw.get("reward_model")),
            rollout=rollout,
        )

    def cancel_requested(self) -> bool:
        """True once the runner has created the cancel file."""
        return self.cancel_file is not None and self.cancel_file.exists()


def _optional_path(value: Any) -> Path | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise SpecError(f"expected a path string or null; got {value!r}")
    return Path(value)


Hyper = TypeVar("Hyper")


def parse_hyperparameters(cls: type[Hyper], raw: dict[str, Any]) -> Hyper:
    """Build the dataclass `cls` from `raw`; unknown keys raise SpecError listing the known ones."""
    fields = {field.name: field for field in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise SpecError(
            f"unknown hyperparameters {', '.join(unknown)}; known: {', '.join(sorted(fields))}"
        )
    return cls(**raw)


def clean_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """Metrics as plain JSON values: numbers become floats (ints stay ints), non-finite -> null."""
    cleaned: dict[str, Any] = {}
    for key, value in metrics.items():
        if hasattr(value, "item"):
            value = value.item()
        if isinstance(value, float) and not math.isfinite(value):
            value = None
        cleaned[key] = value
    return cleaned


class EventStream:
    """Writes protocol events, one JSON object per line, flushed after each (one write each, so
    the lines of several ranks sharing a pipe do not mix).

    Under a launcher every rank writes to the same stream: each announces itself once (`rank`),
    only the main rank (`rank` 0) reports progress, checkpoints, logs and the outcome, and any
    rank reports its own error (prefixed with its rank when there are several)."""

    def __init__(self, stream: TextIO, *, rank: int = 0, world_size: int = 1) -> None:
        self.stream = stream
        self.rank, self.world_size = rank, world_size

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def emit(self, event: str, **fields: Any) -> dict[str, Any]:
        record = {"event": event, **fields}
        if self.is_main or event in ("rank", "error"):
            self.stream.write(json.dumps(record, allow_nan=False) + "\n")
            self.stream.flush()
        return record

    def announce(self, *, pid: int, host: str) -> None:
        """This rank's process, so that the runner can follow every rank."""
        self.emit("rank", rank=self.rank, world_size=self.world_size, pid=pid, host=host)

    def progress(
        self,
        *,
        step: int,
        total: int,
        metrics: dict[str, Any],
        samples: list[dict[str, Any]] | None = None,
    ) -> None:
        """One step's metrics and, every few steps, a table of sample generations (rows of
        prompt, response, reward, ended)."""
        fields: dict[str, Any] = {"metrics": clean_metrics(metrics)}
        if samples:
            fields["samples"] = [clean_metrics(row) for row in samples]
        self.emit("progress", step=step, total=total, **fields)

    def checkpoint(self, *, path: Path, step: int, metrics: dict[str, Any]) -> None:
        self.emit("checkpoint", path=str(path), step=step, metrics=clean_metrics(metrics))

    def log(self, message: str) -> None:
        self.emit("log", message=message)

    def done(self, *, model_dir: Path, metrics: dict[str, Any]) -> None:
        self.emit("done", model_dir=str(model_dir), metrics=clean_metrics(metrics))

    def error(self, message: str) -> None:
        if self.world_size > 1:
            self.emit("error", message=f"rank {self.rank}: {message}", rank=self.rank)
        else:
            self.emit("error", message=message)

    def cancelled(self) -> None:
        self.emit("cancelled")


@dataclass(frozen=True)
class Outcome:
    """What a trainer returns: the final model directory, or None when it stopped on cancel."""

    model_dir: Path | None
    metrics: dict[str, Any]

    @property
    def cancelled(self) -> bool:
        return self.model_dir is None
