"""A stand-in for OpenRLHF's `train_rm` and `train_ppo_ray` on CPU, run by a local Ray head in the
tests: it takes their flags, prints their tqdm progress (carriage returns, their log names) to
stderr, writes checkpoints under --ckpt_path and a model under --save_path (a copy of --pretrain,
saved under a causal-LM architecture name as OpenRLHF's reward models are).

Usage: python -m tests.training.openrlhf_standin reward|ppo OPENRLHF_FLAGS...
STANDIN_STEP_SECONDS sets the time per step.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path


def parse(kind: str, argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    for name in ("pretrain", "save_path", "ckpt_path", "dataset", "prompt_data"):
        parser.add_argument(f"--{name}")
    for name in ("save_steps", "max_epochs", "num_episodes", "train_batch_size"):
        parser.add_argument(f"--{name}", type=int, default=1)
    parser.add_argument("--rollout_batch_size", type=int, default=1)
    args, _ = parser.parse_known_args(argv)
    args.kind = kind
    return args


def metrics(kind: str, step: int) -> dict[str, float]:
    if kind == "reward":
        return {"loss": 0.7 / step, "acc": min(1.0, 0.5 + step / 10), "lr": 9e-6}
    return {
        "policy_loss": 0.1 / step,
        "critic_loss": 0.5 / step,
        "reward": step / 10,
        "kl": step / 100,
        "response_length": 12.0,
        "actor_lr": 1e-6,
    }


def main() -> int:
    kind, argv = sys.argv[1], sys.argv[2:]
    args = parse(kind, argv)
    print("standin argv: " + " ".join(argv), flush=True)
    save_path, ckpt_path = Path(args.save_path), Path(args.ckpt_path)
    (save_path.parent / "standin.pid").write_text(str(os.getpid()))
    data = Path(args.dataset if kind == "reward" else args.prompt_data)
    rows = sum(1 for line in data.open() if line.strip())
    batch = args.train_batch_size if kind == "reward" else args.rollout_batch_size
    epochs = args.max_epochs if kind == "reward" else args.num_episodes
    total = math.ceil(rows / batch) * epochs
    delay = float(os.environ.get("STANDIN_STEP_SECONDS", "0.3"))
    for step in range(1, total + 1):
        time.sleep(delay)
        postfix = ", ".join(f"{k}={v:.4g}" for k, v in metrics(kind, step).items())
        bar = f"Train epoch [1/{epochs}]: {100 * step // total:3d}%|##| {step}/{total} "
        sys.stderr.write(f"\r{bar}[00:0{step % 10}<00:00, 1.00it/s, {postfix}]")
        sys.stderr.flush()
        if args.save_steps > 0 and step % args.save_steps == 0:
            (ckpt_path / f"global_step{step}").mkdir(parents=True, exist_ok=True)
    sys.stderr.write("\n")
    shutil.copytree(args.pretrain, save_path, dirs_exist_ok=True)
    if kind == "reward":
        config = json.loads((save_path / "config.json").read_text())
        config["architectures"] = ["LlamaForCausalLM"]
        (save_path / "config.json").write_text(json.dumps(config))
    print(f"Saved the model to {save_path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
