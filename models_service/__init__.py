"""The model inference service: an OpenAI-compatible HTTP API over Hugging Face models.

Submodules import torch and transformers; this package module stays import-light so that the Django
app can use `models_service.client` without loading either.
"""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
