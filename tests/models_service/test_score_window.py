"""`/v1/score` reads a text the way the reward model was trained: the same encoding and the same
window, which keeps the end of a long text (the response the reward head reads)."""

from __future__ import annotations

import shutil

import pytest
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from models_service.training.scoring import score

WINDOW = 8


@pytest.fixture(scope="module")
def short_window_rm(models_dir):
    """tiny-rm trained (as it were) with max_length 8, served as `tiny-rm-window8`."""
    target = models_dir / "tiny-rm-window8"
    shutil.rmtree(target, ignore_errors=True)
    model = AutoModelForSequenceClassification.from_pretrained(models_dir / "tiny-rm")
    model.config.reward_max_length = WINDOW
    model.config.reward_bias = 0.25
    model.save_pretrained(target)
    AutoTokenizer.from_pretrained(models_dir / "tiny-rm").save_pretrained(target)
    return target


def test_score_keeps_the_end_of_a_long_text_as_training_does(short_window_rm, http) -> None:
    model = AutoModelForSequenceClassification.from_pretrained(short_window_rm).eval()
    tokenizer = AutoTokenizer.from_pretrained(short_window_rm)
    ending = " and the robot painted the sunrise over the sea."
    texts = [
        "Write a short poem about the sea at night." + ending,
        "List three ideas for a birthday party in the garden." + ending,
        "short",
    ]
    assert all(len(tokenizer(t).input_ids) > WINDOW for t in texts[:2])
    served = http.post("/v1/score", json={"model": "tiny-rm-window8", "texts": texts})
    assert served.status_code == 200, served.text
    scores = [row["score"] for row in served.json()["data"]]
    trained = score(model, tokenizer, [""] * 3, texts, max_length=WINDOW).tolist()
    assert scores == pytest.approx(trained, abs=1e-4)
    # Two texts that differ only before the window score the same: the end is what is read.
    assert scores[0] == pytest.approx(scores[1], abs=1e-5)
    assert scores[2] != pytest.approx(scores[0], abs=1e-3)
