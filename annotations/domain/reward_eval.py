"""How well a reward model's scores agree with held-out human comparisons, against the ceiling
set by labelers agreeing with each other, and how its scores are spread and tied to length.

Accuracy counts, over every strict human preference (chosen over rejected; human ties are left
out, as in reward-model training), 1 when the chosen output scores higher, 0 when lower and 1/2
when the two scores are equal: equal scores are a coin toss, not a hit. The ceiling counts
another labeler's answer to the same strict preference the same way (a tie from them scores
1/2), so the two figures are on one footing (InstructGPT: RMs ~72% vs labelers ~73%).
"""

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Literal

import numpy as np
from scipy import stats

from annotations.domain.evaluation import (
    LEVEL,
    RESAMPLES,
    Estimate,
    Judgement,
    ratio_estimates,
    unit_columns,
)
from annotations.domain.ranking import Groups, rank_of, ranking_pairs


@dataclass(frozen=True)
class ScoredPair:
    """A held-out human preference and the reward model's scores of its two outputs."""

    prompt: Hashable
    chosen_score: float
    rejected_score: float
    labeler: Hashable = None
    category: str | None = None

    @property
    def credit(self) -> float:
        return float(np.sign(self.chosen_score - self.rejected_score) + 1) / 2


def scored_pairs(
    *, judgements: Iterable[Judgement], scores: Mapping[Hashable, float]
) -> list[ScoredPair]:
    """The strict preferences of judgements whose groups hold output ids, with each output's
    score from ``scores`` (output id -> reward). Tied outputs give no pair."""
    pairs = []
    for judgement in judgements:
        for chosen, rejected in ranking_pairs(judgement.groups):
            missing = [o for o in (chosen, rejected) if o not in scores]
            if missing:
                raise ValueError(f"no reward score for output {missing[0]!r}; score every output")
            pairs.append(
                ScoredPair(
                    prompt=judgement.prompt,
                    chosen_score=float(scores[chosen]),
                    rejected_score=float(scores[rejected]),
                    labeler=judgement.labeler,
                    category=judgement.category,
                )
            )
    return pairs


def _grouped_accuracy(
    groups: Sequence[Hashable], pairs: Sequence[ScoredPair], seed: int, resamples: int, level: float
) -> dict[Hashable, Estimate]:
    names = sorted(set(groups), key=repr)
    rows = {name: row for row, name in enumerate(names)}
    columns = unit_columns(pair.prompt for pair in pairs)
    credit = np.zeros((len(names), len(columns)))
    counts = np.zeros_like(credit)
    for name, pair in zip(groups, pairs, strict=True):
        credit[rows[name], columns[pair.prompt]] += pair.credit
        counts[rows[name], columns[pair.prompt]] += 1
    return ratio_estimates(
        names=names,
        numerators=credit,
        denominators=counts,
        seed=seed,
        resamples=resamples,
        level=level,
    )


def rm_accuracy(
    *, pairs: Sequence[ScoredPair], seed: int, resamples: int = RESAMPLES, level: float = LEVEL
) -> Estimate | None:
    """Accuracy over all pairs, with a percentile-bootstrap interval over prompts; None when
    there is no pair."""
    return _grouped_accuracy([None] * len(pairs), pairs, seed, resamples, level).get(None)


def rm_accuracy_by(
    *,
    pairs: Sequence[ScoredPair],
    by: Literal["category", "labeler"],
    seed: int,
    resamples: int = RESAMPLES,
    level: float = LEVEL,
) -> dict[Hashable, Estimate]:
    """Accuracy per prompt category or per labeler, intervals from one shared resampling of
    prompts."""
    if by not in ("category", "labeler"):
        raise ValueError(f"by must be 'category' or 'labeler'; got {by!r}")
    return _grouped_accuracy([getattr(p, by) for p in pairs], pairs, seed, resamples, level)


def _ceiling_counts(rankings: Sequence[Groups]) -> tuple[float, int]:
    credit, trials = 0.0, 0
    for first, second in combinations(rankings, 2):
        first_ranks, second_ranks = rank_of(first), rank_of(second)
        shared = sorted(set(first_ranks) & set(second_ranks), key=repr)
        for a, b in combinations(shared, 2):
            one = np.sign(first_ranks[b] - first_ranks[a])
            other = np.sign(second_ranks[b] - second_ranks[a])
            # Each labeler's strict preference is a trial judged by the other labeler.
            for judge, judged in ((one, other), (other, one)):
                if judge:
                    trials += 1
                    credit += float(judge * judged + 1) / 2
    return credit, trials


def agreement_ceiling(
    *,
    rankings_by_item: Mapping[Hashable, Sequence[Groups]],
    seed: int,
    resamples: int = RESAMPLES,
    level: float = LEVEL,
) -> Estimate | None:
    """How often a labeler agrees with another labeler's strict preference on the same two
    outputs (a tie from them counts 1/2): the accuracy a reward model could hope for against
    one labeler's labels. Interval by a percentile bootstrap over items; None without overlap."""
    counts = {item: _ceiling_counts(rankings) for item, rankings in rankings_by_item.items()}
    columns = unit_columns(item for item, (_, trials) in counts.items() if trials)
    credit = np.zeros((1, len(columns)))
    trials = np.zeros_like(credit)
    for item, column in columns.items():
        credit[0, column], trials[0, column] = counts[item]
    estimates = ratio_estimates(
        names=["all"],
        numerators=credit,
        denominators=trials,
        seed=seed,
        resamples=resamples,
        level=level,
    )
    return estimates.get("all")


@dataclass(frozen=True)
class Histogram:
    """``counts[i]`` scores fell in [edges[i], edges[i + 1]) (the last bin includes its end)."""

    edges: list[float]
    counts: list[int]


def score_histogram(*, scores: Sequence[float], bins: int | Sequence[float] = 20) -> Histogram:
    """Scores in ``bins`` equal bins over their range, or in given edges (to put several
    reward-model versions on one axis)."""
    counts, edges = np.histogram(np.asarray(scores, dtype=float), bins=bins)
    return Histogram(edges=[float(e) for e in edges], counts=[int(c) for c in counts])


@dataclass(frozen=True)
class LengthCorrelation:
    """Correlation of reward with response length (verbosity bias), with two-sided p-values."""

    pearson: float
    pearson_p: float
    spearman: float
    spearman_p: float
    n: int


def length_correlation(
    *, rewards: Sequence[float], lengths: Sequence[float]
) -> LengthCorrelation | None:
    """Pearson (linear) and Spearman (rank) correlation of reward with length; None with fewer
    than three outputs or when either is constant (no correlation is defined)."""
    x = np.asarray(lengths, dtype=float)
    y = np.asarray(rewards, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"rewards and lengths differ in size: {len(y)} vs {len(x)}")
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    pearson = stats.pearsonr(x, y)
    spearman = stats.spearmanr(x, y)
    return LengthCorrelation(
        pearson=float(pearson.statistic),
        pearson_p=float(pearson.pvalue),
        spearman=float(spearman.statistic),
        spearman_p=float(spearman.pvalue),
        n=len(x),
    )
