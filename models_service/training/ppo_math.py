"""The pieces of PPO-ptx as small pure functions on (batch, tokens) tensors with a 0/1 mask.

Why our own: TRL removed its PPO trainer in 1.13 and never had InstructGPT's pretraining (ptx) term.
Conventions: position t of a row is the t-th response token; `mask` is 1 on real response tokens
and 0 on padding; every function ignores masked positions.
"""

from __future__ import annotations

import torch


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of `values` over positions where mask is 1 (0 when the mask is empty)."""
    return (values * mask).sum() / mask.sum().clamp_min(1)


def whiten(values: torch.Tensor, mask: torch.Tensor, *, eps: float = 1e-8) -> torch.Tensor:
    """(values - mean) / std over the masked positions; masked-out positions become 0."""
    mean = masked_mean(values, mask)
    var = masked_mean((values - mean) ** 2, mask)
    return (values - mean) * torch.rsqrt(var + eps) * mask


def kl_per_token(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """log(pi(y_t) / pi_ref(y_t)) at each sampled token: the per-token term of the KL penalty,
    whose sum over a response is an unbiased estimate of KL(pi || pi_ref) for that prompt."""
    return logprobs - ref_logprobs


def token_rewards(
    scores: torch.Tensor, kl: torch.Tensor, mask: torch.Tensor, *, beta: float
) -> torch.Tensor:
    """Per-token rewards: -beta * kl_t at every response token, plus the reward model's score
    (one per row) at the row's last real token. Rows must have at least one real token."""
    rewards = -beta * kl * mask
    last = (mask.cumsum(dim=1) * mask).argmax(dim=1)
    rows = torch.arange(mask.shape[0], device=mask.device)
    rewards[rows, last] += scores.to(rewards.dtype)
    return rewards


def gae(
    rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, *, gamma: float, lam: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation over each row's real tokens (padding at the end).

    delta_t = r_t + gamma * V_{t+1} - V_t (V after the last real token is 0, the episode ends);
    A_t = delta_t + gamma * lam * A_{t+1}; returns R_t = A_t + V_t. Masked positions give 0.
    """
    rewards, values = rewards * mask, values * mask
    advantages = torch.zeros_like(rewards)
    next_value = torch.zeros_like(rewards[:, 0])
    next_advantage = torch.zeros_like(rewards[:, 0])
    for t in reversed(range(rewards.shape[1])):
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        advantage = delta + gamma * lam * next_advantage
        advantages[:, t] = advantage * mask[:, t]
        # A padded position passes nothing back: the next real step sees V=0 and A=0 after it.
        next_value = values[:, t] * mask[:, t]
        next_advantage = advantages[:, t]
    return advantages, (advantages + values) * mask


def clipped_policy_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    *,
    clip: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """PPO's clipped surrogate, as a loss to minimise, and the share of tokens where clipping bit.

    loss = mean_t max(-A_t * rho_t, -A_t * clamp(rho_t, 1 - clip, 1 + clip)), rho_t = pi / pi_old.
    """
    ratio = torch.exp(logprobs - old_logprobs)
    unclipped = -advantages * ratio
    clipped = -advantages * ratio.clamp(1 - clip, 1 + clip)
    loss = masked_mean(torch.maximum(unclipped, clipped), mask)
    clip_fraction = masked_mean((clipped > unclipped).float(), mask)
    return loss, clip_fraction


def clipped_value_loss(
    values: torch.Tensor,
    old_values: torch.Tensor,
    returns: torch.Tensor,
    mask: torch.Tensor,
    *,
    clip: float,
) -> torch.Tensor:
    """0.5 * mean_t max((V_t - R_t)^2, (clamp(V_t, V_old - clip, V_old + clip) - R_t)^2)."""
    clipped = old_values + (values - old_values).clamp(-clip, clip)
    return 0.5 * masked_mean(torch.maximum((values - returns) ** 2, (clipped - returns) ** 2), mask)


def ptx_loss(
    logits: torch.Tensor, input_ids: torch.Tensor, loss_mask: torch.Tensor
) -> torch.Tensor:
    """Mean negative log-likelihood of the masked tokens of pretraining rows under the policy:
    minimising gamma_ptx * this maximises InstructGPT's gamma * E[log pi(x)] (per token).

    `logits` are the causal LM's outputs for `input_ids`; token t is predicted from position t-1,
    and `loss_mask[t]` says whether token t counts.
    """
    logprobs = logits[:, :-1].float().log_softmax(dim=-1)
    targets = input_ids[:, 1:]
    token_logprobs = logprobs.gather(-1, targets[..., None])[..., 0]
    return -masked_mean(token_logprobs, loss_mask[:, 1:].to(token_logprobs.dtype))


def approx_kl(logprobs: torch.Tensor, old_logprobs: torch.Tensor, mask: torch.Tensor):
    """Estimate of KL(pi_old || pi) per token from tokens sampled under pi_old: the mean of
    (rho - 1) - log rho with rho = pi / pi_old (Schulman's k3: unbiased, never negative)."""
    log_ratio = logprobs - old_logprobs
    return masked_mean(torch.expm1(log_ratio) - log_ratio, mask)


def explained_variance(values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor) -> float:
    """1 - Var(R - V) / Var(R) over the masked positions: 1 when the value function predicts the
    returns, 0 when it does no better than their mean, negative when worse (nan if Var(R) = 0)."""
    mean = masked_mean(returns, mask)
    variance = masked_mean((returns - mean) ** 2, mask)
    error = returns - values
    error_variance = masked_mean((error - masked_mean(error, mask)) ** 2, mask)
    if float(variance) == 0.0:
        return float("nan")
    return float(1 - error_variance / variance)


def masked_stats(name: str, values: torch.Tensor, mask: torch.Tensor) -> dict[str, float]:
    """{name_mean, name_std, name_min, name_max} over the masked positions."""
    picked = values[mask.bool()]
    if picked.numel() == 0:
        return {f"{name}_{stat}": float("nan") for stat in ("mean", "std", "min", "max")}
    return {
        f"{name}_mean": float(picked.mean()),
        f"{name}_std": float(picked.std(unbiased=False)),
        f"{name}_min": float(picked.min()),
        f"{name}_max": float(picked.max()),
    }
