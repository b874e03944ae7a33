"""The PPO-ptx optimisation phase: `ppo_epochs` passes over one rollout, each pass a split of one
permutation into minibatches (every episode used once per pass), each minibatch's loss
policy + vf_coef * value + gamma_ptx * ptx, optionally accumulated over micro-batches.

Hand-written on purpose: TRL removed PPO in 1.13 and never had InstructGPT's ptx term.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from models_service.training import ppo_math
from models_service.training.hyperparameters import PpoHyperparameters
from models_service.training.ppo_rollout import Models, Rollout, token_logprobs, token_values
from models_service.training.runtime import Device
from models_service.training.scoring import pad_batch


def minibatches(size: int, minibatch_size: int) -> list[torch.Tensor]:
    """One permutation of the episodes (torch's global RNG, which a checkpoint restores) split
    into minibatches: each episode lands in exactly one."""
    return list(torch.randperm(size).split(minibatch_size))


def ptx_batch(
    tokenizer, rows: Sequence[dict[str, Any]], *, max_length: int, device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(input_ids, attention_mask, loss_mask) of pretraining rows: `{text}` counts every token,
    `{prompt, completion}` only the completion and EOS (the SFT log-likelihood)."""
    sequences: list[list[int]] = []
    masks: list[list[int]] = []
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
    for index, row_mask in enumerate(masks):
        loss_mask[index, : len(row_mask)] = torch.tensor(row_mask)
    return batch["input_ids"], batch["attention_mask"], loss_mask


def seeded_order(count: int, *, seed: int, epoch: int) -> list[int]:
    return torch.randperm(count, generator=torch.Generator().manual_seed(seed + epoch)).tolist()


class PtxStream:
    """Pretraining rows in a seeded order per pass, resumable from a position."""

    def __init__(self, rows: list[dict[str, Any]], *, seed: int, position: int = 0) -> None:
        self.rows, self.seed, self.position = rows, seed, position
        self._epoch, self._order = -1, list[int]()

    def take(self, count: int) -> list[dict[str, Any]]:
        taken = []
        for _ in range(count):
            epoch, index = divmod(self.position, len(self.rows))
            if epoch != self._epoch:
                self._epoch = epoch
                self._order = seeded_order(len(self.rows), seed=self.seed, epoch=epoch)
            taken.append(self.rows[self._order[index]])
            self.position += 1
        return taken


def _ptx_loss(models: Models, ptx: PtxStream, hp: PpoHyperparameters, device: Device, ranks):
    """The ptx loss of this rank's share of the next pretraining rows (every rank advances the
    stream alike, so a checkpoint's position holds for all)."""
    rank, world = ranks
    rows = ptx.take((hp.ptx_batch_size or hp.minibatch_size) * world)[rank::world]
    ids, attention, mask = ptx_batch(
        models.tokenizer, rows, max_length=hp.max_length, device=device.name
    )
    with (
        torch.set_grad_enabled(hp.gamma_ptx > 0),
        torch.autocast(device.name, dtype=torch.bfloat16, enabled=device.bf16),
    ):
        logits = models.policy(input_ids=ids, attention_mask=attention).logits
    return ppo_math.ptx_loss(logits, ids, mask)


def _micro_losses(models: Models, rollout: Rollout, idx, hp: PpoHyperparameters, device: Device):
    """(policy loss, value loss, clip fraction, approx KL) of one micro-batch, each a masked
    token mean over the micro-batch."""
    ids, attention, mask = (
        rollout.input_ids[idx],
        rollout.attention_mask[idx],
        rollout.action_mask[idx],
    )
    logprobs = token_logprobs(
        models.policy, ids, attention, temperature=hp.temperature, bf16=device.bf16
    )
    values = token_values(models.value, ids, attention, bf16=device.bf16)
    old = rollout.logprobs[idx]
    policy_loss, clip_fraction = ppo_math.clipped_policy_loss(
        logprobs, old, rollout.advantages[idx], mask, clip=hp.clip
    )
    value_loss = ppo_math.clipped_value_loss(
        values, rollout.values[idx], rollout.returns[idx], mask, clip=hp.value_clip
    )
    return policy_loss, value_loss, clip_fraction, ppo_math.approx_kl(logprobs.detach(), old, mask)


def ppo_update(
    models: Models,
    rollout: Rollout,
    *,
    optimizer,
    parameters: list[torch.nn.Parameter],
    hp: PpoHyperparameters,
    ptx: PtxStream | None,
    device: Device,
    backward: Callable[[torch.Tensor], None] | None = None,
    ranks: tuple[int, int] = (0, 1),
) -> dict[str, float]:
    """`ppo_epochs` passes over the rollout; returns the mean losses, clip fraction and approx
    KL(old || new) over its minibatches. A minibatch is split into micro-batches of
    `micro_batch_size` episodes whose gradients add up to the minibatch's (each weighted by its
    share of the minibatch's response tokens). `backward` replaces `loss.backward()` (accelerate);
    with several processes (`ranks` = (rank, world)) `hp` holds this rank's shares of the batch
    sizes and the ptx rows are split between the ranks.
    """
    backward = backward or (lambda loss: loss.backward())
    models.policy.train()
    models.value.train()
    names = ("policy", "value", "clip", "approx_kl", "ptx", "loss")
    totals: dict[str, list[float]] = {k: [] for k in names}
    size = rollout.input_ids.shape[0]
    for _ in range(hp.ppo_epochs):
        for minibatch in minibatches(size, hp.minibatch_size):
            tokens = rollout.action_mask[minibatch].sum().clamp_min(1)
            sums = dict.fromkeys(("policy", "value", "clip", "approx_kl", "loss"), 0.0)
            for idx in minibatch.split(hp.micro_batch_size or hp.minibatch_size):
                idx = idx.to(device.name)
                policy_loss, value_loss, clip_fraction, kl = _micro_losses(
                    models, rollout, idx, hp, device
                )
                share = rollout.action_mask[idx].sum() / tokens
                loss = (policy_loss + hp.vf_coef * value_loss) * share
                backward(loss)
                for key, value in (
                    ("policy", policy_loss),
                    ("value", value_loss),
                    ("clip", clip_fraction),
                    ("approx_kl", kl),
                ):
                    sums[key] += float(value.detach() * share)
                sums["loss"] += float(loss.detach())
            if ptx is not None:
                pretrain_loss = _ptx_loss(models, ptx, hp, device, ranks)
                if hp.gamma_ptx > 0:
                    backward(hp.gamma_ptx * pretrain_loss)
                    sums["loss"] += hp.gamma_ptx * float(pretrain_loss.detach())
                totals["ptx"].append(float(pretrain_loss.detach()))
            torch.nn.utils.clip_grad_norm_(parameters, hp.max_grad_norm)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            for key, value in sums.items():
                totals[key].append(value)
    mean = {k: (sum(v) / len(v) if v else float("nan")) for k, v in totals.items()}
    return {
        "loss": mean["loss"],
        "policy_loss": mean["policy"],
        "value_loss": mean["value"],
        "clip_fraction": mean["clip"],
        "approx_kl": mean["approx_kl"],
        "ptx_loss": mean["ptx"],
    }
