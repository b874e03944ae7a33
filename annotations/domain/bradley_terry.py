"""Bradley-Terry ratings of models with bootstrap intervals over prompts, as Chatbot Arena's
leaderboard computes them.

The model: P(a beats b) = 1 / (1 + 10 ** ((R_b - R_a) / 400)), fitted by maximum likelihood
over every comparison the judgements imply (``evaluation.judgement_outcomes``); a tie counts as
half a win to each side, as in Arena. The scale is Elo-like and anchored on the baseline: the
baseline reads exactly 1000 in the fit and in every resample, so a model at 1000 + 400 * x beats
the baseline with odds 10**x : 1 (+191 points is a 75% win rate), and its interval says how
sure we are of its distance from the baseline. The baseline's own interval is [1000, 1000].

Each comparison of a ranking counts once: Plackett-Luce rankings have exactly Bradley-Terry
pairwise marginals, and the bootstrap over prompts accounts for the pairs of one ranking (and
the labelers of one prompt) not being independent.
"""

from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from itertools import combinations
from math import log

# evalica over choix: it takes ties (tie_weight) and weighted comparisons, which the prompt
# bootstrap needs, and solves the exact MLE in Rust; choix has neither ties nor weights.
import evalica
import numpy as np
import pandas as pd

from annotations.domain.evaluation import (
    Judgement,
    check_interval_args,
    outcomes_of,
    resampled_counts,
    unit_columns,
)

ANCHOR = 1000.0
POINTS_PER_NAT = 400 / log(10)  # Elo's 400 points per factor of 10 in odds
# A weak prior: every two models are credited with a tie of this weight. Without it a model
# that won (or lost) every comparison, often so in a small resample, has an infinite MLE and the
# solver returns nonsense; with hundreds of comparisons per model it moves ratings by < 1 point.
PRIOR_TIES = 0.1
RESAMPLES = 200  # Arena uses 100; the fit on a win/tie table is cheap, so twice that
LEVEL = 0.95
_TOLERANCE = 1e-10
_ITERATION_LIMIT = 100_000


@dataclass(frozen=True)
class Rating:
    """A model's rating, its interval, and its rank: 1 + the number of models whose interval
    lies wholly above this one's (Arena's rank, so overlapping models share a rank)."""

    model: Hashable
    score: float
    low: float
    high: float
    rank: int
    comparisons: int


def _fit(table_weights: np.ndarray, keys: np.ndarray, anchor: int, models: int) -> np.ndarray:
    result = evalica.bradley_terry(
        keys[:, 0],
        keys[:, 1],
        keys[:, 2].astype(np.uint8),
        index=pd.Index(range(models)),
        weights=table_weights,
        win_weight=1.0,
        tie_weight=0.5,
        tolerance=_TOLERANCE,
        limit=_ITERATION_LIMIT,
    )
    if result.iterations >= _ITERATION_LIMIT:
        raise RuntimeError("the Bradley-Terry fit did not converge; raise prior_ties")
    log_strength = np.log(result.scores.reindex(range(models)).to_numpy(dtype=float))
    return ANCHOR + POINTS_PER_NAT * (log_strength - log_strength[anchor])


def _ranks(lows: np.ndarray, highs: np.ndarray) -> list[int]:
    return [1 + int((lows > high).sum()) for high in highs]


def bradley_terry_ratings(
    *,
    judgements: Iterable[Judgement],
    baseline: Hashable,
    seed: int,
    resamples: int = RESAMPLES,
    level: float = LEVEL,
    prior_ties: float = PRIOR_TIES,
) -> list[Rating]:
    """Every judged model's Bradley-Terry rating (baseline at 1000), best first, with a
    percentile-bootstrap interval over prompts; empty when there is no comparison.

    Deterministic for a given seed. ``prior_ties`` (see PRIOR_TIES) must be positive: without
    it a model that won or lost all its comparisons in some resample has no finite rating."""
    check_interval_args(resamples=resamples, level=level)
    if not prior_ties > 0:
        raise ValueError(f"prior_ties must be positive, e.g. {PRIOR_TIES}; got {prior_ties}")
    outcomes = outcomes_of(judgements)
    if not outcomes:
        return []
    names = sorted(
        {o.first for o in outcomes} | {o.second for o in outcomes} | {baseline}, key=repr
    )
    index = {model: i for i, model in enumerate(names)}
    # Evalica's winners: 1 = the first won, 0 = a tie.
    key_of = [(index[o.first], index[o.second], int(o.score == 1.0)) for o in outcomes]
    keys = sorted(set(key_of))
    key_row = {key: row for row, key in enumerate(keys)}
    columns = unit_columns(o.prompt for o in outcomes)
    table = np.zeros((len(keys), len(columns)))
    for key, outcome in zip(key_of, outcomes, strict=True):
        table[key_row[key], columns[outcome.prompt]] += 1
    prior_keys = [(a, b, 0) for a, b in combinations(range(len(names)), 2)]
    all_keys = np.array(keys + prior_keys, dtype=np.int64)
    prior = np.full(len(prior_keys), prior_ties)

    def fit(weights: np.ndarray) -> np.ndarray:
        return _fit(np.concatenate([weights, prior]), all_keys, index[baseline], len(names))

    point = fit(table.sum(axis=1))
    rng = np.random.default_rng(seed)
    draws = np.array(
        [
            fit(table @ counts)
            for chunk in resampled_counts(rng=rng, units=len(columns), resamples=resamples)
            for counts in chunk
        ]
    )
    tail = (1.0 - level) / 2
    lows, highs = np.quantile(draws, [tail, 1.0 - tail], axis=0)
    ranks = _ranks(lows, highs)
    compared = np.zeros(len(names), dtype=int)
    for first, second, _ in key_of:
        compared[first] += 1
        compared[second] += 1
    ratings = [
        Rating(
            model=model,
            score=float(point[i]),
            low=float(lows[i]),
            high=float(highs[i]),
            rank=ranks[i],
            comparisons=int(compared[i]),
        )
        for i, model in enumerate(names)
    ]
    return sorted(ratings, key=lambda r: (-r.score, repr(r.model)))
