"""The hyperparameters of each training kind, with their defaults (the paper's where they apply).

Torch-free, so that the web app can check a job's hyperparameters before queueing it. Every kind
takes LoRA settings: `lora_rank` 0 trains every weight, > 0 a LoRA adapter of that rank (PEFT)
on the linear layers named by `lora_target_modules`; `load_in_4bit` loads the frozen base in 4
bits (QLoRA; needs a GPU and bitsandbytes).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True)
class RewardHyperparameters:
    """InstructGPT's RM settings where they apply: one epoch, cosine schedule, 64 prompts per batch.

    `prompts_per_batch` None means min(64, ceil(prompts / 16)): the paper's 64 at scale, and at
    least ~16 optimisation steps on a small snapshot. A batch is split into forward passes of
    `prompts_per_forward` prompts (all K completions of a prompt stay in one), whose gradients
    accumulate; None sizes them by the memory left on the device.
    """

    learning_rate: float = 9e-6
    epochs: int = 1
    prompts_per_batch: int | None = None
    prompts_per_forward: int | None = None
    warmup_ratio: float = 0.0
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    max_length: int = 512
    checkpoint_every: int = 100
    activation_checkpointing: bool = False
    lora_rank: int = 0
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    lora_target_modules: str = "all-linear"
    load_in_4bit: bool = False


@dataclass(frozen=True)
class SftHyperparameters:
    """InstructGPT's SFT ran 16 epochs with cosine decay; our default is 2 epochs (its policy
    initialisation for PPO) with cosine decay. `batch_size` is per optimisation step, over every
    process and `gradient_accumulation_steps` forwards."""

    learning_rate: float = 1e-5
    epochs: float = 2.0
    batch_size: int = 8
    gradient_accumulation_steps: int = 1
    max_steps: int = -1
    warmup_ratio: float = 0.0
    weight_decay: float = 0.0
    max_length: int = 1024
    checkpoint_every: int = 100
    lr_scheduler_type: str = "cosine"
    activation_checkpointing: bool = False
    lora_rank: int = 0
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    lora_target_modules: str = "all-linear"
    load_in_4bit: bool = False


@dataclass(frozen=True)
class PpoHyperparameters:
    """Defaults from InstructGPT where they apply (beta 0.02, clip 0.2, gamma 1, lambda 0.95, one
    inner epoch); its batch 512 / minibatch 64 and gamma_ptx 27.8 are for scale: set them per job.
    gamma_ptx 0 is plain PPO. `batch_size` counts episodes (one sample per prompt) per step;
    `minibatch_size` episodes make one optimiser step, accumulated over `micro_batch_size` episodes
    per forward (None: the whole minibatch). `value_learning_rate` None: the policy's rate.
    `missing_eos_penalty` is subtracted from the reward of responses that hit the token limit.
    `sample_every` steps, `samples_shown` generations go to the job page's samples table.
    `rollout_backend` "server" samples on the rollout server (vLLM) that the site is configured
    with, reloading the policy's weights there every `rollout_sync_every` steps."""

    learning_rate: float = 1e-5
    value_learning_rate: float | None = None
    epochs: int = 1
    max_steps: int | None = None
    batch_size: int = 64
    minibatch_size: int = 16
    micro_batch_size: int | None = None
    ppo_epochs: int = 1
    max_new_tokens: int = 64
    temperature: float = 1.0
    beta: float = 0.02
    clip: float = 0.2
    value_clip: float = 0.2
    vf_coef: float = 0.1
    gamma: float = 1.0
    lam: float = 0.95
    gamma_ptx: float = 0.0
    ptx_batch_size: int | None = None
    whiten_advantages: bool = True
    missing_eos_penalty: float | None = None
    max_grad_norm: float = 1.0
    warmup_steps: int = 0
    max_length: int = 512
    checkpoint_every: int = 50
    sample_every: int = 10
    samples_shown: int = 4
    activation_checkpointing: bool = False
    rollout_backend: str = "local"
    rollout_sync_every: int = 1
    lora_rank: int = 0
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    lora_target_modules: str = "all-linear"
    load_in_4bit: bool = False


@dataclass(frozen=True)
class RlooHyperparameters:
    """`batch_size` counts completions per step (over every process and accumulation step) and
    must be a multiple of `num_generations` (samples per prompt, the leave-one-out group). beta is
    InstructGPT's KL coefficient."""

    learning_rate: float = 1e-6
    epochs: float = 1.0
    max_steps: int = -1
    batch_size: int = 8
    gradient_accumulation_steps: int = 1
    num_generations: int = 4
    max_completion_length: int = 64
    temperature: float = 1.0
    beta: float = 0.02
    max_length: int = 512
    checkpoint_every: int = 100
    activation_checkpointing: bool = False
    sample_every: int = 10
    samples_shown: int = 4
    lora_rank: int = 0
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    lora_target_modules: str = "all-linear"
    load_in_4bit: bool = False


BY_KIND: dict[str, type] = {
    "reward": RewardHyperparameters,
    "sft": SftHyperparameters,
    "ppo": PpoHyperparameters,
    "rloo": RlooHyperparameters,
}


def defaults(kind: str) -> dict[str, Any]:
    """{name: default} of a kind's hyperparameters, in declaration order."""
    return {field.name: field.default for field in fields(BY_KIND[kind])}
