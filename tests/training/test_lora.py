"""LoRA through PEFT: SFT and PPO (policy and value) train adapters, saved as adapters and merged
for serving; the frozen weights stay as they were."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from models_service.tiny import ensure_tiny
from models_service.training.protocol import EventStream, TrainingSpec
from models_service.training.run import run_spec
from models_service.training.runtime import Device, write_jsonl
from models_service.training.sft import completion_loss
from models_service.training.synthetic import synthetic_prompts, synthetic_sft_rows

pytestmark = pytest.mark.training
CPU = Device("cpu", bf16=False)
LORA = {"lora_rank": 4, "lora_alpha": 8}


@pytest.fixture(scope="module")
def tiny_dirs(tmp_path_factory) -> tuple[Path, Path]:
    return ensure_tiny(tmp_path_factory.getbasetemp() / "tiny-models")


def _run(spec: dict) -> list[dict]:
    stream = io.StringIO()
    assert run_spec(TrainingSpec.from_dict(spec), EventStream(stream), CPU) == 0
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def _weights(directory: Path) -> dict[str, torch.Tensor]:
    return load_file(str(directory / "model.safetensors"))


def _assert_adapted(base: Path, trained: Path) -> None:
    """An adapter beside merged weights: the embeddings (no adapter) as they were, the
    attention projections (adapted) changed."""
    assert json.loads((trained / "adapter" / "adapter_config.json").read_text())["r"] == 4
    before, after = _weights(base), _weights(trained)
    assert after.keys() == before.keys()
    torch.testing.assert_close(
        after["model.embed_tokens.weight"], before["model.embed_tokens.weight"]
    )
    name = "model.layers.0.self_attn.q_proj.weight"
    assert not torch.allclose(after[name], before[name])


def test_sft_trains_a_lora_adapter_and_saves_it_merged(tiny_dirs, tmp_path) -> None:
    rows = synthetic_sft_rows(16, seed=2)
    train = write_jsonl(tmp_path / "sft.jsonl", rows)
    events = _run(
        {
            "kind": "sft",
            "base_model": str(tiny_dirs[0]),
            "output_dir": str(tmp_path / "sft"),
            "data": {"train": str(train)},
            "hyperparameters": {"learning_rate": 1e-2, "epochs": 3, "batch_size": 8, **LORA},
        }
    )
    assert events[-1]["event"] == "done", events[-1]
    trained = Path(events[-1]["model_dir"])
    _assert_adapted(tiny_dirs[0], trained)
    tokenizer = AutoTokenizer.from_pretrained(tiny_dirs[0])
    before = completion_loss(AutoModelForCausalLM.from_pretrained(tiny_dirs[0]), tokenizer, rows)
    after = completion_loss(AutoModelForCausalLM.from_pretrained(trained), tokenizer, rows)
    assert after < before - 0.5, (before, after)


def test_ppo_trains_lora_policy_and_value(tiny_dirs, tmp_path) -> None:
    prompts = write_jsonl(tmp_path / "prompts.jsonl", synthetic_prompts(8, seed=3))
    events = _run(
        {
            "kind": "ppo",
            "base_model": str(tiny_dirs[0]),
            "output_dir": str(tmp_path / "ppo"),
            "data": {"train": str(prompts)},
            "hyperparameters": {
                "learning_rate": 1e-2,
                "batch_size": 4,
                "minibatch_size": 2,
                "max_new_tokens": 6,
                "max_steps": 2,
                **LORA,
            },
            "reward_model": str(tiny_dirs[1]),
        }
    )
    assert events[-1]["event"] == "done", events[-1]
    _assert_adapted(tiny_dirs[0], Path(events[-1]["model_dir"]))
    _assert_adapted(tiny_dirs[1], tmp_path / "ppo" / "value")
