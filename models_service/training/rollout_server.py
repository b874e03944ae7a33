"""PPO rollouts on an OpenAI-compatible server (vLLM at scale; our service stands in for it).

The server serves the policy from a directory on shared storage (`vllm serve WEIGHTS_DIR
--served-model-name policy`, started with VLLM_SERVER_DEV_MODE=1). To move it to the trainer's
current policy, the trainer writes the weights there (merged, when LoRA) and calls vLLM's
development endpoint `POST /collective_rpc {"method": "reload_weights"}`, which makes every vLLM
worker read its model's weights from disk again (vLLM's `Worker.reload_weights`). Completions ask
for `return_token_ids` (a vLLM extension) so that PPO trains on exactly the sampled tokens.

TRL's own route (`trl vllm-serve` with `/init_communicator` and `/update_named_param`) streams
weights over NCCL from the trainer's GPUs; the reload from disk needs only HTTP and shared storage,
works for any vLLM deployment, and is what our service can mirror on CPU.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from models_service.sampling import SampledRow

PROMPTS_PER_REQUEST = 32


class RolloutServerError(RuntimeError):
    """The rollout server refused or failed a request; the message says which and why."""


@dataclass(frozen=True)
class RolloutServer:
    url: str
    model: str
    weights_dir: Path
    api_key: str | None = None
    timeout: float = 600.0

    @classmethod
    def from_spec(cls, raw: dict[str, Any] | None) -> RolloutServer | None:
        if not raw:
            return None
        return cls(
            url=str(raw["url"]).rstrip("/"),
            model=str(raw["model"]),
            weights_dir=Path(raw["weights_dir"]),
            api_key=raw.get("api_key") or None,
            timeout=float(raw.get("timeout") or 600.0),
        )

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        try:
            response = httpx.post(
                f"{self.url}{path}", json=body, headers=headers, timeout=self.timeout
            )
        except httpx.HTTPError as error:
            raise RolloutServerError(f"rollout server {self.url}{path}: {error}") from error
        if response.status_code != 200:
            raise RolloutServerError(
                f"rollout server {self.url}{path} answered {response.status_code}: "
                f"{response.text[:500]}"
            )
        return response.json()

    def publish(self, policy, tokenizer) -> None:
        """Put `policy`'s weights where the server reads them (swapped in whole), then have
        the server reload them."""
        from models_service.training.lora import save_for_serving

        target = self.weights_dir
        staging = target.parent / f".{target.name}.staging-{os.getpid()}"
        old = target.parent / f".{target.name}.old-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.parent.mkdir(parents=True, exist_ok=True)
        save_for_serving(policy, staging, tokenizer)
        if target.exists():
            os.rename(target, old)
        os.rename(staging, target)
        shutil.rmtree(old, ignore_errors=True)
        self._post("/collective_rpc", {"method": "reload_weights"})

    def sample(
        self,
        prompt_ids: Sequence[Sequence[int]],
        *,
        seed: int,
        max_new_tokens: int,
        temperature: float,
        eos_ids: Sequence[int],
        tokenizer,
    ) -> list[SampledRow]:
        """One sample per prompt (token-id prompts), as `sampling.sample` gives them."""
        rows: list[SampledRow] = []
        for start in range(0, len(prompt_ids), PROMPTS_PER_REQUEST):
            chunk = [list(p) for p in prompt_ids[start : start + PROMPTS_PER_REQUEST]]
            body = self._post(
                "/v1/completions",
                {
                    "model": self.model,
                    "prompt": chunk,
                    "n": 1,
                    "max_tokens": max_new_tokens,
                    "temperature": temperature,
                    "seed": seed + start,
                    "return_token_ids": True,
                },
            )
            choices = sorted(body["choices"], key=lambda choice: choice["index"])
            rows += [
                _row(choice, prompt, eos_ids=eos_ids, tokenizer=tokenizer)
                for choice, prompt in zip(choices, chunk, strict=True)
            ]
        return rows


def _row(
    choice: dict[str, Any], prompt: list[int], *, eos_ids: Sequence[int], tokenizer
) -> SampledRow:
    ids = [int(token) for token in choice.get("token_ids") or []]
    eos = None
    if ids and ids[-1] in eos_ids:
        eos, ids = ids[-1], ids[:-1]
    elif choice.get("finish_reason") == "stop":
        # A server that leaves the EOS out of token_ids: take the policy's first EOS id.
        eos = eos_ids[0] if eos_ids else None
    return SampledRow(
        text=tokenizer.decode(ids, skip_special_tokens=True),
        token_ids=ids,
        finish_reason="stop" if eos is not None else "length",
        prompt_tokens=len(prompt),
        eos_token_id=eos,
    )
