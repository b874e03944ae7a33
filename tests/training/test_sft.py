"""SFT through TRL: the completion loss on the training data goes down."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer

from models_service.tiny import ensure_tiny
from models_service.training.protocol import EventStream, TrainingSpec
from models_service.training.run import run_spec
from models_service.training.runtime import Device, write_jsonl
from models_service.training.sft import completion_loss, sft_rows
from models_service.training.synthetic import synthetic_sft_rows


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory) -> tuple[Path, Path]:
    return ensure_tiny(tmp_path_factory.getbasetemp() / "tiny-models")


def test_sft_rows_take_one_format_per_file() -> None:
    assert sft_rows([{"prompt": "a", "completion": "b", "id": 1}], Path("f")) == [
        {"prompt": "a", "completion": "b"}
    ]
    with pytest.raises(ValueError, match="every row needs"):
        sft_rows([{"prompt": "a", "completion": "b"}, {"messages": []}], Path("f"))


@pytest.mark.training
def test_sft_lowers_the_completion_loss_on_its_training_data(tiny_models, tmp_path) -> None:
    rows = synthetic_sft_rows(32, seed=1)
    train = write_jsonl(tmp_path / "train.jsonl", rows)
    spec = TrainingSpec.from_dict(
        {
            "kind": "sft",
            "base_model": str(tiny_models[0]),
            "output_dir": str(tmp_path / "out"),
            "data": {"train": str(train)},
            "hyperparameters": {"learning_rate": 3e-3, "epochs": 2, "batch_size": 8},
            "cancel_file": str(tmp_path / "cancel"),
        }
    )
    stream = io.StringIO()
    assert run_spec(spec, EventStream(stream), Device("cpu", bf16=False)) == 0
    events = [json.loads(line) for line in stream.getvalue().splitlines()]
    progress = [e for e in events if e["event"] == "progress"]
    assert [e["step"] for e in progress] == list(range(1, 9))
    assert all(e["total"] == 8 and e["metrics"]["lr"] > 0 for e in progress)
    assert events[-1]["event"] == "done"

    tokenizer = AutoTokenizer.from_pretrained(tiny_models[0])
    before = completion_loss(AutoModelForCausalLM.from_pretrained(tiny_models[0]), tokenizer, rows)
    after_model = AutoModelForCausalLM.from_pretrained(events[-1]["model_dir"])
    after = completion_loss(after_model, tokenizer, rows)
    assert after < before - 0.5


@pytest.mark.training
def test_sft_trains_on_chat_rows(tiny_models, tmp_path) -> None:
    chats = [
        {
            "messages": [
                {"role": "user", "content": r["prompt"]},
                {"role": "assistant", "content": r["completion"]},
            ]
        }
        for r in synthetic_sft_rows(8, seed=2)
    ]
    spec = TrainingSpec.from_dict(
        {
            "kind": "sft",
            "base_model": str(tiny_models[0]),
            "output_dir": str(tmp_path / "out"),
            "data": {"train": str(write_jsonl(tmp_path / "chats.jsonl", chats))},
            "hyperparameters": {"learning_rate": 1e-3, "max_steps": 2, "batch_size": 4},
        }
    )
    stream = io.StringIO()
    assert run_spec(spec, EventStream(stream), Device("cpu", bf16=False)) == 0
    events = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [e["step"] for e in events if e["event"] == "progress"] == [1, 2]
    assert events[-1]["event"] == "done"
