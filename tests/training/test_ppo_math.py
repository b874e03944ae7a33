"""PPO-ptx maths, each piece on a small case computed by hand."""

from __future__ import annotations

import math

import pytest
import torch

from models_service.training.ppo_math import (
    clipped_policy_loss,
    clipped_value_loss,
    gae,
    kl_per_token,
    masked_mean,
    ptx_loss,
    token_rewards,
    whiten,
)


def t(*rows):
    return torch.tensor(rows, dtype=torch.float64)


def close(actual: torch.Tensor, expected: list[list[float]], *, atol: float = 1e-9) -> None:
    torch.testing.assert_close(actual, t(*expected), atol=atol, rtol=0)


def test_kl_per_token_and_token_rewards() -> None:
    kl = kl_per_token(t([-1.0, -2.0, -0.5]), t([-1.5, -1.0, -0.5]))
    assert kl.tolist() == [[0.5, -1.0, 0.0]]
    mask = t([1, 1, 0], [1, 0, 0])
    rewards = token_rewards(
        torch.tensor([3.0, -1.0]), t([0.5, -1.0, 9.0], [2.0, 9.0, 9.0]), mask, beta=0.1
    )
    # Row 0: -0.1*0.5, then -0.1*(-1) + score 3 at its last real token; padding stays 0.
    close(rewards, [[-0.05, 3.1, 0.0], [-0.2 - 1.0, 0.0, 0.0]])


def test_gae_by_hand_with_padding() -> None:
    rewards = t([1.0, 0.0, 2.0], [0.5, 7.0, 7.0])
    values = t([0.5, 1.0, 1.5], [0.2, 7.0, 7.0])
    mask = t([1, 1, 1], [1, 0, 0])
    advantages, returns = gae(rewards, values, mask, gamma=1.0, lam=0.95)
    # Row 0: delta2 = 2 - 1.5 = 0.5; delta1 = 0 + 1.5 - 1 = 0.5; delta0 = 1 + 1 - 0.5 = 1.5.
    a2 = 0.5
    a1 = 0.5 + 0.95 * a2
    a0 = 1.5 + 0.95 * a1
    # Row 1 ends after one token: delta0 = 0.5 - 0.2.
    close(advantages, [[a0, a1, a2], [0.3, 0.0, 0.0]])
    close(returns, [[a0 + 0.5, a1 + 1.0, a2 + 1.5], [0.5, 0.0, 0.0]])


def test_gae_with_discount_and_lambda_one_is_discounted_return() -> None:
    rewards, values, mask = t([1.0, 2.0, 4.0]), t([9.0, 9.0, 9.0]), t([1, 1, 1])
    _, returns = gae(rewards, values, mask, gamma=0.5, lam=1.0)
    close(returns, [[1 + 0.5 * 2 + 0.25 * 4, 2 + 0.5 * 4, 4.0]])


def test_clipped_policy_loss_by_hand() -> None:
    old = t([0.0, 0.0, 0.0, 0.0])
    new = t([math.log(1.5), math.log(0.5), math.log(1.1), 5.0])
    advantages = t([1.0, -1.0, 2.0, 100.0])
    mask = t([1, 1, 1, 0])
    loss, clip_fraction = clipped_policy_loss(new, old, advantages, mask, clip=0.2)
    # Token 0: ratio 1.5, A=1 -> max(-1.5, -1.2) = -1.2 (clipped).
    # Token 1: ratio 0.5, A=-1 -> max(0.5, 0.8) = 0.8 (clipped).
    # Token 2: ratio 1.1, A=2 -> max(-2.2, -2.2) = -2.2 (inside the range); token 3 is padding.
    assert float(loss) == pytest.approx((-1.2 + 0.8 - 2.2) / 3)
    assert float(clip_fraction) == pytest.approx(2 / 3)


def test_clipped_value_loss_by_hand() -> None:
    values, old, returns = t([2.0, 0.1]), t([1.0, 0.0]), t([0.0, 1.0])
    loss = clipped_value_loss(values, old, returns, t([1, 1]), clip=0.2)
    # Token 0: max((2-0)^2, (1.2-0)^2) = 4; token 1: max((0.1-1)^2, (0.1-1)^2) = 0.81.
    assert float(loss) == pytest.approx(0.5 * (4 + 0.81) / 2)


def test_ptx_loss_is_mean_nll_of_masked_tokens() -> None:
    logits = torch.log(t([[0.5, 0.25, 0.25], [0.1, 0.8, 0.1], [1 / 3, 1 / 3, 1 / 3]]))
    input_ids = torch.tensor([[0, 1, 2]])
    loss = ptx_loss(logits, input_ids, torch.tensor([[0, 1, 1]]))
    # Token 1 predicted from position 0 (p=0.25), token 2 from position 1 (p=0.1).
    assert float(loss) == pytest.approx(-(math.log(0.25) + math.log(0.1)) / 2)
    only_last = ptx_loss(logits, input_ids, torch.tensor([[0, 0, 1]]))
    assert float(only_last) == pytest.approx(-math.log(0.1))


def test_whiten_and_masked_mean_ignore_padding() -> None:
    values, mask = t([1.0, 3.0, 100.0]), t([1, 1, 0])
    assert float(masked_mean(values, mask)) == 2.0
    close(whiten(values, mask), [[-1.0, 1.0, 0.0]], atol=1e-6)


def test_approx_kl_estimates_kl_old_new_from_samples_of_old() -> None:
    from models_service.training.ppo_math import approx_kl

    old = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
    new = torch.tensor([0.4, 0.4, 0.2], dtype=torch.float64)
    exact = float((old * (old / new).log()).sum())
    draws = torch.multinomial(
        old, 200_000, replacement=True, generator=torch.Generator().manual_seed(0)
    )
    estimate = approx_kl(new.log()[draws][None], old.log()[draws][None], torch.ones(1, len(draws)))
    assert float(estimate) == pytest.approx(exact, rel=0.03)
    assert float(approx_kl(old.log()[None], old.log()[None], torch.ones(1, 3))) == 0.0


def test_explained_variance_and_masked_stats() -> None:
    from models_service.training.ppo_math import explained_variance, masked_stats

    returns = t([1.0, 2.0, 3.0, 99.0])
    mask = t([1.0, 1.0, 1.0, 0.0])
    assert explained_variance(returns, returns, mask) == pytest.approx(1.0)
    assert explained_variance(t([2.0, 2.0, 2.0, 0.0]), returns, mask) == pytest.approx(0.0)
    # Residuals 1, -1, 1: variance 8/9 against the returns' 2/3.
    values = t([0.0, 3.0, 2.0, 0.0])
    assert explained_variance(values, returns, mask) == pytest.approx(1 - (8 / 9) / (2 / 3))
    stats = masked_stats("return", returns, mask)
    assert stats == pytest.approx(
        {"return_mean": 2.0, "return_std": math.sqrt(2 / 3), "return_min": 1.0, "return_max": 3.0}
    )
