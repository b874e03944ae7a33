"""The OpenAI-compatible HTTP service.

Run: `python -m models_service.serve --host 127.0.0.1 --port 8100`.

Endpoints: GET /health, GET /v1/models, POST /v1/completions, POST /v1/chat/completions,
POST /v1/score (rewards from a reward model), GET /v1/stats (batching counters), and with
LABELAPP_DEV_ENDPOINTS=1 (vLLM's VLLM_SERVER_DEV_MODE=1) POST /collective_rpc for
`reload_weights`, which RL rollouts call after writing new policy weights. Every error has
the OpenAI shape `{"error": {"message", "type", "code", "param"}}`.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from models_service.api_schemas import (
    ApiError,
    ChatRequest,
    CollectiveRpcRequest,
    CompletionRequest,
    ScoreRequest,
    chat_choice,
    check_sampling,
    encode_chat,
    encode_prompts,
    invalid,
    normalize_prompt,
    normalize_stop,
    text_choice,
)
from models_service.engine import BatchEngine
from models_service.registry import LoadedModel, ModelLoadError, ModelRegistry, UnknownModelError
from models_service.sampling import RowRequest, SampledRow, random_seed, row_seeds
from models_service.settings import ServiceSettings
from models_service.tiny import ensure_tiny


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
        prompts = normalize_prompt(body.prompt, settings)
        encoded = await run_in_threadpool(encode_prompts, loaded, prompts)
        max_tokens = check_sampling(body, settings, default_max=16)
        return await _complete(
            engine, loaded, body, encoded, max_tokens=max_tokens, settings=settings, chat=False
        )

    @app.post("/v1/chat/completions")
    async def chat_completions(body: ChatRequest) -> dict:
        loaded = await _causal_model(registry, body.model)
        if body.max_completion_tokens is not None:
            body.max_tokens = body.max_completion_tokens
        max_tokens = check_sampling(body, settings, default_max=settings.max_tokens)
        encoded = await run_in_threadpool(encode_chat, loaded, body.messages)
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

    if settings.dev_endpoints:

        @app.post("/collective_rpc")
        async def collective_rpc(body: CollectiveRpcRequest) -> dict:
            """vLLM's development endpoint, for the methods a trainer uses: `reload_weights`
            reads every served model's weights from its directory again (the trainer has just
            written new ones there), as vLLM's `reload_weights` does for its one model."""
            if body.method != "reload_weights":
                raise invalid(
                    f"Unknown method {body.method!r}; this service runs reload_weights.",
                    param="method",
                )
            reloaded = await run_in_threadpool(registry.reload_weights)
            return {"results": [{"reloaded": reloaded}]}

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
    stop = normalize_stop(body.stop, settings)
    logprobs = None if isinstance(body, ChatRequest) else body.logprobs
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
        choices = [chat_choice(index, row) for index, row in enumerate(sampled)]
        kind, prefix = "chat.completion", "chatcmpl"
    else:
        tokenizer = loaded.tokenizer
        with_ids = bool(getattr(body, "return_token_ids", False))
        choices = [
            text_choice(index, row, tokenizer, token_ids=with_ids)
            for index, row in enumerate(sampled)
        ]
        kind, prefix = "text_completion", "cmpl"
    return {
        "id": f"{prefix}-{uuid.uuid4().hex}",
        "object": kind,
        "created": int(time.time()),
        "model": loaded.name,
        "choices": choices,
        "usage": usage,
    }


def _score(loaded: LoadedModel, texts: list[str], max_tokens: int) -> list[float]:
    """One reward per text, read exactly as the reward model was trained (`training.scoring`):
    the same encoding and the window the model carries (`reward_max_length`; `max_tokens` for
    models from elsewhere), keeping the end of a long text. A reward model trained here also
    carries `reward_bias` (demonstrations score 0 on average)."""
    from models_service.training.scoring import reward_max_length, score

    window = reward_max_length(loaded.model, default=max_tokens)
    rewards = score(loaded.model, loaded.tokenizer, [""] * len(texts), texts, max_length=window)
    return [float(value) for value in rewards]


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
