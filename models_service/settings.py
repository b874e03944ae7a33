"""The inference service's settings, from LABELAPP_* environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from models_service.tiny import models_dir_from_env


@dataclass(frozen=True)
class ServiceSettings:
    """Limits and locations, from LABELAPP_* environment variables (see `from_env`)."""

    models_dir: Path
    registry_file: Path
    build_tiny: bool = True
    max_n: int = 16
    max_tokens: int = 512
    max_prompt_tokens: int = 2048
    max_prompts: int = 64
    max_stop: int = 4
    max_logprobs: int = 5
    batch_window_ms: float = 8.0
    batch_max_rows: int = 64
    max_loaded_models: int = 4
    dev_endpoints: bool = False

    @classmethod
    def from_env(cls) -> ServiceSettings:
        models_dir = models_dir_from_env()
        env = os.environ.get
        return cls(
            models_dir=models_dir,
            registry_file=Path(env("LABELAPP_MODEL_REGISTRY") or models_dir / "registry.json"),
            build_tiny=env("LABELAPP_BUILD_TINY", "1") != "0",
            max_n=int(env("LABELAPP_MAX_N", "16")),
            max_tokens=int(env("LABELAPP_MAX_TOKENS", "512")),
            max_prompt_tokens=int(env("LABELAPP_MAX_PROMPT_TOKENS", "2048")),
            max_prompts=int(env("LABELAPP_MAX_PROMPTS", "64")),
            batch_window_ms=float(env("LABELAPP_BATCH_WINDOW_MS", "8")),
            batch_max_rows=int(env("LABELAPP_BATCH_MAX_ROWS", "64")),
            max_loaded_models=int(env("LABELAPP_MAX_LOADED_MODELS", "4")),
            dev_endpoints=env("LABELAPP_DEV_ENDPOINTS", "0") == "1",
        )
