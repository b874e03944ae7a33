"""PPO rollouts: sample one response per prompt, score it, and compute KL, advantages, returns and
the diagnostics of the batch.

A response is its sampled tokens plus the EOS id that ended it (a model may have several), so the
policy learns when to stop with the token it really produced. Log-probabilities for the ratio and
the KL are taken at the sampling temperature (softmax(logits / T) is what was sampled from). The
reward model scores prompt + response text without EOS, as it was trained (`scoring`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from models_service.sampling import SampledRow, encode_prompts, sample
from models_service.training import ppo_math
from models_service.training.hyperparameters import PpoHyperparameters
from models_service.training.lora import base_model
from models_service.training.rollout_server import RolloutServer
from models_service.training.scoring import pad_batch, score


@dataclass
class Models:
    policy: Any
    reference: Any
    value: Any
    reward: Any
    tokenizer: Any
    reward_tokenizer: Any


@dataclass
class Rollout:
    """One batch of episodes, every per-token tensor aligned to predicted positions 1..L-1.
    `ended` says per row whether the response ended with EOS."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    action_mask: torch.Tensor
    logprobs: torch.Tensor
    values: torch.Tensor
    advantages: torch.Tensor
    returns: torch.Tensor
    scores: torch.Tensor
    kl: torch.Tensor
    ended: torch.Tensor


def policy_logits(model, input_ids, attention_mask, *, temperature: float, bf16: bool):
    """Logits for positions 1..L-1 divided by the sampling temperature, in float32."""
    with torch.autocast(input_ids.device.type, dtype=torch.bfloat16, enabled=bf16):
        logits = model(input_ids=input_ids, attention_mask=attention_mask).logits[:, :-1]
    return logits.float() / temperature


def gather_logprobs(logits: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
    """log softmax(logits) at the tokens that follow each position."""
    return logits.log_softmax(-1).gather(-1, input_ids[:, 1:, None])[..., 0]


def token_logprobs(
    model, input_ids, attention_mask, *, temperature: float, bf16: bool
) -> torch.Tensor:
    """log pi_T(x_p | x_<p) for p = 1..L-1 under softmax(logits / T), in float32."""
    logits = policy_logits(model, input_ids, attention_mask, temperature=temperature, bf16=bf16)
    return gather_logprobs(logits, input_ids)


class TokenValueModel(torch.nn.Module):
    """The value function: a reward model's classification head (`score`) applied at every
    position instead of only the last, as one module so that DDP sees its forward."""

    def __init__(self, classifier) -> None:
        super().__init__()
        if not hasattr(classifier, "score"):
            raise ValueError("the value model needs a `score` head (a Llama-style reward model)")
        self.classifier = classifier

    def forward(self, input_ids, attention_mask):
        model = base_model(self.classifier)  # under LoRA, its layers carry the adapter
        body = getattr(model, model.base_model_prefix)
        hidden = body(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return model.score(hidden)[..., 0]


def token_values(value_model, input_ids, attention_mask, *, bf16: bool) -> torch.Tensor:
    """V(x_<p) for p = 1..L-1: the head applied to the hidden state at p-1."""
    with torch.autocast(input_ids.device.type, dtype=torch.bfloat16, enabled=bf16):
        values = value_model(input_ids=input_ids, attention_mask=attention_mask)
    return values.float()[:, :-1]


def whiten_across(values, mask, reduce: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """`ppo_math.whiten` with the mean and variance of every rank's episodes (`reduce` sums a
    tensor over the ranks), so that N processes whiten as one does."""
    count = reduce(mask.sum()).clamp_min(1)
    mean = reduce((values * mask).sum()) / count
    var = reduce((((values - mean) ** 2) * mask).sum()) / count
    return (values - mean) * torch.rsqrt(var + 1e-8) * mask


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


def response_ids(row: SampledRow) -> list[int]:
    """The tokens trained on: the sample, plus the EOS id that ended it."""
    if row.eos_token_id is not None:
        return [*row.token_ids, row.eos_token_id]
    return list(row.token_ids)


def eos_token_ids(model, tokenizer) -> list[int]:
    """The policy's EOS ids in order (its generation config may list several)."""
    config = getattr(model, "generation_config", None)
    eos = getattr(config, "eos_token_id", None)
    eos = tokenizer.eos_token_id if eos is None else eos
    return [int(e) for e in (eos if isinstance(eos, list | tuple) else [eos]) if e is not None]


def masked_entropy(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean entropy (nats) of softmax(logits) over the masked positions."""
    logprobs = logits.log_softmax(-1)
    entropy = -(logprobs.exp() * logprobs).sum(-1)
    return ppo_math.masked_mean(entropy, mask)


@torch.no_grad()
def collect_rollout(
    models: Models,
    prompts: Sequence[str],
    *,
    seeds: list[int],
    hp: PpoHyperparameters,
    device,
    reduce: Callable[[torch.Tensor], torch.Tensor] | None = None,
    server: RolloutServer | None = None,
) -> tuple[Rollout, dict[str, Any]]:
    """Sample one response per prompt, score it, and compute KL, advantages and returns.

    Returns the rollout and its diagnostics: timings (generation; scoring = forward passes of
    policy, reference, value and reward model), entropy, value explained variance, advantage and
    return statistics, share of responses without EOS, and the texts (for the samples table).
    With several processes, `reduce` (a sum over ranks) makes the whitening global."""
    start = time.perf_counter()
    models.policy.eval()  # dropout is off either way; eval keeps the KV cache on in generate
    policy = getattr(models.policy, "module", models.policy)  # the model inside a DDP wrapper
    prompt_ids = encode_prompts(models.tokenizer, prompts)
    if server is not None:
        rows = server.sample(
            prompt_ids,
            seed=seeds[0],
            max_new_tokens=hp.max_new_tokens,
            temperature=hp.temperature,
            eos_ids=eos_token_ids(policy, models.tokenizer),
            tokenizer=models.tokenizer,
        )
    else:
        rows = sample(
            policy,
            models.tokenizer,
            prompt_ids,
            n=1,
            max_new_tokens=hp.max_new_tokens,
            temperature=hp.temperature,
            seeds=seeds,
        )
    generated = time.perf_counter()
    input_ids, attention_mask, action = episode_tokens(
        prompt_ids, [response_ids(row) for row in rows], models.tokenizer.pad_token_id, device.name
    )
    t, bf16 = hp.temperature, device.bf16
    logits = policy_logits(models.policy, input_ids, attention_mask, temperature=t, bf16=bf16)
    logprobs = gather_logprobs(logits, input_ids)
    ref_logprobs = token_logprobs(
        models.reference, input_ids, attention_mask, temperature=t, bf16=bf16
    )
    values = token_values(models.value, input_ids, attention_mask, bf16=bf16)
    texts = [row.text for row in rows]
    raw_scores = score(models.reward, models.reward_tokenizer, list(prompts), texts, bf16=bf16).to(
        device.name
    )
    ended = torch.tensor([row.eos_token_id is not None for row in rows], device=device.name)
    scores = raw_scores
    if hp.missing_eos_penalty is not None:
        scores = raw_scores - hp.missing_eos_penalty * (~ended).float()
    kl = ppo_math.kl_per_token(logprobs, ref_logprobs) * action
    rewards = ppo_math.token_rewards(scores, kl, action, beta=hp.beta)
    advantages, returns = ppo_math.gae(rewards, values, action, gamma=hp.gamma, lam=hp.lam)
    diagnostics = {
        "entropy": float(masked_entropy(logits, action)),
        "value_explained_variance": ppo_math.explained_variance(values, returns, action),
        **ppo_math.masked_stats("advantage", advantages, action),
        **ppo_math.masked_stats("return", returns, action),
        "no_eos_share": float((~ended).float().mean()),
        "texts": texts,
        "raw_scores": raw_scores.tolist(),
    }
    if hp.whiten_advantages and reduce is not None:
        advantages = whiten_across(advantages, action, reduce)
    elif hp.whiten_advantages:
        advantages = ppo_math.whiten(advantages, action)
    rollout = Rollout(
        input_ids, attention_mask, action, logprobs, values, advantages, returns, scores, kl, ended
    )
    diagnostics["time_generation"] = generated - start
    diagnostics["time_scoring"] = time.perf_counter() - generated
    return rollout, diagnostics
