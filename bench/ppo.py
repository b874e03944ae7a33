"""PPO-ptx throughput with the tiny models: episodes per second and where the time goes.

Run: `.venv/bin/python bench/ppo.py` (under a minute on CPU). Trains the built-in tiny policy
against the tiny reward model for a few steps through `train_ppo` (the code the runner uses) and
prints episodes/s and the share of each step spent in generation (`models_service.sampling`),
scoring (policy, reference, value and reward-model forward passes) and optimisation (the PPO
minibatch updates, ptx term included), from the per-step timings the trainer reports. The first
step is left out (warm-up).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from models_service.tiny import ensure_tiny
from models_service.training.ppo import train_ppo
from models_service.training.protocol import EventStream, TrainingSpec
from models_service.training.runtime import pick_device, write_jsonl
from models_service.training.synthetic import synthetic_prompts, synthetic_sft_rows

PHASES = ("time_generation", "time_scoring", "time_optimisation")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--gamma-ptx", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        policy, reward = ensure_tiny(work / "models")
        spec = TrainingSpec.from_dict(
            {
                "kind": "ppo",
                "base_model": str(policy),
                "output_dir": str(work / "out"),
                "data": {
                    "train": str(write_jsonl(work / "p.jsonl", synthetic_prompts(1024, seed=1))),
                    "pretrain": str(write_jsonl(work / "s.jsonl", synthetic_sft_rows(256))),
                },
                "hyperparameters": {
                    "learning_rate": 1e-4,
                    "batch_size": args.batch_size,
                    "minibatch_size": max(1, args.batch_size // 4),
                    "max_new_tokens": args.max_new_tokens,
                    "max_steps": args.steps,
                    "gamma_ptx": args.gamma_ptx,
                    "checkpoint_every": 10**9,
                },
                "reward_model": str(reward),
            }
        )
        stream = io.StringIO()
        train_ppo(spec, EventStream(stream), device)
    steps = [json.loads(line)["metrics"] for line in stream.getvalue().splitlines()]
    steps = [m for m in steps if "episodes" in m][1:]
    seconds = {phase: sum(m[phase] for m in steps) for phase in PHASES}
    total = sum(seconds.values())
    episodes = sum(m["episodes"] for m in steps)
    length = sum(m["response_length"] for m in steps) / len(steps)
    print(
        f"device {device.name}, {torch.get_num_threads()} threads; tiny policy and reward model; "
        f"{len(steps)} timed steps x {args.batch_size} episodes, up to {args.max_new_tokens} "
        f"new tokens (mean {length:.1f}), gamma_ptx {args.gamma_ptx}"
    )
    print(f"episodes/s: {episodes / total:.1f} ({episodes} episodes in {total:.2f} s)")
    for phase in PHASES:
        name = phase.removeprefix("time_")
        print(f"  {name:<13} {seconds[phase]:7.2f} s  {100 * seconds[phase] / total:5.1f}%")


if __name__ == "__main__":
    main()
