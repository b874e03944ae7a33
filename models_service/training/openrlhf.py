"""Reward-model and PPO training on OpenRLHF (a Ray cluster spreading actor, critic, reference and
reward models over GPUs, vLLM rollouts, ZeRO-3): its command lines from our job settings, its
datasets in the columns it reads, and its progress read back from its logs.

Command lines follow OpenRLHF's `openrlhf.cli.train_rm` (launched with `deepspeed --module`) and
`openrlhf.cli.train_ppo_ray` argument parsers. Progress is the tqdm bar each prints on rank 0:
`... 3/40 [00:12<02:31, loss=0.69, acc=0.5, lr=9e-06]`, whose postfix holds the step's logs.

Torch-free: the worker builds the command and follows the job.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

ENTRYPOINTS = {
    "reward": "deepspeed --module openrlhf.cli.train_rm",
    "ppo": "python3 -m openrlhf.cli.train_ppo_ray",
}
# OpenRLHF's log names -> ours, so that its charts read like ours.
RENAMES = {
    "acc": "accuracy",
    "critic_loss": "value_loss",
    "actor_lr": "lr",
    "ptx_loss": "ptx_loss",
    "response_length": "response_length",
    "kl": "kl",
}
PROGRESS = re.compile(r"(?P<done>\d+)/(?P<total>\d+) \[[^\]]*?, (?P<postfix>[A-Za-z_]+=[^\]]*)\]")


def _flags(values: dict[str, Any]) -> list[str]:
    parts: list[str] = []
    for name, value in values.items():
        if value is None or value is False:
            continue
        parts.append(f"--{name}")
        if value is not True:
            parts.append(str(value))
    return parts


def reward_command(
    *, base_model: str, pairs: Path, output: Path, hp: dict[str, Any], seed: int, cluster: dict
) -> list[str]:
    """`train_rm` on (prompt, chosen, rejected) rows; the head is named `score`, as in Hugging
    Face's sequence classifiers, so the result loads as one."""
    batch = hp.get("prompts_per_batch") or 64
    return _flags(
        {
            "pretrain": base_model,
            "dataset": pairs,
            "prompt_key": "prompt",
            "chosen_key": "chosen",
            "rejected_key": "rejected",
            "value_head_prefix": "score",
            "save_path": output / "model",
            "ckpt_path": output / "checkpoints",
            "save_steps": hp.get("checkpoint_every", 100),
            "logging_steps": 1,
            "max_epochs": hp.get("epochs", 1),
            "train_batch_size": batch,
            "micro_train_batch_size": hp.get("prompts_per_forward") or 1,
            "learning_rate": hp.get("learning_rate", 9e-6),
            "max_len": hp.get("max_length", 512),
            "zero_stage": cluster.get("zero_stage", 3),
            "bf16": cluster.get("bf16", True),
            "gradient_checkpointing": hp.get("activation_checkpointing", False),
            "lora_rank": hp.get("lora_rank") or None,
            "lora_alpha": hp.get("lora_alpha") if hp.get("lora_rank") else None,
            "seed": seed,
        }
    )


def ppo_command(
    *,
    base_model: str,
    reward_model: str,
    prompts: Path,
    output: Path,
    hp: dict[str, Any],
    seed: int,
    cluster: dict,
) -> list[str]:
    """`train_ppo_ray` with GAE (PPO), its critic from the reward model, vLLM rollouts."""
    nodes, gpus = cluster.get("nodes", 1), cluster.get("gpus_per_node", 8)
    placement = {
        f"{role}_{what}": value
        for role in ("actor", "critic", "ref", "reward")
        for what, value in (("num_nodes", nodes), ("num_gpus_per_node", gpus))
    }
    return _flags(
        {
            "pretrain": base_model,
            "reward_pretrain": reward_model,
            "prompt_data": prompts,
            "input_key": "prompt",
            "save_path": output / "model",
            "ckpt_path": output / "checkpoints",
            "save_steps": hp.get("checkpoint_every", 50),
            "save_hf_ckpt": True,
            "logging_steps": 1,
            **placement,
            "colocate_all_models": cluster.get("colocate", True),
            "vllm_num_engines": cluster.get("vllm_engines", 1),
            "vllm_tensor_parallel_size": cluster.get("vllm_tensor_parallel", 1),
            "zero_stage": cluster.get("zero_stage", 3),
            "bf16": cluster.get("bf16", True),
            "advantage_estimator": "gae",
            "num_episodes": hp.get("epochs", 1),
            "max_epochs": hp.get("ppo_epochs", 1),
            "rollout_batch_size": hp.get("batch_size", 64),
            "train_batch_size": hp.get("minibatch_size", 16),
            "micro_rollout_batch_size": cluster.get("micro_batch", 4),
            "micro_train_batch_size": cluster.get("micro_batch", 4),
            "generate_max_len": hp.get("max_new_tokens", 64),
            "prompt_max_len": hp.get("max_length", 512),
            "temperature": hp.get("temperature", 1.0),
            "init_kl_coef": hp.get("beta", 0.02),
            "eps_clip": hp.get("clip", 0.2),
            "value_clip": hp.get("value_clip", 0.2),
            "gamma": hp.get("gamma", 1.0),
            "lambd": hp.get("lam", 0.95),
            "actor_learning_rate": hp.get("learning_rate", 1e-5),
            "critic_learning_rate": hp.get("value_learning_rate") or hp.get("learning_rate", 1e-5),
            "gradient_checkpointing": hp.get("activation_checkpointing", False),
            "lora_rank": hp.get("lora_rank") or None,
            "lora_alpha": hp.get("lora_alpha") if hp.get("lora_rank") else None,
            "seed": seed,
        }
    )


def entrypoint(kind: str, arguments: list[str], *, prefix: str | None = None) -> str:
    """The shell command Ray runs on the head node."""
    return f"{prefix or ENTRYPOINTS[kind]} {shlex.join(arguments)}"


def pairs_rows(rankings: Iterable[dict[str, Any]]) -> Iterator[dict[str, str]]:
    """OpenRLHF's reward rows from our K-way rankings: every non-tied pair as (prompt, chosen,
    rejected); pair rows pass through."""
    for row in rankings:
        if "chosen" in row:
            yield {
                "prompt": row.get("prompt", ""),
                "chosen": row["chosen"],
                "rejected": row["rejected"],
            }
            continue
        groups = row["rank_groups"]
        for position, group in enumerate(groups):
            for later in groups[position + 1 :]:
                for winner in group:
                    for loser in later:
                        yield {
                            "prompt": row["prompt"],
                            "chosen": row["completions"][winner],
                            "rejected": row["completions"][loser],
                        }


def write_rows(path: Path, rows: Iterable[dict[str, Any]]) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")
            count += 1
    return count


def progress(logs: str) -> list[tuple[int, int, dict[str, float]]]:
    """(step, total, metrics) of every progress line in `logs`, the last line of each step."""
    steps: dict[int, tuple[int, dict[str, float]]] = {}
    for line in re.split(r"[\r\n]+", logs):
        match = PROGRESS.search(line)
        if match is None:
            continue
        metrics = {}
        for item in match["postfix"].split(", "):
            name, _, value = item.partition("=")
            try:
                metrics[RENAMES.get(name.strip(), name.strip())] = float(value)
            except ValueError:
                continue
        done = int(match["done"])
        if done > 0:
            steps[done] = (int(match["total"]), metrics)
    return [(step, total, metrics) for step, (total, metrics) in sorted(steps.items())]


def as_sequence_classifier(model_dir: Path) -> None:
    """Name a reward model's architecture as Hugging Face's sequence classifier with one label
    (its head is `score`), so that our service and trainers load it as a reward model."""
    path = model_dir / "config.json"
    config = json.loads(path.read_text())
    names = config.get("architectures") or []
    if names and all(name.endswith("ForSequenceClassification") for name in names):
        return
    family = (names[0] if names else config["model_type"].capitalize()).split("For")[0]
    config.update(architectures=[f"{family}ForSequenceClassification"], num_labels=1)
    path.write_text(json.dumps(config, indent=2))
