"""Training jobs end to end: a real Celery worker runs the trainer in a spawned subprocess."""

import os
import signal
from pathlib import Path

import httpx
import pytest
from django.urls import reverse

from annotations.errors import ApplicationError
from annotations.models import Job, JobMetric, ModelVersion
from annotations.services.training import MAX_ATTEMPTS, training_jobs_reap, training_start
from models_service.training.synthetic import (
    synthetic_prompts,
    synthetic_sft_rows,
)
from tests.factories import (
    DatasetExportFactory,
    JobFactory,
    ModelVersionFactory,
    rankings_snapshot,
    sft_snapshot,
)
from tests.helpers import wait_for


@pytest.mark.training
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_reward_model_job_registers_a_version_the_service_scores_with(
    celery_worker_live, service, builtin, project, engineer
):
    dataset = rankings_snapshot(project)
    demos = sft_snapshot(project, synthetic_sft_rows(16, seed=3))
    job = training_start(
        user=engineer,
        kind="reward",
        dataset=dataset,
        base_model=builtin["tiny-rm"],
        demonstrations=demos,
        seed=3,
        hyperparameters={"learning_rate": 3e-3, "epochs": 3, "prompts_per_batch": 8},
    )
    job = wait_for(job.pk)
    assert job.state == "succeeded", f"{job.message}\n{job.log_tail}"
    assert job.progress_done == job.progress_total > 0
    metrics = list(JobMetric.objects.filter(job=job).order_by("step"))
    assert len(metrics) == job.progress_total
    assert {"loss", "accuracy", "lr"} <= set(metrics[-1].values)
    version = ModelVersion.objects.get(job=job)
    assert (version.kind, version.parent.name) == ("reward", "tiny-rm")
    assert version.metrics["valid_accuracy"] >= 0.9
    assert Path(version.path, "config.json").is_file()
    assert job.code_version and job.dataset_id == dataset.pk and job.seed == 3
    marked = "the sunrise was bright over the sea"
    plain = "the robot wanted to learn the water"
    response = httpx.post(
        f"{service.base_url}/v1/score",
        timeout=60,
        json={"model": version.name, "texts": [marked, plain]},
    )
    assert response.status_code == 200, response.text
    scores = [row["score"] for row in response.json()["data"]]
    assert scores[0] > scores[1]


@pytest.mark.training
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_cancel_stops_within_a_few_steps(celery_worker_live, builtin, project, engineer):
    dataset = rankings_snapshot(project, train=400)
    job = training_start(
        user=engineer,
        kind="reward",
        dataset=dataset,
        base_model=builtin["tiny-rm"],
        hyperparameters={"prompts_per_batch": 1, "checkpoint_every": 1000},
    )
    running = wait_for(job.pk, until=lambda j: j.progress_done >= 3 or j.is_finished)
    Job.objects.filter(pk=job.pk).update(cancel_requested=True)
    job = wait_for(job.pk)
    assert job.state == "cancelled", job.message
    assert job.progress_done < job.progress_total
    assert job.progress_done - running.progress_done < 60
    assert not ModelVersion.objects.filter(job=job).exists()


@pytest.mark.training
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_killed_trainer_resumes_from_its_checkpoint(celery_worker_live, builtin, project, engineer):
    dataset = rankings_snapshot(project, train=240)
    job = training_start(
        user=engineer,
        kind="reward",
        dataset=dataset,
        base_model=builtin["tiny-rm"],
        hyperparameters={"prompts_per_batch": 2, "checkpoint_every": 10},
    )
    job = wait_for(job.pk, until=lambda j: bool(j.checkpoint_path) or j.is_finished)
    assert not job.is_finished
    os.kill(job.result["pid"], signal.SIGKILL)
    job = wait_for(job.pk)
    assert job.state == "succeeded", f"{job.message}\n{job.log_tail}"
    assert job.attempts == 2
    assert "The trainer died; resuming from" in job.log_tail
    assert ModelVersion.objects.filter(job=job).exists()


@pytest.mark.training
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_stale_job_is_queued_again_and_finishes(celery_worker_live, builtin, project, engineer):
    from django.utils import timezone

    dataset = sft_snapshot(project, synthetic_sft_rows(16))
    params = {
        "base_model": "tiny",
        "base_model_dir": str(Path(builtin["tiny"].name)),
        "reward_model": None,
        "reward_model_dir": None,
        "hyperparameters": {"max_steps": 2},
        "data": {"train": str(Path(dataset.directory) / "train.jsonl"), "valid": None},
    }
    from annotations.services.training import model_dir

    params["base_model_dir"] = str(model_dir(builtin["tiny"]))
    lost = JobFactory(
        kind="sft",
        project=project,
        created_by=engineer,
        state="running",
        attempts=1,
        params=params,
        dataset=dataset,
        heartbeat_at=timezone.now() - timezone.timedelta(minutes=10),
    )
    exhausted = JobFactory(
        kind="sft",
        project=project,
        created_by=engineer,
        state="running",
        attempts=MAX_ATTEMPTS,
        params=params,
        heartbeat_at=timezone.now() - timezone.timedelta(minutes=10),
    )
    assert training_jobs_reap() == [lost.pk]
    assert Job.objects.get(pk=exhausted.pk).state == "failed"
    assert "stopped answering" in Job.objects.get(pk=exhausted.pk).message
    lost = wait_for(lost.pk)
    assert lost.state == "succeeded", f"{lost.message}\n{lost.log_tail}"
    assert lost.attempts == 2


@pytest.mark.django_db
def test_bad_training_requests_change_nothing(builtin, project, engineer):
    rankings = rankings_snapshot(project)
    sft = sft_snapshot(project, synthetic_sft_rows(4))
    prompts = DatasetExportFactory(
        project=project, kind="ppo_prompts", splits={"train": synthetic_prompts(4)}
    )
    cases = [
        ({"kind": "sft", "dataset": rankings}, "SFT training trains on a finished SFT"),
        (
            {"kind": "reward", "dataset": rankings, "hyperparameters": {"lr": 1}},
            "Unknown hyperparameters lr; reward takes",
        ),
        ({"kind": "ppo", "dataset": sft}, "trains on a finished PPO prompts"),
    ]
    cases += [
        (
            {"kind": "reward", "dataset": rankings, "demonstrations": rankings},
            "demonstrations snapshot must be a finished SFT export",
        ),
        (
            {"kind": "reward", "dataset": rankings, "hyperparameters": {"epochs": "three"}},
            "epochs must be a number",
        ),
        (
            {"kind": "reward", "dataset": rankings, "hyperparameters": {"learning_rate": -5}},
            "learning_rate must be a finite number",
        ),
        (
            {"kind": "sft", "dataset": sft, "base_model": builtin["tiny-rm"]},
            "starts from a policy; tiny-rm is a reward model",
        ),
        (
            {"kind": "sft", "dataset": sft, "launch": {"preset": "mpi"}},
            "Launch settings not usable: preset must be one of single, ddp, fsdp",
        ),
        (
            {"kind": "reward", "dataset": rankings, "launch": {"processes": 2}},
            "the single preset runs one process: choose ddp",
        ),
        (
            {"kind": "reward", "dataset": rankings, "launch": {"processes": "two"}},
            "processes and main_port are whole numbers",
        ),
        (
            {
                "kind": "ppo",
                "dataset": prompts,
                "reward_model": builtin["tiny-rm"],
                "hyperparameters": {"rollout_backend": "server"},
            },
            "rollout_backend server needs a rollout server: an admin sets LABELAPP_ROLLOUT_URL",
        ),
    ]
    for kwargs, message in cases:
        kwargs.setdefault("base_model", builtin["tiny"])
        with pytest.raises(ApplicationError, match=message):
            training_start(user=engineer, **kwargs)
    remote = ModelVersionFactory(name="remote-only", hub_id="org/model")
    with pytest.raises(ApplicationError, match="has no local weights"):
        training_start(user=engineer, kind="sft", dataset=sft, base_model=remote)
    assert not Job.objects.exists()


@pytest.mark.django_db
def test_training_dashboard(engineer_client, admin_client_, labeler_client, builtin, project):
    rankings_snapshot(project)
    page = engineer_client.get(reverse("training_new", args=["test"]))
    assert page.status_code == 200
    assert b"9e-06" in page.content  # the paper's RM learning rate as the default
    assert admin_client_.get(reverse("training_new", args=["test"])).status_code == 403
    assert labeler_client.get(reverse("training_list")).status_code == 403
    assert engineer_client.get(reverse("training_list")).status_code == 200


@pytest.mark.django_db
def test_metrics_api_gives_numeric_series_and_the_latest_sample_tables(engineer, project):
    from tests.conftest import token_client

    job = Job.objects.create(kind="ppo", project=project, created_by=engineer, state="running")
    row = {"prompt": "Say <b>hi</b>", "response": " hi", "reward": 0.5, "ended": True}
    for step, values in (
        (1, {"kl": 0.0, "samples": [row]}),
        (2, {"kl": 0.1}),
        (3, {"kl": 0.2, "samples": [{**row, "reward": -1.0, "ended": False}]}),
    ):
        JobMetric.objects.create(job=job, step=step, values=values)
    body = token_client(engineer).get(reverse("api_job_metrics", args=[job.pk])).json()
    assert body["steps"] == [1, 2, 3]
    assert body["series"] == {"kl": [0.0, 0.1, 0.2]}
    assert [table["step"] for table in body["samples"]] == [3, 1]
    assert body["samples"][0]["rows"] == [{**row, "reward": -1.0, "ended": False}]


@pytest.mark.django_db
def test_dashboard_starts_a_job_with_its_launch_settings(
    engineer_client, builtin, project, tmp_path, django_capture_on_commit_callbacks
):
    dataset = rankings_snapshot(project)
    form = {
        "kind": "reward",
        "dataset": dataset.pk,
        "base_model": "tiny-rm",
        "launch_preset": "zero3",
        "launch_processes": 8,
        "launch_hosts": "gpu-a, gpu-b",
        "hp_learning_rate": 9e-6,
        "hp_epochs": 1,
        "hp_max_grad_norm": 1.0,
        "hp_max_length": 512,
        "hp_checkpoint_every": 100,
        "hp_warmup_ratio": 0.0,
        "hp_weight_decay": 0.0,
        "hp_lora_rank": 0,
        "hp_lora_alpha": 16,
        "hp_lora_dropout": 0.0,
        "hp_lora_target_modules": "all-linear",
        "launch_backend": "local",
        "launch_nodes": 1,
        "launch_gpus_per_node": 8,
    }
    page = engineer_client.get(reverse("training_new", args=["test"]) + "?kind=reward")
    assert b"DeepSpeed ZeRO-3" in page.content and b"Processes per host" in page.content
    with django_capture_on_commit_callbacks(execute=False):
        response = engineer_client.post(reverse("training_new", args=["test"]), form)
    assert response.status_code == 302, response.content.decode()[-2000:]
    job = Job.objects.get()
    assert job.params["launch"] == {
        "preset": "zero3",
        "processes": 8,
        "hosts": ["gpu-a", "gpu-b"],
        "main_port": 29500,
    }
    with django_capture_on_commit_callbacks(execute=False):
        again = engineer_client.post(
            reverse("training_new", args=["test"]),
            {**form, "launch_preset": "single", "launch_processes": 2, "launch_hosts": ""},
        )
    assert again.status_code == 200
    assert b"the single preset runs one process" in again.content
    assert Job.objects.count() == 1


@pytest.mark.training
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_lora_reward_model_is_registered_merged_and_served(
    celery_worker_live, service, builtin, project, engineer, tmp_path
):
    job = training_start(
        user=engineer,
        kind="reward",
        dataset=rankings_snapshot(project),
        base_model=builtin["tiny-rm"],
        seed=3,
        hyperparameters={
            "learning_rate": 1e-2,
            "epochs": 3,
            "prompts_per_batch": 8,
            "lora_rank": 4,
            "lora_alpha": 8,
        },
    )
    job = wait_for(job.pk)
    assert job.state == "succeeded", f"{job.message}\n{job.log_tail}"
    version = ModelVersion.objects.get(job=job)
    assert Path(version.path, "config.json").is_file()  # merged: the service loads it as it is
    assert Path(version.path, "adapter", "adapter_config.json").is_file()
    assert job.result["adapter"] == str(Path(version.path, "adapter"))
    assert version.metrics["valid_accuracy"] >= 0.9
    texts = ["the sunrise was bright over the sea", "the robot wanted to learn the water"]
    response = httpx.post(
        f"{service.base_url}/v1/score", timeout=60, json={"model": version.name, "texts": texts}
    )
    assert response.status_code == 200, response.text
    marked, plain = (row["score"] for row in response.json()["data"])
    assert marked > plain
