"""Training through `accelerate launch` on CPU: 2 processes over gloo train as 1 process does with
the same global batch (reward model and SFT), and every rank is followed."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from annotations.services.training.processes import TrainerProcesses
from models_service import REPO_ROOT
from models_service.tiny import ensure_tiny
from models_service.training.launch import LaunchPlan, launcher_commands, plan_problems
from models_service.training.runtime import write_jsonl
from models_service.training.synthetic import (
    synthetic_prompts,
    synthetic_rankings,
    synthetic_sft_rows,
)
from tests.inference import free_port

# Float32 sums taken in another order (a gloo all-reduce of two halves) differ in the last bits:
# losses agree to 1e-5. Weights agree to 1e-5 except where Adam divides a near-zero gradient by
# the root of a near-zero second moment, which turns last-bit differences into steps of up to
# the learning rate: at most 1 element in 1,000 may differ by more, and none by a whole step.
LOSS_TOLERANCE = 1e-5
WEIGHT_TOLERANCE = 1e-5
LR = 1e-3


@pytest.fixture(scope="module")
def tiny_dirs(tmp_path_factory) -> tuple[Path, Path]:
    return ensure_tiny(tmp_path_factory.getbasetemp() / "tiny-models")


def run_launched(spec: dict[str, Any], plan: LaunchPlan, work: Path) -> list[dict[str, Any]]:
    """Run a spec the way the job runner does (one command per host); the JSON events."""
    work.mkdir(parents=True, exist_ok=True)
    spec_path = work / "spec.json"
    spec_path.write_text(json.dumps(spec))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    (command,) = launcher_commands(plan, spec_path)
    done = subprocess.run(
        command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=400, check=False
    )
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert done.returncode == 0, done.stderr[-3000:]
    return events


def _losses(events: list[dict[str, Any]]) -> list[float]:
    return [e["metrics"]["loss"] for e in events if e["event"] == "progress"]


def _assert_same_weights(first: Path, second: Path, *, learning_rate: float) -> None:
    a = load_file(str(first / "model.safetensors"))
    b = load_file(str(second / "model.safetensors"))
    assert a.keys() == b.keys()
    differences = torch.cat([(a[name] - b[name]).abs().flatten() for name in a])
    assert float(differences.max()) < learning_rate
    assert float((differences > WEIGHT_TOLERANCE).float().mean()) < 1e-3


def _ddp(processes: int = 2) -> LaunchPlan:
    return LaunchPlan(preset="ddp", processes=processes, main_port=free_port())


@pytest.mark.training
def test_reward_model_on_two_processes_matches_one(tiny_dirs, tmp_path) -> None:
    # 13 prompts per batch: the two ranks get 7 and 6, one with a tie-only filler.
    train = write_jsonl(tmp_path / "train.jsonl", synthetic_rankings(39, k=4, seed=1))

    def spec(name: str) -> dict[str, Any]:
        return {
            "kind": "reward",
            "base_model": str(tiny_dirs[1]),
            "output_dir": str(tmp_path / name),
            "data": {"train": str(train)},
            "hyperparameters": {
                "learning_rate": LR,
                "prompts_per_batch": 13,
                "prompts_per_forward": 3,
            },
            "seed": 2,
        }

    one = run_launched(spec("one"), LaunchPlan(), tmp_path / "a")
    two = run_launched(spec("two"), _ddp(), tmp_path / "b")
    ranks = sorted((e["rank"], e["world_size"]) for e in two if e["event"] == "rank")
    assert ranks == [(0, 2), (1, 2)]
    assert len(_losses(one)) == 3
    assert _losses(two) == pytest.approx(_losses(one), abs=LOSS_TOLERANCE)
    assert [e["metrics"]["pairs"] for e in two if e["event"] == "progress"] == [
        e["metrics"]["pairs"] for e in one if e["event"] == "progress"
    ]
    _assert_same_weights(Path(one[-1]["model_dir"]), Path(two[-1]["model_dir"]), learning_rate=LR)

    # Two hosts of one process each (machine ranks 0 and 1, both this machine): one job again.
    hosts = LaunchPlan(
        preset="ddp", processes=1, hosts=("127.0.0.1", "127.0.0.1"), main_port=free_port()
    )
    spec_path = tmp_path / "hosts.json"
    spec_path.write_text(json.dumps(spec("hosts")))
    commands = launcher_commands(hosts, spec_path)
    assert [c[c.index("--machine_rank") + 1] for c in commands] == ["0", "1"]
    trainer = TrainerProcesses(commands, tmp_path / "hosts.log")
    trainer.start()
    events = list(trainer.events())
    assert trainer.wait() == [0, 0], trainer.new_log()[-3000:]
    assert sorted(e["rank"] for e in events if e["event"] == "rank") == [0, 1]
    assert _losses(events) == pytest.approx(_losses(one), abs=LOSS_TOLERANCE)


@pytest.mark.training
def test_sft_on_two_processes_matches_one(tiny_dirs, tmp_path) -> None:
    train = write_jsonl(tmp_path / "sft.jsonl", synthetic_sft_rows(24, seed=2))

    def spec(name: str, processes: int) -> dict[str, Any]:
        return {
            "kind": "sft",
            "base_model": str(tiny_dirs[0]),
            "output_dir": str(tmp_path / name),
            "data": {"train": str(train)},
            "hyperparameters": {"learning_rate": LR, "epochs": 1, "batch_size": 8},
            "seed": 4,
        }

    one = run_launched(spec("one", 1), LaunchPlan(), tmp_path / "a")
    two = run_launched(spec("two", 2), _ddp(), tmp_path / "b")
    assert len(_losses(one)) == 3
    assert _losses(two) == pytest.approx(_losses(one), abs=LOSS_TOLERANCE)
    _assert_same_weights(Path(one[-1]["model_dir"]), Path(two[-1]["model_dir"]), learning_rate=LR)


def test_plans_are_checked_and_turned_into_one_command_per_host(tmp_path) -> None:
    assert plan_problems("ppo", LaunchPlan(preset="ddp", processes=8)) == []
    assert "ppo runs under single or ddp" in plan_problems("ppo", LaunchPlan(preset="zero3"))[0]
    assert "single preset runs one process" in plan_problems("sft", LaunchPlan(processes=2))[0]
    assert plan_problems("sft", LaunchPlan(preset="nccl"))[0].startswith("preset must be one of")
    for host in ("-oProxyCommand=touch /tmp/x", "gpu a", "gpu;a", ""):
        problems = plan_problems("sft", LaunchPlan(preset="ddp", hosts=("gpu-a", host)))
        assert problems and problems[0].startswith("hosts are host names or IP addresses"), host
    assert plan_problems("sft", LaunchPlan(preset="ddp", hosts=("gpu-a.lan", "10.0.0.7"))) == []
    plan = LaunchPlan.from_dict(
        {"preset": "zero3", "processes": 8, "hosts": "gpu-a, gpu-b", "main_port": 29600}
    )
    assert (plan.world_size, plan.machines) == (16, 2)
    main, second = launcher_commands(plan, tmp_path / "spec.json", python="python")
    assert main[:3] == ["python", "-m", "accelerate.commands.launch"]
    assert main[main.index("--config_file") + 1].endswith("deploy/accelerate/zero3.yaml")
    for flag, value in (("--num_processes", "16"), ("--num_machines", "2")):
        assert main[main.index(flag) + 1] == value
    assert main[main.index("--main_process_ip") + 1] == "gpu-a"
    assert main[-3:] == ["-m", "models_service.training.run", str(tmp_path / "spec.json")]
    assert second[:4] == ["ssh", "-o", "BatchMode=yes", "gpu-b"]
    assert "--machine_rank 1" in second[-1] and "--main_process_ip gpu-a" in second[-1]
    assert launcher_commands(LaunchPlan(), tmp_path / "s.json", python="py") == [
        ["py", "-m", "models_service.training.run", str(tmp_path / "s.json")]
    ]


@pytest.mark.training
def test_rloo_runs_on_two_processes(tiny_dirs, tmp_path) -> None:
    prompts = write_jsonl(tmp_path / "prompts.jsonl", synthetic_prompts(16, seed=1))
    events = run_launched(
        {
            "kind": "rloo",
            "base_model": str(tiny_dirs[0]),
            "output_dir": str(tmp_path / "rloo"),
            "data": {"train": str(prompts)},
            "hyperparameters": {
                "learning_rate": 1e-4,
                "max_steps": 2,
                "batch_size": 8,
                "num_generations": 4,
                "max_completion_length": 8,
            },
            "reward_model": str(tiny_dirs[1]),
        },
        _ddp(),
        tmp_path / "run",
    )
    assert sorted(e["rank"] for e in events if e["event"] == "rank") == [0, 1]
    assert [e["step"] for e in events if e["event"] == "progress"] == [1, 2]
    assert events[-1]["event"] == "done"
    assert (Path(events[-1]["model_dir"]) / "model.safetensors").is_file()
