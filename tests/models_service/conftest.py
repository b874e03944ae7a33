"""Fixtures: the tiny models built into a temp dir, and the real service running on them.

The service is a subprocess started the way production starts it (`python -m
models_service.serve`), on a free port, with its own models directory and registry file.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from models_service import REPO_ROOT
from models_service.client import InferenceClient
from models_service.tiny import ensure_tiny

STARTUP_TIMEOUT_S = 90
BATCH_WINDOW_MS = 30


@dataclass(frozen=True)
class RunningService:
    base_url: str
    models_dir: Path
    registry_file: Path
    log_file: Path

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("models")
    ensure_tiny(directory)
    return directory


@pytest.fixture(scope="session")
def tiny(models_dir: Path):
    """(model, tokenizer) of the built-in tiny policy, loaded in this process."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = models_dir / "tiny"
    return AutoModelForCausalLM.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path)


@pytest.fixture(scope="session")
def service(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    port = _free_port()
    registry_file = models_dir / "registry.json"
    log_file = tmp_path_factory.mktemp("service") / "service.log"
    env = {
        **os.environ,
        "LABELAPP_MODELS_DIR": str(models_dir),
        "LABELAPP_MODEL_REGISTRY": str(registry_file),
        "LABELAPP_BATCH_WINDOW_MS": str(BATCH_WINDOW_MS),
        "HF_HUB_OFFLINE": "1",
    }
    command = [sys.executable, "-m", "models_service.serve", "--host", "127.0.0.1"]
    with log_file.open("w") as log:
        process = subprocess.Popen(
            [*command, "--port", str(port), "--log-level", "warning"],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    running = RunningService(f"http://127.0.0.1:{port}", models_dir, registry_file, log_file)
    try:
        _wait_for_health(process, running)
        yield running
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def client(service: RunningService) -> Iterator[InferenceClient]:
    with InferenceClient(service.base_url, timeout=60) as inference_client:
        yield inference_client


@pytest.fixture
def http(service: RunningService) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=service.base_url, timeout=60) as raw:
        yield raw


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_health(process: subprocess.Popen, running: RunningService) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the service exited with {process.returncode}:\n{running.log()}")
        try:
            if httpx.get(f"{running.base_url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail(f"the service did not become healthy in {STARTUP_TIMEOUT_S}s:\n{running.log()}")
