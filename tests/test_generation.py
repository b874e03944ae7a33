"""Generation jobs against the real inference service and a real Celery worker."""

import json
import shutil

import pytest
from django.urls import reverse

from annotations.errors import ApplicationError
from annotations.models import ComparisonTask, Completion, Job, WorkItem
from annotations.services.generation import Sampling, generation_start, samples_per_model
from annotations.services.model_versions import (
    model_version_register,
    model_versions_ensure_builtin,
)
from annotations.services.outputs_import import outputs_import_file
from tests.factories import ModelVersionFactory, PromptFactory
from tests.helpers import token_client, wait_for, write_jsonl
from tests.inference import ServiceProcess


@pytest.fixture
def registered(db, models_dir, settings):
    """The built-in tiny model and a second version (a copy) registered in the app."""
    settings.LABELAPP_MODELS_DIR = models_dir
    model_versions_ensure_builtin()
    copy = models_dir / "tiny-copy"
    if not copy.exists():
        shutil.copytree(models_dir / "tiny", copy)
    model_version_register(name="tiny-v2", path=str(copy))
    return ["tiny", "tiny-v2"]


def test_samples_per_model_splits_k_evenly():
    assert samples_per_model(k=4, models=["a", "b"]) == [("a", 2), ("b", 2)]
    assert samples_per_model(k=9, models=["a", "b"]) == [("a", 5), ("b", 4)]
    with pytest.raises(ApplicationError, match="at most 4"):
        samples_per_model(k=4, models=["a", "b", "c", "d", "e"])


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"k": 3}, "choose K between 4 and 9"),
        ({"k": 10}, "choose K between 4 and 9"),
        ({"models": ["nope"]}, "Unknown model 'nope'; registered policy models: tiny"),
        ({"sampling": Sampling(temperature=5)}, "temperature must be 0..2"),
        ({"split": "test", "category": "extract"}, "No prompts match"),
    ],
)
def test_bad_generation_requests_change_nothing(project, admin_user, kwargs, message):
    model_versions_ensure_builtin()
    PromptFactory.create_batch(3, project=project)
    arguments = {
        "project": project,
        "user": admin_user,
        "models": ["tiny"],
        "k": 4,
        "sampling": Sampling(),
        **kwargs,
    }
    with pytest.raises(ApplicationError, match=message):
        generation_start(**arguments)
    assert not Job.objects.exists()


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_50_prompts_k4_two_models(
    celery_worker_live, service, registered, settings, project, engineer
):
    settings.LABELAPP_INFERENCE_URL = service.base_url
    PromptFactory.create_batch(50, project=project)
    job = generation_start(
        project=project,
        user=engineer,
        models=registered,
        k=4,
        sampling=Sampling(max_tokens=16),
        limit=50,
        seed=7,
    )
    job = wait_for(job.pk)
    assert job.state == "succeeded", job.message
    assert job.result == {"comparisons": 50, "completions": 200}
    assert ComparisonTask.objects.filter(job=job).count() == 50
    completions = Completion.objects.filter(comparison__job=job)
    assert completions.count() == 200
    per_model = {name: completions.filter(model_name=name).count() for name in registered}
    assert per_model == {"tiny": 100, "tiny-v2": 100}
    assert completions.filter(model_version__name="tiny-v2").count() == 100
    first = ComparisonTask.objects.filter(job=job).first()
    texts = list(first.completions.values_list("text", flat=True))
    assert len(set(texts)) > 1, "the K samples of a prompt should differ"
    assert sorted(first.completions.values_list("seed", flat=True)) == [7, 8, 1007, 1008]
    assert WorkItem.objects.filter(kind="ranking", comparison__job=job).count() == 50


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_service_outage_retries_and_completes_without_duplicates(
    celery_worker_live, models_dir, registered, settings, project, engineer, tmp_path
):
    outage = ServiceProcess(models_dir=models_dir, log_file=tmp_path / "service.log")
    outage.start()
    settings.LABELAPP_INFERENCE_URL = outage.base_url
    settings.LABELAPP_GENERATION_BATCH_PROMPTS = 2
    settings.LABELAPP_GENERATION_RETRY_SECONDS = 1
    PromptFactory.create_batch(40, project=project)
    try:
        job = generation_start(
            project=project,
            user=engineer,
            models=["tiny"],
            k=4,
            sampling=Sampling(max_tokens=48),
            limit=40,
            seed=1,
        )
        wait_for(job.pk, until=lambda j: ComparisonTask.objects.filter(job=j).exists())
        outage.stop()
        waiting = wait_for(
            job.pk,
            until=lambda j: "Waiting for the inference service" in j.message or j.is_finished,
        )
        assert not waiting.is_finished, waiting.message
        outage.start()
        job = wait_for(job.pk)
    finally:
        outage.stop()
    assert job.state == "succeeded", job.message
    assert job.attempts >= 2
    assert ComparisonTask.objects.filter(job=job).count() == 40
    assert Completion.objects.filter(comparison__job=job).count() == 160
    assert WorkItem.objects.filter(comparison__job=job).count() == 40


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_cancel_stops_between_batches(
    celery_worker_live, service, registered, settings, project, engineer
):
    settings.LABELAPP_INFERENCE_URL = service.base_url
    settings.LABELAPP_GENERATION_BATCH_PROMPTS = 1
    PromptFactory.create_batch(60, project=project)
    job = generation_start(
        project=project,
        user=engineer,
        models=["tiny"],
        k=4,
        sampling=Sampling(max_tokens=64),
        limit=60,
    )
    wait_for(job.pk, until=lambda j: j.progress_done >= 1)
    Job.objects.filter(pk=job.pk).update(cancel_requested=True)
    job = wait_for(job.pk)
    assert job.state == "cancelled"
    assert 1 <= job.result["comparisons"] < 60


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_model_unknown_to_the_service_fails_clearly(
    celery_worker_live, service, settings, project, engineer, models_dir
):
    settings.LABELAPP_INFERENCE_URL = service.base_url
    settings.LABELAPP_MODELS_DIR = models_dir / "elsewhere"
    model_versions_ensure_builtin()
    ModelVersionFactory(name="ghost")
    PromptFactory.create_batch(2, project=project)
    job = wait_for(
        generation_start(
            project=project, user=engineer, models=["ghost"], k=4, sampling=Sampling(max_tokens=4)
        ).pk
    )
    assert job.state == "failed"
    assert "refused the request" in job.message
    assert "ghost" in job.message and "tiny" in job.message
    assert not ComparisonTask.objects.exists()


@pytest.mark.django_db
def test_import_outputs_file(project, tmp_path):
    prompts = PromptFactory.create_batch(2, project=project)
    path = write_jsonl(
        tmp_path / "o.jsonl",
        [
            {"prompt_id": prompts[0].pk, "model": "gpt-x", "outputs": ["a", "b", "c", "d"]},
            {
                "prompt": "A brand new prompt",
                "customer_id": "z",
                "outputs": [
                    {"text": t, "model": m}
                    for t, m in [("1", "m1"), ("2", "m2"), ("3", "m1"), ("4", "m2"), ("5", "m1")]
                ],
            },
        ],
    )
    report = outputs_import_file(project=project, path=path)
    assert report["comparisons"] == 2
    new = ComparisonTask.objects.get(prompt__text="A brand new prompt")
    assert list(new.completions.values_list("model_name", flat=True)) == [
        "m1",
        "m2",
        "m1",
        "m2",
        "m1",
    ]
    assert WorkItem.objects.filter(kind="ranking").count() == 2


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("row", "message"),
    [
        (
            {"prompt_id": 999999, "model": "m", "outputs": ["a"] * 4},
            "is not a prompt of this project",
        ),
        (
            {"prompt_id": None, "model": "m", "outputs": ["a"] * 4},
            "give 'prompt_id' or the 'prompt'",
        ),
        ({"prompt": "unknown text", "model": "m", "outputs": ["a"] * 4}, "give its 'customer_id'"),
        ({"prompt": "x", "customer_id": "c", "model": "m", "outputs": ["a"] * 3}, "4..9 outputs"),
        ({"prompt": "x", "customer_id": "c", "outputs": ["a"] * 4}, "needs a model name"),
        (
            {
                "prompt": "twice",
                "customer_id": "c",
                "model": "m",
                "outputs": ["a"] * 4,
                "_twice": True,
            },
            "the same prompt as line 2",
        ),
        (
            {"prompt": "x", "customer_id": "c", "model": "m", "outputs": ["a", "", "b", "c"]},
            "'outputs'[1] has no text",
        ),
    ],
)
def test_import_outputs_errors_name_the_line(project, tmp_path, row, message):
    prompts = PromptFactory.create_batch(1, project=project)
    good = {"prompt_id": prompts[0].pk, "model": "m", "outputs": ["a", "b", "c", "d"]}
    twice = row.pop("_twice", False)
    path = write_jsonl(tmp_path / "o.jsonl", [good, row, row] if twice else [good, row])
    with pytest.raises(ApplicationError) as caught:
        outputs_import_file(project=project, path=path)
    errors = caught.value.details["report"]["errors"]
    assert errors[0]["line"] == (3 if twice else 2)
    assert message in errors[0]["message"]
    assert not ComparisonTask.objects.exists()
    assert project.prompts.count() == 1


@pytest.mark.django_db
def test_generation_pages_and_api(engineer_client, labeler_client, project, engineer):
    model_versions_ensure_builtin()
    PromptFactory.create_batch(4, project=project)
    page = engineer_client.get(reverse("generation_new", args=["test"]))
    assert page.status_code == 200
    assert b"This project allows K = 4..9" in page.content
    bad = engineer_client.post(
        reverse("generation_new", args=["test"]),
        {
            "models": ["tiny"],
            "k": 12,
            "limit": 4,
            "max_tokens": 8,
            "temperature": 1,
            "top_p": 1,
            "prompt_format": "chat",
        },
    )
    assert b"choose K between 4 and 9" in bad.content
    assert labeler_client.get(reverse("generation_new", args=["test"])).status_code == 403
    api = token_client(engineer)
    response = api.post(
        "/api/v1/projects/test/generation/", {"models": ["tiny"], "k": 4, "limit": 4}, format="json"
    )
    assert response.status_code == 202, response.json()
    assert response.json()["kind"] == "generation"
    unknown = api.post(
        "/api/v1/projects/test/generation/", {"models": ["gpt-9"], "k": 4}, format="json"
    )
    assert unknown.status_code == 400
    assert "Unknown model 'gpt-9'" in unknown.json()["error"]["message"]
    assert api.get("/api/v1/models/").json()[0]["name"] in {"tiny", "tiny-rm"}
    assert engineer_client.get(reverse("model_list")).status_code == 200


def test_registry_file_lists_registered_versions(registered, models_dir):
    from django.db import transaction

    from annotations.services.model_versions import model_registry_write

    with transaction.atomic():
        model_registry_write()
    assert json.loads((models_dir / "registry.json").read_text()) == {
        "tiny-v2": str((models_dir / "tiny-copy").resolve())
    }
