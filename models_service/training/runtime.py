"""What every trainer shares: device choice, seeding and RNG state, atomic checkpoints, JSONL input.

torch is imported inside functions so that importing this module never initialises CUDA.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHECKPOINTS_DIR = "checkpoints"
FINAL_MODEL_DIR = "model"
STATE_FILE = "training_state.pt"


@dataclass(frozen=True)
class Device:
    """Where to train: `name` is "cuda" or "cpu"; `bf16` only where the GPU supports it."""

    name: str
    bf16: bool

    @property
    def is_cuda(self) -> bool:
        return self.name == "cuda"


def pick_device() -> Device:
    """CUDA when available (bf16 where supported), else CPU. Call only inside the training child."""
    import torch

    if torch.cuda.is_available():
        # Under a launcher each process drives the GPU of its local rank.
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        return Device("cuda", bf16=torch.cuda.is_bf16_supported())
    return Device("cpu", bf16=False)


def world_size() -> int:
    """Processes in this job (the launcher sets WORLD_SIZE; 1 without one)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def per_device_batch(batch_size: int, accumulation: int) -> int:
    """Rows per forward on each process so that one optimisation step sees `batch_size` rows:
    batch_size / (processes x accumulation steps), which must divide evenly."""
    share = world_size() * accumulation
    if batch_size % share:
        raise ValueError(
            f"batch_size {batch_size} must be a multiple of processes x "
            f"gradient_accumulation_steps = {world_size()} x {accumulation}"
        )
    return batch_size // share


def peak_memory_mb() -> float:
    """Peak memory of this process so far: the GPU's allocations where CUDA is in use, else the
    process's peak resident set."""
    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        return torch.cuda.max_memory_allocated() / 2**20
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's (when installed) and torch's global generators."""
    import torch

    random.seed(seed)
    torch.manual_seed(seed)
    try:
        import numpy as np
    except ImportError:
        return
    np.random.seed(seed % 2**32)


def capture_rng() -> dict[str, Any]:
    """Every global RNG state that training may draw from, for `restore_rng`."""
    import torch

    state: dict[str, Any] = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    try:
        import numpy as np
    except ImportError:
        return state
    state["numpy"] = np.random.get_state()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    import torch

    random.setstate(state["python"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if "numpy" in state:
        import numpy as np

        np.random.set_state(state["numpy"])


def checkpoint_path(output_dir: Path, step: int) -> Path:
    return output_dir / CHECKPOINTS_DIR / f"step-{step:08d}"


@contextmanager
def atomic_directory(target: Path) -> Iterator[Path]:
    """Yield a staging directory beside `target`; rename it to `target` when the block succeeds.

    A kill during the block leaves only a hidden `.staging-*` directory, never a partial `target`.
    An existing `target` (a checkpoint rewritten after a resume) is replaced.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".staging-{target.name}-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        yield staging
        if target.exists():
            shutil.rmtree(target)
        os.rename(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def save_training_state(directory: Path, state: dict[str, Any]) -> None:
    import torch

    torch.save(state, directory / STATE_FILE)


def load_training_state(directory: Path) -> dict[str, Any]:
    """The state that `save_training_state` wrote (our own file, so full unpickling is safe)."""
    import torch

    path = directory / STATE_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{directory} is not a checkpoint of this trainer (no {STATE_FILE})"
        )
    return torch.load(path, map_location="cpu", weights_only=False)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Rows of a JSONL file, blank lines skipped; a bad line raises ValueError with its number."""
    rows = []
    with Path(path).open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}:{number}: not valid JSON ({error.msg})") from None
            if not isinstance(row, dict):
                raise ValueError(f"{path}:{number}: each line must be a JSON object")
            rows.append(row)
    return rows


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")
    return path


def load_tokenizer(model_dir: Path) -> Any:
    """The model's tokenizer with a pad token distinct from EOS.

    Sequence-classification heads read the last token that is not pad: with pad == eos they would
    read the wrong position. A tokenizer without a distinct pad gets a new `<pad>` token; the caller
    must then resize the model's embeddings (`ensure_pad_embedding`).
    """
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if tokenizer.pad_token_id is None or tokenizer.pad_token_id == tokenizer.eos_token_id:
        tokenizer.add_special_tokens({"pad_token": "<pad>"})
    return tokenizer


def ensure_pad_embedding(model, tokenizer) -> None:
    """Make the model agree with `tokenizer` on vocabulary size and pad id."""
    if model.get_input_embeddings().num_embeddings < len(tokenizer):
        model.resize_token_embeddings(len(tokenizer))
    model.config.pad_token_id = tokenizer.pad_token_id
    generation_config = getattr(model, "generation_config", None)
    if generation_config is not None:
        generation_config.pad_token_id = tokenizer.pad_token_id


def disable_dropout(model) -> None:
    """Turn every dropout of `model` off while leaving it in train mode (activation checkpointing
    needs train mode). RL needs this: with dropout, the update's log-probs and values are not
    those of the rollout, so the PPO ratio starts away from 1 and the KL estimate is noise.

    Covers `nn.Dropout` modules and the float `*dropout*` attributes that attention layers read
    directly (Llama's `attention_dropout`), in the modules and in the config.
    """
    import torch

    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
        for name, value in list(vars(module).items()):
            if "dropout" in name and isinstance(value, float):
                setattr(module, name, 0.0)
    config = getattr(model, "config", None)
    for name, value in list(vars(config).items()) if config is not None else []:
        if ("dropout" in name or name.endswith("_pdrop")) and isinstance(value, float):
            setattr(config, name, 0.0)
