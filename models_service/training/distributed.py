"""What our own loops (reward model, PPO) need to run on several processes through accelerate:
the Accelerator, decisions every rank takes together, sums across ranks, shared checkpoints.

With one process (no launcher) the same code runs: accelerate's `DistributedType.NO`.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from models_service.training.runtime import Device

ACCELERATE_STATE_DIR = "state"


def make_accelerator(device: Device, *, max_grad_norm: float = 1.0, micro_batch: int = 1):
    """An Accelerator for this process: gloo on CPU, NCCL on GPUs. Precision stays with the
    trainers (bf16 autocast where the device has it). DeepSpeed's "auto" values, which only
    Trainer fills, are set here: one micro-batch per backward as our loops accumulate themselves."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    accelerator = Accelerator(cpu=not device.is_cuda)
    plugin = getattr(AcceleratorState(), "deepspeed_plugin", None)
    if plugin is not None:
        config = plugin.deepspeed_config
        for key, value in (
            ("train_micro_batch_size_per_gpu", micro_batch),
            ("gradient_accumulation_steps", 1),
            ("gradient_clipping", max_grad_norm),
            ("train_batch_size", micro_batch * accelerator.num_processes),
        ):
            if config.get(key) == "auto":
                config[key] = value
        if config.get("bf16", {}).get("enabled") == "auto":
            config["bf16"]["enabled"] = device.bf16
    return accelerator


def any_rank(accelerator, flag: bool) -> bool:
    """True on every rank when it is true on any: ranks that decide apart (a cancel file seen
    between two steps) would wait on each other's collectives forever."""
    if accelerator.num_processes == 1:
        return flag
    import torch

    value = torch.tensor([1.0 if flag else 0.0], device=accelerator.device)
    return bool(accelerator.reduce(value, reduction="sum").item() > 0)


def sum_across(accelerator, values: Sequence[float]) -> list[float]:
    """Element-wise sums of `values` over the ranks (the values themselves with one process)."""
    if accelerator.num_processes == 1:
        return [float(v) for v in values]
    import torch

    tensor = torch.tensor([float(v) for v in values], device=accelerator.device)
    return accelerator.reduce(tensor, reduction="sum").tolist()


def mean_across(accelerator, metrics: dict[str, Any]) -> dict[str, Any]:
    """The numeric entries of `metrics` averaged over the ranks (NaN stays NaN)."""
    names = [
        k for k, v in metrics.items() if isinstance(v, int | float) and not isinstance(v, bool)
    ]
    if accelerator.num_processes == 1 or not names:
        return metrics
    sums = sum_across(accelerator, [metrics[k] for k in names])
    return {
        **metrics,
        **{k: s / accelerator.num_processes for k, s in zip(names, sums, strict=True)},
    }


@contextmanager
def shared_directory(target: Path, accelerator) -> Iterator[Path]:
    """`runtime.atomic_directory` for every rank at once: one staging directory beside `target`
    that all ranks write into (each its own shard or RNG state), renamed by the main rank once
    every rank is done. A kill leaves only the hidden staging directory."""
    staging = target.parent / f".staging-{target.name}"
    if accelerator.is_main_process:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
    accelerator.wait_for_everyone()
    try:
        yield staging
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            if target.exists():
                shutil.rmtree(target)
            os.rename(staging, target)
        accelerator.wait_for_everyone()
    finally:
        if accelerator.is_main_process:
            shutil.rmtree(staging, ignore_errors=True)


def save_pretrained(accelerator, model, directory: Path, tokenizer=None) -> None:
    """The full model (gathered from its shards under FSDP / ZeRO-3), written by the main rank;
    a LoRA model as its adapter and merged (`lora.save_for_serving`)."""
    from models_service.training.lora import is_adapted, save_for_serving

    plain = accelerator.unwrap_model(model)
    if is_adapted(plain):
        if accelerator.is_main_process:
            save_for_serving(plain, directory, tokenizer)
        return
    state = accelerator.get_state_dict(model)
    if accelerator.is_main_process:
        plain.save_pretrained(directory, state_dict=state)
        if tokenizer is not None:
            tokenizer.save_pretrained(directory)


def rank_slice(items: Sequence[Any], accelerator) -> list[Any]:
    """This rank's share of a global batch: items rank, rank + W, rank + 2W, ..."""
    return list(items[accelerator.process_index :: accelerator.num_processes])
