"""Reward model training: InstructGPT's K-way batching (ours) vs TRL's RewardTrainer on pairs.

Run: `.venv/bin/python bench/reward_model.py` (about a minute on CPU). Both train the same model
(a Llama-style sequence classifier, hidden 128) for one epoch on the same comparisons: 40 prompts
with K=9 strictly ranked completions, i.e. 40 x C(9,2) = 1,440 pairs, same learning rate, cosine
schedule, 4 prompts (= 144 pairs) per optimisation step, 1 CPU thread each. TRL gets the pairs
pre-tokenized with our encoding (no EOS), so both see identical token ids and must start from the
same loss. Prints the absolute epoch times, their ratio, and each initial loss.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path

import torch
import transformers

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from models_service.training.protocol import EventStream, TrainingSpec
from models_service.training.reward import prompt_losses, ranking_from_row
from models_service.training.reward_train import train_reward
from models_service.training.runtime import Device, load_tokenizer, write_jsonl
from models_service.training.scoring import encode, load_reward_model
from models_service.training.synthetic import build_llama, pairs_from_rankings, strict_rankings

K = 9
PROMPTS_PER_STEP = 4
LEARNING_RATE = 1e-4
MAX_LENGTH = 512


@torch.no_grad()
def ours_initial_loss(model_dir: Path, rows) -> float:
    model, tokenizer = load_reward_model(model_dir)
    group = prompt_losses(
        model, tokenizer, [ranking_from_row(row) for row in rows], max_length=MAX_LENGTH
    )
    return float(group.losses.mean())


def run_ours(model_dir: Path, rows, work: Path) -> tuple[float, float]:
    """(seconds for train_reward: load, one epoch, save; initial loss)."""
    initial = ours_initial_loss(model_dir, rows)
    train = write_jsonl(work / "rankings.jsonl", rows)
    spec = TrainingSpec.from_dict(
        {
            "kind": "reward",
            "base_model": str(model_dir),
            "output_dir": str(work / "ours"),
            "data": {"train": str(train)},
            "hyperparameters": {
                "learning_rate": LEARNING_RATE,
                "prompts_per_batch": PROMPTS_PER_STEP,
                "checkpoint_every": 10**9,
                "max_length": MAX_LENGTH,
            },
        }
    )
    start = time.perf_counter()
    train_reward(spec, EventStream(io.StringIO()), Device("cpu", bf16=False))
    return time.perf_counter() - start, initial


def run_trl(model_dir: Path, rows, work: Path) -> tuple[float, float]:
    """(seconds for RewardTrainer.train() over one epoch; initial loss over all pairs)."""
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification, PrinterCallback
    from trl import RewardConfig, RewardTrainer

    tokenizer = load_tokenizer(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, dtype=torch.float32)
    pairs = pairs_from_rankings(rows)
    dataset = Dataset.from_list(
        [
            {
                "chosen_ids": encode(tokenizer, p["prompt"], p["chosen"], max_length=MAX_LENGTH),
                "rejected_ids": encode(
                    tokenizer, p["prompt"], p["rejected"], max_length=MAX_LENGTH
                ),
            }
            for p in pairs
        ]
    )
    args = RewardConfig(
        output_dir=str(work / "trl"),
        per_device_train_batch_size=PROMPTS_PER_STEP * K * (K - 1) // 2,
        num_train_epochs=1,
        learning_rate=LEARNING_RATE,
        lr_scheduler_type="cosine",
        max_grad_norm=1.0,
        max_length=None,
        save_strategy="no",
        logging_steps=10**6,
        report_to="none",
        disable_tqdm=True,
        use_cpu=True,
        bf16=False,
        activation_checkpointing=False,
        seed=0,
    )
    trainer = RewardTrainer(
        model=model, args=args, train_dataset=dataset, processing_class=tokenizer
    )
    trainer.remove_callback(PrinterCallback)  # its log line would interleave with our report
    total = count = 0.0
    with torch.no_grad():
        for batch in trainer.get_train_dataloader():
            size = batch["input_ids"].shape[0] // 2
            total += float(trainer.compute_loss(trainer.model, batch)) * size
            count += size
    start = time.perf_counter()
    trainer.train()
    return time.perf_counter() - start, total / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=40)
    parser.add_argument("--hidden", type=int, default=128)
    args = parser.parse_args()
    torch.set_num_threads(1)
    transformers.utils.logging.disable_progress_bar()
    rows = strict_rankings(args.prompts, k=K, seed=0, length=12)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model_dir = build_llama(work / "base", hidden=args.hidden, reward=True)
        params = sum(p.numel() for p in load_reward_model(model_dir)[0].parameters())
        ours_s, ours_loss = run_ours(model_dir, rows, work)
        trl_s, trl_loss = run_trl(model_dir, rows, work)
    pairs = len(pairs_from_rankings(rows))
    print(f"model: {params / 1e6:.2f} M parameters, hidden {args.hidden}; 1 CPU thread")
    print(f"data: {args.prompts} prompts x K={K} -> {pairs} pairs, one epoch")
    print(
        f"ours (K-way, one forward per prompt): {ours_s:7.2f} s/epoch, initial loss {ours_loss:.8f}"
    )
    print(
        f"TRL RewardTrainer (pairs):            {trl_s:7.2f} s/epoch, initial loss {trl_loss:.8f}"
    )
    print(f"speed-up: {trl_s / ours_s:.2f}x (theoretical forward ratio at K={K}: {K - 1}x)")
    print(f"initial losses equal to 1e-6: {abs(ours_loss - trl_loss) < 1e-6}")


if __name__ == "__main__":
    main()
