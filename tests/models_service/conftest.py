"""Fixtures of the service's own tests; `models_dir` and `service` come from tests/inference.py
(through tests/conftest.py), shared with the app's generation tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from models_service.client import InferenceClient
from tests.inference import ServiceProcess


@pytest.fixture(scope="session")
def tiny(models_dir: Path):
    """(model, tokenizer) of the built-in tiny policy, loaded in this process."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = models_dir / "tiny"
    return AutoModelForCausalLM.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path)


@pytest.fixture
def client(service: ServiceProcess) -> Iterator[InferenceClient]:
    with InferenceClient(service.base_url, timeout=60) as inference_client:
        yield inference_client


@pytest.fixture
def http(service: ServiceProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=service.base_url, timeout=60) as raw:
        yield raw
