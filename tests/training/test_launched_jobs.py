"""Training jobs through `accelerate launch` with 2 processes on CPU, run by a real worker: the
runner follows every rank, a PPO job resumes after its processes die, a dead rank fails the job
with its name, and a cancel stops every rank."""

import os
import signal

import pytest

from annotations.models import Job, ModelVersion
from annotations.services.training import training_start
from models_service.training.synthetic import synthetic_prompts
from tests.factories import DatasetExportFactory, rankings_snapshot
from tests.helpers import wait_for
from tests.inference import free_port

pytestmark = [
    pytest.mark.training,
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True),
]


def _ddp() -> dict:
    return {"preset": "ddp", "processes": 2, "main_port": free_port()}


def _both_ranks(job: Job) -> bool:
    return len(job.result.get("ranks", {})) == 2 or job.is_finished


def test_ppo_on_two_processes_finishes_after_its_processes_die(
    celery_worker_live, builtin, project, engineer, tmp_path
):
    prompts = DatasetExportFactory(
        project=project, kind="ppo_prompts", splits={"train": synthetic_prompts(16)}
    )
    job = training_start(
        user=engineer,
        kind="ppo",
        dataset=prompts,
        base_model=builtin["tiny"],
        reward_model=builtin["tiny-rm"],
        seed=1,
        launch=_ddp(),
        hyperparameters={
            "max_steps": 4,
            "batch_size": 4,
            "minibatch_size": 2,
            "max_new_tokens": 6,
            "checkpoint_every": 2,
            "sample_every": 2,
        },
    )
    running = wait_for(job.pk, until=lambda j: bool(j.checkpoint_path) or j.is_finished)
    assert not running.is_finished, running.message
    assert sorted(running.result["ranks"]) == ["0", "1"]
    # As when the machine goes down: the launcher and both ranks (each in its own session).
    for group in [running.result["pid"], *(r["pid"] for r in running.result["ranks"].values())]:
        os.killpg(group, signal.SIGKILL)
    job = wait_for(job.pk)
    assert job.state == "succeeded", f"{job.message}\n{job.log_tail}"
    assert job.attempts == 2
    assert "The trainer died; resuming from" in job.log_tail
    assert "resumed PPO at step 2 of 4" in job.log_tail
    assert job.progress_done == 4
    version = ModelVersion.objects.get(name=job.result["model_version"])
    assert (version.parent.name, version.kind) == ("tiny", "policy")
    assert job.metrics.filter(values__has_key="samples").exists()


def test_a_dead_rank_fails_the_job_with_its_name(
    celery_worker_live, builtin, project, engineer, tmp_path
):
    job = training_start(
        user=engineer,
        kind="reward",
        dataset=rankings_snapshot(project, train=400),
        base_model=builtin["tiny-rm"],
        launch=_ddp(),
        hyperparameters={"prompts_per_batch": 2, "checkpoint_every": 1000},
    )
    running = wait_for(job.pk, until=lambda j: j.progress_done >= 1 or j.is_finished)
    assert not running.is_finished and _both_ranks(running), running.message
    os.kill(running.result["ranks"]["1"]["pid"], signal.SIGKILL)
    job = wait_for(job.pk)
    assert job.state == "failed"
    assert "Rank 1 of 2" in job.message
    assert "was killed by signal 9 (SIGKILL)" in job.message
    assert job.attempts == 1
    assert not ModelVersion.objects.filter(job=job).exists()


def test_cancel_stops_every_rank(celery_worker_live, builtin, project, engineer, tmp_path):
    job = training_start(
        user=engineer,
        kind="reward",
        dataset=rankings_snapshot(project, train=400),
        base_model=builtin["tiny-rm"],
        launch=_ddp(),
        hyperparameters={"prompts_per_batch": 2, "checkpoint_every": 1000},
    )
    running = wait_for(job.pk, until=lambda j: j.progress_done >= 2 or j.is_finished)
    Job.objects.filter(pk=job.pk).update(cancel_requested=True)
    job = wait_for(job.pk)
    assert job.state == "cancelled", job.message
    assert running.progress_done <= job.progress_done < job.progress_total
    for rank in job.result.get("ranks", running.result["ranks"]).values():
        with pytest.raises(ProcessLookupError):
            os.kill(rank["pid"], 0)
