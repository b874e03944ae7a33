"""Reward model training with InstructGPT's K-way batching, and scoring with the trained model.

Why our own trainer: TRL's RewardTrainer takes (chosen, rejected) pairs, so the K completions of a
prompt are encoded K-1 times each and the C(K,2) comparisons are shuffled apart; InstructGPT runs
the K completions of a prompt in one forward pass and takes the loss over all its pairs
(reference/instructgpt.md section 5; bench/reward_model.py measures the difference).

Texts are encoded by `scoring.encode` both for training and for scoring (see `scoring` for the
form and the window, which the trained model carries in its config).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from models_service.training.scoring import (
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
    sequences: list[list[int]] = []
    offsets: list[int] = []
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
    # Without pairs: an empty slice that is still part of the graph, so a backward runs anyway.
    stacked = torch.stack(losses) if losses else rewards[:0]
    return GroupLosses(stacked, right, total, sum(len(s) for s in sequences))


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
