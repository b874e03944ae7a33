"""Charts render in Chromium without errors: the quality page and a training job's metrics."""

import pytest

from tests.factories import ComparisonTaskFactory, JobFactory, JobMetricFactory, RankingFactory
from tests.helpers import log_in

pytestmark = pytest.mark.django_db(transaction=True)


def test_quality_charts(page, admin_user, labeler, project):
    first, _ = ComparisonTaskFactory.create_batch(2, project=project)
    RankingFactory(task=first, labeler=labeler, order=[[0], [1], [2], [3]])
    RankingFactory(task=first, labeler=admin_user, order=[[1], [0], [2], [3]])
    log_in(page, admin_user)
    page.goto(f"/projects/{project.slug}/quality/")
    page.wait_for_function("Chart.getChart(document.getElementById('per-day')) !== undefined")
    assert page.evaluate(
        "Chart.getChart(document.getElementById('agreement')).data.labels"
    ) == sorted([admin_user.username, labeler.username])


def test_training_job_charts(page, engineer, project):
    job = JobFactory(
        kind="reward",
        project=project,
        created_by=engineer,
        state="succeeded",
        progress_done=3,
        progress_total=3,
    )
    for step in (1, 2, 3):
        JobMetricFactory(
            job=job, step=step, values={"loss": 1.0 / step, "accuracy": 0.5 + step / 10, "lr": 1e-5}
        )
    log_in(page, engineer)
    page.goto(f"/jobs/{job.pk}/")
    page.wait_for_function(
        "document.querySelectorAll('#job-charts canvas').length === 3 && "
        "Chart.getChart(document.querySelector('#job-charts canvas'))"
    )
    labels = page.evaluate(
        "Chart.getChart(document.querySelector('#job-charts canvas')).data.labels"
    )
    assert labels == [1, 2, 3]
