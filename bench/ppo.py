"""PPO episodes/s against TRL's RLOOTrainer and against our PPO before its fixes, in one run.

Run: `.venv/bin/python bench/ppo.py` (a few minutes on CPU). Three jobs on the same built-in tiny
policy and reward model, the same episodes per step and the same response length limit, each
through the runner's entry point (`python -m models_service.training.run SPEC.json`) in a process
of its own:
1. our PPO (this checkout: one permutation per PPO epoch, log-probs at the sampling temperature,
   dropout off, diagnostics);
2. our PPO before those fixes: `models_service` of commit BEFORE, taken out with `git archive`;
3. TRL's RLOOTrainer (through `train_rloo`): batch_size episodes = batch_size / 4 prompts x 4
   samples (the leave-one-out group), one optimisation step per batch as PPO does here.
Episodes/s are timed between the arrival of step 1's progress event and the last one (warm-up
left out). The three run in turn `--repeats` times (shared cores drift); printed: each job's
median (and range), then the ratios of the medians against TRL and against the pre-fix PPO.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from models_service.tiny import ensure_tiny  # noqa: E402
from models_service.training.runtime import write_jsonl  # noqa: E402
from models_service.training.synthetic import synthetic_prompts  # noqa: E402

# The commit this branch of the training code started from: our PPO before the fixes.
BEFORE = "73d98cd"


def old_code(work: Path) -> Path:
    """`models_service` as it was at BEFORE, in a folder to put first on PYTHONPATH."""
    archive = subprocess.run(
        ["git", "archive", BEFORE, "models_service"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    target = work / "before"
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")
    return target


def run(
    spec: dict, work: Path, *, episodes: int, pythonpath: Path, threads: int
) -> tuple[float, int]:
    """(episodes per second after step 1, timed steps) of one job."""
    path = work / f"{spec['output_dir'].rsplit('/', 1)[-1]}.json"
    path.write_text(json.dumps(spec))
    env = {
        **os.environ,
        "PYTHONPATH": str(pythonpath),
        "OMP_NUM_THREADS": str(threads),
        "TOKENIZERS_PARALLELISM": "false",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "models_service.training.run", str(path)],
        cwd=work,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    arrivals, last = [], {}
    assert process.stdout is not None
    for line in process.stdout:
        last = json.loads(line)
        if last["event"] == "progress":
            arrivals.append(time.perf_counter())
    if process.wait() != 0 or last.get("event") != "done":
        raise RuntimeError(f"{spec['kind']} job failed: {last}")
    timed = len(arrivals) - 1
    return episodes * timed / (arrivals[-1] - arrivals[0]), timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--episodes", type=int, default=32, help="episodes per step")
    parser.add_argument("--max-new-tokens", type=int, default=32)
    # One thread per job: on shared cores, the medians then agree within a few percent.
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        policy, reward = ensure_tiny(work / "models")
        prompts = write_jsonl(work / "prompts.jsonl", synthetic_prompts(1024, seed=1))
        common = {
            "base_model": str(policy),
            "reward_model": str(reward),
            "data": {"train": str(prompts)},
            "seed": 1,
        }
        ppo_hp = {
            "learning_rate": 1e-5,
            "batch_size": args.episodes,
            "minibatch_size": args.episodes,
            "max_new_tokens": args.max_new_tokens,
            "max_steps": args.steps + 1,
            "checkpoint_every": 10**9,
        }
        ours = {**common, "kind": "ppo", "output_dir": str(work / "ppo"), "hyperparameters": ppo_hp}
        before = {**ours, "output_dir": str(work / "ppo-before")}
        rloo = {
            **common,
            "kind": "rloo",
            "output_dir": str(work / "rloo"),
            "hyperparameters": {
                "learning_rate": 1e-5,
                "batch_size": args.episodes,
                "num_generations": 4,
                "max_completion_length": args.max_new_tokens,
                "max_steps": args.steps + 1,
                "checkpoint_every": 10**9,
            },
        }
        same = {"episodes": args.episodes, "threads": args.threads}
        jobs = {
            "ppo (now)": (ours, ROOT),
            f"ppo (before, {BEFORE})": (before, old_code(work)),
            "TRL RLOOTrainer": (rloo, ROOT),
        }
        rates: dict[str, list[float]] = {name: [] for name in jobs}
        for _ in range(args.repeats):
            for name, (spec, path) in jobs.items():
                rates[name].append(run(spec, work, pythonpath=path, **same)[0])
    median = {name: statistics.median(values) for name, values in rates.items()}
    trl, old = median["TRL RLOOTrainer"], median[f"ppo (before, {BEFORE})"]
    print(
        f"tiny policy + tiny reward model, {args.episodes} episodes/step, up to "
        f"{args.max_new_tokens} new tokens, {args.threads} threads, {args.steps} timed steps, "
        f"median of {args.repeats} runs in turn"
    )
    for name, rate in median.items():
        low, high = min(rates[name]), max(rates[name])
        print(
            f"  {name:<24} {rate:7.1f} episodes/s  ({low:.1f}..{high:.1f})  "
            f"x{rate / trl:.2f} vs TRL RLOO, x{rate / old:.2f} vs PPO before"
        )


if __name__ == "__main__":
    main()
