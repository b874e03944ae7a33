"""Glue between Hugging Face Trainers (TRL's SFT and RLOO) and the runner protocol."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from models_service.training.protocol import EventStream, TrainingSpec
from models_service.training.runtime import peak_memory_mb


class ProtocolCallback(TrainerCallback):
    """Turns Trainer callbacks into protocol events and honours the cancel file.

    Progress is emitted from `on_log` (logging_steps=1): the step's loss reaches callbacks only
    there, right after `on_step_end`. `on_step_end` checks the cancel file every step and, when it
    exists, asks the trainer to save and stop; with several processes they decide together.
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
        if _on_any_rank(self.spec.cancel_requested()):
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
        self.metrics.update(numbers, peak_memory_mb=peak_memory_mb())
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


def _on_any_rank(flag: bool) -> bool:
    """True on every process when true on any (ranks that stop apart would wait forever)."""
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return flag
    device = "cuda" if dist.get_backend() == "nccl" else "cpu"
    value = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(value)
    return bool(value.item() > 0)


def atomic_trainer_class(base: type) -> type:
    """A subclass of the Trainer class `base` whose checkpoints appear only complete: written
    under a hidden staging directory, then renamed to `checkpoint-N` (Trainer writes in place)."""

    class AtomicTrainer(base):
        def _save_checkpoint(self, model, trial) -> None:
            # Every rank writes into one staging directory (the main rank the model, each rank
            # its RNG state); the main rank renames it once all are done.
            run_dir = Path(self.args.output_dir)
            staging_root = run_dir / ".staging"
            main = self.accelerator.is_main_process
            if main:
                shutil.rmtree(staging_root, ignore_errors=True)
            self.accelerator.wait_for_everyone()
            name = f"checkpoint-{self.state.global_step}"
            self.args.output_dir = str(staging_root)
            try:
                super()._save_checkpoint(model, trial)
            finally:
                self.args.output_dir = str(run_dir)
            self.accelerator.wait_for_everyone()
            if main:
                target = run_dir / name
                if target.exists():
                    shutil.rmtree(target)
                os.rename(staging_root / name, target)
                shutil.rmtree(staging_root, ignore_errors=True)
            self.accelerator.wait_for_everyone()

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


def save_final_model(trainer, target: Path, tokenizer) -> None:
    """The trained model in `target`, written once however many processes: every rank takes part
    (FSDP / ZeRO-3 gather the weights), the main rank writes. A LoRA model is saved as its
    adapter and merged (`lora.save_for_serving`)."""
    from models_service.training.distributed import shared_directory
    from models_service.training.lora import is_adapted, save_for_serving

    accelerator = trainer.accelerator
    with shared_directory(target, accelerator) as staging:
        model = accelerator.unwrap_model(trainer.model)
        if is_adapted(model):
            if accelerator.is_main_process:
                save_for_serving(model, staging, tokenizer)
        else:
            trainer.save_model(str(staging))
            if accelerator.is_main_process:
                tokenizer.save_pretrained(staging)
