"""Reward model training with InstructGPT's K-way batching, and scoring with the trained model.

Why our own trainer: TRL's RewardTrainer takes (chosen, rejected) pairs, so the K completions of a
prompt are encoded K-1 times each and the C(K,2) comparisons are shuffled apart; InstructGPT runs
the K completions of a prompt in one forward pass and takes the loss over all its pairs
(reference/instructgpt.md section 5; bench/reward_model.py measures the difference).

Texts are encoded by `scoring.encode` both for training and for scoring (see `scoring` for the
form and the window, which the trained model carries in its config).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from models_service.training.hyperparameters import RewardHyperparameters
from models_service.training.protocol import EventStream, Outcome, TrainingSpec
from models_service.training.protocol import parse_hyperparameters as _parse
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
from models_service.training.scoring import (
    BIAS_KEY,
    MAX_LENGTH_KEY,
    encode,
    pad_batch,
    raw_rewards,
    score,
)


@dataclass(frozen=True)
class RankingExample:
    """One prompt, its K completions, and rank groups (best first; a group of several is a tie)."""

    prompt: str
    completions: tuple[str, ...]
    rank_groups: tuple[tuple[int, ...], ...]


def ranking_from_row(row: dict[str, Any]) -> RankingExample:
    """A K-way ranking row, or a TRL pair row `{prompt, chosen, rejected}` as a K=2 ranking."""
    if "chosen" in row and "rejected" in row:
        return RankingExample(
            prompt=row.get("prompt", ""),
            completions=(row["chosen"], row["rejected"]),
            rank_groups=((0,), (1,)),
        )
    completions = tuple(row["completions"])
    groups = tuple(tuple(int(i) for i in group) for group in row["rank_groups"])
    flat = [i for group in groups for i in group]
    if len(set(flat)) != len(flat) or any(not 0 <= i < len(completions) for i in flat):
        raise ValueError(
            f"rank_groups {row['rank_groups']} must name distinct indices below {len(completions)}"
        )
    return RankingExample(prompt=row["prompt"], completions=completions, rank_groups=groups)


def ranking_pairs(rank_groups: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """(winner, loser) index tensors of every non-tied pair: each member of an earlier group beats
    each member of every later group; members of one group (ties) form no pair."""
    winners: list[int] = []
    losers: list[int] = []
    for position, group in enumerate(rank_groups):
        for later in rank_groups[position + 1 :]:
            for winner in group:
                for loser in later:
                    winners.append(int(winner))
                    losers.append(int(loser))
    return torch.tensor(winners, dtype=torch.long), torch.tensor(losers, dtype=torch.long)


def kway_loss(rewards: torch.Tensor, pairs: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Mean over the prompt's pairs of -log sigmoid(r_winner - r_loser), from K rewards.

    `rewards` holds the K completions' scores of ONE prompt (one forward pass); the loss covers all
    its C(K,2) non-tied comparisons. (TRL has no K-way loss: RewardTrainer encodes each completion
    K-1 times.) Zero pairs give a zero loss that still carries a gradient graph.
    """
    winners, losers = pairs
    if winners.numel() == 0:
        return rewards.sum() * 0.0
    return -F.logsigmoid(rewards[winners] - rewards[losers]).mean()


def ranking_accuracy(
    model,
    tokenizer,
    examples: Sequence[RankingExample],
    *,
    max_length: int = 512,
    bf16: bool = False,
) -> tuple[float, int]:
    """(share of non-tied pairs whose winner scores strictly higher, number of such pairs)."""
    right = total = 0
    for example in examples:
        rewards = score(
            model,
            tokenizer,
            [example.prompt] * len(example.completions),
            example.completions,
            max_length=max_length,
            bf16=bf16,
        )
        winners, losers = ranking_pairs(example.rank_groups)
        right += int((rewards[winners] > rewards[losers]).sum())
        total += int(winners.numel())
    return (right / total if total else float("nan")), total


@dataclass(frozen=True)
class GroupLosses:
    """Result of one grouped forward pass: `losses` holds each prompt's `kway_loss` (prompts with
    at least one non-tied pair), `right` the pairs ordered right, `pairs` the non-tied pairs,
    `tokens` the real (non-pad) tokens encoded."""

    losses: torch.Tensor
    right: int
    pairs: int
    tokens: int


def prompt_losses(
    model, tokenizer, examples: Sequence[RankingExample], *, max_length: int, bf16: bool = False
) -> GroupLosses:
    """One forward pass over all K completions of every example, then each prompt's K-way loss."""
    device = next(model.parameters()).device
    sequences, offsets = [], []
    for example in examples:
        offsets.append(len(sequences))
        sequences += [
            encode(tokenizer, example.prompt, c, max_length=max_length) for c in example.completions
        ]
    rewards = raw_rewards(model, pad_batch(sequences, tokenizer.pad_token_id, device), bf16=bf16)
    losses, right, total = [], 0, 0
    for example, offset in zip(examples, offsets, strict=True):
        winners, losers = (t.to(device) for t in ranking_pairs(example.rank_groups))
        if winners.numel() == 0:
            continue
        own = rewards[offset : offset + len(example.completions)]
        losses.append(kway_loss(own, (winners, losers)))
        right += int((own[winners] > own[losers]).sum())
        total += int(winners.numel())
    stacked = torch.stack(losses) if losses else rewards.new_zeros(0)
    return GroupLosses(stacked, right, total, sum(len(s) for s in sequences))


def train_reward(spec: TrainingSpec, events: EventStream, device: Device) -> Outcome:
    """Train, checkpoint every `checkpoint_every` steps and on cancel, then bias and save.

    The loss of a batch is the unweighted mean over its prompts (those with at least one non-tied
    pair) of each prompt's mean pairwise loss. Resuming from a checkpoint restores model, optimizer,
    scheduler, RNG and data position (the step; each epoch's order is a function of seed and epoch),
    so a resumed run repeats the uninterrupted one up to floating-point nondeterminism.
    """
    from transformers import AutoModelForSequenceClassification, get_cosine_schedule_with_warmup

    hp = _parse(RewardHyperparameters, spec.hyperparameters)
    train = [ranking_from_row(row) for row in read_jsonl(spec.data.train)]
    valid = (
        [ranking_from_row(row) for row in read_jsonl(spec.data.valid)] if spec.data.valid else []
    )
    if not train:
        raise ValueError(f"{spec.data.train} holds no rankings")
    per_batch = hp.prompts_per_batch or min(64, math.ceil(len(train) / 16))
    per_forward = hp.prompts_per_forward or per_batch
    steps_per_epoch = math.ceil(len(train) / per_batch)
    total = steps_per_epoch * hp.epochs

    seed_everything(spec.seed)
    source = spec.resume_from or spec.base_model
    tokenizer = load_tokenizer(source)
    model = AutoModelForSequenceClassification.from_pretrained(
        source, num_labels=1, dtype=torch.float32
    )
    ensure_pad_embedding(model, tokenizer)
    setattr(model.config, MAX_LENGTH_KEY, hp.max_length)  # scoring reads the same window
    model.to(device.name).train()
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=hp.learning_rate, weight_decay=hp.weight_decay
    )
    scheduler = get_cosine_schedule_with_warmup(optimizer, round(hp.warmup_ratio * total), total)
    step = 0
    if spec.resume_from:
        state = load_training_state(spec.resume_from)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        restore_rng(state["rng"])
        step = state["step"]
        events.log(f"resumed reward model training at step {step} of {total}")

    metrics: dict[str, Any] = {}

    # Steps whose checkpoint this run holds already (the one it resumed from counts).
    resumed_here = spec.resume_from and spec.resume_from == checkpoint_path(spec.output_dir, step)
    saved: set[int] = {step} if resumed_here else set()

    def save_checkpoint() -> None:
        target = checkpoint_path(spec.output_dir, step)
        if step not in saved:  # a cancel right after a periodic save: same step, same state
            with atomic_directory(target) as staging:
                model.save_pretrained(staging)
                tokenizer.save_pretrained(staging)
                save_training_state(
                    staging,
                    {
                        "step": step,
                        "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(),
                        "rng": capture_rng(),
                    },
                )
            saved.add(step)
        events.checkpoint(path=target, step=step, metrics=metrics)

    order: torch.Tensor | None = None
    while step < total:
        if spec.cancel_requested():
            save_checkpoint()
            return Outcome(model_dir=None, metrics=metrics)
        epoch, position = divmod(step, steps_per_epoch)
        if order is None or position == 0:
            order = _epoch_order(len(train), seed=spec.seed, epoch=epoch)
        batch = [train[i] for i in order[position * per_batch : (position + 1) * per_batch]]
        counted = sum(1 for example in batch if ranking_pairs(example.rank_groups)[0].numel())
        loss_sum, right, pairs, tokens = 0.0, 0, 0, 0
        for start in range(0, len(batch), per_forward):
            group = prompt_losses(
                model,
                tokenizer,
                batch[start : start + per_forward],
                max_length=hp.max_length,
                bf16=device.bf16,
            )
            # Each forward group adds its share of the batch mean, so gradients accumulate to it.
            if group.losses.numel():
                (group.losses.sum() / counted).backward()
            loss_sum += float(group.losses.detach().sum())
            right, pairs, tokens = right + group.right, pairs + group.pairs, tokens + group.tokens
        torch.nn.utils.clip_grad_norm_(model.parameters(), hp.max_grad_norm)
        lr = scheduler.get_last_lr()[0]
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        metrics = {
            "loss": loss_sum / max(counted, 1),
            "lr": lr,
            "accuracy": right / pairs if pairs else float("nan"),
            "pairs": pairs,
            "prompts": len(batch),
            "tokens": tokens,
            "epoch": epoch + (position + 1) / steps_per_epoch,
        }
        events.progress(step=step, total=total, metrics=metrics)
        if step % hp.checkpoint_every == 0 and step < total:
            save_checkpoint()

    model.eval()
    final = _finish(model, tokenizer, spec=spec, hp=hp, valid=valid, device=device, events=events)
    return Outcome(model_dir=final["model_dir"], metrics={**metrics, **final["metrics"]})


def _epoch_order(count: int, *, seed: int, epoch: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(count, generator=generator)


def _finish(
    model, tokenizer, *, spec, hp, valid, device: Device, events: EventStream
) -> dict[str, Any]:
    """Set the demonstration bias, measure valid accuracy, save the final model atomically."""
    metrics: dict[str, Any] = {}
    if spec.data.demonstrations:
        prompts, completions = demonstration_pairs(read_jsonl(spec.data.demonstrations), tokenizer)
        setattr(model.config, BIAS_KEY, 0.0)
        mean = float(
            score(
                model, tokenizer, prompts, completions, max_length=hp.max_length, bf16=device.bf16
            ).mean()
        )
        setattr(model.config, BIAS_KEY, -mean)
        metrics.update(reward_bias=-mean, demonstrations=len(prompts))
    else:
        events.log("no demonstrations given: the reward model keeps a zero bias")
    if valid:
        accuracy, pairs = ranking_accuracy(
            model, tokenizer, valid, max_length=hp.max_length, bf16=device.bf16
        )
        metrics.update(valid_accuracy=accuracy, valid_pairs=pairs)
    target = spec.output_dir / FINAL_MODEL_DIR
    with atomic_directory(target) as staging:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
    return {"model_dir": target, "metrics": metrics}


def demonstration_pairs(rows: Sequence[dict[str, Any]], tokenizer) -> tuple[list[str], list[str]]:
    """(prompts, completions) of SFT rows: `{prompt, completion}`, or `{messages}` whose last
    message is the assistant's answer (the rest rendered with the chat template)."""
    prompts, completions = [], []
    for row in rows:
        if "messages" in row:
            *context, answer = row["messages"]
            prompts.append(
                tokenizer.apply_chat_template(context, tokenize=False, add_generation_prompt=True)
            )
            completions.append(answer["content"])
        else:
            prompts.append(row["prompt"])
            completions.append(row["completion"])
    return prompts, completions
