"""PPO-ptx (InstructGPT section 3.5): our own trainer, since TRL removed PPO in 1.13 and never had
the pretraining-mix (ptx) term. The maths lives in `ppo_math`; this module runs the loop.

Models: the policy (from the SFT model in `base_model`), a frozen reference copy of it, the frozen
reward model, and a value model initialised from the reward model: a separate network whose
sequence-classification head (`score`) is applied at every token instead of only the last one.
Sampling goes through `models_service.sampling`, the inference service's own code. A response is
its sampled tokens plus EOS when the sample stopped there, so the policy also learns when to stop;
the reward model scores prompt + response text without EOS, as it was trained.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from models_service.sampling import encode_prompts, sample
from models_service.training import ppo_math
from models_service.training.hyperparameters import PpoHyperparameters
from models_service.training.protocol import EventStream, Outcome, TrainingSpec
from models_service.training.protocol import parse_hyperparameters as _parse
from models_service.training.reward import load_reward_model, pad_batch, score
from models_service.training.runtime import (
    FINAL_MODEL_DIR,
    Device,
    atomic_directory,
    capture_rng,
    checkpoint_path,
    ensure_pad_embedding,
    load_tokenizer,
    load_training_state,
    read_jsonl,
    restore_rng,
    save_training_state,
    seed_everything,
)

VALUE_DIR = "value"


@dataclass
class Rollout:
    """One batch of episodes, every per-token tensor aligned to predicted positions 1..L-1."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    action_mask: torch.Tensor
    logprobs: torch.Tensor
    values: torch.Tensor
    advantages: torch.Tensor
    returns: torch.Tensor
    scores: torch.Tensor
    kl: torch.Tensor


def token_logprobs(model, input_ids, attention_mask, *, bf16: bool) -> torch.Tensor:
    """log pi(x_p | x_<p) for p = 1..L-1, in float32."""
    with torch.autocast(input_ids.device.type, dtype=torch.bfloat16, enabled=bf16):
        logits = model(input_ids=input_ids, attention_mask=attention_mask).logits[:, :-1]
    return logits.float().log_softmax(-1).gather(-1, input_ids[:, 1:, None])[..., 0]


def token_values(value_model, input_ids, attention_mask, *, bf16: bool) -> torch.Tensor:
    """V(x_<p) for p = 1..L-1: the classification head applied to the hidden state at p-1."""
    base = getattr(value_model, value_model.base_model_prefix)
    with torch.autocast(input_ids.device.type, dtype=torch.bfloat16, enabled=bf16):
        hidden = base(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        values = value_model.score(hidden)
    return values.float()[..., 0][:, :-1]


def episode_tokens(
    prompt_ids: list[list[int]], response_ids: list[list[int]], pad_id: int, device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded batch of prompt+response and the mask of response positions (shifted by one,
    aligned with `token_logprobs`)."""
    sequences = [p + r for p, r in zip(prompt_ids, response_ids, strict=True)]
    batch = pad_batch(sequences, pad_id, device)
    action = torch.zeros_like(batch["input_ids"], dtype=torch.float32)
    for row, (prompt, response) in enumerate(zip(prompt_ids, response_ids, strict=True)):
        action[row, len(prompt) : len(prompt) + len(response)] = 1.0
    return batch["input_ids"], batch["attention_mask"], action[:, 1:]


@dataclass
class Models:
    policy: Any
    reference: Any
    value: Any
    reward: Any
    tokenizer: Any
    reward_tokenizer: Any


@torch.no_grad()
def collect_rollout(
    models: Models, prompts: Sequence[str], *, seeds: list[int], hp: PpoHyperparameters, device
) -> tuple[Rollout, dict[str, float]]:
    """Sample one response per prompt, score it, and compute KL, advantages and returns.

    Returns the rollout and the seconds spent in generation and in scoring (forward passes of
    policy, reference, value and reward model)."""
    start = time.perf_counter()
    models.policy.eval()
    rows = sample(
        models.policy,
        models.tokenizer,
        list(prompts),
        n=1,
        max_new_tokens=hp.max_new_tokens,
        temperature=hp.temperature,
        seeds=seeds,
    )
    generated = time.perf_counter()
    eos = models.tokenizer.eos_token_id
    responses = [
        [*row.token_ids, eos] if row.finish_reason == "stop" or not row.token_ids else row.token_ids
        for row in rows
    ]
    prompt_ids = encode_prompts(models.tokenizer, prompts)
    input_ids, attention_mask, action = episode_tokens(
        prompt_ids, responses, models.tokenizer.pad_token_id, device.name
    )
    logprobs = token_logprobs(models.policy, input_ids, attention_mask, bf16=device.bf16)
    ref_logprobs = token_logprobs(models.reference, input_ids, attention_mask, bf16=device.bf16)
    values = token_values(models.value, input_ids, attention_mask, bf16=device.bf16)
    scores = score(
        models.reward,
        models.reward_tokenizer,
        list(prompts),
        [row.text for row in rows],
        max_length=hp.max_length,
        bf16=device.bf16,
    ).to(device.name)
    kl = ppo_math.kl_per_token(logprobs, ref_logprobs) * action
    rewards = ppo_math.token_rewards(scores, kl, action, beta=hp.beta)
    advantages, returns = ppo_math.gae(rewards, values, action, gamma=hp.gamma, lam=hp.lam)
    if hp.whiten_advantages:
        advantages = ppo_math.whiten(advantages, action)
    rollout = Rollout(
        input_ids, attention_mask, action, logprobs, values, advantages, returns, scores, kl
    )
    return rollout, {
        "time_generation": generated - start,
        "time_scoring": time.perf_counter() - generated,
    }


def ptx_batch(
    tokenizer, rows: Sequence[dict[str, Any]], *, max_length: int, device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(input_ids, attention_mask, loss_mask) of pretraining rows: `{text}` counts every token,
    `{prompt, completion}` only the completion and EOS (the SFT log-likelihood)."""
    sequences, masks = [], []
    for row in rows:
        if "text" in row:
            ids = [*tokenizer(row["text"]).input_ids, tokenizer.eos_token_id]
            mask = [0] + [1] * (len(ids) - 1)
        else:
            prompt_len = len(tokenizer(row["prompt"]).input_ids)
            ids = list(tokenizer(row["prompt"] + row["completion"]).input_ids)
            ids.append(tokenizer.eos_token_id)
            mask = [0] * prompt_len + [1] * (len(ids) - prompt_len)
        sequences.append(ids[:max_length])
        masks.append(mask[:max_length])
    batch = pad_batch(sequences, tokenizer.pad_token_id, device)
    loss_mask = torch.zeros_like(batch["input_ids"])
    for row, mask in enumerate(masks):
        loss_mask[row, : len(mask)] = torch.tensor(mask)
    return batch["input_ids"], batch["attention_mask"], loss_mask


def _order(count: int, *, seed: int, epoch: int) -> list[int]:
    return torch.randperm(count, generator=torch.Generator().manual_seed(seed + epoch)).tolist()


class PtxStream:
    """Pretraining rows in a seeded order per pass, resumable from a position."""

    def __init__(self, rows: list[dict[str, Any]], *, seed: int, position: int = 0) -> None:
        self.rows, self.seed, self.position = rows, seed, position
        self._epoch, self._order = -1, []

    def take(self, count: int) -> list[dict[str, Any]]:
        taken = []
        for _ in range(count):
            epoch, index = divmod(self.position, len(self.rows))
            if epoch != self._epoch:
                self._epoch, self._order = (
                    epoch,
                    _order(len(self.rows), seed=self.seed, epoch=epoch),
                )
            taken.append(self.rows[self._order[index]])
            self.position += 1
        return taken


def ppo_update(
    models: Models,
    rollout: Rollout,
    *,
    optimizer,
    parameters: list[torch.nn.Parameter],
    hp: PpoHyperparameters,
    ptx: PtxStream | None,
    device: Device,
) -> dict[str, float]:
    """`ppo_epochs` passes over the rollout in shuffled minibatches (torch's global RNG, which a
    checkpoint restores); each minibatch's loss is policy + vf_coef * value + gamma_ptx * ptx."""
    models.policy.train()
    models.value.train()
    totals: dict[str, list[float]] = {k: [] for k in ("policy", "value", "clip", "ptx", "loss")}
    size = rollout.input_ids.shape[0]
    for _ in range(hp.ppo_epochs):
        for start in range(0, size, hp.minibatch_size):
            idx = torch.randperm(size)[start : start + hp.minibatch_size].to(device.name)
            ids, attention, mask = (
                rollout.input_ids[idx],
                rollout.attention_mask[idx],
                rollout.action_mask[idx],
            )
            logprobs = token_logprobs(models.policy, ids, attention, bf16=device.bf16)
            values = token_values(models.value, ids, attention, bf16=device.bf16)
            policy_loss, clip_fraction = ppo_math.clipped_policy_loss(
                logprobs, rollout.logprobs[idx], rollout.advantages[idx], mask, clip=hp.clip
            )
            value_loss = ppo_math.clipped_value_loss(
                values, rollout.values[idx], rollout.returns[idx], mask, clip=hp.value_clip
            )
            loss = policy_loss + hp.vf_coef * value_loss
            if ptx is not None:
                rows = ptx.take(hp.ptx_batch_size or hp.minibatch_size)
                p_ids, p_attention, p_mask = ptx_batch(
                    models.tokenizer, rows, max_length=hp.max_length, device=device.name
                )
                with (
                    torch.set_grad_enabled(hp.gamma_ptx > 0),
                    torch.autocast(device.name, dtype=torch.bfloat16, enabled=device.bf16),
                ):
                    logits = models.policy(input_ids=p_ids, attention_mask=p_attention).logits
                pretrain_loss = ppo_math.ptx_loss(logits, p_ids, p_mask)
                if hp.gamma_ptx > 0:
                    loss = loss + hp.gamma_ptx * pretrain_loss
                totals["ptx"].append(float(pretrain_loss.detach()))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(parameters, hp.max_grad_norm)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            totals["policy"].append(float(policy_loss.detach()))
            totals["value"].append(float(value_loss.detach()))
            totals["clip"].append(float(clip_fraction.detach()))
            totals["loss"].append(float(loss.detach()))
    mean = {k: (sum(v) / len(v) if v else float("nan")) for k, v in totals.items()}
    return {
        "loss": mean["loss"],
        "policy_loss": mean["policy"],
        "value_loss": mean["value"],
        "clip_fraction": mean["clip"],
        "ptx_loss": mean["ptx"],
    }


def load_models(spec: TrainingSpec, device: Device) -> Models:
    """Policy and value from the checkpoint when resuming, else from the SFT model and the RM;
    the reference is always the SFT model and, like the reward model, stays frozen."""
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    policy_dir = spec.resume_from / FINAL_MODEL_DIR if spec.resume_from else spec.base_model
    value_dir = spec.resume_from / VALUE_DIR if spec.resume_from else spec.reward_model
    tokenizer = load_tokenizer(spec.base_model)
    policy = AutoModelForCausalLM.from_pretrained(policy_dir, dtype=torch.float32)
    ensure_pad_embedding(policy, tokenizer)
    reference = AutoModelForCausalLM.from_pretrained(spec.base_model, dtype=torch.float32)
    ensure_pad_embedding(reference, tokenizer)
    value = AutoModelForSequenceClassification.from_pretrained(value_dir, dtype=torch.float32)
    if not hasattr(value, "score"):
        raise ValueError(f"{value_dir}: the value model needs a `score` head (Llama-style RM)")
    reward, reward_tokenizer = load_reward_model(spec.reward_model, device.name)
    for frozen in (reference, reward):
        frozen.eval().requires_grad_(False)
    return Models(
        policy=policy.to(device.name),
        reference=reference.to(device.name),
        value=value.to(device.name),
        reward=reward,
        tokenizer=tokenizer,
        reward_tokenizer=reward_tokenizer,
    )


def train_ppo(spec: TrainingSpec, events: EventStream, device: Device) -> Outcome:
    """PPO-ptx over the prompts of `data.train` (`{prompt}` rows), with the ptx term on
    `data.pretrain`. Checkpoints (policy, value, optimizer, scheduler, RNG, prompt and pretraining
    positions) every `checkpoint_every` steps and on cancel; sampling seeds are a function of
    (seed, step, row), so a resumed run samples what the uninterrupted one would have."""
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
    models = load_models(spec, device)
    parameters = [*models.policy.parameters(), *models.value.parameters()]
    optimizer = torch.optim.AdamW(parameters, lr=hp.learning_rate)
    scheduler = get_constant_schedule_with_warmup(optimizer, hp.warmup_steps)
    step, ptx_position = 0, 0
    if spec.resume_from:
        state = load_training_state(spec.resume_from)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        restore_rng(state["rng"])
        step, ptx_position = state["step"], state["ptx_position"]
        events.log(f"resumed PPO at step {step} of {total}")
    ptx = PtxStream(pretrain, seed=spec.seed, position=ptx_position) if pretrain else None
    metrics: dict[str, Any] = {}

    # Steps whose checkpoint this run holds already (the one it resumed from counts).
    resumed_here = spec.resume_from and spec.resume_from == checkpoint_path(spec.output_dir, step)
    saved: set[int] = {step} if resumed_here else set()

    def save_checkpoint() -> None:
        target = checkpoint_path(spec.output_dir, step)
        if step not in saved:  # a cancel right after a periodic save: same step, same state
            with atomic_directory(target) as staging:
                models.policy.save_pretrained(staging / FINAL_MODEL_DIR)
                models.tokenizer.save_pretrained(staging / FINAL_MODEL_DIR)
                models.value.save_pretrained(staging / VALUE_DIR)
                save_training_state(
                    staging,
                    {
                        "step": step,
                        "ptx_position": ptx.position if ptx else 0,
                        "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(),
                        "rng": capture_rng(),
                    },
                )
            saved.add(step)
        events.checkpoint(path=target, step=step, metrics=metrics)

    while step < total:
        if spec.cancel_requested():
            save_checkpoint()
            return Outcome(model_dir=None, metrics=metrics)
        epoch, position = divmod(step, steps_per_epoch)
        order = _order(len(prompts), seed=spec.seed * 1_000_003, epoch=epoch)
        batch = [
            prompts[i] for i in order[position * hp.batch_size : (position + 1) * hp.batch_size]
        ]
        seeds = [(spec.seed * 1_000_003 + step) * 100_003 + i for i in range(len(batch))]
        rollout, timings = collect_rollout(models, batch, seeds=seeds, hp=hp, device=device)
        started = time.perf_counter()
        lr = scheduler.get_last_lr()[0]
        losses = ppo_update(
            models,
            rollout,
            optimizer=optimizer,
            parameters=parameters,
            hp=hp,
            ptx=ptx,
            device=device,
        )
        scheduler.step()
        step += 1
        metrics = {
            **losses,
            "lr": lr,
            "reward": float(rollout.scores.mean()),
            "kl": float(rollout.kl.sum(dim=1).mean()),
            "response_length": float(rollout.action_mask.sum(dim=1).mean()),
            "episodes": len(batch),
            **timings,
            "time_optimisation": time.perf_counter() - started,
        }
        events.progress(step=step, total=total, metrics=metrics)
        if step % hp.checkpoint_every == 0 and step < total:
            save_checkpoint()

    target = spec.output_dir / FINAL_MODEL_DIR
    with atomic_directory(target) as staging:
        models.policy.save_pretrained(staging)
        models.tokenizer.save_pretrained(staging)
    with atomic_directory(spec.output_dir / VALUE_DIR) as staging:
        models.value.save_pretrained(staging)
    return Outcome(model_dir=target, metrics=metrics)
