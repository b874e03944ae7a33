"""PPO rollouts on an OpenAI-compatible server: our service stands in for vLLM, with vLLM's
`return_token_ids` completions and its development endpoint `POST /collective_rpc`
(`reload_weights`), which the trainer calls after writing the policy's weights."""

from __future__ import annotations

import io
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from models_service.tiny import ensure_tiny
from models_service.training.protocol import EventStream, TrainingSpec
from models_service.training.run import run_spec
from models_service.training.runtime import Device, write_jsonl
from models_service.training.synthetic import synthetic_prompts
from tests.inference import ServiceProcess

pytestmark = pytest.mark.training
ROLLOUT = "rollout-policy"


@pytest.fixture(scope="module")
def dev_service(tmp_path_factory) -> Iterator[ServiceProcess]:
    """The service with vLLM's development endpoints on, serving its own models folder."""
    models = tmp_path_factory.mktemp("rollout-models")
    ensure_tiny(models)
    service = ServiceProcess(models_dir=models, log_file=models / "service.log")
    previous = os.environ.get("LABELAPP_DEV_ENDPOINTS")
    os.environ["LABELAPP_DEV_ENDPOINTS"] = "1"
    try:
        service.start()
    finally:
        if previous is None:
            os.environ.pop("LABELAPP_DEV_ENDPOINTS")
        else:
            os.environ["LABELAPP_DEV_ENDPOINTS"] = previous
    yield service
    service.stop()


def _greedy(base_url: str, model: str) -> dict:
    body = {
        "model": model,
        "prompt": "Once upon a time",
        "max_tokens": 12,
        "temperature": 0,
        "return_token_ids": True,
    }
    response = httpx.post(f"{base_url}/v1/completions", json=body, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()["choices"][0]


def test_token_ids_and_reload_weights_as_vllm_has_them(dev_service) -> None:
    weights = dev_service.models_dir / ROLLOUT
    shutil.copytree(dev_service.models_dir / "tiny", weights, dirs_exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(weights)
    before = _greedy(dev_service.base_url, ROLLOUT)
    ids = before["token_ids"]
    if before["finish_reason"] == "stop":
        assert ids[-1] == tokenizer.eos_token_id
        ids = ids[:-1]
    assert tokenizer.decode(ids, skip_special_tokens=True) == before["text"]

    # New weights in the served directory: the same request gives the old answer until reload.
    model = AutoModelForCausalLM.from_pretrained(weights)
    for parameter in model.parameters():
        parameter.data.mul_(-1.0)
    model.save_pretrained(weights)
    assert _greedy(dev_service.base_url, ROLLOUT)["token_ids"] == before["token_ids"]
    reload = httpx.post(
        f"{dev_service.base_url}/collective_rpc", json={"method": "reload_weights"}, timeout=60
    )
    assert reload.status_code == 200, reload.text
    assert ROLLOUT in reload.json()["results"][0]["reloaded"]
    assert _greedy(dev_service.base_url, ROLLOUT)["token_ids"] != before["token_ids"]
    unknown = httpx.post(f"{dev_service.base_url}/collective_rpc", json={"method": "sleep"})
    assert unknown.status_code == 400
    assert "runs reload_weights" in unknown.json()["error"]["message"]


def test_collective_rpc_is_off_unless_asked_for(service) -> None:
    response = httpx.post(f"{service.base_url}/collective_rpc", json={"method": "reload_weights"})
    assert response.status_code == 404


def test_ppo_samples_on_the_server_and_reloads_its_weights_every_step(
    dev_service, tmp_path
) -> None:
    policy, reward = ensure_tiny(tmp_path / "models")
    prompts = write_jsonl(tmp_path / "prompts.jsonl", synthetic_prompts(8, seed=5))
    weights = tmp_path / "shared" / "rollout"
    # The server serves the rollout directory under its model name, as `vllm serve DIR
    # --served-model-name` would.
    registry = dev_service.registry_file
    registry.write_text(json.dumps({"ppo-rollout": str(weights)}))
    stats = httpx.get(f"{dev_service.base_url}/v1/stats", timeout=30).json()
    stream = io.StringIO()
    spec = {
        "kind": "ppo",
        "base_model": str(policy),
        "output_dir": str(tmp_path / "ppo"),
        "data": {"train": str(prompts)},
        "hyperparameters": {
            "learning_rate": 1e-3,
            "batch_size": 4,
            "minibatch_size": 2,
            "max_new_tokens": 6,
            "max_steps": 3,
            "rollout_backend": "server",
        },
        "reward_model": str(reward),
        "rollout": {
            "url": dev_service.base_url,
            "model": "ppo-rollout",
            "weights_dir": str(weights),
        },
    }
    try:
        code = run_spec(TrainingSpec.from_dict(spec), EventStream(stream), Device("cpu", False))
    finally:
        registry.unlink()
    events = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert code == 0 and events[-1]["event"] == "done", events[-1]
    after = httpx.get(f"{dev_service.base_url}/v1/stats", timeout=30).json()
    assert after["rows"] - stats["rows"] == 3 * 4  # every episode sampled by the server
    # The server holds the policy as it was when step 3 began: trained twice, not the start.
    served = load_file(str(weights / "model.safetensors"))
    start = load_file(str(policy / "model.safetensors"))
    final = load_file(str(Path(events[-1]["model_dir"]) / "model.safetensors"))
    name = "model.layers.0.self_attn.q_proj.weight"
    assert not served[name].equal(start[name]) and not served[name].equal(final[name])
