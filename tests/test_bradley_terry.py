"""Bradley-Terry ratings: a synthetic tournament with known strengths is recovered; the fit is
the maximum of the likelihood it claims; intervals, ranks and the prior behave."""

from itertools import combinations
from math import log

import numpy as np
import pytest
from scipy.optimize import minimize

from annotations.domain.bradley_terry import PRIOR_TIES, bradley_terry_ratings
from annotations.domain.evaluation import Judgement, outcomes_of, pairwise_judgement

TRUE = {"sft": 1000, "a": 1100, "b": 950, "c": 1200, "d": 1050, "e": 880}
POINTS_PER_NAT = 400 / log(10)


def tournament(seed: int) -> list[Judgement]:
    """300 prompts, each ranked in full by two labelers (Plackett-Luce by the Gumbel trick, whose
    pairwise marginals are exactly Bradley-Terry), plus 300 A/B answers with ties where
    P(tie) = min(p, 1 - p) / 2 and the rest split so that E[win + tie / 2] = p, the BT odds."""
    rng = np.random.default_rng(seed)
    names = list(TRUE)
    strength = np.array([TRUE[n] for n in names]) / POINTS_PER_NAT
    judgements = []
    for prompt in range(300):
        for labeler in range(2):
            order = np.argsort(-(strength + rng.gumbel(size=len(names))))
            groups = [[names[i]] for i in order]
            judgements.append(Judgement(prompt=prompt, labeler=labeler, groups=groups))
        i, j = rng.choice(len(names), size=2, replace=False)
        p = 1 / (1 + np.exp(strength[j] - strength[i]))
        tie = min(p, 1 - p) / 2
        u = rng.random()
        winner = "tie" if u < tie else ("first" if u < tie + p - tie / 2 else "second")
        judgements.append(
            pairwise_judgement(
                prompt=300 + prompt, labeler=9, first=names[i], second=names[j], winner=winner
            )
        )
    return judgements


def test_known_strengths_are_recovered():
    """Tolerance: 30 points. Each model has ~3,100 comparisons; the 95% half-widths come out at
    21-29 points (a standard error of 11-15), so 30 is two standard errors or more. Over
    tournament seeds 1-5 and 11 the largest error was 22 points."""
    judgements = tournament(seed=11)
    ratings = bradley_terry_ratings(judgements=judgements, baseline="sft", seed=4)
    assert [r.model for r in ratings] == sorted(TRUE, key=TRUE.get, reverse=True)
    by_model = {r.model: r for r in ratings}
    for model, true in TRUE.items():
        assert by_model[model].score == pytest.approx(true, abs=30), model
    assert by_model["sft"].score == by_model["sft"].low == by_model["sft"].high == 1000.0
    for r in ratings:
        assert r.low <= r.score <= r.high and r.high - r.low < 70
        assert r.rank == 1 + sum(other.low > r.high for other in ratings)
    assert ratings[0].rank == 1 and ratings[-1].rank == len(TRUE)
    assert [r.rank for r in ratings] == sorted(r.rank for r in ratings)
    # The prior is negligible at this size.
    weak = bradley_terry_ratings(judgements=judgements, baseline="sft", seed=4, prior_ties=1e-6)
    assert [r.score for r in weak] == pytest.approx([r.score for r in ratings], abs=0.5)


def test_fit_is_the_maximum_of_the_half_win_likelihood_with_its_prior():
    judgements = [
        Judgement(prompt=1, labeler=1, groups=[["x"], ["y", "sft"]]),
        Judgement(prompt=2, labeler=1, groups=[["sft"], ["x"], ["y"]]),
        Judgement(prompt=3, labeler=2, groups=[["y"], ["x"]]),
        Judgement(prompt=4, labeler=2, groups=[["x", "sft"], ["y"]]),
    ]
    ratings = bradley_terry_ratings(judgements=judgements, baseline="sft", seed=0, resamples=20)
    names = ["sft", "x", "y"]
    half_wins = np.zeros((3, 3))  # half_wins[i, j]: i's score against j
    for o in outcomes_of(judgements):
        i, j = names.index(o.first), names.index(o.second)
        half_wins[i, j] += o.score
        half_wins[j, i] += 1 - o.score
    for i, j in combinations(range(3), 2):
        half_wins[i, j] += PRIOR_TIES / 2
        half_wins[j, i] += PRIOR_TIES / 2

    def negative_log_likelihood(free):
        theta = np.concatenate([[0.0], free])  # sft anchored at 0
        return (half_wins * np.logaddexp(0, theta[None, :] - theta[:, None])).sum()

    best = minimize(negative_log_likelihood, np.zeros(2), method="BFGS", options={"gtol": 1e-10})
    expected = dict(
        zip(names, 1000 + POINTS_PER_NAT * np.concatenate([[0.0], best.x]), strict=True)
    )
    assert {r.model: r.score for r in ratings} == pytest.approx(expected, abs=1e-3)


def test_an_undefeated_model_gets_a_finite_top_rating():
    judgements = [
        Judgement(prompt=p, labeler=0, groups=[["champ"], ["sft", "other"] if p % 2 else ["sft"]])
        for p in range(30)
    ]
    ratings = bradley_terry_ratings(judgements=judgements, baseline="sft", seed=1, resamples=50)
    champ = ratings[0]
    assert champ.model == "champ" and champ.rank == 1
    assert all(np.isfinite([champ.score, champ.low, champ.high]))
    assert champ.score > 1400  # far above, as 30 wins out of 30 say


def test_seeded_and_empty():
    judgements = tournament(seed=3)[:200]
    first = bradley_terry_ratings(judgements=judgements, baseline="sft", seed=7, resamples=50)
    assert first == bradley_terry_ratings(
        judgements=judgements, baseline="sft", seed=7, resamples=50
    )
    other = bradley_terry_ratings(judgements=judgements, baseline="sft", seed=8, resamples=50)
    assert [r.score for r in other] == [r.score for r in first]
    assert [r.low for r in other] != [r.low for r in first]
    assert bradley_terry_ratings(judgements=[], baseline="sft", seed=0) == []
    with pytest.raises(ValueError, match="prior_ties must be positive"):
        bradley_terry_ratings(judgements=judgements, baseline="sft", seed=0, prior_ties=0)
