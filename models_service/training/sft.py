"""Supervised fine-tuning with TRL's SFTTrainer, reporting through the runner protocol.

TRL does this well (prompt/completion rows get the loss on the completion only, chats go through
the chat template), so we only add: the protocol callback, atomic checkpoints, and CPU settings.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from models_service.training.hf_trainer import (
    ProtocolCallback,
    atomic_trainer_class,
    protocol_trainer_args,
    save_final_model,
)
from models_service.training.hyperparameters import SftHyperparameters
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

TRAINER_DIR = "trainer"


def sft_rows(rows: Sequence[dict[str, Any]], source: Path) -> list[dict[str, Any]]:
    """Rows in one TRL format: all `{prompt, completion}` or all `{messages}`; else ValueError."""
    if all("messages" in row for row in rows):
        return [{"messages": row["messages"]} for row in rows]
    if all("prompt" in row and "completion" in row for row in rows):
        return [{"prompt": row["prompt"], "completion": row["completion"]} for row in rows]
    raise ValueError(f"{source}: every row needs prompt+completion, or every row needs messages")


def sft_config(spec: TrainingSpec, hp: SftHyperparameters, device: Device, *, rows: int) -> Any:
    """SFTConfig for this job. bf16 only where the GPU has it and activation (gradient)
    checkpointing off unless asked: TRL defaults both on, which fails on CPU. `report_to="none"`
    and no tqdm (stdout is the event stream)."""
    from trl import SFTConfig

    return SFTConfig(
        output_dir=str(spec.output_dir / TRAINER_DIR),
        learning_rate=hp.learning_rate,
        num_train_epochs=hp.epochs,
        max_steps=hp.max_steps,
        per_device_train_batch_size=per_device_batch(
            min(hp.batch_size, rows), hp.gradient_accumulation_steps
        ),
        gradient_accumulation_steps=hp.gradient_accumulation_steps,
        lr_scheduler_type=hp.lr_scheduler_type,
        warmup_steps=math.ceil(hp.warmup_ratio * _estimated_steps(hp, rows)),
        weight_decay=hp.weight_decay,
        max_length=hp.max_length,
        **protocol_trainer_args(
            spec,
            device,
            checkpoint_every=hp.checkpoint_every,
            activation_checkpointing=hp.activation_checkpointing,
        ),
        dataset_num_proc=None,
    )


def _estimated_steps(hp: SftHyperparameters, rows: int) -> int:
    if hp.max_steps > 0:
        return hp.max_steps
    return math.ceil(rows / hp.batch_size) * math.ceil(hp.epochs)


def train_sft(spec: TrainingSpec, events: EventStream, device: Device) -> Outcome:
    """Fine-tune `spec.base_model`; checkpoints every `checkpoint_every` steps and on cancel
    (Trainer's own format, resumable with `resume_from`), final model in `output_dir/model`."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM

    hp = _parse(SftHyperparameters, spec.hyperparameters)
    train_rows = sft_rows(read_jsonl(spec.data.train), spec.data.train)
    valid_rows = sft_rows(read_jsonl(spec.data.valid), spec.data.valid) if spec.data.valid else []
    seed_everything(spec.seed)
    tokenizer = load_tokenizer(spec.base_model)
    model = AutoModelForCausalLM.from_pretrained(
        spec.base_model, dtype=torch.float32, **quantization_kwargs(hp)
    )
    ensure_pad_embedding(model, tokenizer)
    callback = ProtocolCallback(spec, events)
    from trl import SFTTrainer

    trainer = atomic_trainer_class(SFTTrainer)(
        model=model,
        args=sft_config(spec, hp, device, rows=len(train_rows)),
        train_dataset=Dataset.from_list(train_rows),
        eval_dataset=Dataset.from_list(valid_rows) if valid_rows else None,
        processing_class=tokenizer,
        callbacks=[callback],
        peft_config=lora_config(hp, task_type="CAUSAL_LM"),
    )
    resume = str(spec.resume_from) if spec.resume_from else None
    trainer.train(resume_from_checkpoint=resume)
    if callback.cancelled:
        return Outcome(model_dir=None, metrics=callback.metrics)
    metrics = dict(callback.metrics)
    if valid_rows:
        metrics["valid_loss"] = trainer.evaluate()["eval_loss"]
    target = spec.output_dir / FINAL_MODEL_DIR
    save_final_model(trainer, target, tokenizer)
    return Outcome(model_dir=target, metrics=metrics)


@torch.no_grad()
def completion_loss(model, tokenizer, rows: Sequence[dict[str, str]]) -> float:
    """Mean negative log-likelihood per completion token (EOS included, as SFTTrainer appends it)
    of `{prompt, completion}` rows, the prompt as context: the quantity SFT minimises."""
    device = next(model.parameters()).device
    total, count = 0.0, 0
    for row in rows:
        prompt_len = len(tokenizer(row["prompt"]).input_ids)
        ids = list(tokenizer(row["prompt"] + row["completion"]).input_ids)
        ids.append(tokenizer.eos_token_id)
        input_ids = torch.tensor([ids], device=device)
        logprobs = model(input_ids=input_ids).logits[0, :-1].float().log_softmax(-1)
        targets = input_ids[0, 1:]
        token_logprobs = logprobs.gather(-1, targets[:, None])[:, 0][prompt_len - 1 :]
        total -= float(token_logprobs.sum())
        count += token_logprobs.numel()
    return total / max(count, 1)
