"""PPO-ptx (InstructGPT section 3.5): our own trainer, since TRL removed PPO in 1.13 and never had
the pretraining-mix (ptx) term. The maths lives in `ppo_math`, the rollout in `ppo_rollout`, the
optimisation phase in `ppo_update`; this module loads the models and runs the loop.

Models: the policy (from the SFT model in `base_model`), a frozen reference copy of it, the frozen
reward model, and a value model initialised from the reward model: a separate network whose
sequence-classification head (`score`) is applied at every token instead of only the last one.
Dropout is off in all four. Sampling goes through `models_service.sampling`, the inference
service's own code.
"""

from __future__ import annotations

import math
import os
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from models_service.training.distributed import (
    ACCELERATE_STATE_DIR,
    any_rank,
    make_accelerator,
    mean_across,
    save_pretrained,
    shared_directory,
)
from models_service.training.hyperparameters import PpoHyperparameters
from models_service.training.lora import quantization_kwargs, save_for_serving, with_lora
from models_service.training.ppo_rollout import Models, Rollout, TokenValueModel, collect_rollout
from models_service.training.ppo_update import PtxStream, ppo_update, seeded_order
from models_service.training.protocol import EventStream, Outcome, TrainingSpec
from models_service.training.protocol import parse_hyperparameters as _parse
from models_service.training.rollout_server import RolloutServer
from models_service.training.runtime import (
    FINAL_MODEL_DIR,
    Device,
    checkpoint_path,
    disable_dropout,
    ensure_pad_embedding,
    load_tokenizer,
    load_training_state,
    peak_memory_mb,
    read_jsonl,
    save_training_state,
    seed_everything,
)
from models_service.training.scoring import load_reward_model

VALUE_DIR = "value"


def load_models(spec: TrainingSpec, device: Device, hp: PpoHyperparameters | None = None) -> Models:
    """Policy and value from the checkpoint when resuming, else from the SFT model and the RM;
    the reference is always the SFT model and, like the reward model, stays frozen. Dropout is
    off in all four (`disable_dropout`)."""
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    hp = hp or PpoHyperparameters()
    # A LoRA checkpoint holds merged weights: start from the bases, the state restores the rest.
    resume = spec.resume_from if not hp.lora_rank else None
    policy_dir = resume / FINAL_MODEL_DIR if resume else spec.base_model
    value_dir = resume / VALUE_DIR if resume else spec.reward_model_dir
    tokenizer = load_tokenizer(spec.base_model)
    policy = AutoModelForCausalLM.from_pretrained(
        policy_dir, dtype=torch.float32, **quantization_kwargs(hp)
    )
    ensure_pad_embedding(policy, tokenizer)
    reference = AutoModelForCausalLM.from_pretrained(spec.base_model, dtype=torch.float32)
    ensure_pad_embedding(reference, tokenizer)
    classifier = AutoModelForSequenceClassification.from_pretrained(
        value_dir, dtype=torch.float32, **quantization_kwargs(hp)
    )
    if not hasattr(classifier, "score"):
        raise ValueError(f"{value_dir}: the value model needs a `score` head (Llama-style RM)")
    reward, reward_tokenizer = load_reward_model(spec.reward_model_dir, device.name)
    for model in (policy, reference, classifier):
        disable_dropout(model)
    if hp.activation_checkpointing:
        policy.gradient_checkpointing_enable()
        classifier.gradient_checkpointing_enable()
    policy = with_lora(policy, hp, task_type="CAUSAL_LM")
    value = TokenValueModel(with_lora(classifier, hp, task_type="SEQ_CLS"))
    for frozen in (reference, reward):
        frozen.eval().requires_grad_(False)
    return Models(
        policy=policy.to(device.name),
        reference=torch.nn.Module.to(reference, device.name),
        value=value.to(device.name),
        reward=reward,
        tokenizer=tokenizer,
        reward_tokenizer=reward_tokenizer,
    )


def build_optimizer(models: Models, hp: PpoHyperparameters) -> torch.optim.Optimizer:
    """AdamW with the policy at `learning_rate` and the value model at `value_learning_rate`
    (the policy's rate when unset)."""
    value_lr = hp.learning_rate if hp.value_learning_rate is None else hp.value_learning_rate
    return torch.optim.AdamW(
        [
            {"params": list(models.policy.parameters()), "lr": hp.learning_rate},
            {"params": list(models.value.parameters()), "lr": value_lr},
        ]
    )


def rank_hyperparameters(hp: PpoHyperparameters, world: int) -> PpoHyperparameters:
    """This rank's share of the batch sizes (checked: every rank must run as many passes)."""
    if hp.temperature <= 0:
        raise ValueError("PPO samples from softmax(logits / T): temperature must be above 0")
    if hp.minibatch_size < 1 or hp.batch_size < 1:
        raise ValueError("batch_size and minibatch_size must be at least 1")
    sizes = {"batch_size": hp.batch_size, "minibatch_size": hp.minibatch_size}
    if hp.ptx_batch_size:
        sizes["ptx_batch_size"] = hp.ptx_batch_size
    uneven = [f"{name} {value}" for name, value in sizes.items() if value % world]
    if uneven:
        raise ValueError(f"{', '.join(uneven)} must be multiples of the {world} processes")
    return replace(
        hp,
        batch_size=hp.batch_size // world,
        minibatch_size=hp.minibatch_size // world,
        ptx_batch_size=hp.ptx_batch_size // world if hp.ptx_batch_size else hp.ptx_batch_size,
    )


def step_metrics(
    rollout: Rollout, diagnostics: dict[str, Any], losses: dict[str, float]
) -> dict[str, Any]:
    """The numbers of one PPO step. `kl` is per sequence: the summed per-token log-ratio to the
    reference, averaged over responses (RLOO reports the same quantity)."""
    numbers = {k: v for k, v in diagnostics.items() if isinstance(v, int | float)}
    return {
        **losses,
        **numbers,
        "reward": float(rollout.scores.mean()),
        "kl": float(rollout.kl.sum(dim=1).mean()),
        "response_length": float(rollout.action_mask.sum(dim=1).mean()),
        "episodes": rollout.input_ids.shape[0],
    }


def sample_rows(
    prompts: list[str], diagnostics: dict[str, Any], rollout: Rollout, count: int
) -> list[dict[str, Any]]:
    """The first `count` episodes of a step, for the samples table on the job page."""
    return [
        {
            "prompt": prompts[i],
            "response": diagnostics["texts"][i],
            "reward": float(rollout.scores[i]),
            "ended": bool(rollout.ended[i]),
        }
        for i in range(min(count, len(prompts)))
    ]


def train_ppo(spec: TrainingSpec, events: EventStream, device: Device) -> Outcome:
    """PPO-ptx over the prompts of `data.train` (`{prompt}` rows), with the ptx term on
    `data.pretrain`, on one process or data parallel over several (each rank samples and trains
    on its share of every batch). Checkpoints (policy, value, optimizer, scheduler, RNG, prompt
    and pretraining positions) every `checkpoint_every` steps and on cancel; sampling seeds are a
    function of (seed, step, row), so a resumed run samples what the uninterrupted one would."""
    from transformers import get_constant_schedule_with_warmup

    hp = _parse(PpoHyperparameters, spec.hyperparameters)
    prompts = [row["prompt"] for row in read_jsonl(spec.data.train)]
    if not prompts:
        raise ValueError(f"{spec.data.train} holds no prompts")
    pretrain = read_jsonl(spec.data.pretrain) if spec.data.pretrain else []
    if hp.gamma_ptx > 0 and not pretrain:
        raise ValueError("gamma_ptx > 0 needs data.pretrain (SFT or {text} rows)")
    steps_per_epoch = math.ceil(len(prompts) / hp.batch_size)
    total = hp.max_steps or steps_per_epoch * hp.epochs

    seed_everything(spec.seed)
    accelerator = make_accelerator(device, max_grad_norm=hp.max_grad_norm)
    rank, world = accelerator.process_index, accelerator.num_processes
    local_hp = rank_hyperparameters(hp, world)
    models = load_models(spec, device, hp)
    optimizer = build_optimizer(models, hp)
    models.policy, models.value, optimizer = accelerator.prepare(
        models.policy, models.value, optimizer
    )
    parameters = [*models.policy.parameters(), *models.value.parameters()]
    scheduler = get_constant_schedule_with_warmup(optimizer, hp.warmup_steps)
    step, ptx_position = 0, 0
    if spec.resume_from:
        state = load_training_state(spec.resume_from)
        accelerator.load_state(str(spec.resume_from / ACCELERATE_STATE_DIR))
        scheduler.load_state_dict(state["scheduler"])
        step, ptx_position = state["step"], state["ptx_position"]
        events.log(f"resumed PPO at step {step} of {total}")
    ptx = PtxStream(pretrain, seed=spec.seed, position=ptx_position) if pretrain else None
    metrics: dict[str, Any] = {}

    # Steps whose checkpoint this run holds already (the one it resumed from counts).
    resumed_here = spec.resume_from and spec.resume_from == checkpoint_path(spec.output_dir, step)
    saved: set[int] = {step} if resumed_here else set()

    def save_models(directory: Path) -> None:
        save_pretrained(accelerator, models.policy, directory / FINAL_MODEL_DIR, models.tokenizer)
        classifier = accelerator.unwrap_model(models.value).classifier
        if accelerator.is_main_process:
            save_for_serving(classifier, directory / VALUE_DIR)

    def save_checkpoint() -> None:
        target = checkpoint_path(spec.output_dir, step)
        if step not in saved:  # a cancel right after a periodic save: same step, same state
            with shared_directory(target, accelerator) as staging:
                save_models(staging)
                accelerator.save_state(str(staging / ACCELERATE_STATE_DIR))
                if accelerator.is_main_process:
                    position = ptx.position if ptx else 0
                    save_training_state(
                        staging,
                        {
                            "step": step,
                            "ptx_position": position,
                            "scheduler": scheduler.state_dict(),
                        },
                    )
            saved.add(step)
        events.checkpoint(path=target, step=step, metrics=metrics)

    def reduce(tensor):
        return accelerator.reduce(tensor, reduction="sum")

    server = RolloutServer.from_spec(spec.rollout) if hp.rollout_backend == "server" else None
    if hp.rollout_backend == "server" and server is None:
        raise ValueError("rollout_backend server needs a rollout server in the spec")
    synced_at: int | None = None

    while step < total:
        if any_rank(accelerator, spec.cancel_requested()):
            save_checkpoint()
            return Outcome(model_dir=None, metrics=metrics)
        epoch, position = divmod(step, steps_per_epoch)
        order = seeded_order(len(prompts), seed=spec.seed * 1_000_003, epoch=epoch)
        batch = [
            prompts[i] for i in order[position * hp.batch_size : (position + 1) * hp.batch_size]
        ]
        seeds = [(spec.seed * 1_000_003 + step) * 100_003 + i for i in range(len(batch))]
        mine, my_seeds = batch[rank::world], seeds[rank::world]
        if server is not None and (synced_at is None or step - synced_at >= hp.rollout_sync_every):
            if accelerator.is_main_process:
                server.publish(accelerator.unwrap_model(models.policy), models.tokenizer)
            accelerator.wait_for_everyone()
            synced_at = step
        rollout, diagnostics = collect_rollout(
            models,
            mine,
            seeds=my_seeds,
            hp=hp,
            device=device,
            reduce=reduce if world > 1 else None,
            server=server,
        )
        started = time.perf_counter()
        lr = scheduler.get_last_lr()[0]
        losses = ppo_update(
            models,
            rollout,
            optimizer=optimizer,
            parameters=parameters,
            hp=local_hp,
            ptx=ptx,
            device=device,
            backward=accelerator.backward,
            ranks=(rank, world),
        )
        scheduler.step()
        step += 1
        metrics = mean_across(accelerator, step_metrics(rollout, diagnostics, losses))
        metrics.update(
            lr=lr,
            episodes=len(batch),
            time_optimisation=time.perf_counter() - started,
            peak_memory_mb=peak_memory_mb(),
        )
        samples = None
        if hp.sample_every and (step % hp.sample_every == 0 or step == 1):
            samples = sample_rows(mine, diagnostics, rollout, hp.samples_shown)
        events.progress(step=step, total=total, metrics=metrics, samples=samples)
        if step % hp.checkpoint_every == 0 and step < total:
            save_checkpoint()

    with shared_directory(spec.output_dir / ".final", accelerator) as staging:
        save_models(staging)
    if accelerator.is_main_process:
        for name in (FINAL_MODEL_DIR, VALUE_DIR):
            target = spec.output_dir / name
            if target.exists():
                shutil.rmtree(target)
            os.rename(spec.output_dir / ".final" / name, target)
        shutil.rmtree(spec.output_dir / ".final")
    accelerator.wait_for_everyone()
    return Outcome(model_dir=spec.output_dir / FINAL_MODEL_DIR, metrics=metrics)
