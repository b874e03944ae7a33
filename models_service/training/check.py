"""Device check: train the RM, SFT and PPO a few steps on a synthetic snapshot; print the device,
throughput and peak memory of each. With `--model PATH` (a local Hugging Face causal LM), the same
three jobs run again on that model (the RM and the value model start from it with a new head).

Run: `python -m models_service.training.check [--size small|medium] [--model PATH]`
(bench/gpu_check.sh wraps it).
Each job runs through the real entry point (`python -m models_service.training.run`) as the job
runner would start it; throughput is measured from the arrival times of its progress events,
from the end of the first step (which pays for warm-up) to the end of the last.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models_service import REPO_ROOT
from models_service.training.runtime import write_jsonl
from models_service.training.synthetic import (
    build_llama,
    synthetic_prompts,
    synthetic_rankings,
    synthetic_sft_rows,
)

SIZES: dict[str, dict[str, int]] = {
    # hidden, layers, RM prompts (K=9), RM prompts per step, SFT rows, SFT batch, words per text
    "small": {
        "ppo_batch": 16,
        "ppo_steps": 4,
        "hidden": 64,
        "layers": 2,
        "rm_prompts": 48,
        "rm_batch": 8,
        "sft_rows": 64,
        "sft_batch": 8,
        "words": 12,
    },
    "medium": {
        "ppo_batch": 64,
        "ppo_steps": 6,
        "hidden": 512,
        "layers": 6,
        "rm_prompts": 2048,
        "rm_batch": 64,
        "sft_rows": 8192,
        "sft_batch": 64,
        "words": 48,
    },
}
K = 9


@dataclass(frozen=True)
class Timed:
    """Progress events with their arrival times (seconds) and the job's last event."""

    progress: list[tuple[float, dict[str, Any]]]
    last: dict[str, Any]
    device_line: str


def run_job(spec: dict[str, Any], work: Path) -> Timed:
    """Run one spec through `models_service.training.run`, timing each progress event."""
    path = work / f"{spec['kind']}-spec.json"
    path.write_text(json.dumps(spec))
    process = subprocess.Popen(
        [sys.executable, "-m", "models_service.training.run", str(path)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    progress, last, device_line = [], {}, ""
    assert process.stdout is not None
    for line in process.stdout:
        last = json.loads(line)
        if last["event"] == "progress":
            progress.append((time.perf_counter(), last))
        elif last["event"] == "log" and not device_line:
            device_line = last["message"]
    if process.wait() != 0 or last.get("event") != "done":
        raise RuntimeError(f"{spec['kind']} job failed: {last}")
    return Timed(progress, last, device_line)


def rates(timed: Timed, *, samples_per_step: int, tokens_key: str | None, cumulative: bool) -> str:
    """samples/s (and tokens/s) between the end of step 1 and the end of the last step, and the
    peak memory the job reported."""
    (t0, first), (t1, last) = timed.progress[0], timed.progress[-1]
    steps = last["step"] - first["step"]
    seconds = max(t1 - t0, 1e-9)
    line = f"{steps} steps in {seconds:.2f} s: {steps * samples_per_step / seconds:,.1f} samples/s"
    if tokens_key and cumulative:
        tokens = last["metrics"][tokens_key] - first["metrics"][tokens_key]
        line += f", {tokens / seconds:,.0f} tokens/s"
    elif tokens_key:
        tokens = sum(event["metrics"][tokens_key] for _, event in timed.progress[1:])
        line += f", {tokens / seconds:,.0f} tokens/s"
    peaks = [e["metrics"].get("peak_memory_mb") or 0 for _, e in timed.progress]
    return line + f", peak memory {max(peaks):,.0f} MiB"


def check_models(work: Path, *, policy: Path, reward_base: Path, size: dict, label: str) -> None:
    """RM, then SFT, then PPO (from the SFT model against the trained RM), a few steps each."""
    rankings = write_jsonl(
        work / "rankings.jsonl",
        synthetic_rankings(size["rm_prompts"], k=K, seed=1, length=size["words"]),
    )
    valid = write_jsonl(work / "valid.jsonl", synthetic_rankings(64, k=K, seed=2))
    demos = write_jsonl(
        work / "demos.jsonl", synthetic_sft_rows(size["sft_rows"], seed=3, length=size["words"])
    )
    prompts = write_jsonl(work / "prompts.jsonl", synthetic_prompts(4 * size["ppo_batch"], seed=4))
    common = {"seed": 0, "resume_from": None, "cancel_file": str(work / "cancel")}
    reward = run_job(
        {
            "kind": "reward",
            "base_model": str(reward_base),
            "output_dir": str(work / "rm-out"),
            "data": {"train": str(rankings), "valid": str(valid), "demonstrations": str(demos)},
            "hyperparameters": {"learning_rate": 1e-4, "prompts_per_batch": size["rm_batch"]},
            **common,
        },
        work,
    )
    print(
        f"{label} reward model [{reward.device_line}]: "
        + rates(
            reward, samples_per_step=size["rm_batch"] * K, tokens_key="tokens", cumulative=False
        )
    )
    print(
        f"  (samples = completions; {size['rm_batch']} prompts x K={K} per step) "
        f"valid accuracy {reward.last['metrics'].get('valid_accuracy'):.3f}"
    )
    sft = run_job(
        {
            "kind": "sft",
            "base_model": str(policy),
            "output_dir": str(work / "sft-out"),
            "data": {"train": str(demos)},
            "hyperparameters": {
                "learning_rate": 1e-4,
                "epochs": 1,
                "batch_size": size["sft_batch"],
            },
            **common,
        },
        work,
    )
    print(
        f"{label} SFT [{sft.device_line}]: "
        + rates(sft, samples_per_step=size["sft_batch"], tokens_key="num_tokens", cumulative=True)
    )
    print(f"  final loss {sft.last['metrics']['loss']:.3f}")
    ppo = run_job(
        {
            "kind": "ppo",
            "base_model": sft.last["model_dir"],
            "reward_model": reward.last["model_dir"],
            "output_dir": str(work / "ppo-out"),
            "data": {"train": str(prompts)},
            "hyperparameters": {
                "learning_rate": 1e-5,
                "batch_size": size["ppo_batch"],
                "minibatch_size": max(1, size["ppo_batch"] // 4),
                "max_new_tokens": 32,
                "max_steps": size["ppo_steps"],
                "checkpoint_every": 10**6,
            },
            **common,
        },
        work,
    )
    print(
        f"{label} PPO [{ppo.device_line}]: "
        + rates(ppo, samples_per_step=size["ppo_batch"], tokens_key=None, cumulative=False)
    )
    metrics = ppo.last["metrics"]
    print(
        f"  (samples = episodes) reward {metrics['reward']:.3f}, kl {metrics['kl']:.4f}, "
        f"approx_kl {metrics['approx_kl']:.5f}, no-EOS share {metrics['no_eos_share']:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default=None)
    parser.add_argument("--model", type=Path, default=None, help="a local causal LM directory")
    args = parser.parse_args()
    import torch

    size_name = args.size or ("medium" if torch.cuda.is_available() else "small")
    size = SIZES[size_name]
    if torch.cuda.is_available():
        print(f"device: cuda, {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    else:
        print(f"device: cpu ({torch.get_num_threads()} threads), torch {torch.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        policy = build_llama(
            work / "policy", hidden=size["hidden"], layers=size["layers"], reward=False
        )
        reward_base = build_llama(
            work / "rm-base", hidden=size["hidden"], layers=size["layers"], reward=True
        )
        check_models(
            work / "tiny", policy=policy, reward_base=reward_base, size=size, label="synthetic"
        )
        if args.model:
            check_models(
                work / "model",
                policy=args.model,
                reward_base=args.model,
                size=SIZES["small"],
                label=args.model.name,
            )


if __name__ == "__main__":
    main()
