"""A client for any OpenAI-compatible inference endpoint (our service or vLLM), on httpx.

Errors come in two kinds: `InferenceUnavailable` (cannot connect, timed out, 5xx: worth retrying
later) and `InferenceRequestError` (4xx: the request itself is wrong; retrying will not help).
The base URL always comes from configuration, never from a user's request.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx


class InferenceError(Exception):
    """Base class of the client's errors."""


class InferenceUnavailable(InferenceError):
    """The service could not answer (connection refused, timeout, 5xx). Retryable."""


class InferenceRequestError(InferenceError):
    """The service rejected the request (4xx); `message` is the service's own explanation."""

    def __init__(self, status_code: int, message: str, *, code: str | None = None) -> None:
        super().__init__(f"{status_code}: {message}")
        self.status_code = status_code
        self.message = message
        self.code = code


@dataclass(frozen=True)
class Choice:
    """One sampled output; `index` is prompt_index * n + sample_index."""

    index: int
    text: str
    finish_reason: str | None
    logprobs: dict[str, Any] | None = None


@dataclass(frozen=True)
class Completion:
    model: str
    choices: list[Choice]
    usage: dict[str, int]


class InferenceClient:
    """Calls /v1/completions, /v1/chat/completions, /v1/models and /health on `base_url`.

    `base_url` is the server root (e.g. "http://127.0.0.1:8100"); a trailing "/v1" is accepted.
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout: float = 120.0,
        connect_timeout: float = 5.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        root = base_url.rstrip("/")
        self.base_url = root.removesuffix("/v1")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> InferenceClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def health(self) -> dict[str, Any]:
        """The service's health payload; raises InferenceUnavailable when it is not up."""
        response = self._request("GET", "/health")
        return response.json() if response.content else {}

    def models(self) -> list[str]:
        """Ids of the models the service can serve now."""
        payload = self._request("GET", "/v1/models").json()
        return [model["id"] for model in payload.get("data", [])]

    def completions(
        self,
        model: str,
        prompts: str | Sequence[str],
        *,
        n: int = 1,
        max_tokens: int = 16,
        temperature: float = 1.0,
        top_p: float = 1.0,
        seed: int | None = None,
        stop: Sequence[str] | None = None,
        logprobs: int | None = None,
    ) -> Completion:
        """Sample n completions of every prompt; choices come prompt by prompt. With a seed,
        sample i of every prompt uses seed + i."""
        body: dict[str, Any] = {
            "model": model,
            "prompt": prompts if isinstance(prompts, str) else list(prompts),
            "n": n,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "top_p": top_p,
        }
        body.update(_optional(seed=seed, stop=list(stop) if stop else None, logprobs=logprobs))
        payload = self._request("POST", "/v1/completions", json=body).json()
        choices = [
            Choice(c["index"], c["text"], c.get("finish_reason"), c.get("logprobs"))
            for c in payload["choices"]
        ]
        return Completion(payload.get("model", model), choices, payload.get("usage", {}))

    def chat(
        self,
        model: str,
        messages: Sequence[dict[str, str]],
        *,
        n: int = 1,
        max_tokens: int = 128,
        temperature: float = 1.0,
        top_p: float = 1.0,
        seed: int | None = None,
        stop: Sequence[str] | None = None,
    ) -> Completion:
        """Sample n assistant replies to the conversation; each choice's text is the reply."""
        body: dict[str, Any] = {
            "model": model,
            "messages": list(messages),
            "n": n,
            "max_completion_tokens": max_tokens,
            "temperature": temperature,
            "top_p": top_p,
        }
        body.update(_optional(seed=seed, stop=list(stop) if stop else None))
        payload = self._request("POST", "/v1/chat/completions", json=body).json()
        choices = [
            Choice(c["index"], c["message"]["content"] or "", c.get("finish_reason"))
            for c in payload["choices"]
        ]
        return Completion(payload.get("model", model), choices, payload.get("usage", {}))

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException as error:
            raise InferenceUnavailable(f"{method} {self.base_url}{path} timed out") from error
        except httpx.TransportError as error:
            raise InferenceUnavailable(f"{method} {self.base_url}{path} failed: {error}") from error
        if response.status_code >= 500:
            raise InferenceUnavailable(
                f"{method} {self.base_url}{path}: {response.status_code} {_message(response)}"
            )
        if response.status_code >= 400:
            raise InferenceRequestError(
                response.status_code, _message(response), code=_error_code(response)
            )
        return response


def _optional(**values: Any) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


def _error_body(response: httpx.Response) -> dict[str, Any]:
    try:
        payload = response.json()
    except ValueError:
        return {}
    if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
        return payload["error"]
    if isinstance(payload, dict) and "detail" in payload:
        return {"message": str(payload["detail"])}
    return {}


def _message(response: httpx.Response) -> str:
    return str(
        _error_body(response).get("message") or response.text[:500] or response.reason_phrase
    )


def _error_code(response: httpx.Response) -> str | None:
    code = _error_body(response).get("code")
    return None if code is None else str(code)
