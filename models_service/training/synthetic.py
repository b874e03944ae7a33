"""Synthetic snapshots for tests and benches: rankings, SFT rows and prompts with a known answer.

The preference is "completions containing MARKER are better", so a reward model that learns it is
measurably right, and a policy optimised against it measurably changes.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

MARKER = "sunrise"
WORDS = [
    "the",
    "sea",
    "was",
    "calm",
    "and",
    "stars",
    "were",
    "bright",
    "over",
    "water",
    "a",
    "small",
    "robot",
    "wanted",
    "to",
    "learn",
    "paint",
    "every",
    "morning",
    "mixed",
    "new",
    "colors",
    "cake",
    "paper",
    "lanterns",
    "music",
    "under",
    "trees",
    "answer",
    "question",
    "helpful",
    "truthful",
    "harmless",
    "capital",
    "france",
    "paris",
    "spider",
    "has",
    "eight",
    "legs",
    "thank",
    "you",
    "message",
]
PROMPT_STARTS = (
    "Write a short poem about",
    "Explain to a six year old",
    "List three ideas for",
    "Summarize the following paragraph:",
    "Please rewrite this email:",
    "Once upon a time",
    "What is the capital of",
    "Translate the sentence:",
)


def _words(rng: random.Random, count: int) -> list[str]:
    return [rng.choice(WORDS) for _ in range(count)]


def synthetic_prompt(rng: random.Random) -> str:
    return f"{rng.choice(PROMPT_STARTS)} {' '.join(_words(rng, rng.randint(1, 3)))}\n"


def synthetic_completion(rng: random.Random, *, marked: bool, length: int = 8) -> str:
    words = _words(rng, length)
    if marked:
        words[rng.randrange(length)] = MARKER
    return " " + " ".join(words)


def synthetic_rankings(
    count: int, *, k: int = 4, seed: int = 0, marked: int | None = None, length: int = 8
) -> list[dict[str, Any]]:
    """K-way ranking rows: `marked` completions (default k // 2) contain MARKER and form the top
    group (a tie); the rest form the second group. Non-tied pairs per prompt: marked * (k - marked).
    """
    rng = random.Random(seed)
    marked = k // 2 if marked is None else marked
    rows = []
    for _ in range(count):
        flags = [True] * marked + [False] * (k - marked)
        rng.shuffle(flags)
        completions = [synthetic_completion(rng, marked=flag, length=length) for flag in flags]
        top = [i for i, flag in enumerate(flags) if flag]
        rest = [i for i, flag in enumerate(flags) if not flag]
        rows.append(
            {
                "prompt": synthetic_prompt(rng),
                "completions": completions,
                "rank_groups": [group for group in (top, rest) if group],
            }
        )
    return rows


def strict_rankings(count: int, *, k: int, seed: int = 0, length: int = 8) -> list[dict[str, Any]]:
    """K-way rows with a strict order (no ties): C(K, 2) comparisons per prompt, as in the paper."""
    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        completions = [synthetic_completion(rng, marked=False, length=length) for _ in range(k)]
        order = list(range(k))
        rng.shuffle(order)
        rows.append(
            {
                "prompt": synthetic_prompt(rng),
                "completions": completions,
                "rank_groups": [[i] for i in order],
            }
        )
    return rows


def synthetic_sft_rows(count: int, *, seed: int = 0, length: int = 8) -> list[dict[str, str]]:
    """Prompt/completion rows whose completions all contain MARKER (demonstrations)."""
    rng = random.Random(seed)
    return [
        {
            "prompt": synthetic_prompt(rng),
            "completion": synthetic_completion(rng, marked=True, length=length),
        }
        for _ in range(count)
    ]


def synthetic_prompts(count: int, *, seed: int = 0) -> list[dict[str, str]]:
    rng = random.Random(seed)
    return [{"prompt": synthetic_prompt(rng)} for _ in range(count)]


def pairs_from_rankings(rows: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Every non-tied comparison of the rankings as a TRL `{prompt, chosen, rejected}` row."""
    pairs = []
    for row in rows:
        groups = row["rank_groups"]
        for position, group in enumerate(groups):
            for later in groups[position + 1 :]:
                for winner in group:
                    for loser in later:
                        pairs.append(
                            {
                                "prompt": row["prompt"],
                                "chosen": row["completions"][winner],
                                "rejected": row["completions"][loser],
                            }
                        )
    return pairs


def build_llama(
    directory: Path, *, hidden: int, layers: int = 2, reward: bool, seed: int = 0
) -> Path:
    """A randomly initialised Llama-style model with the tiny tokenizer, saved to `directory`:
    a causal LM, or a sequence classifier with one logit (`reward=True`). Returns the directory."""
    import torch
    from transformers import (
        AutoModelForCausalLM,
        AutoModelForSequenceClassification,
        GenerationConfig,
        LlamaConfig,
    )

    from models_service.tiny import build_tokenizer

    tokenizer = build_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=2048,
        num_labels=1,  # type: ignore[call-arg]  # a PretrainedConfig keyword LlamaConfig passes on
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=False,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        auto = AutoModelForSequenceClassification if reward else AutoModelForCausalLM
        model = auto.from_config(config, dtype=torch.float32)
    if not reward:
        model.generation_config = GenerationConfig(
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory
