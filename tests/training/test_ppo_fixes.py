"""Each PPO correction, checked on the tiny models with one rollout and one update."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import (
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
)

from models_service.sampling import sample
from models_service.tiny import ensure_tiny
from models_service.training.hyperparameters import PpoHyperparameters
from models_service.training.ppo import load_models
from models_service.training.ppo_math import masked_mean
from models_service.training.ppo_rollout import collect_rollout
from models_service.training.ppo_update import ppo_update
from models_service.training.protocol import EventStream, TrainingSpec, parse_hyperparameters
from models_service.training.run import run_spec
from models_service.training.runtime import Device, write_jsonl
from models_service.training.synthetic import synthetic_prompts

pytestmark = pytest.mark.training
CPU = Device("cpu", bf16=False)
PROMPTS = [row["prompt"] for row in synthetic_prompts(12, seed=7)]
SEEDS = list(range(100, 112))


@pytest.fixture(scope="module")
def tiny_dirs(tmp_path_factory) -> tuple[Path, Path]:
    return ensure_tiny(tmp_path_factory.getbasetemp() / "tiny-models")


@pytest.fixture(scope="module")
def dropout_dirs(tiny_dirs, tmp_path_factory) -> tuple[Path, Path]:
    """The tiny policy and reward model with attention dropout 0.5 in their configs."""
    root = tmp_path_factory.mktemp("dropout")
    for source, auto in zip(
        tiny_dirs, (AutoModelForCausalLM, AutoModelForSequenceClassification), strict=True
    ):
        model = auto.from_pretrained(source, attention_dropout=0.5)
        model.save_pretrained(root / source.name)
        AutoTokenizer.from_pretrained(source).save_pretrained(root / source.name)
    return root / "tiny", root / "tiny-rm"


def _load(tmp_path: Path, dirs: tuple[Path, Path], **hyperparameters):
    spec = TrainingSpec.from_dict(
        {
            "kind": "ppo",
            "base_model": str(dirs[0]),
            "output_dir": str(tmp_path / "out"),
            "data": {"train": str(tmp_path / "prompts.jsonl")},
            "hyperparameters": hyperparameters,
            "reward_model": str(dirs[1]),
        }
    )
    hp = parse_hyperparameters(PpoHyperparameters, {"max_new_tokens": 6, **hyperparameters})
    return load_models(spec, CPU), hp


def _update(models, rollout, hp, *, lr: float = 0.0) -> dict[str, float]:
    parameters = [*models.policy.parameters(), *models.value.parameters()]
    optimizer = torch.optim.AdamW(parameters, lr=lr)
    return ppo_update(
        models, rollout, optimizer=optimizer, parameters=parameters, hp=hp, ptx=None, device=CPU
    )


def test_each_episode_is_used_once_per_ppo_epoch(tiny_dirs, tmp_path) -> None:
    models, hp = _load(tmp_path, tiny_dirs, batch_size=12, minibatch_size=4, ppo_epochs=2)
    rollout, _ = collect_rollout(models, PROMPTS, seeds=SEEDS, hp=hp, device=CPU)
    rows = [tuple(row.tolist()) for row in rollout.input_ids]
    assert len(set(rows)) == 12
    seen: list[torch.Tensor] = []
    hook = models.policy.register_forward_pre_hook(
        lambda module, args, kwargs: seen.append(kwargs["input_ids"].clone()), with_kwargs=True
    )
    try:
        _update(models, rollout, hp)
    finally:
        hook.remove()
    assert len(seen) == 6  # 2 epochs x 3 minibatches of 4
    for epoch in (seen[:3], seen[3:]):
        used = sorted(rows.index(tuple(row.tolist())) for batch in epoch for row in batch)
        assert used == list(range(12))


def test_logprobs_are_taken_at_the_sampling_temperature(tiny_dirs, tmp_path) -> None:
    models, hp = _load(tmp_path, tiny_dirs, temperature=0.5)
    rollout, _ = collect_rollout(models, PROMPTS[:6], seeds=SEEDS[:6], hp=hp, device=CPU)
    with torch.no_grad():
        logits = models.policy(
            input_ids=rollout.input_ids, attention_mask=rollout.attention_mask
        ).logits[:, :-1]
    expected = (logits / 0.5).log_softmax(-1).gather(-1, rollout.input_ids[:, 1:, None])[..., 0]
    mask = rollout.action_mask.bool()
    torch.testing.assert_close(rollout.logprobs[mask], expected[mask], atol=1e-5, rtol=0)
    # The update computes the ratio at the same temperature: with no step taken, it is 1.
    metrics = _update(models, rollout, replace(hp, minibatch_size=6))
    assert metrics["clip_fraction"] == 0.0
    assert metrics["policy_loss"] == pytest.approx(
        float(-masked_mean(rollout.advantages, rollout.action_mask)), abs=1e-5
    )


def test_dropout_is_off_in_every_model_during_rl(dropout_dirs, tmp_path) -> None:
    models, hp = _load(tmp_path, dropout_dirs, batch_size=8, minibatch_size=8)
    first, _ = collect_rollout(models, PROMPTS[:8], seeds=SEEDS[:8], hp=hp, device=CPU)
    metrics = _update(models, first, hp)  # learning rate 0: nothing moves
    mask = first.action_mask
    assert metrics["clip_fraction"] == 0.0
    assert metrics["policy_loss"] == pytest.approx(
        float(-masked_mean(first.advantages, mask)), abs=1e-5
    )
    expected_value_loss = 0.5 * masked_mean((first.values - first.returns) ** 2, mask)
    assert metrics["value_loss"] == pytest.approx(float(expected_value_loss), abs=1e-5)
    again, _ = collect_rollout(models, PROMPTS[:8], seeds=SEEDS[:8], hp=hp, device=CPU)
    torch.testing.assert_close(again.values, first.values, atol=1e-5, rtol=0)
    torch.testing.assert_close(again.scores, first.scores, atol=1e-5, rtol=0)
    torch.testing.assert_close(again.kl, first.kl, atol=1e-5, rtol=0)


def test_the_eos_that_ended_a_sample_is_the_one_trained_on(tiny_dirs, tmp_path) -> None:
    models, hp = _load(tmp_path, tiny_dirs)
    prompts, seeds = PROMPTS[:4], SEEDS[:4]
    first_token = sample(models.policy, models.tokenizer, prompts, max_new_tokens=1, seeds=seeds)
    second_eos = first_token[0].token_ids[0]
    eos = models.tokenizer.eos_token_id
    assert second_eos != eos
    models.policy.generation_config.eos_token_id = [eos, second_eos]
    rollout, _ = collect_rollout(models, prompts, seeds=seeds, hp=hp, device=CPU)
    response = rollout.input_ids[0, 1:][rollout.action_mask[0].bool()].tolist()
    assert response == [second_eos]


def test_missing_eos_penalty_lowers_unfinished_responses_only(tiny_dirs, tmp_path) -> None:
    models, hp = _load(tmp_path, tiny_dirs, max_new_tokens=3)
    plain, _ = collect_rollout(models, PROMPTS, seeds=SEEDS, hp=hp, device=CPU)
    penalised, _ = collect_rollout(
        models, PROMPTS, seeds=SEEDS, hp=replace(hp, missing_eos_penalty=1.5), device=CPU
    )
    eos = models.tokenizer.eos_token_id
    last = (plain.action_mask.cumsum(1) * plain.action_mask).argmax(1)
    ended = plain.input_ids[torch.arange(12), last + 1] == eos
    assert not bool(ended.all())
    torch.testing.assert_close(penalised.scores, plain.scores - 1.5 * (~ended).float())


def _events(spec: dict) -> list[dict]:
    stream = io.StringIO()
    assert run_spec(TrainingSpec.from_dict(spec), EventStream(stream), CPU) == 0
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_policy_and_value_have_their_own_learning_rates(tiny_dirs, tmp_path) -> None:
    prompts = write_jsonl(tmp_path / "prompts.jsonl", synthetic_prompts(8, seed=3))
    events = _events(
        {
            "kind": "ppo",
            "base_model": str(tiny_dirs[0]),
            "output_dir": str(tmp_path / "out"),
            "data": {"train": str(prompts)},
            "hyperparameters": {
                "learning_rate": 0.0,
                "value_learning_rate": 1e-2,
                "batch_size": 8,
                "minibatch_size": 4,
                "max_new_tokens": 4,
                "max_steps": 1,
            },
            "reward_model": str(tiny_dirs[1]),
        }
    )
    assert events[-1]["event"] == "done", events[-1]
    before = load_file(str(tiny_dirs[0] / "model.safetensors"))
    after = load_file(str(Path(events[-1]["model_dir"]) / "model.safetensors"))
    for name, tensor in before.items():
        torch.testing.assert_close(after[name], tensor, atol=0, rtol=0, msg=name)
    value_before = load_file(str(tiny_dirs[1] / "model.safetensors"))
    value_after = load_file(str(tmp_path / "out" / "value" / "model.safetensors"))
    changed = [n for n, t in value_before.items() if not torch.equal(value_after[n], t)]
    assert len(changed) > len(value_before) // 2
