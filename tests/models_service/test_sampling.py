"""The shared sampling function: the Gumbel trick, seeds, batching, finish reasons."""

from __future__ import annotations

import threading

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from models_service.processors import outside_top_p, perturb_scores
from models_service.sampling import RowRequest, generate_rows, sample
from models_service.tiny import ensure_tiny

PROMPTS = ["The sea", "Write a short poem about the robot who wanted to learn to paint."]


def _draw(logits: list[float], *, rows: int, temperature: float = 1.0, top_p: float = 1.0):
    """Token frequencies from `rows` independent rows (seeds 0..rows-1) of the same logits."""
    scores = torch.tensor([logits] * rows)
    perturbed = perturb_scores(
        scores,
        temperatures=torch.full((rows,), temperature),
        top_ps=torch.full((rows,), top_p),
        generators=[torch.Generator().manual_seed(seed) for seed in range(rows)],
    )
    counts = torch.bincount(perturbed.argmax(dim=-1), minlength=len(logits))
    return counts.float() / rows


@pytest.mark.parametrize("temperature", [1.0, 0.5, 2.0])
def test_gumbel_argmax_samples_the_tempered_softmax(temperature: float) -> None:
    logits = torch.tensor([0.0, 0.5, 1.0, 2.0, -1.0])
    frequencies = _draw(logits.tolist(), rows=20_000, temperature=temperature)
    expected = (logits / temperature).softmax(dim=-1)
    # 20,000 draws: one standard error is at most 0.0036, so 0.015 is over four of them.
    assert torch.allclose(frequencies, expected, atol=0.015), (frequencies, expected)


def test_top_p_samples_only_the_nucleus_in_proportion() -> None:
    probs = torch.tensor([0.5, 0.3, 0.15, 0.05])
    frequencies = _draw(probs.log().tolist(), rows=20_000, top_p=0.7)
    assert frequencies[2] == 0 and frequencies[3] == 0
    assert frequencies[0] == pytest.approx(0.5 / 0.8, abs=0.015)


def test_temperature_zero_rows_stay_greedy_beside_sampled_rows() -> None:
    scores = torch.randn(3, 10, generator=torch.Generator().manual_seed(1))
    perturbed = perturb_scores(
        scores,
        temperatures=torch.tensor([0.0, 1.0, 0.0]),
        top_ps=torch.full((3,), 0.5),
        generators=[None, torch.Generator().manual_seed(2), None],
    )
    assert torch.equal(perturbed[[0, 2]], scores[[0, 2]])
    assert not torch.equal(perturbed[1], scores[1])


@settings(max_examples=200)
@given(
    logits=st.lists(st.floats(-8, 8), min_size=1, max_size=12),
    top_p=st.floats(0.01, 1.0),
)
def test_nucleus_is_the_smallest_prefix_reaching_top_p(logits: list[float], top_p: float) -> None:
    row = torch.tensor([logits], dtype=torch.float64)
    removed = outside_top_p(row, torch.tensor([top_p], dtype=torch.float64))[0]
    probs = row[0].softmax(-1)
    kept = ~removed
    assert probs[kept].max() == probs.max()
    if top_p < 1:
        assert probs[kept].sum() >= top_p - 1e-9
        smallest_kept = probs[kept].min()
        assert probs[kept].sum() - smallest_kept < top_p + 1e-9
        assert not (probs[removed] > smallest_kept).any()
    else:
        assert kept.all()


def _texts(rows) -> list[str]:
    return [row.text for row in rows]


def test_same_seed_same_rows_and_samples_of_a_prompt_differ(tiny) -> None:
    model, tokenizer = tiny
    first = sample(model, tokenizer, PROMPTS, n=4, max_new_tokens=12, seeds=7)
    again = sample(model, tokenizer, PROMPTS, n=4, max_new_tokens=12, seeds=7)
    assert [r.token_ids for r in first] == [r.token_ids for r in again]
    assert len(set(_texts(first[:4]))) > 1
    assert len(first) == 8


def test_sample_i_uses_seed_plus_i_whatever_shares_the_batch(tiny) -> None:
    model, tokenizer = tiny
    batched = sample(model, tokenizer, PROMPTS, n=3, max_new_tokens=12, seeds=[100, 200])
    alone = sample(model, tokenizer, [PROMPTS[0]], n=1, max_new_tokens=12, seeds=102)
    assert batched[2].token_ids == alone[0].token_ids
    assert batched[2].text == alone[0].text
    # The short prompt is left-padded in the batch above; rows of the long prompt are not.
    second_alone = sample(model, tokenizer, [PROMPTS[1]], n=1, max_new_tokens=12, seeds=201)
    assert batched[4].token_ids == second_alone[0].token_ids


def test_rows_with_different_settings_share_one_generate_call(tiny, monkeypatch) -> None:
    model, tokenizer = tiny
    prompt = tuple(tokenizer("Once upon a time").input_ids)
    calls = []
    original = model.generate

    def counting_generate(*args, **kwargs):
        calls.append(kwargs["input_ids"].shape[0])
        return original(*args, **kwargs)

    monkeypatch.setattr(model, "generate", counting_generate)
    rows = [
        RowRequest(prompt, seed=1, max_new_tokens=3, temperature=0.7),
        RowRequest(prompt, seed=1, max_new_tokens=10, temperature=0.0),
        RowRequest(prompt, seed=1, max_new_tokens=10, temperature=0.0),
        RowRequest(prompt, seed=2, max_new_tokens=6, top_p=0.5, logprobs=0),
    ]
    sampled = generate_rows(model, tokenizer, rows)
    assert calls == [4]
    assert [
        len(row.token_ids) <= row_request.max_new_tokens
        for row, row_request in zip(sampled, rows, strict=True)
    ] == [True] * 4
    assert sampled[1].token_ids == sampled[2].token_ids
    assert sampled[3].logprobs is not None and sampled[0].logprobs is None
    alone = generate_rows(model, tokenizer, [rows[0]])
    assert alone[0].token_ids == sampled[0].token_ids


def test_finish_reasons_length_eos_and_stop_string(tiny) -> None:
    model, tokenizer = tiny
    rows = sample(model, tokenizer, PROMPTS, n=16, max_new_tokens=24, seeds=0)
    reasons = {row.finish_reason for row in rows}
    assert reasons == {"stop", "length"}
    for row in rows:
        assert tokenizer.eos_token_id not in row.token_ids
        if row.finish_reason == "length":
            assert len(row.token_ids) == 24
        else:
            assert len(row.token_ids) < 24

    longest = max(rows, key=lambda row: len(row.text))
    seed_index = rows.index(longest)
    prompt, i = PROMPTS[seed_index // 16], seed_index % 16
    stop = longest.text[5:8]
    cut = sample(model, tokenizer, [prompt], n=1, max_new_tokens=24, seeds=i, stop=[stop, "zzzz"])
    assert cut[0].text == longest.text[: longest.text.index(stop)]
    assert cut[0].finish_reason == "stop"
    covered = tokenizer.decode(cut[0].token_ids, skip_special_tokens=True)
    assert covered.startswith(cut[0].text + stop)


def test_logprobs_are_the_models_own_log_probabilities(tiny) -> None:
    model, tokenizer = tiny
    row = sample(
        model,
        tokenizer,
        [PROMPTS[0]],
        n=1,
        max_new_tokens=8,
        seeds=3,
        temperature=0.8,
        logprobs=2,
    )[0]
    prompt_ids = tokenizer(PROMPTS[0]).input_ids
    ids = torch.tensor([prompt_ids + row.token_ids])
    with torch.inference_mode():
        logits = model(ids).logits[0, len(prompt_ids) - 1 : -1].log_softmax(-1)
    expected = logits.gather(-1, torch.tensor(row.token_ids)[:, None])[:, 0]
    assert torch.allclose(torch.tensor(row.logprobs), expected, atol=1e-4)
    assert all(len(top) == 2 for top in row.top_logprobs)
    assert max(row.top_logprobs[0].values()) == pytest.approx(float(logits[0].max()), abs=1e-4)


def test_tiny_build_is_reproducible_and_safe_to_race(tmp_path, models_dir) -> None:
    results, errors = [], []

    def build() -> None:
        try:
            results.append(ensure_tiny(tmp_path))
        except Exception as error:  # collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=build) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(results) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny", "tiny-rm"]
    # Same seed as the session's build: byte-identical weights and tokenizer.
    for name in ("tiny/model.safetensors", "tiny/tokenizer.json", "tiny-rm/model.safetensors"):
        assert (tmp_path / name).read_bytes() == (models_dir / name).read_bytes()
