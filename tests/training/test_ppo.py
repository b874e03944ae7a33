"""PPO-ptx and RLOO on the tiny models against a reward model trained to prefer a marker word."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from models_service.sampling import sample
from models_service.tiny import ensure_tiny
from models_service.training.protocol import EventStream, TrainingSpec
from models_service.training.run import run_spec
from models_service.training.runtime import Device, write_jsonl
from models_service.training.scoring import load_reward_model, score
from models_service.training.sft import completion_loss
from models_service.training.synthetic import (
    synthetic_prompts,
    synthetic_rankings,
    synthetic_sft_rows,
)

CPU = Device("cpu", bf16=False)
PPO_SETTINGS = {
    "learning_rate": 5e-4,
    "batch_size": 16,
    "minibatch_size": 8,
    "max_new_tokens": 12,
    "max_steps": 20,
    "checkpoint_every": 10,
}


@dataclass(frozen=True)
class Setup:
    policy: Path
    reward_model: Path
    prompts: Path
    pretrain: Path
    root: Path


class CancelAt(io.StringIO):
    """An event stream that creates the cancel file once it has seen progress for `step`."""

    def __init__(self, cancel_file: Path, step: int) -> None:
        super().__init__()
        self.cancel_file, self.step = cancel_file, step

    def write(self, text: str) -> int:
        event = json.loads(text)
        if event["event"] == "progress" and event["step"] == self.step:
            self.cancel_file.touch()
        return super().write(text)


def _run(spec: dict[str, Any], stream: io.StringIO | None = None) -> list[dict[str, Any]]:
    stream = stream or io.StringIO()
    assert run_spec(TrainingSpec.from_dict(spec), EventStream(stream), CPU) == 0
    return [json.loads(line) for line in stream.getvalue().splitlines()]


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> Setup:
    policy, reward_base = ensure_tiny(tmp_path_factory.getbasetemp() / "tiny-models")
    root = tmp_path_factory.mktemp("ppo")
    rankings = write_jsonl(root / "rankings.jsonl", synthetic_rankings(160, k=4, seed=1))
    demos = write_jsonl(root / "demos.jsonl", synthetic_sft_rows(16, seed=3))
    events = _run(
        {
            "kind": "reward",
            "base_model": str(reward_base),
            "output_dir": str(root / "rm"),
            "data": {"train": str(rankings), "demonstrations": str(demos)},
            "hyperparameters": {"learning_rate": 1e-3, "prompts_per_batch": 8, "epochs": 2},
        }
    )
    return Setup(
        policy=policy,
        reward_model=Path(events[-1]["model_dir"]),
        prompts=write_jsonl(root / "prompts.jsonl", synthetic_prompts(320, seed=1)),
        pretrain=write_jsonl(root / "pretrain.jsonl", synthetic_sft_rows(64, seed=4)),
        root=root,
    )


def _ppo_spec(setup: Setup, name: str, **hyperparameters) -> dict[str, Any]:
    return {
        "kind": "ppo",
        "base_model": str(setup.policy),
        "output_dir": str(setup.root / name),
        "data": {"train": str(setup.prompts), "pretrain": str(setup.pretrain)},
        "hyperparameters": {**PPO_SETTINGS, **hyperparameters},
        "seed": 1,
        "cancel_file": str(setup.root / f"{name}.cancel"),
        "reward_model": str(setup.reward_model),
    }


@pytest.fixture(scope="module")
def plain_ppo(setup: Setup) -> list[dict[str, Any]]:
    return _run(_ppo_spec(setup, "plain"))


def _mean_reward(setup: Setup, policy_dir: Path) -> float:
    """Mean RM score of 64 samples from fixed seeds (prompts not seen in the first steps)."""
    policy = AutoModelForCausalLM.from_pretrained(policy_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(policy_dir)
    prompts = [row["prompt"] for row in synthetic_prompts(64, seed=99)]
    rows = sample(policy, tokenizer, prompts, max_new_tokens=12, seeds=list(range(64)))
    reward_model, reward_tokenizer = load_reward_model(setup.reward_model)
    return float(score(reward_model, reward_tokenizer, prompts, [r.text for r in rows]).mean())


@pytest.mark.training
def test_ppo_raises_the_reward_and_reports_kl_and_checkpoints(setup, plain_ppo) -> None:
    progress = [e for e in plain_ppo if e["event"] == "progress"]
    assert [e["step"] for e in progress] == list(range(1, 21))
    expected = {"reward", "kl", "policy_loss", "value_loss", "clip_fraction", "ptx_loss"}
    assert expected | {"response_length", "lr", "loss"} <= set(progress[0]["metrics"])
    diagnostics = {"approx_kl", "entropy", "value_explained_variance", "no_eos_share"}
    diagnostics |= {f"{n}_{s}" for n in ("advantage", "return") for s in ("mean", "std")}
    for event in progress:
        metrics = event["metrics"]
        assert diagnostics <= set(metrics)
        assert metrics["approx_kl"] >= 0 and 0 <= metrics["no_eos_share"] <= 1
        assert metrics["entropy"] > 0 and metrics["return_std"] >= 0
    # The value function starts as the reward model: it learns to predict the returns.
    assert progress[-1]["metrics"]["value_explained_variance"] > min(
        e["metrics"]["value_explained_variance"] for e in progress[:3]
    )
    sampled = {e["step"]: e["samples"] for e in progress if "samples" in e}
    assert sorted(sampled) == [1, 10, 20]
    assert len(sampled[10]) == 4
    assert {"prompt", "response", "reward", "ended"} == set(sampled[10][0])
    assert progress[0]["metrics"]["kl"] == pytest.approx(0.0, abs=1e-4)
    assert progress[-1]["metrics"]["kl"] > 0.1
    checkpoints = [e for e in plain_ppo if e["event"] == "checkpoint"]
    assert [e["step"] for e in checkpoints] == [10]
    assert {"reward", "kl"} <= set(checkpoints[0]["metrics"])

    before = _mean_reward(setup, setup.policy)
    after = _mean_reward(setup, Path(plain_ppo[-1]["model_dir"]))
    assert after > before + 0.5, (before, after)


@pytest.mark.training
def test_kl_penalty_bounds_the_drift_from_the_reference(setup, plain_ppo) -> None:
    """The same run with a 25x larger KL coefficient ends much closer to the SFT policy."""
    strict = _run(_ppo_spec(setup, "strict", beta=0.5))

    def final_kl(events: list[dict[str, Any]]) -> float:
        kls = [e["metrics"]["kl"] for e in events if e["event"] == "progress"]
        return sum(kls[-5:]) / 5

    assert final_kl(strict) < 0.5 * final_kl(plain_ppo), (final_kl(strict), final_kl(plain_ppo))


@pytest.mark.training
def test_ptx_term_keeps_the_sft_likelihood_higher(setup, plain_ppo) -> None:
    with_ptx = _run(_ppo_spec(setup, "ptx", gamma_ptx=2.0))
    rows = synthetic_sft_rows(64, seed=4)
    tokenizer = AutoTokenizer.from_pretrained(setup.policy)

    def nll(model_dir: str) -> float:
        return completion_loss(AutoModelForCausalLM.from_pretrained(model_dir), tokenizer, rows)

    assert nll(with_ptx[-1]["model_dir"]) < nll(plain_ppo[-1]["model_dir"]) - 0.2
    ptx_losses = [e["metrics"]["ptx_loss"] for e in with_ptx if e["event"] == "progress"]
    assert ptx_losses[-1] < ptx_losses[0]


@pytest.mark.training
def test_ppo_cancelled_then_resumed_matches_the_uninterrupted_run(setup, plain_ppo) -> None:
    spec = _ppo_spec(setup, "cut")
    events = _run(spec, CancelAt(Path(spec["cancel_file"]), step=5))
    assert events[-1] == {"event": "cancelled"}
    checkpoint = events[-2]
    assert checkpoint["event"] == "checkpoint" and checkpoint["step"] == 5
    Path(spec["cancel_file"]).unlink()

    resumed = _run({**spec, "resume_from": checkpoint["path"]})
    assert [e["step"] for e in resumed if e["event"] == "progress"] == list(range(6, 21))
    full = load_file(str(Path(plain_ppo[-1]["model_dir"]) / "model.safetensors"))
    again = load_file(str(Path(resumed[-1]["model_dir"]) / "model.safetensors"))
    for name, tensor in full.items():
        torch.testing.assert_close(again[name], tensor, atol=1e-5, rtol=0, msg=name)


@pytest.mark.training
def test_rloo_runs_through_the_protocol(setup) -> None:
    events = _run(
        {
            "kind": "rloo",
            "base_model": str(setup.policy),
            "output_dir": str(setup.root / "rloo"),
            "data": {"train": str(setup.prompts)},
            "hyperparameters": {
                "learning_rate": 1e-4,
                "max_steps": 2,
                "batch_size": 8,
                "num_generations": 4,
                "max_completion_length": 8,
            },
            "reward_model": str(setup.reward_model),
        }
    )
    progress = [e for e in events if e["event"] == "progress"]
    assert [e["step"] for e in progress] == [1, 2]
    metrics = progress[0]["metrics"]
    assert {"loss", "lr", "reward", "kl", "entropy", "no_eos_share", "advantage_mean"} <= set(
        metrics
    )
    # KL per response, as PPO reports it: the per-token mean times the mean response length.
    second = progress[1]["metrics"]
    assert second["kl_per_token"] != 0
    assert second["kl"] == pytest.approx(
        second["kl_per_token"] * second["response_length"], rel=1e-4
    )
    samples = progress[0]["samples"]
    assert len(samples) == 4 and {"prompt", "response", "reward", "ended"} == set(samples[0])
    assert all(isinstance(row["ended"], bool) for row in samples)
    assert events[-1]["event"] == "done"
    assert (Path(events[-1]["model_dir"]) / "model.safetensors").is_file()
