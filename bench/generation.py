"""Sampling K completions per prompt: one batched call vs a loop, and the service under load.

Run: `.venv/bin/python bench/generation.py` (about a minute on 2 CPU cores). Prints absolute
figures and ratios measured in the same run:
1. in process, 8 prompts x K=9: `sample(..., n=9)` (one generate call) vs 72 single-sample
   `model.generate(do_sample=True)` calls;
2. the real service (`python -m models_service.serve`) with 8 concurrent clients vs 1 client,
   each request asking for K=9 samples of one prompt.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from models_service import REPO_ROOT
from models_service.sampling import sample
from models_service.tiny import ensure_tiny

PROMPTS = [
    "The sea",
    "Write a short poem about",
    "Explain to a six year old why",
    "Once upon a time there was",
    "What is the capital of",
    "List three ideas for",
    "Please rewrite this email",
    "A reward model learns",
]
K = 9
MAX_NEW_TOKENS = 32


def bench_in_process(model_dir: Path, *, repeats: int) -> tuple[float, float]:
    """Samples per second: (batched, loop)."""
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    sample(model, tokenizer, PROMPTS[:1], n=2, max_new_tokens=4, seeds=0)  # warm-up

    batched = []
    for repeat in range(repeats):
        start = time.perf_counter()
        rows = sample(model, tokenizer, PROMPTS, n=K, max_new_tokens=MAX_NEW_TOKENS, seeds=repeat)
        batched.append(len(rows) / (time.perf_counter() - start))

    looped = []
    encoded = [tokenizer(prompt, return_tensors="pt") for prompt in PROMPTS]
    for repeat in range(repeats):
        start = time.perf_counter()
        count = 0
        with torch.inference_mode():
            for inputs in encoded:
                for k in range(K):
                    torch.manual_seed(repeat * K + k)
                    model.generate(
                        **inputs,
                        do_sample=True,
                        temperature=1.0,
                        top_p=1.0,
                        top_k=0,
                        max_new_tokens=MAX_NEW_TOKENS,
                        pad_token_id=tokenizer.pad_token_id,
                    )
                    count += 1
        looped.append(count / (time.perf_counter() - start))
    return statistics.median(batched), statistics.median(looped)


def bench_service(models_dir: Path, *, clients: int, requests_per_client: int) -> dict:
    """Requests and samples per second with `clients` concurrent clients, plus batch stats."""
    port = _free_port()
    env = {**os.environ, "LABELAPP_MODELS_DIR": str(models_dir), "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "models_service.serve", "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--log-level", "warning"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_for_health(base_url)
        _post(httpx.Client(base_url=base_url, timeout=120), 0, 0)  # loads the model
        results = {}
        for concurrency in (1, clients):
            before = httpx.get(f"{base_url}/v1/stats").json()
            elapsed = _drive(base_url, concurrency, requests_per_client)
            after = httpx.get(f"{base_url}/v1/stats").json()
            total = concurrency * requests_per_client
            calls = after["generate_calls"] - before["generate_calls"]
            results[concurrency] = {
                "requests_per_s": total / elapsed,
                "samples_per_s": total * K / elapsed,
                "generate_calls": calls,
                "rows_per_call": (after["rows"] - before["rows"]) / max(calls, 1),
            }
        return results
    finally:
        process.terminate()
        process.wait(timeout=15)


def _drive(base_url: str, concurrency: int, requests_per_client: int) -> float:
    barrier = threading.Barrier(concurrency + 1)

    def client(index: int) -> None:
        with httpx.Client(base_url=base_url, timeout=120) as http:
            barrier.wait()
            for r in range(requests_per_client):
                _post(http, index, r)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    return time.perf_counter() - start


def _post(http: httpx.Client, index: int, repeat: int) -> None:
    body = {
        "model": "tiny",
        "prompt": PROMPTS[(index + repeat) % len(PROMPTS)],
        "n": K,
        "max_tokens": MAX_NEW_TOKENS,
        "seed": index * 1000 + repeat,
    }
    response = http.post("/v1/completions", json=body)
    response.raise_for_status()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_health(base_url: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base_url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    raise RuntimeError(f"the service at {base_url} did not become healthy in {timeout_s}s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests-per-client", type=int, default=8)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-models-") as directory:
        models_dir = Path(directory)
        model_dir, _ = ensure_tiny(models_dir)
        print(
            f"tiny model, {len(PROMPTS)} prompts x K={K}, {MAX_NEW_TOKENS} new tokens, "
            f"torch threads={torch.get_num_threads()}"
        )

        batched, looped = bench_in_process(model_dir, repeats=args.repeats)
        print(f"in process  batched (1 generate call): {batched:8.1f} samples/s")
        print(f"in process  loop ({len(PROMPTS) * K} generate calls): {looped:8.1f} samples/s")
        print(f"in process  ratio batched/loop:         {batched / looped:8.1f}x")

        service = bench_service(
            models_dir, clients=args.clients, requests_per_client=args.requests_per_client
        )
        one, many = service[1], service[args.clients]
        for concurrency, result in service.items():
            print(
                f"service  {concurrency} client(s): {result['requests_per_s']:6.2f} requests/s, "
                f"{result['samples_per_s']:7.1f} samples/s, {result['generate_calls']} generate "
                f"calls, {result['rows_per_call']:.1f} rows per call"
            )
        print(
            f"service  ratio {args.clients} clients / 1 client: "
            f"{many['requests_per_s'] / one['requests_per_s']:.1f}x requests/s"
        )
        print(
            f"service  ratio {args.clients} clients vs in-process loop: "
            f"{many['samples_per_s'] / looped:.1f}x samples/s"
        )


if __name__ == "__main__":
    main()
