"""The real inference service for tests: the tiny models built into a temp dir, served by a
subprocess started the way production starts it (`python -m models_service.serve`)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from models_service import REPO_ROOT
from models_service.tiny import ensure_tiny

STARTUP_TIMEOUT_S = 90
BATCH_WINDOW_MS = 30


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServiceProcess:
    """One service process on a fixed port; stop() and start() again to simulate an outage."""

    def __init__(self, *, models_dir: Path, log_file: Path, port: int | None = None) -> None:
        self.models_dir = models_dir
        self.registry_file = models_dir / "registry.json"
        self.log_file = log_file
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def start(self) -> None:
        env = {
            **os.environ,
            "LABELAPP_MODELS_DIR": str(self.models_dir),
            "LABELAPP_MODEL_REGISTRY": str(self.registry_file),
            "LABELAPP_BATCH_WINDOW_MS": str(BATCH_WINDOW_MS),
            "HF_HUB_OFFLINE": "1",
        }
        command = [sys.executable, "-m", "models_service.serve", "--host", "127.0.0.1"]
        with self.log_file.open("a") as log:
            self.process = subprocess.Popen(
                [*command, "--port", str(self.port), "--log-level", "warning"],
                cwd=REPO_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"the service exited with {self.process.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.base_url}/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        pytest.fail(f"the service did not become healthy in {STARTUP_TIMEOUT_S}s:\n{self.log()}")

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("models")
    ensure_tiny(directory)
    return directory


@pytest.fixture(scope="session")
def service(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    running = ServiceProcess(
        models_dir=models_dir, log_file=tmp_path_factory.mktemp("service") / "service.log"
    )
    running.start()
    try:
        yield running
    finally:
        running.stop()
