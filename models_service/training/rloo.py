"""RLOO (REINFORCE leave-one-out) through TRL's RLOOTrainer, behind the same runner protocol.

TRL implements RLOO well; we add the protocol callback, atomic checkpoints and CPU settings. The
reward is our reward model passed to `reward_funcs=` wrapped in a function that scores with
`reward.score`, because RLOOTrainer tokenizes reward inputs without special tokens (no BOS) while
our reward model was trained on BOS + prompt + completion: the wrapper keeps the two encodings
the same and applies the demonstration bias.
"""

from __future__ import annotations

from typing import Any

import torch

from models_service.training.hf_trainer import (
    ProtocolCallback,
    atomic_trainer_class,
    protocol_trainer_args,
    save_final_model,
)
from models_service.training.hyperparameters import RlooHyperparameters
from models_service.training.lora import lora_config, quantization_kwargs
from models_service.training.protocol import EventStream, Outcome, TrainingSpec
from models_service.training.protocol import parse_hyperparameters as _parse
from models_service.training.runtime import (
    FINAL_MODEL_DIR,
    Device,
    ensure_pad_embedding,
    load_tokenizer,
    per_device_batch,
    read_jsonl,
    seed_everything,
)
from models_service.training.scoring import load_reward_model, score

TRAINER_DIR = "trainer"


# TRL's metric names -> ours, so that the RLOO and PPO charts share them.
RENAMES = {
    "completions/clipped_ratio": "no_eos_share",
    "completions/mean_length": "response_length",
}


def eos_token_ids(model, tokenizer) -> set[int]:
    """Every EOS id of the policy (its generation config may list several)."""
    config = getattr(model, "generation_config", None)
    eos = getattr(config, "eos_token_id", None)
    eos = tokenizer.eos_token_id if eos is None else eos
    return {int(e) for e in (eos if isinstance(eos, list | tuple) else [eos]) if e is not None}


class RewardModelScorer:
    """A TRL reward function (prompts, completions -> floats) scoring with our reward model; it
    keeps the last batch scored for the job page's samples table."""

    def __init__(self, model, tokenizer, *, bf16: bool, eos_ids: set[int]) -> None:
        self.__name__ = "reward_model_score"  # TRL names a reward function by __name__
        self.model, self.tokenizer, self.bf16, self.eos_ids = model, tokenizer, bf16, eos_ids
        self.last: list[dict[str, Any]] = []

    def __call__(self, prompts: list[str], completions: list[str], **extra: Any) -> list[float]:
        scores = score(self.model, self.tokenizer, prompts, completions, bf16=self.bf16).tolist()
        ids = extra.get("completion_ids") or [None] * len(prompts)
        self.last = [
            {
                "prompt": prompt,
                "response": completion,
                "reward": value,
                "ended": None if row is None else bool(row) and row[-1] in self.eos_ids,
            }
            for prompt, completion, value, row in zip(
                prompts, completions, scores, ids, strict=True
            )
        ]
        return scores

    def samples(self, count: int) -> list[dict[str, Any]]:
        return self.last[:count]


def diagnosed(base: type) -> type:
    """A subclass of TRL's RLOOTrainer class `base` that logs KL per response (TRL logs it per
    token; PPO per response: the per-token value stays as `kl_per_token`) and advantage stats."""

    class DiagnosedRLOOTrainer(base):
        def _generate_and_score_completions(self, inputs):
            output = super()._generate_and_score_completions(inputs)
            metrics = self._metrics["train" if self.model.training else "eval"]
            mask = output["completion_mask"]
            local = torch.stack([mask.sum().float(), mask.new_tensor(mask.shape[0]).float()])
            tokens, rows = self.accelerator.gather(local).view(-1, 2).sum(0).tolist()
            if metrics.get("kl"):
                per_token = metrics["kl"][-1]
                metrics["kl_per_token"].append(per_token)
                metrics["kl"][-1] = per_token * tokens / max(rows, 1.0)
            advantages = output["advantages"].float()
            metrics["advantage_mean"].append(float(advantages.mean()))
            metrics["advantage_std"].append(float(advantages.std(unbiased=False)))
            return output

    return DiagnosedRLOOTrainer


def train_rloo(spec: TrainingSpec, events: EventStream, device: Device) -> Outcome:
    """RLOO from the SFT model in `base_model` against `reward_model`, on `{prompt}` rows."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM
    from trl import RLOOConfig, RLOOTrainer

    hp = _parse(RlooHyperparameters, spec.hyperparameters)
    prompts = [{"prompt": row["prompt"]} for row in read_jsonl(spec.data.train)]
    seed_everything(spec.seed)
    tokenizer = load_tokenizer(spec.base_model)
    policy = AutoModelForCausalLM.from_pretrained(
        spec.base_model, dtype=torch.float32, **quantization_kwargs(hp)
    )
    ensure_pad_embedding(policy, tokenizer)
    reward_model, reward_tokenizer = load_reward_model(spec.reward_model_dir, device.name)
    args = RLOOConfig(
        output_dir=str(spec.output_dir / TRAINER_DIR),
        learning_rate=hp.learning_rate,
        num_train_epochs=hp.epochs,
        max_steps=hp.max_steps,
        per_device_train_batch_size=per_device_batch(hp.batch_size, hp.gradient_accumulation_steps),
        gradient_accumulation_steps=hp.gradient_accumulation_steps,
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
    scorer = RewardModelScorer(
        reward_model, reward_tokenizer, bf16=device.bf16, eos_ids=eos_token_ids(policy, tokenizer)
    )
    callback = ProtocolCallback(
        spec,
        events,
        renames=RENAMES,
        samples=lambda: scorer.samples(hp.samples_shown),
        sample_every=hp.sample_every,
    )
    trainer = atomic_trainer_class(diagnosed(RLOOTrainer))(
        model=policy,
        reward_funcs=scorer,
        args=args,
        train_dataset=Dataset.from_list(prompts),
        processing_class=tokenizer,
        callbacks=[callback],
        peft_config=lora_config(hp, task_type="CAUSAL_LM"),
    )
    trainer.train(resume_from_checkpoint=str(spec.resume_from) if spec.resume_from else None)
    if callback.cancelled:
        return Outcome(model_dir=None, metrics=callback.metrics)
    target = spec.output_dir / FINAL_MODEL_DIR
    save_final_model(trainer, target, tokenizer)
    return Outcome(model_dir=target, metrics=callback.metrics)
