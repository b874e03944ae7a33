"""Sampling many rows in one `model.generate` call, each row with its own seed and settings.

The service and the trainers share this module. `generate` runs greedily (`do_sample=False`) over
scores that a per-row processor has rewritten: divided by the row's temperature, cut to the row's
top-p nucleus, then perturbed with Gumbel noise from the row's own `torch.Generator`. The argmax of
`logits / T + Gumbel` is a sample from `softmax(logits / T)`, and a row's noise depends only on its
seed, so a row's output does not depend on which other rows share its batch. Temperature 0 is
greedy decoding.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch
from transformers import (
    LogitsProcessor,
    LogitsProcessorList,
    StoppingCriteriaList,
)

from models_service.processors import (
    SEED_MODULUS,
    LogprobRecorder,
    RowSampler,
    RowStoppingCriteria,
)

FinishReason = Literal["stop", "length"]


@dataclass(frozen=True)
class RowRequest:
    """One output row to sample: a prompt (token ids) and the settings for this row alone.

    `logprobs`: None for none; k >= 0 for the sampled token's logprob and the k most likely tokens.
    """

    prompt_ids: tuple[int, ...]
    seed: int
    max_new_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    logprobs: int | None = None


@dataclass(frozen=True)
class SampledRow:
    """One sampled output. `token_ids` excludes EOS; with a stop string it ends with the tokens
    that produced the stop string, while `text` ends just before it.

    `logprobs` are log-probabilities under the model's unmodified distribution (temperature 1,
    no top-p), like vLLM's default, one per token in `token_ids`. `eos_token_id` is the EOS id that
    ended the row (a model may have several), None when no EOS ended it.
    """

    text: str
    token_ids: list[int]
    finish_reason: FinishReason
    prompt_tokens: int
    logprobs: list[float] | None = None
    top_logprobs: list[dict[int, float]] | None = field(default=None)
    eos_token_id: int | None = None


def random_seed() -> int:
    """A fresh seed for requests that did not give one."""
    return secrets.randbelow(SEED_MODULUS)


def encode_prompts(tokenizer, prompts: Sequence[str] | Sequence[Sequence[int]]) -> list[list[int]]:
    """Token ids for each prompt; strings are encoded with the tokenizer's special tokens (bos)."""
    encoded = []
    for prompt in prompts:
        if isinstance(prompt, str):
            encoded.append(list(tokenizer(prompt).input_ids))
        else:
            encoded.append([int(token) for token in prompt])
    return encoded


def row_seeds(seeds: int | Sequence[int] | None, *, num_prompts: int, n: int) -> list[int]:
    """Seeds for all rows, prompt-major. Sample i of a prompt gets `base + i` (like vLLM).

    `seeds` is one base for every prompt, one base per prompt, or one seed per row; None draws a
    random base per prompt.
    """
    if seeds is None:
        bases = [random_seed() for _ in range(num_prompts)]
    elif isinstance(seeds, int):
        bases = [seeds] * num_prompts
    elif len(seeds) == num_prompts * n:
        return [int(seed) % SEED_MODULUS for seed in seeds]
    elif len(seeds) == num_prompts:
        bases = [int(seed) for seed in seeds]
    else:
        raise ValueError(
            f"got {len(seeds)} seeds for {num_prompts} prompts x n={n}: "
            "give one per prompt or one per row"
        )
    return [(base + i) % SEED_MODULUS for base in bases for i in range(n)]


def sample(
    model,
    tokenizer,
    prompts: Sequence[str] | Sequence[Sequence[int]],
    *,
    n: int = 1,
    max_new_tokens: int = 16,
    temperature: float = 1.0,
    top_p: float = 1.0,
    seeds: int | Sequence[int] | None = None,
    stop: Sequence[str] | None = None,
    logprobs: bool | int = False,
) -> list[SampledRow]:
    """Sample `n` outputs for every prompt with one `generate` call.

    Rows come prompt by prompt (row `p * n + i` is sample i of prompt p). The same seeds give the
    same rows; see `row_seeds` for how seeds map to rows.
    """
    encoded = encode_prompts(tokenizer, prompts)
    seeds_per_row = row_seeds(seeds, num_prompts=len(encoded), n=n)
    top_k = None if logprobs is False else (0 if logprobs is True else int(logprobs))
    rows = [
        RowRequest(
            prompt_ids=tuple(prompt),
            seed=seeds_per_row[p * n + i],
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            top_p=top_p,
            stop=tuple(stop or ()),
            logprobs=top_k,
        )
        for p, prompt in enumerate(encoded)
        for i in range(n)
    ]
    return generate_rows(model, tokenizer, rows)


def generate_rows(model, tokenizer, rows: Sequence[RowRequest]) -> list[SampledRow]:
    """Sample every row with exactly one `model.generate` call (left padding).

    The batch runs to the longest row's `max_new_tokens` (or until every row has stopped); each row
    is then cut at its own EOS, stop string or token limit.
    """
    if not rows:
        return []
    if any(not row.prompt_ids for row in rows):
        raise ValueError("every prompt needs at least one token")
    pad_id = _pad_token_id(model, tokenizer)
    eos_ids = _eos_token_ids(model, tokenizer)
    input_ids, attention_mask = _left_pad([row.prompt_ids for row in rows], pad_id, model.device)
    width = input_ids.shape[1]
    sampler = RowSampler.for_rows(rows, device=model.device)
    processors: list[LogitsProcessor] = [sampler]
    recorder = None
    if any(row.logprobs is not None for row in rows):
        recorder = LogprobRecorder(prompt_width=width, top_k=max(row.logprobs or 0 for row in rows))
        processors.insert(0, recorder)
    stopper = RowStoppingCriteria(rows, tokenizer=tokenizer, prompt_width=width)
    with torch.inference_mode():
        output = model.generate(
            input_ids=input_ids,
            attention_mask=attention_mask,
            do_sample=False,
            max_new_tokens=max(row.max_new_tokens for row in rows),
            pad_token_id=pad_id,
            eos_token_id=eos_ids or None,
            repetition_penalty=1.0,
            no_repeat_ngram_size=0,
            logits_processor=LogitsProcessorList(processors),
            stopping_criteria=StoppingCriteriaList([stopper]),
            return_dict_in_generate=True,
        )
    generated = output.sequences[:, width:].cpu()
    chosen, top = recorder.finish(output.sequences) if recorder else (None, None)
    return [
        _finish_row(
            row,
            generated[index].tolist(),
            tokenizer=tokenizer,
            eos_ids=set(eos_ids),
            chosen=None if chosen is None else chosen[index],
            top=None if top is None else (top[0][index], top[1][index]),
        )
        for index, row in enumerate(rows)
    ]


def _finish_row(
    row: RowRequest, generated: list[int], *, tokenizer, eos_ids: set[int], chosen, top
) -> SampledRow:
    tokens = generated[: row.max_new_tokens]
    finish: FinishReason = "length"
    eos_token_id = None
    for position, token in enumerate(tokens):
        if token in eos_ids:
            tokens, finish, eos_token_id = tokens[:position], "stop", token
            break
    text = tokenizer.decode(tokens, skip_special_tokens=True)
    hit = _first_stop(text, row.stop)
    if hit is not None:
        start, stop_string = hit
        tokens = tokens[: _tokens_covering(tokenizer, tokens, start + len(stop_string))]
        text, finish, eos_token_id = text[:start], "stop", None
    logprobs = top_logprobs = None
    if row.logprobs is not None and chosen is not None:
        logprobs = [float(value) for value in chosen[: len(tokens)]]
        if row.logprobs and top is not None:
            values, ids = top
            top_logprobs = [
                {
                    int(i): float(v)
                    for i, v in zip(ids[s, : row.logprobs], values[s, : row.logprobs], strict=True)
                }
                for s in range(len(tokens))
            ]
    return SampledRow(
        text=text,
        token_ids=tokens,
        finish_reason=finish,
        prompt_tokens=len(row.prompt_ids),
        logprobs=logprobs,
        top_logprobs=top_logprobs,
        eos_token_id=eos_token_id,
    )


def _first_stop(text: str, stops: Sequence[str]) -> tuple[int, str] | None:
    hits = [(text.find(stop), stop) for stop in stops if stop and stop in text]
    return min(hits) if hits else None


def _tokens_covering(tokenizer, tokens: list[int], length: int) -> int:
    for count in range(1, len(tokens) + 1):
        if len(tokenizer.decode(tokens[:count], skip_special_tokens=True)) >= length:
            return count
    return len(tokens)


def _left_pad(prompts: Sequence[Sequence[int]], pad_id: int, device):
    width = max(len(prompt) for prompt in prompts)
    input_ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for index, prompt in enumerate(prompts):
        input_ids[index, width - len(prompt) :] = torch.tensor(prompt, dtype=torch.long)
        attention_mask[index, width - len(prompt) :] = 1
    return input_ids.to(device), attention_mask.to(device)


def _eos_token_ids(model, tokenizer) -> list[int]:
    eos = model.generation_config.eos_token_id
    if eos is None:
        eos = tokenizer.eos_token_id
    if eos is None:
        return []
    return [int(e) for e in eos] if isinstance(eos, (list, tuple)) else [int(eos)]


def _pad_token_id(model, tokenizer) -> int:
    for candidate in (
        tokenizer.pad_token_id,
        model.generation_config.pad_token_id,
        *_eos_token_ids(model, tokenizer),
    ):
        if candidate is not None:
            return int(candidate)
    return 0
