"""RLOO (REINFORCE leave-one-out) through TRL's RLOOTrainer, behind the same runner protocol.

TRL implements RLOO well; we add the protocol callback, atomic checkpoints and CPU settings. The
reward is our reward model passed to `reward_funcs=` wrapped in a function that scores with
`reward.score`, because RLOOTrainer tokenizes reward inputs without special tokens (no BOS) while
our reward model was trained on BOS + prompt + completion: the wrapper keeps the two encodings
the same and applies the demonstration bias.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from models_service.training.hf_trainer import (
    ProtocolCallback,
    atomic_trainer_class,
    protocol_trainer_args,
)
from models_service.training.hyperparameters import RlooHyperparameters
from models_service.training.protocol import EventStream, Outcome, TrainingSpec
from models_service.training.protocol import parse_hyperparameters as _parse
from models_service.training.runtime import (
    FINAL_MODEL_DIR,
    Device,
    atomic_directory,
    ensure_pad_embedding,
    load_tokenizer,
    read_jsonl,
    seed_everything,
)
from models_service.training.scoring import load_reward_model, score

TRAINER_DIR = "trainer"


def reward_function(model, tokenizer, *, max_length: int, bf16: bool) -> Callable[..., list[float]]:
    """A TRL reward function (prompts, completions -> floats) scoring with our reward model."""

    def reward_model_score(prompts: list[str], completions: list[str], **_: Any) -> list[float]:
        return score(
            model, tokenizer, prompts, completions, max_length=max_length, bf16=bf16
        ).tolist()

    return reward_model_score


def train_rloo(spec: TrainingSpec, events: EventStream, device: Device) -> Outcome:
    """RLOO from the SFT model in `base_model` against `reward_model`, on `{prompt}` rows."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM
    from trl import RLOOConfig, RLOOTrainer

    hp = _parse(RlooHyperparameters, spec.hyperparameters)
    prompts = [{"prompt": row["prompt"]} for row in read_jsonl(spec.data.train)]
    seed_everything(spec.seed)
    tokenizer = load_tokenizer(spec.base_model)
    policy = AutoModelForCausalLM.from_pretrained(spec.base_model, dtype=torch.float32)
    ensure_pad_embedding(policy, tokenizer)
    reward_model, reward_tokenizer = load_reward_model(spec.reward_model, device.name)
    args = RLOOConfig(
        output_dir=str(spec.output_dir / TRAINER_DIR),
        learning_rate=hp.learning_rate,
        num_train_epochs=hp.epochs,
        max_steps=hp.max_steps,
        per_device_train_batch_size=hp.batch_size,
        num_generations=hp.num_generations,
        max_completion_length=hp.max_completion_length,
        temperature=hp.temperature,
        beta=hp.beta,
        **protocol_trainer_args(
            spec,
            device,
            checkpoint_every=hp.checkpoint_every,
            activation_checkpointing=hp.activation_checkpointing,
        ),
    )
    callback = ProtocolCallback(spec, events)
    trainer = atomic_trainer_class(RLOOTrainer)(
        model=policy,
        reward_funcs=reward_function(
            reward_model, reward_tokenizer, max_length=hp.max_length, bf16=device.bf16
        ),
        args=args,
        train_dataset=Dataset.from_list(prompts),
        processing_class=tokenizer,
        callbacks=[callback],
    )
    trainer.train(resume_from_checkpoint=str(spec.resume_from) if spec.resume_from else None)
    if callback.cancelled:
        return Outcome(model_dir=None, metrics=callback.metrics)
    target = spec.output_dir / FINAL_MODEL_DIR
    with atomic_directory(target) as staging:
        trainer.save_model(str(staging))
        tokenizer.save_pretrained(staging)
    return Outcome(model_dir=target, metrics=callback.metrics)
