"""LoRA (and QLoRA-ready 4-bit loading) through PEFT, for SFT, the reward model and PPO's policy
and value, chosen per job by `lora_rank` > 0.

A trained adapter is saved twice: as the adapter itself (`adapter/`, small, the record of what was
trained) and merged into its base model (the model directory the service serves, since our service
and vLLM's default serve plain weights).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

ADAPTER_DIR = "adapter"


def lora_config(hp: Any, *, task_type: str):
    """PEFT's LoraConfig from a job's hyperparameters; None when `lora_rank` is 0 (full
    fine-tuning). A sequence classifier's head (`score`) stays fully trainable."""
    if not getattr(hp, "lora_rank", 0):
        return None
    from peft import LoraConfig

    targets = hp.lora_target_modules
    return LoraConfig(
        r=hp.lora_rank,
        lora_alpha=hp.lora_alpha,
        lora_dropout=hp.lora_dropout,
        target_modules=targets if targets == "all-linear" else targets.split(","),
        task_type=task_type,
    )


def quantization_kwargs(hp: Any) -> dict[str, Any]:
    """`from_pretrained` arguments that load the frozen base in 4 bits (QLoRA) when asked."""
    if not getattr(hp, "load_in_4bit", False):
        return {}
    import torch

    if not torch.cuda.is_available():
        raise ValueError("load_in_4bit (QLoRA) needs a CUDA GPU")
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        raise ValueError("load_in_4bit (QLoRA) needs the bitsandbytes package") from None
    from transformers import BitsAndBytesConfig

    return {
        "quantization_config": BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_compute_dtype=torch.bfloat16,
            bnb_4bit_use_double_quant=True,
        )
    }


def with_lora(model, hp: Any, *, task_type: str):
    """`model` wrapped with a fresh LoRA adapter when the job asks for one, else `model`."""
    config = lora_config(hp, task_type=task_type)
    if config is None:
        return model
    from peft import get_peft_model, prepare_model_for_kbit_training

    if getattr(hp, "load_in_4bit", False):
        model = prepare_model_for_kbit_training(model)
    return get_peft_model(model, config)


def is_adapted(model) -> bool:
    return hasattr(model, "merge_and_unload") and hasattr(model, "peft_config")


def base_model(model):
    """The Hugging Face model under a PEFT wrapper (its layers carry the adapter), or `model`."""
    return model.get_base_model() if is_adapted(model) else model


def save_for_serving(model, directory: Path, tokenizer=None) -> None:
    """Write a model the service can load from `directory`: plain weights, or for an adapted
    model its adapter under `directory/adapter` and the weights merged with it (merged on a copy,
    so that training can go on with the adapter)."""
    if is_adapted(model):
        model.save_pretrained(directory / ADAPTER_DIR)
        merged = copy.deepcopy(model).merge_and_unload()
        merged.save_pretrained(directory)
    else:
        model.save_pretrained(directory)
    if tokenizer is not None:
        tokenizer.save_pretrained(directory)
