"""Generation jobs: sample K outputs per prompt from one or several model versions through an
OpenAI-compatible service, and turn each prompt's K outputs into a comparison task.

Idempotent per (prompt, job): a batch is stored in one transaction, and a rerun (a retry after
the service went away, or a redelivered message after a worker crash) skips prompts that already
have their comparison for this job.
"""

import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from annotations.errors import ApplicationError, ErrorCode
from annotations.models import ComparisonTask, Completion, Job, Project, Prompt
from annotations.models.jobs import JobKind
from annotations.services.comparisons import comparisons_store
from annotations.services.jobs import (
    job_create,
    job_mark_cancelled,
    job_progress,
    job_start,
    job_succeed,
)
from annotations.services.model_versions import model_versions_by_name
from annotations.users import User
from models_service.client import Choice, InferenceClient

MAX_PROMPTS_PER_JOB = 20_000
PROMPT_FORMATS = ("chat", "completion")  # chat: the prompt is a user turn (chat template)


@dataclass(frozen=True)
class Sampling:
    max_tokens: int = 64
    temperature: float = 1.0
    top_p: float = 1.0

    def check(self) -> "Sampling":
        problems = []
        if not 1 <= self.max_tokens <= 2048:
            problems.append(f"max_tokens must be 1..2048, got {self.max_tokens}")
        if not 0.0 <= self.temperature <= 2.0:
            problems.append(f"temperature must be 0..2, got {self.temperature}")
        if not 0.0 < self.top_p <= 1.0:
            problems.append(f"top_p must be in (0, 1], got {self.top_p}")
        if problems:
            raise ApplicationError("; ".join(problems) + ".", code=ErrorCode.INVALID_SAMPLING)
        return self


def samples_per_model(*, k: int, models: list[str]) -> list[tuple[str, int]]:
    """How the K outputs of a prompt are split between models: as evenly as possible, earlier
    models taking the remainder. Every model gets at least one output."""
    if not models:
        raise ApplicationError("Choose at least one model.", code=ErrorCode.NO_MODELS)
    if len(set(models)) != len(models):
        raise ApplicationError("Each model may be chosen once.", code=ErrorCode.DUPLICATE_MODELS)
    if len(models) > k:
        raise ApplicationError(
            f"K={k} outputs cannot come from {len(models)} models; choose at most {k}.",
            code=ErrorCode.TOO_MANY_MODELS,
        )
    base, extra = divmod(k, len(models))
    return [(model, base + (1 if index < extra else 0)) for index, model in enumerate(models)]


def check_k(*, project: Project, k: int) -> None:
    if not project.k_min <= k <= project.k_max:
        raise ApplicationError(
            f"K={k} is outside this project's range: choose K between {project.k_min} and "
            f"{project.k_max}.",
            code=ErrorCode.K_OUT_OF_RANGE,
        )


def generation_prompts(
    *,
    project: Project,
    split: str = "",
    category: str = "",
    without_comparisons: bool = True,
    limit: int = 100,
) -> list[int]:
    prompts = Prompt.objects.filter(project=project)
    if split:
        prompts = prompts.filter(split=split)
    if category:
        prompts = prompts.filter(category=category)
    if without_comparisons:
        prompts = prompts.filter(comparisons__isnull=True)
    return list(prompts.order_by("id").values_list("id", flat=True)[:limit])


def generation_start(
    *,
    project: Project,
    user: User,
    models: list[str],
    k: int,
    sampling: Sampling,
    split: str = "",
    category: str = "",
    without_comparisons: bool = True,
    limit: int = 100,
    seed: int | None = None,
    prompt_format: str = "chat",
) -> Job:
    """Check everything a generation job needs, then queue it. Nothing runs in the request."""
    check_k(project=project, k=k)
    if prompt_format not in PROMPT_FORMATS:
        raise ApplicationError(
            f"Prompt format must be one of {', '.join(PROMPT_FORMATS)}.",
            code=ErrorCode.INVALID_FORMAT,
        )
    plan = samples_per_model(k=k, models=models)
    model_versions_by_name(names=models)
    sampling.check()
    if not 1 <= limit <= MAX_PROMPTS_PER_JOB:
        raise ApplicationError(
            f"Choose between 1 and {MAX_PROMPTS_PER_JOB} prompts.", code=ErrorCode.INVALID_LIMIT
        )
    prompt_ids = generation_prompts(
        project=project,
        split=split,
        category=category,
        without_comparisons=without_comparisons,
        limit=limit,
    )
    if not prompt_ids:
        raise ApplicationError(
            "No prompts match these filters (or every one has comparisons already).",
            code=ErrorCode.NO_PROMPTS,
        )
    return job_create(
        kind=JobKind.GENERATION,
        project=project,
        user=user,
        params={
            "source": "service",
            "models": models,
            "plan": plan,
            "k": k,
            "prompt_format": prompt_format,
            "sampling": {
                "max_tokens": sampling.max_tokens,
                "temperature": sampling.temperature,
                "top_p": sampling.top_p,
            },
            "seed": seed if seed is not None else secrets.randbelow(2**31),
            "filters": {
                "split": split,
                "category": category,
                "without_comparisons": without_comparisons,
                "limit": limit,
            },
            "prompt_ids": prompt_ids,
        },
    )


def _chunks(items: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def inference_client() -> InferenceClient:
    return InferenceClient(
        settings.LABELAPP_INFERENCE_URL,
        api_key=settings.LABELAPP_INFERENCE_API_KEY or None,
        timeout=settings.LABELAPP_INFERENCE_TIMEOUT,
    )


def _messages(prompt: Prompt) -> list[dict[str, str]]:
    return prompt.messages or [{"role": "user", "content": prompt.text}]


def _sample_model(
    *,
    client: InferenceClient,
    prompts: list[Prompt],
    model: str,
    count: int,
    seed: int,
    sampling: dict[str, Any],
    prompt_format: str,
) -> list[list[Choice]]:
    """The `count` samples of every prompt from one model, prompt by prompt.

    Completion format: one request for the whole batch. Chat format: one request per prompt, all
    in flight at once, which the service gathers into one batch."""
    if prompt_format == "completion":
        response = client.completions(
            model, [p.text for p in prompts], n=count, seed=seed, **sampling
        )
        return [response.choices[i * count : (i + 1) * count] for i in range(len(prompts))]
    with ThreadPoolExecutor(max_workers=min(len(prompts), 16)) as pool:
        responses = pool.map(
            lambda p: client.chat(model, _messages(p), n=count, seed=seed, **sampling), prompts
        )
        return [response.choices for response in responses]


def _sample_batch(
    *, client: InferenceClient, prompts: list[Prompt], plan: list[list], params: dict[str, Any]
) -> dict[int, list[dict[str, Any]]]:
    """{prompt id: K output dicts}: each model's share of K for every prompt of the batch."""
    sampling = params["sampling"]
    prompt_format = params.get("prompt_format", "chat")
    outputs: dict[int, list[dict[str, Any]]] = {prompt.pk: [] for prompt in prompts}
    for model_index, (model, count) in enumerate(plan):
        seed = params["seed"] + 1000 * model_index
        per_prompt = _sample_model(
            client=client,
            prompts=prompts,
            model=model,
            count=count,
            seed=seed,
            sampling=sampling,
            prompt_format=prompt_format,
        )
        for prompt, choices in zip(prompts, per_prompt, strict=True):
            outputs[prompt.pk] += [
                {
                    "text": choice.text,
                    "model_name": model,
                    "seed": seed + sample_index,
                    "finish_reason": choice.finish_reason or "",
                    "params": {**sampling, "format": prompt_format},
                }
                for sample_index, choice in enumerate(choices)
            ]
    return outputs


def generation_run(*, job_id: int, client: InferenceClient | None = None) -> None:
    """Run (or continue) a generation job. InferenceUnavailable propagates so that the task can
    retry with backoff; every stored batch stays stored."""
    job = job_start(job_id=job_id)
    if job is None:
        return
    params = job.params
    project = job.project
    assert project is not None, "a generation job belongs to a project"
    done_ids = set(ComparisonTask.objects.filter(job=job).values_list("prompt_id", flat=True))
    todo = [pid for pid in params["prompt_ids"] if pid not in done_ids]
    total = len(params["prompt_ids"])
    done = total - len(todo)
    job_progress(
        job_id=job_id, done=done, total=total, message=f"Sampled {done} of {total} prompts."
    )
    client = client or inference_client()
    try:
        for batch_ids in _chunks(todo, settings.LABELAPP_GENERATION_BATCH_PROMPTS):
            prompts = list(Prompt.objects.filter(pk__in=batch_ids).order_by("id"))
            outputs = _sample_batch(
                client=client, prompts=prompts, plan=params["plan"], params=params
            )
            comparisons_store(project=project, job=job, outputs=outputs)
            done += len(batch_ids)
            if job_progress(
                job_id=job_id, done=done, total=total, message=f"Sampled {done} of {total} prompts."
            ):
                job_mark_cancelled(job_id=job_id, result=_result(job))
                return
    finally:
        client.close()
    job_succeed(
        job_id=job_id,
        result=_result(job),
        message=f"{total} prompts x K={params['k']}: comparison tasks ready for ranking.",
    )


def _result(job: Job) -> dict[str, int]:
    comparisons = ComparisonTask.objects.filter(job=job)
    return {
        "comparisons": comparisons.count(),
        "completions": Completion.objects.filter(comparison__job=job).count(),
    }
