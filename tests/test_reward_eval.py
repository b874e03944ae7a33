"""Reward-model evaluation on hand-made data: accuracy on held-out comparisons (overall and
grouped), the labeler-agreement ceiling, the score histogram, reward-length correlation."""

import pytest

from annotations.domain.evaluation import Judgement
from annotations.domain.reward_eval import (
    agreement_ceiling,
    length_correlation,
    rm_accuracy,
    rm_accuracy_by,
    score_histogram,
    scored_pairs,
)

SCORES = {"o1": 2.0, "o2": 1.0, "o3": 3.0, "o4": 1.0, "p1": 0.5, "p2": -0.5, "q1": 0.0, "q2": 1.0}
JUDGEMENTS = [
    # Strict pairs o1>o2 (hit), o1>o3 (miss), o1>o4 (hit), o2>o4 (equal scores: 1/2),
    # o3>o4 (hit); the tie o2=o3 is no pair.
    Judgement(prompt=1, labeler="ann", groups=[["o1"], ["o2", "o3"], ["o4"]], category="QA"),
    Judgement(prompt=2, labeler="bob", groups=[["p1"], ["p2"]], category="Chat"),  # hit
    Judgement(prompt=3, labeler="bob", groups=[["q1"], ["q2"]], category="Chat"),  # miss
    Judgement(prompt=4, labeler="ann", groups=[["q1", "q2"]], category="Chat"),  # a tie only
]


def test_accuracy_leaves_out_human_ties_and_counts_equal_scores_half():
    pairs = scored_pairs(judgements=JUDGEMENTS, scores=SCORES)
    assert len(pairs) == 7
    assert [p.credit for p in pairs[:5]] == [1.0, 0.0, 1.0, 0.5, 1.0]
    overall = rm_accuracy(pairs=pairs, seed=0, resamples=400)
    assert overall.value == pytest.approx(4.5 / 7) and (overall.n, overall.units) == (7, 3)
    assert 0.0 <= overall.low < overall.value < overall.high <= 1.0
    assert rm_accuracy(pairs=[], seed=0) is None


def test_accuracy_per_category_and_per_labeler():
    pairs = scored_pairs(judgements=JUDGEMENTS, scores=SCORES)
    by_category = rm_accuracy_by(pairs=pairs, by="category", seed=0, resamples=200)
    assert by_category["QA"].value == pytest.approx(3.5 / 5)
    assert by_category["Chat"].value == 0.5 and by_category["Chat"].units == 2
    by_labeler = rm_accuracy_by(pairs=pairs, by="labeler", seed=0, resamples=200)
    assert by_labeler["ann"].value == pytest.approx(0.7) and by_labeler["bob"].n == 2
    with pytest.raises(ValueError, match="'category' or 'labeler'"):
        rm_accuracy_by(pairs=pairs, by="model", seed=0)


def test_missing_score_is_named():
    with pytest.raises(ValueError, match="no reward score for output 'o4'"):
        scored_pairs(judgements=JUDGEMENTS[:1], scores={"o1": 1.0, "o2": 0.0, "o3": 0.0})


def test_agreement_ceiling_judges_each_strict_preference_by_the_other_labeler():
    items = {
        # (a, b): ann strict, bob tie -> 1/2 of one trial; (a, c), (b, c): both agree, 2 trials
        # each. 4.5 of 5.
        "t1": [[["a"], ["b"], ["c"]], [["a", "b"], ["c"]]],
        "t2": [[["x"], ["y"]], [["y"], ["x"]]],  # opposite: 0 of 2
        "t3": [[["x", "y"]], [["x", "y"]]],  # both tie: no strict preference to judge
    }
    ceiling = agreement_ceiling(rankings_by_item=items, seed=1, resamples=300)
    assert ceiling.value == pytest.approx(4.5 / 7) and (ceiling.n, ceiling.units) == (7, 2)
    assert 0.0 <= ceiling.low < ceiling.value < ceiling.high <= 0.9 + 1e-9
    assert agreement_ceiling(rankings_by_item={"t3": items["t3"]}, seed=1) is None


def test_score_histogram():
    histogram = score_histogram(scores=[0.0, 0.5, 1.0, 1.0, 2.0], bins=2)
    assert histogram.edges == [0.0, 1.0, 2.0] and histogram.counts == [2, 3]
    shared = score_histogram(scores=[0.0, 0.5, 1.0, 1.0, 2.0], bins=[-1.0, 0.0, 1.0, 3.0])
    assert shared.counts == [0, 2, 3]


def test_length_correlation():
    linear = length_correlation(rewards=[1, 2, 3, 4, 5], lengths=[10, 20, 30, 40, 50])
    assert linear.pearson == pytest.approx(1.0) and linear.spearman == pytest.approx(1.0)
    # By hand: deviations of length (-2, -1, 0, 1, 2) and reward (-21, -20, -19, -18, 78) give
    # r = 200 / sqrt(10 * 7610); the ranks agree exactly, so Spearman is 1.
    outlier = length_correlation(rewards=[1, 2, 3, 4, 100], lengths=[1, 2, 3, 4, 5])
    assert outlier.pearson == pytest.approx(200 / (10 * 7610) ** 0.5)
    assert outlier.spearman == pytest.approx(1.0) and outlier.n == 5
    shuffled = length_correlation(rewards=[2, 1, 4, 3, 5], lengths=[1, 2, 3, 4, 5])
    assert shuffled.pearson == pytest.approx(0.8) and shuffled.spearman == pytest.approx(0.8)
    assert 0.0 < shuffled.pearson_p < 1.0
    assert length_correlation(rewards=[1, 2, 3], lengths=[7, 7, 7]) is None
    assert length_correlation(rewards=[1, 2], lengths=[1, 2]) is None
    with pytest.raises(ValueError, match="differ in size"):
        length_correlation(rewards=[1, 2, 3], lengths=[1, 2])
