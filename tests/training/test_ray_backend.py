"""The Ray/OpenRLHF backend against a local Ray head on 127.0.0.1 (started and stopped here) with
a stand-in for OpenRLHF's entrypoints: jobs run, stream their metrics into our job rows, cancel,
register their output; a killed Ray job fails ours with Ray's message."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from annotations.models import Job, ModelVersion
from annotations.services.training import training_start
from models_service import REPO_ROOT
from models_service.training.ray_jobs import RayJobsClient
from models_service.training.synthetic import synthetic_prompts
from tests.factories import DatasetExportFactory, rankings_snapshot
from tests.helpers import wait_for
from tests.inference import free_port

pytestmark = [pytest.mark.training, pytest.mark.worker, pytest.mark.django_db(transaction=True)]
STANDIN = f"{sys.executable} -m tests.training.openrlhf_standin"


@pytest.fixture(scope="module")
def ray_head(tmp_path_factory) -> Iterator[str]:
    """`ray start --head` on 127.0.0.1 in a session of its own, stopped with its process group."""
    temp = Path(f"/tmp/ray-{os.getpid()}")  # Ray's socket paths must stay short
    port, dashboard = free_port(), free_port()
    log = tmp_path_factory.mktemp("ray") / "head.log"
    ray = str(Path(sys.executable).parent / "ray")
    command = [
        ray, "start", "--head", "--block", "--node-ip-address", "127.0.0.1",
        "--port", str(port), "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dashboard),
        "--num-cpus", "2", "--include-dashboard", "true", "--disable-usage-stats",
        "--temp-dir", str(temp),
    ]  # fmt: skip
    with log.open("w") as out:
        head = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    address = f"http://127.0.0.1:{dashboard}"
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{address}/api/version", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if head.poll() is not None:
                pytest.fail(f"ray start exited:\n{log.read_text()}")
            time.sleep(0.5)
        else:
            pytest.fail(f"the Ray head did not answer in 120 s:\n{log.read_text()}")
        yield address
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            head.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGKILL)
        head.wait()


@pytest.fixture
def ray_settings(settings, ray_head):
    settings.LABELAPP_RAY_ADDRESS = ray_head
    settings.LABELAPP_RAY_ENV = {"PYTHONPATH": str(REPO_ROOT), "STANDIN_STEP_SECONDS": "0.3"}
    settings.LABELAPP_OPENRLHF_COMMANDS = {"reward": f"{STANDIN} reward", "ppo": f"{STANDIN} ppo"}
    settings.LABELAPP_RAY_POLL_SECONDS = 0.3
    return settings


def test_reward_model_on_ray_streams_metrics_and_registers_a_served_version(
    celery_worker_live, service, ray_settings, builtin, project, engineer, tmp_path
):
    job = training_start(
        user=engineer,
        kind="reward",
        dataset=rankings_snapshot(project, train=16),
        base_model=builtin["tiny-rm"],
        backend="ray_openrlhf",
        cluster={"nodes": 2, "gpus_per_node": 8},
        hyperparameters={"prompts_per_batch": 8, "checkpoint_every": 5},
    )
    job = wait_for(job.pk)
    assert job.state == "succeeded", f"{job.message}\n{job.log_tail}"
    assert job.result["ray_job"] == f"labelapp-job{job.pk}"
    # Our 16 rankings of K=4 (2 marked) are 64 pairs: 8 steps of 8 pairs.
    steps = list(job.metrics.order_by("step").values_list("step", "values"))
    assert [step for step, _ in steps] == list(range(1, 9)) and job.progress_total == 8
    assert steps[-1][1]["accuracy"] == pytest.approx(1.0) and "loss" in steps[-1][1]
    assert "--value_head_prefix score" in job.log_tail and "--chosen_key chosen" in job.log_tail
    assert job.checkpoint_path.endswith("global_step5")
    version = ModelVersion.objects.get(job=job)
    assert version.kind == "reward"
    config = json.loads(Path(version.path, "config.json").read_text())
    assert config["architectures"] == ["LlamaForSequenceClassification"]
    scored = httpx.post(
        f"{service.base_url}/v1/score",
        json={"model": version.name, "texts": ["a sunrise", "a robot"]},
        timeout=60,
    )
    assert scored.status_code == 200, scored.text


def _ppo_on_ray(project, engineer, builtin, tmp_path) -> Job:
    prompts = DatasetExportFactory(
        project=project, kind="ppo_prompts", splits={"train": synthetic_prompts(40)}
    )
    return training_start(
        user=engineer,
        kind="ppo",
        dataset=prompts,
        base_model=builtin["tiny"],
        reward_model=builtin["tiny-rm"],
        backend="ray_openrlhf",
        hyperparameters={"batch_size": 1},
    )


def test_cancel_stops_the_ray_job(
    celery_worker_live, ray_settings, builtin, project, engineer, tmp_path
):
    ray_settings.LABELAPP_RAY_ENV = {**ray_settings.LABELAPP_RAY_ENV, "STANDIN_STEP_SECONDS": "1"}
    job = _ppo_on_ray(project, engineer, builtin, tmp_path)
    running = wait_for(job.pk, until=lambda j: j.progress_done >= 2 or j.is_finished)
    assert not running.is_finished, running.message
    assert {"policy_loss", "value_loss", "kl", "lr"} <= set(running.metrics.last().values)
    Job.objects.filter(pk=job.pk).update(cancel_requested=True)
    job = wait_for(job.pk)
    assert job.state == "cancelled", job.message
    status = RayJobsClient(ray_settings.LABELAPP_RAY_ADDRESS).status(job.result["ray_job"])
    assert status.status == "STOPPED"
    assert job.progress_done < job.progress_total == 40
    assert not ModelVersion.objects.filter(job=job).exists()


def test_a_killed_ray_job_fails_ours_with_its_message(
    celery_worker_live, ray_settings, builtin, project, engineer, tmp_path
):
    ray_settings.LABELAPP_RAY_ENV = {**ray_settings.LABELAPP_RAY_ENV, "STANDIN_STEP_SECONDS": "1"}
    job = _ppo_on_ray(project, engineer, builtin, tmp_path)
    running = wait_for(job.pk, until=lambda j: j.progress_done >= 1 or j.is_finished)
    assert not running.is_finished, running.message
    pid_file = Path(ray_settings.MEDIA_ROOT, "training", f"job-{job.pk}", "standin.pid")
    os.kill(int(pid_file.read_text()), signal.SIGKILL)
    job = wait_for(job.pk)
    assert job.state == "failed"
    assert job.message.startswith(f"The Ray job labelapp-job{job.pk} failed: ")
    ray_message = RayJobsClient(ray_settings.LABELAPP_RAY_ADDRESS).status(job.result["ray_job"])
    assert ray_message.message and ray_message.message in job.message
    assert not ModelVersion.objects.filter(job=job).exists()


def test_ray_backend_requests_are_checked(ray_settings, builtin, project, engineer, tmp_path):
    from annotations.errors import ApplicationError

    rankings = rankings_snapshot(project)
    cases = [
        ({"cluster": {"gpus": 8}}, "Unknown cluster settings gpus"),
        ({"launch": {"preset": "ddp", "processes": 2}}, "Launch settings are for the local"),
        ({"backend": "slurm"}, "backend is local or ray_openrlhf"),
    ]
    for extra, message in cases:
        with pytest.raises(ApplicationError, match=message):
            training_start(
                user=engineer,
                kind="reward",
                dataset=rankings,
                base_model=builtin["tiny-rm"],
                **{"backend": "ray_openrlhf", **extra},
            )
    ray_settings.LABELAPP_RAY_ADDRESS = ""
    with pytest.raises(ApplicationError, match="No Ray cluster is configured"):
        training_start(
            user=engineer,
            kind="reward",
            dataset=rankings,
            base_model=builtin["tiny-rm"],
            backend="ray_openrlhf",
        )
    assert not Job.objects.exists()
