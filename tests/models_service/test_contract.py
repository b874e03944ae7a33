"""The OpenAI-compatible contract, against the real service process via `client.py` and raw HTTP."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import httpx
import pytest

from models_service.client import InferenceClient, InferenceRequestError, InferenceUnavailable

PROMPT = "Once upon a time"


def _error(response: httpx.Response, status: int) -> dict:
    """The OpenAI error body of `response`, after checking its status and shape."""
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) >= {"message", "type", "code"}
    assert isinstance(error["message"], str) and error["message"]
    return error


def test_health_and_models(client: InferenceClient, http: httpx.Client) -> None:
    assert client.health()["status"] == "ok"
    payload = http.get("/v1/models").json()
    assert payload["object"] == "list"
    by_id = {model["id"]: model for model in payload["data"]}
    assert {"tiny", "tiny-rm"} <= set(by_id)
    assert by_id["tiny"]["object"] == "model" and by_id["tiny"]["owned_by"]
    assert isinstance(by_id["tiny"]["created"], int)
    assert client.models() == sorted(by_id)


def test_completion_shape_and_n_samples_differ(http: httpx.Client) -> None:
    body = {"model": "tiny", "prompt": PROMPT, "n": 4, "max_tokens": 10, "seed": 11}
    payload = http.post("/v1/completions", json=body).json()
    assert payload["object"] == "text_completion" and payload["model"] == "tiny"
    assert payload["id"].startswith("cmpl-") and isinstance(payload["created"], int)
    choices = payload["choices"]
    assert [choice["index"] for choice in choices] == [0, 1, 2, 3]
    assert all(choice["finish_reason"] in {"stop", "length"} for choice in choices)
    assert len({choice["text"] for choice in choices}) > 1
    usage = payload["usage"]
    assert usage["prompt_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert 0 < usage["completion_tokens"] <= 40


def test_same_seed_same_outputs(client: InferenceClient) -> None:
    first = client.completions("tiny", PROMPT, n=3, max_tokens=12, seed=5)
    again = client.completions("tiny", PROMPT, n=3, max_tokens=12, seed=5)
    other = client.completions("tiny", PROMPT, n=3, max_tokens=12, seed=6)
    assert [c.text for c in first.choices] == [c.text for c in again.choices]
    assert [c.text for c in first.choices] != [c.text for c in other.choices]


def test_sample_i_is_seeded_with_seed_plus_i(client: InferenceClient) -> None:
    three = client.completions("tiny", PROMPT, n=3, max_tokens=16, seed=40, logprobs=0)
    single = client.completions("tiny", PROMPT, n=1, max_tokens=16, seed=42, logprobs=0)
    assert three.choices[2].text == single.choices[0].text
    # Same tokens; logprobs agree to float rounding (a batch of 3 rows vs 1 sums in another order).
    batched, alone = three.choices[2].logprobs, single.choices[0].logprobs
    assert batched["tokens"] == alone["tokens"]
    assert batched["token_logprobs"] == pytest.approx(alone["token_logprobs"], abs=1e-5)
    assert three.choices[0].text != single.choices[0].text


def test_prompt_list_comes_back_prompt_by_prompt(client: InferenceClient) -> None:
    prompts = ["The sea", "A reward model learns to predict which output people prefer."]
    both = client.completions("tiny", prompts, n=2, max_tokens=10, seed=3)
    assert [choice.index for choice in both.choices] == [0, 1, 2, 3]
    for p, prompt in enumerate(prompts):
        for i in range(2):
            alone = client.completions("tiny", prompt, n=1, max_tokens=10, seed=3 + i)
            assert both.choices[p * 2 + i].text == alone.choices[0].text


def test_prompt_as_token_ids(service, client: InferenceClient, http: httpx.Client) -> None:
    from transformers import AutoTokenizer

    ids = AutoTokenizer.from_pretrained(service.models_dir / "tiny")(PROMPT).input_ids
    as_text = client.completions("tiny", PROMPT, n=2, max_tokens=8, seed=1)
    for prompt in (ids, [ids]):
        body = {"model": "tiny", "prompt": prompt, "n": 2, "max_tokens": 8, "seed": 1}
        payload = http.post("/v1/completions", json=body).json()
        assert [c["text"] for c in payload["choices"]] == [c.text for c in as_text.choices]
        assert payload["usage"]["prompt_tokens"] == len(ids)


def test_stop_strings_cut_the_text(client: InferenceClient) -> None:
    full = client.completions("tiny", PROMPT, n=8, max_tokens=24, seed=9).choices
    longest = max(full, key=lambda choice: len(choice.text))
    stop = longest.text[4:7]
    cut = client.completions("tiny", PROMPT, n=8, max_tokens=24, seed=9, stop=[stop, "qqqq"])
    choice = cut.choices[longest.index]
    assert choice.text == longest.text[: longest.text.index(stop)]
    assert choice.finish_reason == "stop"
    for before, after in zip(full, cut.choices, strict=True):
        assert stop not in after.text
        assert before.text.startswith(after.text)


def test_logprobs(http: httpx.Client) -> None:
    body = {"model": "tiny", "prompt": PROMPT, "max_tokens": 6, "seed": 2, "logprobs": 2}
    choice = http.post("/v1/completions", json=body).json()["choices"][0]
    logprobs = choice["logprobs"]
    count = len(logprobs["tokens"])
    assert count == len(logprobs["token_logprobs"]) == len(logprobs["text_offset"]) > 0
    assert all(value <= 0 for value in logprobs["token_logprobs"])
    assert all(1 <= len(top) <= 2 for top in logprobs["top_logprobs"])
    for value, top in zip(logprobs["token_logprobs"], logprobs["top_logprobs"], strict=True):
        assert value <= max(top.values()) + 1e-6
    without = http.post("/v1/completions", json={**body, "logprobs": None}).json()
    assert without["choices"][0]["logprobs"] is None
    assert without["choices"][0]["text"] == choice["text"]


def test_chat(client: InferenceClient, http: httpx.Client) -> None:
    messages = [
        {"role": "system", "content": "You are helpful."},
        {"role": "user", "content": "What is the capital of France?"},
    ]
    body = {"model": "tiny", "messages": messages, "n": 3, "seed": 4, "max_completion_tokens": 12}
    payload = http.post("/v1/chat/completions", json=body).json()
    assert payload["object"] == "chat.completion" and payload["id"].startswith("chatcmpl-")
    assert [choice["index"] for choice in payload["choices"]] == [0, 1, 2]
    for choice in payload["choices"]:
        assert choice["message"]["role"] == "assistant"
        assert isinstance(choice["message"]["content"], str)
    assert payload["usage"]["completion_tokens"] <= 36
    reply = client.chat("tiny", messages, n=3, max_tokens=12, seed=4)
    assert [c.text for c in reply.choices] == [c["message"]["content"] for c in payload["choices"]]
    legacy = http.post(
        "/v1/chat/completions", json={**body, "max_completion_tokens": None, "max_tokens": 12}
    ).json()
    assert legacy["choices"] == payload["choices"]


def test_unknown_fields_are_ignored(http: httpx.Client) -> None:
    body = {
        "model": "tiny",
        "prompt": PROMPT,
        "max_tokens": 4,
        "echo": False,
        "user": "u1",
        "frequency_penalty": 0,
        "stream_options": None,
    }
    assert http.post("/v1/completions", json=body).status_code == 200


BAD_COMPLETIONS = [
    ({"n": 17}, "n"),
    ({"max_tokens": 513}, "max_tokens"),
    ({"max_tokens": 0}, "max_tokens"),
    ({"prompt": None}, "prompt"),
    ({"n": "several"}, "n"),
    ({"temperature": "hot"}, "temperature"),
    ({"temperature": 3}, "temperature"),
    ({"top_p": 0}, "top_p"),
    ({"prompt": 42}, "prompt"),
    ({"prompt": ["ok", 3.5]}, "prompt"),
    ({"prompt": ["p"] * 65}, "prompt"),
    ({"prompt": "word " * 2100}, "prompt"),
    ({"prompt": [[1, 10_000]]}, "prompt"),
    ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
    ({"stop": 7}, "stop"),
    ({"logprobs": 6}, "logprobs"),
]


@pytest.mark.parametrize(("change", "field"), BAD_COMPLETIONS)
def test_bad_completion_requests_are_400(http: httpx.Client, change: dict, field: str) -> None:
    body = {"model": "tiny", "prompt": PROMPT, "max_tokens": 4, **change}
    body = {key: value for key, value in body.items() if value is not None}
    error = _error(http.post("/v1/completions", json=body), 400)
    assert error["type"] == "invalid_request_error"
    assert field in error["message"]


def test_malformed_json_and_missing_messages_are_400(http: httpx.Client) -> None:
    raw = http.post(
        "/v1/completions", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert "JSON" in _error(raw, 400)["message"]
    error = _error(http.post("/v1/chat/completions", json={"model": "tiny"}), 400)
    assert "messages" in error["message"]
    bad_role = {"model": "tiny", "messages": [{"role": "robot", "content": "hi"}]}
    assert "roles" in _error(http.post("/v1/chat/completions", json=bad_role), 400)["message"]


def test_unknown_model_is_404_naming_the_models(
    client: InferenceClient, http: httpx.Client
) -> None:
    error = _error(http.post("/v1/completions", json={"model": "nope", "prompt": "x"}), 404)
    assert "nope" in error["message"] and "tiny" in error["message"]
    assert "tiny-rm" in error["message"] and error["code"] == "model_not_found"
    with pytest.raises(InferenceRequestError) as raised:
        client.chat("nope", [{"role": "user", "content": "hi"}])
    assert raised.value.status_code == 404 and "tiny" in raised.value.message


def test_reward_model_scores_but_does_not_generate(http: httpx.Client) -> None:
    error = _error(http.post("/v1/completions", json={"model": "tiny-rm", "prompt": "x"}), 400)
    assert "reward" in error["message"]
    texts = ["The sea was calm.", "The capital of France is Paris.", "x"]
    scored = http.post("/v1/score", json={"model": "tiny-rm", "texts": texts}).json()
    assert [row["index"] for row in scored["data"]] == [0, 1, 2]
    alone = http.post("/v1/score", json={"model": "tiny-rm", "texts": texts[1:2]}).json()
    assert alone["data"][0]["score"] == pytest.approx(scored["data"][1]["score"], abs=1e-5)
    assert _error(http.post("/v1/score", json={"model": "tiny", "texts": ["x"]}), 400)


def test_registry_file_entries_are_served_without_restart(
    service, client: InferenceClient, tmp_path: Path
) -> None:
    version_dir = tmp_path / "policy-v2"
    shutil.copytree(service.models_dir / "tiny", version_dir)
    registry = {"policy-v2": str(version_dir), "hub-only": "some-org/not-on-this-machine"}
    service.registry_file.write_text(json.dumps(registry))
    try:
        assert {"policy-v2", "hub-only", "tiny"} <= set(client.models())
        served = client.completions("policy-v2", PROMPT, n=2, max_tokens=8, seed=1)
        builtin = client.completions("tiny", PROMPT, n=2, max_tokens=8, seed=1)
        assert served.model == "policy-v2"
        assert [c.text for c in served.choices] == [c.text for c in builtin.choices]
        with pytest.raises(InferenceRequestError) as raised:
            client.completions("hub-only", PROMPT)
        assert raised.value.status_code == 400
        assert "some-org/not-on-this-machine" in raised.value.message
        assert "hub" in raised.value.message
    finally:
        service.registry_file.unlink()
    assert "policy-v2" not in client.models()


def test_concurrent_requests_share_generate_calls(service, http: httpx.Client) -> None:
    jobs = [
        {
            "prompt": f"Prompt number {k}",
            "seed": k,
            "n": 1 + k % 3,
            "temperature": 0.5 + k / 10,
            "top_p": 0.9 if k % 2 else 1.0,
            "max_tokens": 4 + k,
        }
        for k in range(12)
    ]
    sequential = [_complete(http, job) for job in jobs]
    before = http.get("/v1/stats").json()
    results: list[list[str] | None] = [None] * len(jobs)
    barrier = threading.Barrier(len(jobs))

    def run(k: int) -> None:
        with httpx.Client(base_url=service.base_url, timeout=60) as own:
            barrier.wait()
            results[k] = _complete(own, jobs[k])

    threads = [threading.Thread(target=run, args=(k,)) for k in range(len(jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    after = http.get("/v1/stats").json()
    assert after["requests"] - before["requests"] == len(jobs)
    assert after["generate_calls"] - before["generate_calls"] < len(jobs)
    assert after["max_batch_rows"] > 3
    # Batching with other requests changes nothing in any request's samples.
    assert results == sequential


def test_a_request_larger_than_one_batch_is_split_and_reassembled(
    client: InferenceClient, http: httpx.Client
) -> None:
    prompts = [f"Prompt {k}" for k in range(5)]
    before = http.get("/v1/stats").json()
    big = client.completions("tiny", prompts, n=16, max_tokens=4, seed=70)
    after = http.get("/v1/stats").json()
    assert [choice.index for choice in big.choices] == list(range(80))
    assert after["generate_calls"] - before["generate_calls"] == 2  # 64 rows, then 16
    last = client.completions("tiny", prompts[4], n=1, max_tokens=4, seed=70 + 15)
    assert big.choices[79].text == last.choices[0].text


def _complete(http: httpx.Client, job: dict) -> list[str]:
    response = http.post("/v1/completions", json={"model": "tiny", **job})
    assert response.status_code == 200, response.text
    return [choice["text"] for choice in response.json()["choices"]]


def test_client_reports_an_unreachable_service_as_unavailable() -> None:
    unreachable = InferenceClient("http://127.0.0.1:9", timeout=2, connect_timeout=1)
    with unreachable, pytest.raises(InferenceUnavailable):
        unreachable.models()
