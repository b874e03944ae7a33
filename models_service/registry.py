"""The models the service can serve, and a small cache of the ones it has loaded.

Sources, later ones overriding earlier ones on a name clash:
1. every subfolder of the models directory holding a `config.json` (the built-in `tiny` and
   `tiny-rm` live there);
2. the JSON registry file `{"name": "/abs/path/to/hf/dir" or "org/hub-id", ...}` that the Django
   app writes when it registers a model version.
Both are re-read when the model list is asked for, when an unknown name is requested, and when the
registry file changes, so new versions are served without a restart.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

logger = logging.getLogger(__name__)

ModelKind = Literal["causal-lm", "reward"]


class UnknownModelError(LookupError):
    """No model of that name; `available` lists the names the service has."""

    def __init__(self, name: str, available: list[str]) -> None:
        self.name = name
        self.available = available
        listed = ", ".join(available) or "none"
        super().__init__(f"The model '{name}' does not exist. Available models: {listed}.")


class ModelLoadError(RuntimeError):
    """The model is registered but its weights or tokenizer could not be loaded."""


@dataclass(frozen=True)
class ModelEntry:
    name: str
    source: str
    created: int

    @property
    def is_local(self) -> bool:
        return Path(self.source).is_dir()


@dataclass(frozen=True)
class LoadedModel:
    name: str
    source: str
    kind: ModelKind
    model: Any  # a transformers PreTrainedModel (typed loosely by transformers)
    tokenizer: Any


class ModelRegistry:
    """Finds models by name and keeps at most `max_loaded` of them loaded (least recently used
    goes first). Thread-safe."""

    def __init__(self, *, models_dir: Path, registry_file: Path, max_loaded: int = 4) -> None:
        self.models_dir = Path(models_dir)
        self.registry_file = Path(registry_file)
        self.max_loaded = max_loaded
        self._entries: dict[str, ModelEntry] = {}
        self._registry_mtime: float | None = None
        self._loaded: OrderedDict[tuple[str, str], LoadedModel] = OrderedDict()
        self._lock = threading.Lock()
        self._load_lock = threading.Lock()

    def refresh(self) -> list[ModelEntry]:
        """Re-read the models directory and the registry file; return every entry by name."""
        entries: dict[str, ModelEntry] = {}
        if self.models_dir.is_dir():
            for child in sorted(self.models_dir.iterdir()):
                config = child / "config.json"
                if not child.name.startswith(".") and config.is_file():
                    entries[child.name] = ModelEntry(
                        child.name, str(child), int(config.stat().st_mtime)
                    )
        mtime = self._registry_file_mtime()
        for name, source in self._read_registry_file().items():
            entries[name] = ModelEntry(name, source, int(mtime or 0))
        with self._lock:
            self._entries = entries
            self._registry_mtime = mtime
        return [entries[name] for name in sorted(entries)]

    def get(self, name: str) -> LoadedModel:
        """The loaded model called `name`, loading it if needed.

        Raises UnknownModelError (naming the available models) or ModelLoadError.
        """
        entry = self._entry(name)
        key = (entry.name, entry.source)
        with self._lock:
            if key in self._loaded:
                self._loaded.move_to_end(key)
                return self._loaded[key]
        with self._load_lock:
            with self._lock:
                if key in self._loaded:
                    return self._loaded[key]
            loaded = load_model(entry)
            with self._lock:
                self._loaded[key] = loaded
                while len(self._loaded) > self.max_loaded:
                    self._loaded.popitem(last=False)
        return loaded

    def reload_weights(self) -> list[str]:
        """Forget every loaded model, so that the next request reads its weights from disk again
        (a trainer wrote new ones into its directory). Returns the names that were loaded."""
        with self._load_lock, self._lock:
            names = [name for name, _ in self._loaded]
            self._loaded.clear()
        return names

    def loaded_names(self) -> list[str]:
        with self._lock:
            return [name for name, _ in self._loaded]

    def _entry(self, name: str) -> ModelEntry:
        with self._lock:
            stale = self._registry_file_mtime() != self._registry_mtime
            entry = None if stale else self._entries.get(name)
        if entry is None:
            entries = {e.name: e for e in self.refresh()}
            entry = entries.get(name)
            if entry is None:
                raise UnknownModelError(name, sorted(entries))
        return entry

    def _registry_file_mtime(self) -> float | None:
        try:
            return self.registry_file.stat().st_mtime
        except FileNotFoundError:
            return None

    def _read_registry_file(self) -> dict[str, str]:
        try:
            data = json.loads(self.registry_file.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as error:
            # A half-written or broken file must not take the service down: keep serving the rest.
            logger.warning("ignoring unreadable model registry %s: %s", self.registry_file, error)
            return {}
        if not isinstance(data, dict):
            logger.warning("ignoring model registry %s: not a JSON object", self.registry_file)
            return {}
        return {str(k): str(v) for k, v in data.items() if isinstance(v, str) and v}


def load_model(entry: ModelEntry) -> LoadedModel:
    """Load a causal LM or a reward (sequence classification, one label) model with its tokenizer.

    A source that is not an existing directory is treated as a Hugging Face hub id.
    """
    import torch
    from transformers import (
        AutoConfig,
        AutoModelForCausalLM,
        AutoModelForSequenceClassification,
        AutoTokenizer,
    )
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    where = "directory" if entry.is_local else "hub id (not a local directory)"
    try:
        config = AutoConfig.from_pretrained(entry.source)
        kind = model_kind(config)
        auto = AutoModelForCausalLM if kind == "causal-lm" else AutoModelForSequenceClassification
        device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = "auto" if device == "cuda" else torch.float32
        model = auto.from_pretrained(entry.source, dtype=dtype)
        model = torch.nn.Module.to(model, device).eval()
        tokenizer = AutoTokenizer.from_pretrained(entry.source)
    except Exception as error:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
        raise ModelLoadError(
            f"Could not load model '{entry.name}' from {where} '{entry.source}': {reason}"
        ) from error
    return LoadedModel(entry.name, entry.source, kind, model, tokenizer)


def model_kind(config) -> ModelKind:
    """'reward' for sequence-classification architectures, else 'causal-lm'."""
    architectures = getattr(config, "architectures", None) or []
    if any(arch.endswith("ForSequenceClassification") for arch in architectures):
        return "reward"
    return "causal-lm"
