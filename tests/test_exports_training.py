"""Exported files train as they are: one SFTTrainer step and one RewardTrainer step on the tiny
models (CPU settings: no bf16, no gradient checkpointing, no reporting)."""

from pathlib import Path

import pytest
from datasets import load_dataset

from tests.helpers import run_export

pytestmark = [pytest.mark.training, pytest.mark.django_db]


def _files(export) -> dict[str, str]:
    return {f["split"]: str(Path(export.directory) / f["name"]) for f in export.manifest["files"]}


def _cpu(tmp_path: Path) -> dict:
    return {
        "output_dir": str(tmp_path / "out"),
        "max_steps": 1,
        "per_device_train_batch_size": 2,
        "bf16": False,
        "gradient_checkpointing": False,
        "report_to": "none",
        "use_cpu": True,
        "save_strategy": "no",
        "logging_steps": 1,
        "max_length": 128,
    }


def test_one_sft_step_on_an_exported_sft_file(project, labeled_data, models_dir, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    export = run_export(project, kind="sft", format="jsonl")
    train = load_dataset("json", data_files=_files(export), cache_dir=str(tmp_path / "hf"))["train"]
    tokenizer = AutoTokenizer.from_pretrained(models_dir / "tiny")
    trainer = SFTTrainer(
        model=AutoModelForCausalLM.from_pretrained(models_dir / "tiny"),
        args=SFTConfig(**_cpu(tmp_path)),
        train_dataset=train,
        processing_class=tokenizer,
    )
    result = trainer.train()
    assert result.global_step == 1 and result.training_loss > 0


def test_one_reward_step_on_exported_pairs(project, labeled_data, models_dir, tmp_path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from trl import RewardConfig, RewardTrainer

    export = run_export(project, kind="rm_pairs", format="parquet")
    pairs = load_dataset("parquet", data_files=_files(export), cache_dir=str(tmp_path / "hf"))
    tokenizer = AutoTokenizer.from_pretrained(models_dir / "tiny-rm")
    model = AutoModelForSequenceClassification.from_pretrained(models_dir / "tiny-rm", num_labels=1)
    assert model.config.pad_token_id != tokenizer.eos_token_id
    trainer = RewardTrainer(
        model=model,
        args=RewardConfig(**_cpu(tmp_path)),
        train_dataset=pairs["train"],
        eval_dataset=pairs["valid"],
        processing_class=tokenizer,
    )
    result = trainer.train()
    assert result.global_step == 1 and result.training_loss > 0
    assert "eval_loss" in trainer.evaluate()
