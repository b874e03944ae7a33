"""The service's request and response shapes (OpenAI's), its error type and the checks on a request.

Kept apart from the FastAPI app (`serve`), which only wires these to the engine and the registry.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from models_service.registry import LoadedModel
from models_service.sampling import SampledRow
from models_service.settings import ServiceSettings


class ApiError(Exception):
    """An error answered in the OpenAI shape."""

    def __init__(self, status: int, message: str, *, code: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.param = status, message, code, param

    @property
    def type(self) -> str:
        if self.status == 404:
            return "not_found_error"
        return "invalid_request_error" if self.status < 500 else "server_error"


def invalid(message: str, *, param: str | None = None) -> ApiError:
    return ApiError(400, message, code="invalid_request", param=param)


class CompletionRequest(BaseModel):
    model: str
    prompt: Any
    n: int = 1
    max_tokens: int | None = 16
    temperature: float | None = 1.0
    top_p: float | None = 1.0
    seed: int | None = None
    stop: Any = None
    logprobs: int | None = None
    # vLLM's extension: each choice also carries its token ids (with the EOS that ended it).
    return_token_ids: bool | None = None


class CollectiveRpcRequest(BaseModel):
    """vLLM's development endpoint `POST /collective_rpc` (VLLM_SERVER_DEV_MODE=1): a method
    run on every worker; ours knows `reload_weights` (read the served weights from disk again)."""

    method: str
    args: list[Any] = []
    kwargs: dict[str, Any] = {}


class ChatMessage(BaseModel):
    role: str
    content: Any = ""


class ChatRequest(BaseModel):
    model: str
    messages: list[ChatMessage]
    n: int = 1
    max_completion_tokens: int | None = None
    max_tokens: int | None = None
    temperature: float | None = 1.0
    top_p: float | None = 1.0
    seed: int | None = None
    stop: Any = None


class ScoreRequest(BaseModel):
    model: str
    texts: list[str]


def normalize_prompt(prompt: Any, settings: ServiceSettings) -> list[str | list[int]]:
    """A list of prompts (strings or token-id lists) from OpenAI's accepted prompt shapes."""
    if isinstance(prompt, str):
        prompts: list = [prompt]
    elif isinstance(prompt, list) and prompt and all(is_token(t) for t in prompt):
        prompts = [prompt]
    elif isinstance(prompt, list) and all(
        isinstance(p, str) or (isinstance(p, list) and p and all(is_token(t) for t in p))
        for p in prompt
    ):
        prompts = list(prompt)
    else:
        raise invalid(
            "'prompt' must be a string, a list of strings, a list of token ids "
            "or a list of token-id lists.",
            param="prompt",
        )
    if not 1 <= len(prompts) <= settings.max_prompts:
        raise invalid(
            f"'prompt' holds {len(prompts)} prompts; give 1 to {settings.max_prompts}.",
            param="prompt",
        )
    return prompts


def is_token(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def normalize_stop(stop: Any, settings: ServiceSettings) -> tuple[str, ...]:
    if stop is None:
        return ()
    stops = [stop] if isinstance(stop, str) else stop
    if not isinstance(stops, list) or not all(isinstance(s, str) and s for s in stops):
        raise invalid("'stop' must be a non-empty string or a list of them.", param="stop")
    if len(stops) > settings.max_stop:
        raise invalid(f"'stop' takes at most {settings.max_stop} strings.", param="stop")
    return tuple(stops)


def check_sampling(body, settings: ServiceSettings, *, default_max: int) -> int:
    """Check n, max tokens, temperature, top_p and logprobs; return the max tokens to use."""
    if not 1 <= body.n <= settings.max_n:
        raise invalid(f"'n' must be between 1 and {settings.max_n}; got {body.n}.", param="n")
    max_tokens = default_max if body.max_tokens is None else body.max_tokens
    if not 1 <= max_tokens <= settings.max_tokens:
        raise invalid(
            f"'max_tokens' must be between 1 and {settings.max_tokens}; got {max_tokens}.",
            param="max_tokens",
        )
    if body.temperature is not None and not 0 <= body.temperature <= 2:
        raise invalid("'temperature' must be between 0 and 2.", param="temperature")
    if body.top_p is not None and not 0 < body.top_p <= 1:
        raise invalid("'top_p' must be greater than 0 and at most 1.", param="top_p")
    logprobs = getattr(body, "logprobs", None)
    if logprobs is not None and not 0 <= logprobs <= settings.max_logprobs:
        raise invalid(
            f"'logprobs' must be between 0 and {settings.max_logprobs}.", param="logprobs"
        )
    return max_tokens


def encode_prompts(loaded: LoadedModel, prompts: list[str | list[int]]) -> list[list[int]]:
    vocab = loaded.model.config.vocab_size
    encoded = []
    for prompt in prompts:
        ids = list(loaded.tokenizer(prompt).input_ids) if isinstance(prompt, str) else prompt
        if not ids:
            raise invalid("A prompt encodes to no tokens; give some text.", param="prompt")
        if max(ids) >= vocab:
            raise invalid(
                f"'prompt' token ids must be below the vocabulary size {vocab}.", param="prompt"
            )
        encoded.append(ids)
    return encoded


def encode_chat(loaded: LoadedModel, messages: list[ChatMessage]) -> list[int]:
    tokenizer = loaded.tokenizer
    if not messages:
        raise invalid("'messages' must hold at least one message.", param="messages")
    if not getattr(tokenizer, "chat_template", None):
        raise invalid(f"The model '{loaded.name}' has no chat template.", param="model")
    conversation = [{"role": m.role, "content": message_text(m.content)} for m in messages]
    try:
        text = tokenizer.apply_chat_template(
            conversation, tokenize=False, add_generation_prompt=True
        )
    except Exception as error:
        raise invalid(
            f"The messages do not fit the chat template: {error}", param="messages"
        ) from error
    return list(tokenizer(text, add_special_tokens=False).input_ids)


def message_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(
        isinstance(part, dict) and part.get("type") == "text" for part in content
    ):
        return "".join(str(part.get("text", "")) for part in content)
    raise invalid("A message's content must be a string or a list of text parts.", param="messages")


def chat_choice(index: int, row: SampledRow) -> dict:
    message = {"role": "assistant", "content": row.text}
    return {
        "index": index,
        "message": message,
        "finish_reason": row.finish_reason,
        "logprobs": None,
    }


def text_choice(index: int, row: SampledRow, tokenizer, *, token_ids: bool = False) -> dict:
    """One choice of a completion; with `token_ids`, the sampled ids as vLLM gives them (the EOS
    that ended the row included)."""
    logprobs = None
    if row.logprobs is not None:
        tokens = [tokenizer.decode([token]) for token in row.token_ids]
        offsets, position = [], 0
        for token in tokens:
            offsets.append(position)
            position += len(token)
        top = None
        if row.top_logprobs is not None:
            top = [
                {tokenizer.decode([t]): lp for t, lp in step.items()} for step in row.top_logprobs
            ]
        logprobs = {
            "tokens": tokens,
            "token_logprobs": row.logprobs,
            "top_logprobs": top,
            "text_offset": offsets,
        }
    choice = {
        "index": index,
        "text": row.text,
        "finish_reason": row.finish_reason,
        "logprobs": logprobs,
    }
    if token_ids:
        eos = [] if row.eos_token_id is None else [row.eos_token_id]
        choice["token_ids"] = [*row.token_ids, *eos]
    return choice
