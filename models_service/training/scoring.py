"""How a reward model reads a text, shared by RM training, PPO/RLOO and the service's `/v1/score`.

One encoding everywhere: `tokenizer(prompt + completion)` (the tokenizer's own special tokens, i.e.
BOS, and no EOS), right-padded, the last `max_length` tokens kept. Online RL scores sampled
completions without EOS, so the reward model is trained on the same form. The window keeps the
END of a long text: the head reads the last token, and the end is the response being judged;
cutting it would score a text that stops mid-prompt, while cutting the start only loses the oldest
context. The window a model was trained with is stored in its config (`reward_max_length`), so
scoring uses the same one.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from models_service.training.runtime import disable_dropout, ensure_pad_embedding, load_tokenizer

BIAS_KEY = "reward_bias"
MAX_LENGTH_KEY = "reward_max_length"
DEFAULT_MAX_LENGTH = 512


def encode(tokenizer, prompt: str, completion: str, *, max_length: int) -> list[int]:
    """Token ids the reward model sees: BOS + prompt + completion, no EOS, the last `max_length`."""
    text = prompt + completion
    # A prompt rendered by a chat template already starts with BOS: do not add a second one.
    bos = tokenizer.bos_token
    ids = tokenizer(text, add_special_tokens=not (bos and text.startswith(bos))).input_ids
    return list(ids)[-max_length:]


def pad_batch(sequences: Sequence[Sequence[int]], pad_id: int, device) -> dict[str, torch.Tensor]:
    """Right-padded input_ids and attention_mask (the head finds the last non-pad token)."""
    width = max(len(sequence) for sequence in sequences)
    input_ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, sequence in enumerate(sequences):
        input_ids[row, : len(sequence)] = torch.tensor(list(sequence), dtype=torch.long)
        attention_mask[row, : len(sequence)] = 1
    return {"input_ids": input_ids.to(device), "attention_mask": attention_mask.to(device)}


def raw_rewards(model, batch: dict[str, torch.Tensor], *, bf16: bool) -> torch.Tensor:
    """One scalar per row, in float32, without the demonstration bias."""
    device_type = batch["input_ids"].device.type
    with torch.autocast(device_type=device_type, dtype=torch.bfloat16, enabled=bf16):
        logits = model(**batch).logits
    return logits.float().squeeze(-1)


def reward_bias(model) -> float:
    """The offset stored in the model's config so that demonstrations score 0 on average."""
    return float(getattr(model.config, BIAS_KEY, 0.0) or 0.0)


def reward_max_length(model, default: int = DEFAULT_MAX_LENGTH) -> int:
    """The token window the reward model was trained with (`default` for models from elsewhere)."""
    return int(getattr(model.config, MAX_LENGTH_KEY, None) or default)


def _pad_id(model, tokenizer) -> int:
    for candidate in (tokenizer.pad_token_id, model.config.pad_token_id):
        if candidate is not None:
            return int(candidate)
    raise ValueError("the reward model has no pad token: batches cannot be padded")


@torch.no_grad()
def score(
    model,
    tokenizer,
    prompts: Sequence[str],
    completions: Sequence[str],
    *,
    batch_size: int = 32,
    max_length: int | None = None,
    bf16: bool = False,
) -> torch.Tensor:
    """Reward of each (prompt, completion), bias included, encoded exactly as in training, in the
    model's own window unless `max_length` is given."""
    device = next(model.parameters()).device
    window = max_length or reward_max_length(model)
    sequences = [
        encode(tokenizer, p, c, max_length=window)
        for p, c in zip(prompts, completions, strict=True)
    ]
    pad_id = _pad_id(model, tokenizer)
    scores = [
        raw_rewards(model, pad_batch(sequences[i : i + batch_size], pad_id, device), bf16=bf16)
        for i in range(0, len(sequences), batch_size)
    ]
    return torch.cat(scores).cpu() + reward_bias(model) if scores else torch.zeros(0)


def load_reward_model(model_dir: Path, device: str = "cpu") -> tuple[Any, Any]:
    """(model, tokenizer) of a trained reward model, in eval mode with dropout off; `score`
    applies its bias and window."""
    from transformers import AutoModelForSequenceClassification

    tokenizer = load_tokenizer(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, dtype=torch.float32)
    ensure_pad_embedding(model, tokenizer)
    disable_dropout(model)
    return model.to(device).eval(), tokenizer
