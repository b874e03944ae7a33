"""The reward-model training loop (K-way loss of `reward`), on one process or several through
accelerate (DDP, FSDP, DeepSpeed ZeRO): every rank takes its share of each batch's prompts, and
the gradients add up to those of the whole batch, so N processes train as one does.
"""

from __future__ import annotations

import math
from contextlib import nullcontext
from typing import Any

import torch

from models_service.training.distributed import (
    ACCELERATE_STATE_DIR,
    any_rank,
    make_accelerator,
    save_pretrained,
    shared_directory,
    sum_across,
)
from models_service.training.hyperparameters import RewardHyperparameters
from models_service.training.lora import quantization_kwargs, with_lora
from models_service.training.protocol import EventStream, Outcome, TrainingSpec
from models_service.training.protocol import parse_hyperparameters as _parse
from models_service.training.reward import (
    RankingExample,
    demonstration_pairs,
    prompt_losses,
    ranking_accuracy,
    ranking_from_row,
    ranking_pairs,
)
from models_service.training.runtime import (
    FINAL_MODEL_DIR,
    Device,
    checkpoint_path,
    ensure_pad_embedding,
    load_tokenizer,
    load_training_state,
    peak_memory_mb,
    read_jsonl,
    save_training_state,
    seed_everything,
)
from models_service.training.scoring import BIAS_KEY, MAX_LENGTH_KEY, encode, score

# Share of free memory the activations of one forward may take (the rest: weights, gradients,
# optimizer state, allocator slack).
FORWARD_MEMORY_SHARE = 0.4


def activation_bytes_per_token(config, *, bf16: bool, sequence: int) -> float:
    """Activation memory one token of a forward + backward keeps, after Korthikanti et al. 2022
    (without recomputation): layers x (34 h + 5 a s) bytes at 16 bits, twice at 32 bits."""
    hidden = getattr(config, "hidden_size", 1024)
    heads = getattr(config, "num_attention_heads", 16)
    layers = getattr(config, "num_hidden_layers", 24)
    per_layer = 34 * hidden + 5 * heads * sequence
    return layers * per_layer * (1 if bf16 else 2)


def free_bytes(device: Device) -> int:
    if device.is_cuda:
        return torch.cuda.mem_get_info()[0]
    import psutil

    return psutil.virtual_memory().available


def prompts_per_forward(
    model_config, tokenizer, batch: list[RankingExample], *, device: Device, max_length: int
) -> int:
    """How many prompts (all K completions each) one forward can hold in the memory left: the
    budget of tokens over the widest prompt of `batch` (K x its longest encoded completion)."""
    widest, longest = 1, 1
    for example in batch:
        lengths = [
            len(encode(tokenizer, example.prompt, c, max_length=max_length))
            for c in example.completions
        ]
        widest, longest = max(widest, len(lengths) * max(lengths)), max(longest, max(lengths))
    per_token = activation_bytes_per_token(model_config, bf16=device.bf16, sequence=longest)
    return max(1, int(FORWARD_MEMORY_SHARE * free_bytes(device) / per_token) // widest)


def _epoch_order(count: int, *, seed: int, epoch: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(count, generator=generator)


def _rank_share(batch: list[RankingExample], accelerator) -> list[RankingExample]:
    """This rank's prompts, padded to the same count on every rank with tie-only copies (no pairs,
    no loss), so that every rank runs the same number of forward and backward passes."""
    world = accelerator.num_processes
    mine = list(batch[accelerator.process_index :: world])
    filler = RankingExample(batch[0].prompt, batch[0].completions[:1], ((0,),))
    return mine + [filler] * (math.ceil(len(batch) / world) - len(mine))


def _train_step(model, tokenizer, batch, *, accelerator, hp, device, per_forward) -> list[float]:
    """Accumulate the gradient of the batch mean of per-prompt losses; returns the global
    (loss sum, right, pairs, tokens)."""
    counted = sum(1 for example in batch if ranking_pairs(example.rank_groups)[0].numel())
    share = _rank_share(batch, accelerator)
    groups = [share[i : i + per_forward] for i in range(0, len(share), per_forward)]
    # DDP averages gradients over ranks: each rank's part is scaled by W to sum to the batch mean.
    scale = accelerator.num_processes / max(counted, 1)
    totals = [0.0, 0.0, 0.0, 0.0]
    for index, group in enumerate(groups):
        last = index == len(groups) - 1
        with nullcontext() if last else accelerator.no_sync(model):
            losses = prompt_losses(
                model, tokenizer, group, max_length=hp.max_length, bf16=device.bf16
            )
            accelerator.backward(losses.losses.sum() * scale)
        totals = [
            totals[0] + float(losses.losses.detach().sum()),
            totals[1] + losses.right,
            totals[2] + losses.pairs,
            totals[3] + losses.tokens,
        ]
    return [*sum_across(accelerator, totals), counted]


def train_reward(spec: TrainingSpec, events: EventStream, device: Device) -> Outcome:
    """Train, checkpoint every `checkpoint_every` steps and on cancel, then bias and save.

    The loss of a batch is the unweighted mean over its prompts (those with at least one non-tied
    pair) of each prompt's mean pairwise loss, whatever the number of processes. Resuming from a
    checkpoint restores model, optimizer, scheduler, RNG and data position (the step; each
    epoch's order is a function of seed and epoch), so a resumed run repeats the uninterrupted
    one up to floating-point nondeterminism.
    """
    from transformers import AutoModelForSequenceClassification, get_cosine_schedule_with_warmup

    hp = _parse(RewardHyperparameters, spec.hyperparameters)
    train = [ranking_from_row(row) for row in read_jsonl(spec.data.train)]
    valid = [ranking_from_row(r) for r in read_jsonl(spec.data.valid)] if spec.data.valid else []
    if not train:
        raise ValueError(f"{spec.data.train} holds no rankings")
    per_batch = hp.prompts_per_batch or min(64, math.ceil(len(train) / 16))
    steps_per_epoch = math.ceil(len(train) / per_batch)
    total = steps_per_epoch * hp.epochs

    seed_everything(spec.seed)
    accelerator = make_accelerator(device, max_grad_norm=hp.max_grad_norm)
    # A LoRA checkpoint holds the merged weights: start from the base, the state restores the rest.
    source = spec.resume_from if spec.resume_from and not hp.lora_rank else spec.base_model
    tokenizer = load_tokenizer(source)
    model = AutoModelForSequenceClassification.from_pretrained(
        source, num_labels=1, dtype=torch.float32, **quantization_kwargs(hp)
    )
    ensure_pad_embedding(model, tokenizer)
    setattr(model.config, MAX_LENGTH_KEY, hp.max_length)  # scoring reads the same window
    if hp.activation_checkpointing:
        model.gradient_checkpointing_enable()
    model = with_lora(model, hp, task_type="SEQ_CLS")
    model.to(accelerator.device).train()
    config = model.config
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=hp.learning_rate, weight_decay=hp.weight_decay
    )
    model, optimizer = accelerator.prepare(model, optimizer)
    # Not prepared: a prepared scheduler steps once per process per step.
    scheduler = get_cosine_schedule_with_warmup(optimizer, round(hp.warmup_ratio * total), total)
    step = 0
    if spec.resume_from:
        state = load_training_state(spec.resume_from)
        accelerator.load_state(str(spec.resume_from / ACCELERATE_STATE_DIR))
        scheduler.load_state_dict(state["scheduler"])
        step = state["step"]
        events.log(f"resumed reward model training at step {step} of {total}")

    metrics: dict[str, Any] = {}
    # Steps whose checkpoint this run holds already (the one it resumed from counts).
    resumed_here = spec.resume_from and spec.resume_from == checkpoint_path(spec.output_dir, step)
    saved: set[int] = {step} if resumed_here else set()

    def save_checkpoint() -> None:
        target = checkpoint_path(spec.output_dir, step)
        if step not in saved:  # a cancel right after a periodic save: same step, same state
            with shared_directory(target, accelerator) as staging:
                save_pretrained(accelerator, model, staging, tokenizer)
                accelerator.save_state(str(staging / ACCELERATE_STATE_DIR))
                if accelerator.is_main_process:
                    save_training_state(
                        staging, {"step": step, "scheduler": scheduler.state_dict()}
                    )
            saved.add(step)
        events.checkpoint(path=target, step=step, metrics=metrics)

    # Sized once, for the widest prompt of the snapshot (every batch then fits).
    per_forward = hp.prompts_per_forward or prompts_per_forward(
        config, tokenizer, train, device=device, max_length=hp.max_length
    )
    order: torch.Tensor | None = None
    while step < total:
        if any_rank(accelerator, spec.cancel_requested()):
            save_checkpoint()
            return Outcome(model_dir=None, metrics=metrics)
        epoch, position = divmod(step, steps_per_epoch)
        if order is None or position == 0:
            order = _epoch_order(len(train), seed=spec.seed, epoch=epoch)
        batch = [train[i] for i in order[position * per_batch : (position + 1) * per_batch]]
        loss_sum, right, pairs, tokens, counted = _train_step(
            model,
            tokenizer,
            batch,
            accelerator=accelerator,
            hp=hp,
            device=device,
            per_forward=per_forward,
        )
        accelerator.clip_grad_norm_(model.parameters(), hp.max_grad_norm)
        lr = scheduler.get_last_lr()[0]
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        metrics = {
            "loss": loss_sum / max(counted, 1),
            "lr": lr,
            "accuracy": right / pairs if pairs else float("nan"),
            "pairs": int(pairs),
            "prompts": len(batch),
            "tokens": int(tokens),
            "prompts_per_forward": per_forward,
            "peak_memory_mb": peak_memory_mb(),
            "epoch": epoch + (position + 1) / steps_per_epoch,
        }
        events.progress(step=step, total=total, metrics=metrics)
        if step % hp.checkpoint_every == 0 and step < total:
            save_checkpoint()

    model.eval()
    final = _finish(accelerator, model, tokenizer, spec=spec, hp=hp, valid=valid, device=device)
    if not spec.data.demonstrations:
        events.log("no demonstrations given: the reward model keeps a zero bias")
    return Outcome(model_dir=final["model_dir"], metrics={**metrics, **final["metrics"]})


def _finish(accelerator, model, tokenizer, *, spec, hp, valid, device: Device) -> dict[str, Any]:
    """Set the demonstration bias, measure valid accuracy, save the final model atomically.
    Every rank computes the same numbers; the main rank writes."""
    metrics: dict[str, Any] = {}
    plain = accelerator.unwrap_model(model)
    if spec.data.demonstrations:
        prompts, completions = demonstration_pairs(read_jsonl(spec.data.demonstrations), tokenizer)
        setattr(plain.config, BIAS_KEY, 0.0)
        mean = float(score(plain, tokenizer, prompts, completions, bf16=device.bf16).mean())
        setattr(plain.config, BIAS_KEY, -mean)
        metrics.update(reward_bias=-mean, demonstrations=len(prompts))
    if valid:
        accuracy, pairs = ranking_accuracy(
            plain, tokenizer, valid, max_length=hp.max_length, bf16=device.bf16
        )
        metrics.update(valid_accuracy=accuracy, valid_pairs=pairs)
    target = spec.output_dir / FINAL_MODEL_DIR
    with shared_directory(target, accelerator) as staging:
        save_pretrained(accelerator, model, staging, tokenizer)
    return {"model_dir": target, "metrics": metrics}
