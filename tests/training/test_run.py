"""The runner protocol end to end: a real `python -m models_service.training.run` subprocess,
killed with SIGKILL or cancelled mid-run, then resumed from its last checkpoint."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from models_service import REPO_ROOT
from models_service.tiny import ensure_tiny
from models_service.training.runtime import write_jsonl
from models_service.training.synthetic import synthetic_rankings, synthetic_sft_rows


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory) -> tuple[Path, Path]:
    return ensure_tiny(tmp_path_factory.getbasetemp() / "tiny-models")


def _write_spec(directory: Path, spec: dict[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "spec.json"
    path.write_text(json.dumps(spec))
    return path


def _start(spec_path: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.Popen(
        [sys.executable, "-m", "models_service.training.run", str(spec_path)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )


def _run(spec_path: Path) -> tuple[int, list[dict[str, Any]]]:
    process = _start(spec_path)
    out, _ = process.communicate(timeout=240)
    return process.returncode, [json.loads(line) for line in out.splitlines()]


def _weights(model_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(str(Path(model_dir) / "model.safetensors"))


def _assert_same_weights(first: Path, second: Path) -> None:
    a, b = _weights(first), _weights(second)
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], atol=1e-5, rtol=0, msg=name)


def _reward_spec(tmp_path: Path, base: Path, name: str, **extra) -> dict[str, Any]:
    train = write_jsonl(tmp_path / "train.jsonl", synthetic_rankings(240, k=4, seed=1))
    return {
        "kind": "reward",
        "base_model": str(base),
        "output_dir": str(tmp_path / name),
        "data": {"train": str(train), "valid": None, "demonstrations": None, "pretrain": None},
        "hyperparameters": {"learning_rate": 1e-3, "prompts_per_batch": 4, "checkpoint_every": 5},
        "seed": 3,
        "resume_from": None,
        "cancel_file": str(tmp_path / f"{name}.cancel"),
        "reward_model": None,
        **extra,
    }


def test_entry_point_imports_neither_torch_nor_cuda() -> None:
    code = (
        "import sys, models_service.training, models_service.training.run; "
        "print(sorted(m for m in ('torch', 'transformers', 'trl') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_bad_spec_reports_an_error_event_and_fails(tmp_path) -> None:
    code, events = _run(_write_spec(tmp_path, {"kind": "dpo", "base_model": "x"}))
    assert code == 1
    assert events == [{"event": "error", "message": events[0]["message"]}]
    assert "kind must be one of" in events[0]["message"]


@pytest.mark.training
def test_reward_run_killed_with_sigkill_resumes_to_the_uninterrupted_result(
    tiny_models, tmp_path
) -> None:
    code, full = _run(_write_spec(tmp_path / "a", _reward_spec(tmp_path, tiny_models[1], "full")))
    assert code == 0 and full[-1]["event"] == "done"
    assert [e["step"] for e in full if e["event"] == "progress"] == list(range(1, 61))

    process = _start(_write_spec(tmp_path / "b", _reward_spec(tmp_path, tiny_models[1], "cut")))
    last_checkpoint = None
    for line in process.stdout:
        event = json.loads(line)
        if event["event"] == "checkpoint" and event["step"] >= 10:
            last_checkpoint = event
            os.kill(process.pid, signal.SIGKILL)
            break
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    assert last_checkpoint is not None

    resumed_spec = _reward_spec(
        tmp_path, tiny_models[1], "cut", resume_from=last_checkpoint["path"]
    )
    code, resumed = _run(_write_spec(tmp_path / "c", resumed_spec))
    assert code == 0 and resumed[-1]["event"] == "done"
    steps = [e["step"] for e in resumed if e["event"] == "progress"]
    assert steps == list(range(last_checkpoint["step"] + 1, 61))
    _assert_same_weights(full[-1]["model_dir"], resumed[-1]["model_dir"])
    assert not list((tmp_path / "cut" / "checkpoints").glob(".staging-*"))


@pytest.mark.training
def test_sft_run_cancelled_then_resumed_matches_the_uninterrupted_run(
    tiny_models, tmp_path
) -> None:
    train = write_jsonl(tmp_path / "sft.jsonl", synthetic_sft_rows(48, seed=1))

    def spec(name: str, resume_from: str | None = None) -> dict[str, Any]:
        return {
            "kind": "sft",
            "base_model": str(tiny_models[0]),
            "output_dir": str(tmp_path / name),
            "data": {"train": str(train), "valid": None},
            "hyperparameters": {"learning_rate": 3e-3, "epochs": 2, "batch_size": 8},
            "seed": 5,
            "resume_from": resume_from,
            "cancel_file": str(tmp_path / f"{name}.cancel"),
            "reward_model": None,
        }

    code, full = _run(_write_spec(tmp_path / "a", spec("full")))
    assert code == 0 and full[-1]["event"] == "done"
    assert [e["step"] for e in full if e["event"] == "progress"] == list(range(1, 13))

    process = _start(_write_spec(tmp_path / "b", spec("cut")))
    events = []
    for line in process.stdout:
        events.append(json.loads(line))
        if events[-1]["event"] == "progress" and events[-1]["step"] == 2:
            (tmp_path / "cut.cancel").touch()
    assert process.wait(timeout=120) == 0
    assert events[-1] == {"event": "cancelled"}
    checkpoint = events[-2]
    assert checkpoint["event"] == "checkpoint" and 3 <= checkpoint["step"] < 12
    assert (Path(checkpoint["path"]) / "optimizer.pt").is_file()

    (tmp_path / "cut.cancel").unlink()
    code, resumed = _run(_write_spec(tmp_path / "c", spec("cut", checkpoint["path"])))
    assert code == 0 and resumed[-1]["event"] == "done"
    steps = [e["step"] for e in resumed if e["event"] == "progress"]
    assert steps == list(range(checkpoint["step"] + 1, 13))
    _assert_same_weights(full[-1]["model_dir"], resumed[-1]["model_dir"])
