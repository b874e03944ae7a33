"""A PPO job's RL diagnostics on its page: the charts and the table of sample generations, whose
text (model output, untrusted) is shown as text."""

import pytest

from annotations.models import Job, JobMetric
from tests.helpers import log_in

pytestmark = pytest.mark.django_db(transaction=True)

HOSTILE = '<img src=x onerror="window.pwned=1">'


def test_ppo_job_page_shows_diagnostics_and_escaped_samples(page, engineer, project):
    job = Job.objects.create(
        kind="ppo", project=project, created_by=engineer, state="succeeded", progress_total=3
    )
    for step in (1, 2, 3):
        values = {
            "loss": 1.0 / step,
            "reward": step / 10,
            "kl": step / 100,
            "approx_kl": step / 1000,
            "entropy": 2.0 - step / 10,
            "value_explained_variance": step / 4,
            "no_eos_share": 0.5,
            "advantage_mean": 0.0,
            "advantage_std": 1.0,
            "return_mean": step / 10,
            "return_std": 0.2,
            "lr": 1e-5,
        }
        if step in (1, 3):
            values["samples"] = [
                {
                    "prompt": f"Write {HOSTILE}",
                    "response": f"step {step} {HOSTILE}",
                    "reward": 0.25,
                    "ended": step == 3,
                }
            ]
        JobMetric.objects.create(job=job, step=step, values=values)
    log_in(page, engineer)
    page.goto(f"/jobs/{job.pk}/")
    page.wait_for_function(
        "!document.getElementById('job-diagnostics').hidden && "
        "Chart.getChart(document.querySelector('#job-diagnostics canvas'))"
    )
    kl_chart = "Chart.getChart(document.querySelector('#job-diagnostics canvas'))"
    assert page.evaluate(f"{kl_chart}.data.labels") == [1, 2, 3]
    assert page.evaluate(f"{kl_chart}.data.datasets.map(d => d.label)") == ["kl", "approx_kl"]
    visible = page.evaluate(
        "[...document.querySelectorAll('#job-diagnostics figure')].filter(f => !f.hidden).length"
    )
    assert visible == 3
    rows = page.locator("#job-samples tbody tr")
    assert rows.count() == 2
    first = [rows.nth(0).locator("td").nth(i).inner_text() for i in range(5)]
    assert first == ["3", f"Write {HOSTILE}", f"step 3 {HOSTILE}", "0.250", "yes"]
    assert rows.nth(1).locator("td").nth(4).inner_text() == "no (no EOS)"
    assert page.locator("#job-samples img").count() == 0
    assert page.evaluate("window.pwned") is None
