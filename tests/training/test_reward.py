"""Reward model: the K-way loss against the pairwise formula, and training on a known preference."""

from __future__ import annotations

import io
import itertools
import json
import math
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from models_service.tiny import ensure_tiny
from models_service.training.protocol import EventStream, TrainingSpec
from models_service.training.reward import (
    RankingExample,
    kway_loss,
    prompt_losses,
    ranking_from_row,
    ranking_pairs,
)
from models_service.training.run import run_spec
from models_service.training.runtime import Device, write_jsonl
from models_service.training.scoring import load_reward_model, score
from models_service.training.synthetic import (
    pairs_from_rankings,
    strict_rankings,
    synthetic_rankings,
    synthetic_sft_rows,
)


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory) -> tuple[Path, Path]:
    return ensure_tiny(tmp_path_factory.getbasetemp() / "tiny-models")


def test_ranking_pairs_cross_groups_in_order_and_drop_ties() -> None:
    winners, losers = ranking_pairs([[2], [0, 1], [3]])
    assert list(zip(winners.tolist(), losers.tolist(), strict=True)) == [
        (2, 0),
        (2, 1),
        (2, 3),
        (0, 3),
        (1, 3),
    ]
    assert ranking_pairs([[0, 1, 2]])[0].numel() == 0


@st.composite
def groupings(draw):
    k = draw(st.integers(min_value=2, max_value=9))
    order = draw(st.permutations(list(range(k))))
    cuts = sorted(draw(st.sets(st.integers(min_value=1, max_value=k - 1), max_size=k - 1)))
    bounds = [0, *cuts, k]
    groups = [list(order[a:b]) for a, b in itertools.pairwise(bounds)]
    rewards = draw(
        st.lists(st.floats(min_value=-8, max_value=8, allow_nan=False), min_size=k, max_size=k)
    )
    return groups, rewards


@settings(max_examples=200)
@given(groupings())
def test_kway_loss_equals_mean_pairwise_loss(case) -> None:
    groups, rewards = case
    rank = {i: g for g, group in enumerate(groups) for i in group}
    expected = [
        -math.log(1 / (1 + math.exp(-(rewards[w] - rewards[loser]))))
        for w in range(len(rewards))
        for loser in range(len(rewards))
        if rank[w] < rank[loser]
    ]
    loss = kway_loss(torch.tensor(rewards, dtype=torch.float64), ranking_pairs(groups))
    if not expected:
        assert float(loss) == 0.0
    else:
        assert float(loss) == pytest.approx(sum(expected) / len(expected), abs=1e-6)


def test_grouped_forward_equals_one_pair_at_a_time(tiny_models) -> None:
    model, tokenizer = load_reward_model(tiny_models[1])
    rows = synthetic_rankings(3, k=5, seed=7) + strict_rankings(2, k=4, seed=8)
    examples = [ranking_from_row(row) for row in rows]
    group = prompt_losses(model, tokenizer, examples, max_length=512)

    expected = []
    for row in rows:
        per_pair = []
        for pair in pairs_from_rankings([row]):
            chosen, rejected = score(
                model, tokenizer, [pair["prompt"]] * 2, [pair["chosen"], pair["rejected"]]
            )
            per_pair.append(-torch.nn.functional.logsigmoid(chosen - rejected))
        expected.append(torch.stack(per_pair).mean())
    assert group.pairs == sum(len(pairs_from_rankings([row])) for row in rows)
    torch.testing.assert_close(group.losses, torch.stack(expected), atol=1e-6, rtol=0)


def test_pair_rows_become_two_way_rankings_and_bad_groups_are_refused() -> None:
    example = ranking_from_row({"prompt": "p", "chosen": "a", "rejected": "b"})
    assert example == RankingExample("p", ("a", "b"), ((0,), (1,)))
    with pytest.raises(ValueError, match="distinct indices"):
        ranking_from_row({"prompt": "p", "completions": ["a", "b"], "rank_groups": [[0], [0]]})
    with pytest.raises(ValueError, match="below 2"):
        ranking_from_row({"prompt": "p", "completions": ["a", "b"], "rank_groups": [[0], [2]]})


def _spec(tmp_path: Path, base: Path, **hyperparameters) -> TrainingSpec:
    train = write_jsonl(tmp_path / "train.jsonl", synthetic_rankings(160, k=4, seed=1))
    valid = write_jsonl(tmp_path / "valid.jsonl", synthetic_rankings(40, k=4, seed=2))
    demos = write_jsonl(tmp_path / "demos.jsonl", synthetic_sft_rows(16, seed=3))
    return TrainingSpec.from_dict(
        {
            "kind": "reward",
            "base_model": str(base),
            "output_dir": str(tmp_path / "out"),
            "data": {"train": str(train), "valid": str(valid), "demonstrations": str(demos)},
            "hyperparameters": {"learning_rate": 1e-3, "prompts_per_batch": 8, **hyperparameters},
            "seed": 0,
            "cancel_file": str(tmp_path / "cancel"),
        }
    )


@pytest.mark.training
def test_reward_model_learns_the_marker_preference_and_demonstrations_score_zero(
    tiny_models, tmp_path
) -> None:
    spec = _spec(tmp_path, tiny_models[1], epochs=2, checkpoint_every=15)
    stream = io.StringIO()
    assert run_spec(spec, EventStream(stream), Device("cpu", bf16=False)) == 0
    events = [json.loads(line) for line in stream.getvalue().splitlines()]

    progress = [e for e in events if e["event"] == "progress"]
    assert [e["step"] for e in progress] == list(range(1, 41))
    assert {"loss", "lr", "accuracy"} <= set(progress[0]["metrics"])
    assert progress[-1]["metrics"]["loss"] < progress[0]["metrics"]["loss"]
    checkpoints = [e for e in events if e["event"] == "checkpoint"]
    assert [e["step"] for e in checkpoints] == [15, 30]
    assert all(Path(e["path"], "training_state.pt").is_file() for e in checkpoints)
    done = events[-1]
    assert done["event"] == "done"
    assert done["metrics"]["valid_accuracy"] >= 0.9
    assert done["metrics"]["valid_pairs"] == 40 * 4

    model, tokenizer = load_reward_model(Path(done["model_dir"]))
    demos = synthetic_sft_rows(16, seed=3)
    scores = score(model, tokenizer, [d["prompt"] for d in demos], [d["completion"] for d in demos])
    assert abs(float(scores.mean())) < 1e-4
    assert float(scores.std()) > 0


def test_chat_demonstrations_render_the_template_once_without_a_second_bos(tiny_models) -> None:
    from models_service.training.reward import demonstration_pairs
    from models_service.training.runtime import load_tokenizer
    from models_service.training.scoring import encode

    tokenizer = load_tokenizer(tiny_models[1])
    messages = [
        {"role": "user", "content": "Name a color."},
        {"role": "assistant", "content": "Blue."},
    ]
    prompts, completions = demonstration_pairs(
        [{"messages": messages}, {"prompt": "Hi", "completion": " there"}], tokenizer
    )
    assert prompts[0].endswith("<|assistant|>\n") and completions == ["Blue.", " there"]
    chat_ids = encode(tokenizer, prompts[0], completions[0], max_length=512)
    plain_ids = encode(tokenizer, "Hi", " there", max_length=512)
    assert chat_ids.count(tokenizer.bos_token_id) == 1
    assert plain_ids[0] == tokenizer.bos_token_id and tokenizer.eos_token_id not in plain_ids


def test_prompts_per_forward_follow_the_memory_left(monkeypatch) -> None:
    """The reward model's forwards hold as many prompts (all K completions each) as the
    activations of Korthikanti et al.'s estimate fit in FORWARD_MEMORY_SHARE of free memory."""
    from types import SimpleNamespace

    from models_service.tiny import build_tokenizer
    from models_service.training import reward_train
    from models_service.training.scoring import encode

    config = SimpleNamespace(hidden_size=64, num_attention_heads=4, num_hidden_layers=2)
    tokenizer = build_tokenizer()
    batch = [ranking_from_row(row) for row in synthetic_rankings(8, k=4, seed=3)]
    longest = max(
        len(encode(tokenizer, e.prompt, c, max_length=512)) for e in batch for c in e.completions
    )
    per_token = reward_train.activation_bytes_per_token(config, bf16=False, sequence=longest)
    assert per_token == 2 * (34 * 64 + 5 * 4 * longest) * 2  # 2 layers, 4 bytes a value
    device = Device("cpu", bf16=False)
    sizes = []
    for free in (10**12, 10**8, 10**5):
        monkeypatch.setattr(reward_train, "free_bytes", lambda device, free=free: free)
        sizes.append(
            reward_train.prompts_per_forward(
                config, tokenizer, batch, device=device, max_length=512
            )
        )
    assert sizes[0] > sizes[1] > sizes[2] == 1
    widest = max(
        len(e.completions)
        * max(len(encode(tokenizer, e.prompt, c, max_length=512)) for c in e.completions)
        for e in batch
    )
    assert sizes[1] == int(reward_train.FORWARD_MEMORY_SHARE * 10**8 / per_token) // widest
