"""The OpenAI-compatible HTTP service.

Run: `python -m models_service.serve --host 127.0.0.1 --port 8100`.

Endpoints: GET /health, GET /v1/models, POST /v1/completions, POST /v1/chat/completions,
POST /v1/score (rewards from a reward model), GET /v1/stats (batching counters). Every error has
the OpenAI shape `{"error": {"message", "type", "code", "param"}}`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from models_service.engine import BatchEngine
from models_service.registry import LoadedModel, ModelLoadError, ModelRegistry, UnknownModelError
from models_service.sampling import RowRequest, SampledRow, random_seed, row_seeds
from models_service.tiny import ensure_tiny, models_dir_from_env


@dataclass(frozen=True)
class ServiceSettings:
    """Limits and locations, from LABELAPP_* environment variables (see `from_env`)."""

    models_dir: Path
    registry_file: Path
    build_tiny: bool = True
    max_n: int = 16
    max_tokens: int = 512
    max_prompt_tokens: int = 2048
    max_prompts: int = 64
    max_stop: int = 4
    max_logprobs: int = 5
    batch_window_ms: float = 8.0
    batch_max_rows: int = 64
    max_loaded_models: int = 4

    @classmethod
    def from_env(cls) -> ServiceSettings:
        models_dir = models_dir_from_env()
        env = os.environ.get
        return cls(
            models_dir=models_dir,
            registry_file=Path(env("LABELAPP_MODEL_REGISTRY") or models_dir / "registry.json"),
            build_tiny=env("LABELAPP_BUILD_TINY", "1") != "0",
            max_n=int(env("LABELAPP_MAX_N", "16")),
            max_tokens=int(env("LABELAPP_MAX_TOKENS", "512")),
            max_prompt_tokens=int(env("LABELAPP_MAX_PROMPT_TOKENS", "2048")),
            max_prompts=int(env("LABELAPP_MAX_PROMPTS", "64")),
            batch_window_ms=float(env("LABELAPP_BATCH_WINDOW_MS", "8")),
            batch_max_rows=int(env("LABELAPP_BATCH_MAX_ROWS", "64")),
            max_loaded_models=int(env("LABELAPP_MAX_LOADED_MODELS", "4")),
        )


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


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    """The FastAPI app; models are found and the batch worker started at startup."""
    settings = settings or ServiceSettings.from_env()
    registry = ModelRegistry(
        models_dir=settings.models_dir,
        registry_file=settings.registry_file,
        max_loaded=settings.max_loaded_models,
    )
    engine = BatchEngine(window_s=settings.batch_window_ms / 1000, max_rows=settings.batch_max_rows)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if settings.build_tiny:
            await run_in_threadpool(ensure_tiny, settings.models_dir)
        engine.start()
        yield
        engine.stop()

    app = FastAPI(title="labelapp models service", lifespan=lifespan)
    _install_error_handlers(app)
    started = time.time()

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok", "uptime_s": round(time.time() - started, 1), **engine.stats()}

    @app.get("/v1/stats")
    async def stats() -> dict:
        return {**engine.stats(), "loaded_models": registry.loaded_names()}

    @app.get("/v1/models")
    async def models() -> dict:
        entries = await run_in_threadpool(registry.refresh)
        data = [
            {"id": e.name, "object": "model", "created": e.created, "owned_by": "labelapp"}
            for e in entries
        ]
        return {"object": "list", "data": data}

    @app.post("/v1/completions")
    async def completions(body: CompletionRequest) -> dict:
        loaded = await _causal_model(registry, body.model)
        prompts = _normalize_prompt(body.prompt, settings)
        encoded = await run_in_threadpool(_encode, loaded, prompts)
        max_tokens = _check_sampling(body, settings, default_max=16)
        return await _complete(
            engine, loaded, body, encoded, max_tokens=max_tokens, settings=settings, chat=False
        )

    @app.post("/v1/chat/completions")
    async def chat_completions(body: ChatRequest) -> dict:
        loaded = await _causal_model(registry, body.model)
        if body.max_completion_tokens is not None:
            body.max_tokens = body.max_completion_tokens
        max_tokens = _check_sampling(body, settings, default_max=settings.max_tokens)
        encoded = await run_in_threadpool(_encode_chat, loaded, body.messages)
        return await _complete(
            engine, loaded, body, [encoded], max_tokens=max_tokens, settings=settings, chat=True
        )

    @app.post("/v1/score")
    async def score(body: ScoreRequest) -> dict:
        loaded = await _get_model(registry, body.model)
        if loaded.kind != "reward":
            raise invalid(f"The model '{body.model}' is not a reward model.", param="model")
        if not 1 <= len(body.texts) <= settings.max_prompts:
            raise invalid(f"texts must hold 1 to {settings.max_prompts} strings.", param="texts")
        scores = await run_in_threadpool(_score, loaded, body.texts, settings.max_prompt_tokens)
        data = [{"index": i, "score": s} for i, s in enumerate(scores)]
        return {"object": "list", "model": body.model, "data": data}

    return app


def _install_error_handlers(app: FastAPI) -> None:
    def answer(error: ApiError) -> JSONResponse:
        body = {"message": error.message, "type": error.type, "code": error.code}
        return JSONResponse({"error": {**body, "param": error.param}}, status_code=error.status)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, error: ApiError) -> JSONResponse:
        return answer(error)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        problems, first_field = [], None
        for problem in error.errors():
            if problem.get("type") == "json_invalid":
                reason = problem.get("ctx", {}).get("error", "malformed JSON")
                return answer(invalid(f"The request body is not valid JSON: {reason}."))
            location = [str(part) for part in problem.get("loc", ()) if part != "body"]
            field = ".".join(location) or "body"
            first_field = first_field or field
            problems.append(f"'{field}': {problem.get('msg', 'invalid value')}")
        return answer(invalid("Invalid request: " + "; ".join(problems), param=first_field))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        code = "not_found" if error.status_code == 404 else "http_error"
        return answer(ApiError(error.status_code, str(error.detail), code=code))

    @app.exception_handler(Exception)
    async def server_error(request: Request, error: Exception) -> JSONResponse:
        message = f"Internal error: {type(error).__name__}: {error}"
        return answer(ApiError(500, message, code="internal_error"))


async def _get_model(registry: ModelRegistry, name: str) -> LoadedModel:
    try:
        return await run_in_threadpool(registry.get, name)
    except UnknownModelError as error:
        raise ApiError(404, str(error), code="model_not_found", param="model") from error
    except ModelLoadError as error:
        raise ApiError(400, str(error), code="model_load_failed", param="model") from error


async def _causal_model(registry: ModelRegistry, name: str) -> LoadedModel:
    loaded = await _get_model(registry, name)
    if loaded.kind != "causal-lm":
        raise invalid(
            f"The model '{name}' is a {loaded.kind} model and cannot generate text; "
            "use a causal language model (or POST /v1/score for rewards).",
            param="model",
        )
    return loaded


def _normalize_prompt(prompt: Any, settings: ServiceSettings) -> list[str | list[int]]:
    """A list of prompts (strings or token-id lists) from OpenAI's accepted prompt shapes."""
    if isinstance(prompt, str):
        prompts: list = [prompt]
    elif isinstance(prompt, list) and prompt and all(_is_token(t) for t in prompt):
        prompts = [prompt]
    elif isinstance(prompt, list) and all(
        isinstance(p, str) or (isinstance(p, list) and p and all(_is_token(t) for t in p))
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


def _is_token(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _normalize_stop(stop: Any, settings: ServiceSettings) -> tuple[str, ...]:
    if stop is None:
        return ()
    stops = [stop] if isinstance(stop, str) else stop
    if not isinstance(stops, list) or not all(isinstance(s, str) and s for s in stops):
        raise invalid("'stop' must be a non-empty string or a list of them.", param="stop")
    if len(stops) > settings.max_stop:
        raise invalid(f"'stop' takes at most {settings.max_stop} strings.", param="stop")
    return tuple(stops)


def _check_sampling(body, settings: ServiceSettings, *, default_max: int) -> int:
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


def _encode(loaded: LoadedModel, prompts: list[str | list[int]]) -> list[list[int]]:
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


def _encode_chat(loaded: LoadedModel, messages: list[ChatMessage]) -> list[int]:
    tokenizer = loaded.tokenizer
    if not messages:
        raise invalid("'messages' must hold at least one message.", param="messages")
    if not getattr(tokenizer, "chat_template", None):
        raise invalid(f"The model '{loaded.name}' has no chat template.", param="model")
    conversation = [{"role": m.role, "content": _message_text(m.content)} for m in messages]
    try:
        text = tokenizer.apply_chat_template(
            conversation, tokenize=False, add_generation_prompt=True
        )
    except Exception as error:
        raise invalid(
            f"The messages do not fit the chat template: {error}", param="messages"
        ) from error
    return list(tokenizer(text, add_special_tokens=False).input_ids)


def _message_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(
        isinstance(part, dict) and part.get("type") == "text" for part in content
    ):
        return "".join(str(part.get("text", "")) for part in content)
    raise invalid("A message's content must be a string or a list of text parts.", param="messages")


async def _complete(
    engine: BatchEngine,
    loaded: LoadedModel,
    body: CompletionRequest | ChatRequest,
    encoded: list[list[int]],
    *,
    max_tokens: int,
    settings: ServiceSettings,
    chat: bool,
) -> dict:
    """Sample every prompt's rows through the batcher and answer in the OpenAI shape."""
    context = getattr(loaded.model.config, "max_position_embeddings", None) or 10**9
    for ids in encoded:
        if len(ids) > settings.max_prompt_tokens or len(ids) + max_tokens > context:
            raise invalid(
                f"A prompt has {len(ids)} tokens; the limit is {settings.max_prompt_tokens} "
                f"tokens, and prompt plus max_tokens must fit the context of {context}.",
                param="messages" if chat else "prompt",
            )
    temperature = 1.0 if body.temperature is None else body.temperature
    top_p = 1.0 if body.top_p is None else body.top_p
    seed = random_seed() if body.seed is None else body.seed
    seeds = row_seeds(seed, num_prompts=len(encoded), n=body.n)
    stop = _normalize_stop(body.stop, settings)
    logprobs = None if chat else body.logprobs
    rows = [
        RowRequest(
            tuple(ids), seeds[p * body.n + i], max_tokens, temperature, top_p, stop, logprobs
        )
        for p, ids in enumerate(encoded)
        for i in range(body.n)
    ]
    sampled: list[SampledRow] = await asyncio.wrap_future(engine.submit(loaded, rows))
    usage = {
        "prompt_tokens": sum(len(ids) for ids in encoded),
        "completion_tokens": sum(len(row.token_ids) for row in sampled),
    }
    usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    if chat:
        choices = [_chat_choice(index, row) for index, row in enumerate(sampled)]
        kind, prefix = "chat.completion", "chatcmpl"
    else:
        tokenizer = loaded.tokenizer
        choices = [_text_choice(index, row, tokenizer) for index, row in enumerate(sampled)]
        kind, prefix = "text_completion", "cmpl"
    return {
        "id": f"{prefix}-{uuid.uuid4().hex}",
        "object": kind,
        "created": int(time.time()),
        "model": loaded.name,
        "choices": choices,
        "usage": usage,
    }


def _chat_choice(index: int, row: SampledRow) -> dict:
    message = {"role": "assistant", "content": row.text}
    return {
        "index": index,
        "message": message,
        "finish_reason": row.finish_reason,
        "logprobs": None,
    }


def _text_choice(index: int, row: SampledRow, tokenizer) -> dict:
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
    return {
        "index": index,
        "text": row.text,
        "finish_reason": row.finish_reason,
        "logprobs": logprobs,
    }


def _score(loaded: LoadedModel, texts: list[str], max_tokens: int) -> list[float]:
    """One reward per text; the reward head reads each text's last non-pad token. A reward model
    trained here carries `reward_bias` in its config (demonstrations score 0 on average)."""
    tokenizer = loaded.tokenizer
    batch = tokenizer(
        texts, return_tensors="pt", padding=True, truncation=True, max_length=max_tokens
    ).to(loaded.model.device)
    with torch.inference_mode():
        logits = loaded.model(**batch).logits
    bias = float(getattr(loaded.model.config, "reward_bias", 0.0) or 0.0)
    return [float(value) + bias for value in logits[:, 0].float().cpu()]


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="Serve models over an OpenAI-compatible API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    uvicorn.run(create_app(), host=args.host, port=args.port, log_level=args.log_level)


if __name__ == "__main__":
    main()
