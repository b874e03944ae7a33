"""The whole loop with a real worker and the real service: SFT -> RM -> PPO-ptx -> the next round
of comparisons, sampled from the new policy."""

import pytest
from django.urls import reverse

from annotations.models import Completion, Job, ModelVersion
from annotations.services.generation import Sampling, generation_start
from annotations.services.model_versions import model_versions_ensure_builtin
from annotations.services.training import training_start
from models_service.training.synthetic import (
    synthetic_prompts,
    synthetic_rankings,
    synthetic_sft_rows,
)
from tests.factories import DatasetExportFactory, JobFactory, ModelVersionFactory, PromptFactory
from tests.helpers import run_export, wait_for


@pytest.mark.training
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_sft_rm_ppo_then_the_next_round(
    celery_worker_live, service, models_dir, settings, project, engineer
):
    settings.LABELAPP_MODELS_DIR = models_dir
    settings.LABELAPP_INFERENCE_URL = service.base_url
    model_versions_ensure_builtin()
    tiny, tiny_rm = ModelVersion.objects.get(name="tiny"), ModelVersion.objects.get(name="tiny-rm")
    sft_data = DatasetExportFactory(
        project=project, kind="sft", splits={"train": synthetic_sft_rows(24)}
    )
    rm_data = DatasetExportFactory(
        project=project, kind="rm_rankings", splits={"train": synthetic_rankings(32, k=4)}
    )
    ppo_data = DatasetExportFactory(
        project=project, kind="ppo_prompts", splits={"train": synthetic_prompts(16)}
    )

    def train(**kwargs):
        job = wait_for(training_start(user=engineer, seed=1, **kwargs).pk)
        assert job.state == "succeeded", f"{job.message}\n{job.log_tail}"
        return ModelVersion.objects.get(name=job.result["model_version"])

    sft = train(
        kind="sft",
        dataset=sft_data,
        base_model=tiny,
        hyperparameters={"max_steps": 3, "batch_size": 4},
    )
    rm = train(
        kind="reward",
        dataset=rm_data,
        base_model=tiny_rm,
        demonstrations=sft_data,
        hyperparameters={"learning_rate": 3e-3, "prompts_per_batch": 8},
    )
    policy = train(
        kind="ppo",
        dataset=ppo_data,
        base_model=sft,
        reward_model=rm,
        pretrain=sft_data,
        hyperparameters={
            "max_steps": 4,
            "batch_size": 8,
            "minibatch_size": 4,
            "max_new_tokens": 12,
            "checkpoint_every": 2,
            "gamma_ptx": 1.0,
        },
    )
    assert (sft.parent, rm.kind, policy.parent) == (tiny, "reward", sft)
    ppo_job = Job.objects.get(model_versions=policy)
    checkpoints = ModelVersion.objects.filter(job=ppo_job, name__contains="-step")
    assert checkpoints.exists()
    assert all({"reward", "kl"} <= set(c.metrics) for c in checkpoints)

    PromptFactory.create_batch(6, project=project)
    job = generation_start(
        project=project,
        user=engineer,
        models=[policy.name, "tiny"],
        k=4,
        sampling=Sampling(max_tokens=12),
        limit=6,
    )
    job = wait_for(job.pk)
    assert job.state == "succeeded", job.message
    from_policy = Completion.objects.filter(comparison__job=job, model_version=policy)
    assert from_policy.count() == 12  # 2 of the K=4 outputs of each of the 6 prompts


@pytest.mark.django_db
def test_next_round_link_preselects_the_new_policy(engineer_client, project, engineer):
    model_versions_ensure_builtin()
    ModelVersionFactory(name="test-ppo-job9")
    job = JobFactory(
        kind="ppo",
        project=project,
        created_by=engineer,
        state="succeeded",
        result={"model_version": "test-ppo-job9"},
    )
    page = engineer_client.get(reverse("job_detail", args=[job.pk]))
    link = reverse("generation_new", args=["test"]) + "?models=test-ppo-job9"
    assert link.encode() in page.content
    form = engineer_client.get(link)
    assert b'value="test-ppo-job9" checked' in form.content or b"checked" in form.content


@pytest.mark.training
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_exported_snapshots_train_as_they_are(
    celery_worker_live, models_dir, settings, project, labeled_data, engineer
):
    """Rankings and demonstrations made through the app, exported by the export service, feed
    the reward-model and SFT jobs with no glue."""
    settings.LABELAPP_MODELS_DIR = models_dir
    model_versions_ensure_builtin()
    rankings = run_export(project, kind="rm_rankings", splits=["train", "valid", "test"])
    demonstrations = run_export(project, kind="sft", splits=["train", "valid", "test"])
    assert rankings.ready and demonstrations.ready
    rm = wait_for(
        training_start(
            user=engineer,
            kind="reward",
            dataset=rankings,
            base_model=ModelVersion.objects.get(name="tiny-rm"),
            demonstrations=demonstrations,
        ).pk
    )
    assert rm.state == "succeeded", f"{rm.message}\n{rm.log_tail}"
    assert rm.result["metrics"]["demonstrations"] > 0
    sft = wait_for(
        training_start(
            user=engineer,
            kind="sft",
            dataset=demonstrations,
            base_model=ModelVersion.objects.get(name="tiny"),
            hyperparameters={"max_steps": 2, "batch_size": 2},
        ).pk
    )
    assert sft.state == "succeeded", f"{sft.message}\n{sft.log_tail}"
