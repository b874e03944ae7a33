"""Glue between Hugging Face Trainers (TRL's SFT and RLOO) and the runner protocol."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from models_service.training.protocol import EventStream, TrainingSpec


class ProtocolCallback(TrainerCallback):
    """Turns Trainer callbacks into protocol events and honours the cancel file.

    Progress is emitted from `on_log` (logging_steps=1): the step's loss reaches callbacks only
    there, right after `on_step_end`. `on_step_end` checks the cancel file every step and, when it
    exists, asks the trainer to save and stop.
    """

    def __init__(
        self,
        spec: TrainingSpec,
        events: EventStream,
        *,
        renames: dict[str, str] | None = None,
        samples: Callable[[], list[dict[str, Any]]] | None = None,
        sample_every: int = 0,
    ) -> None:
        """`renames` maps a Trainer's metric names to ours (so PPO's and RLOO's charts share
        names); `samples` gives the latest sample generations, sent every `sample_every` steps."""
        self.spec = spec
        self.events = events
        self.renames = renames or {}
        self.samples = samples
        self.sample_every = sample_every
        self.cancelled = False
        self.metrics: dict[str, Any] = {}

    def on_step_end(self, args, state, control, **kwargs) -> Any:
        if self.spec.cancel_requested():
            self.cancelled = True
            control.should_save = True
            control.should_training_stop = True
        return control

    def on_log(self, args, state, control, logs=None, **kwargs) -> Any:
        logs = logs or {}
        if "loss" not in logs:
            return control
        numbers = {self.renames.get(k, k): v for k, v in logs.items() if isinstance(v, int | float)}
        self.metrics = {"loss": numbers.pop("loss"), "lr": numbers.pop("learning_rate", None)}
        self.metrics.update(numbers)
        step = state.global_step
        samples = None
        if self.samples and self.sample_every and (step == 1 or step % self.sample_every == 0):
            samples = self.samples()
        self.events.progress(
            step=step, total=state.max_steps, metrics=self.metrics, samples=samples
        )
        return control

    def on_save(self, args, state, control, **kwargs) -> Any:
        path = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        self.events.checkpoint(path=path, step=state.global_step, metrics=self.metrics)
        return control


def atomic_trainer_class(base: type) -> type:
    """A subclass of the Trainer class `base` whose checkpoints appear only complete: written
    under a hidden staging directory, then renamed to `checkpoint-N` (Trainer writes in place)."""

    class AtomicTrainer(base):
        def _save_checkpoint(self, model, trial) -> None:
            run_dir = Path(self.args.output_dir)
            staging_root = run_dir / f".staging-{os.getpid()}"
            shutil.rmtree(staging_root, ignore_errors=True)
            name = f"checkpoint-{self.state.global_step}"
            self.args.output_dir = str(staging_root)
            try:
                super()._save_checkpoint(model, trial)
            finally:
                self.args.output_dir = str(run_dir)
            target = run_dir / name
            if target.exists():
                shutil.rmtree(target)
            os.rename(staging_root / name, target)
            shutil.rmtree(staging_root, ignore_errors=True)

    return AtomicTrainer


def protocol_trainer_args(
    spec: TrainingSpec, device: Any, *, checkpoint_every: int, activation_checkpointing: bool
) -> dict[str, Any]:
    """The Trainer arguments every protocol job shares: a progress event per step (logging every
    step), checkpoints every N steps, the job's seed, the device's precision, no reporting."""
    return {
        "logging_steps": 1,
        "save_strategy": "steps",
        "save_steps": checkpoint_every,
        "seed": spec.seed,
        "data_seed": spec.seed,
        "bf16": device.bf16,
        "activation_checkpointing": activation_checkpointing,
        "use_cpu": not device.is_cuda,
        "report_to": "none",
        "disable_tqdm": True,
    }
