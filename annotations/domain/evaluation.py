"""Judgements of models, the pairs they imply, and win rates against a baseline with intervals.

A judgement is one labeler's answer on one prompt, as rank groups of model ids best first (the
shape of ``annotations.domain.ranking``): a pairwise answer is ``[[a], [b]]``, or ``[[a, b]]``
for a tie; a K-way ranking with ties is ``[[a], [b, c], [d]]``. Two models in different groups
give a win and a loss; two in one group give a tie, half a win to each side.

Intervals are percentile bootstraps over prompts: prompts are drawn with replacement and each
drawn prompt brings all of its judgements, because the judgements of one prompt (several
labelers, the C(K, 2) pairs of one ranking) are not independent. Every function takes a seed, so
a result can be reproduced exactly. Pure functions over plain data: no database.
"""

from collections import defaultdict
from collections.abc import Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from annotations.domain.ranking import ranking_pairs, ranking_ties

RESAMPLES = 1000  # interval ends vary by ~0.003 (one SD) between seeds: 150 prompts, 30 seeds
LEVEL = 0.95
_CELLS_PER_CHUNK = 2_000_000  # resampled prompt counts held in memory at once


@dataclass(frozen=True)
class Judgement:
    """One labeler's answer on one prompt: rank groups of model ids, best first."""

    prompt: Hashable
    labeler: Hashable
    groups: tuple[tuple[Hashable, ...], ...]
    category: str | None = None

    def __post_init__(self) -> None:
        groups = tuple(tuple(group) for group in self.groups)
        if not groups or not all(groups):
            raise ValueError(
                f"judgement of prompt {self.prompt!r} by {self.labeler!r} needs non-empty rank "
                f"groups, best first; got {self.groups!r}"
            )
        object.__setattr__(self, "groups", groups)


def pairwise_judgement(
    *,
    prompt: Hashable,
    labeler: Hashable,
    first: Hashable,
    second: Hashable,
    winner: Literal["first", "second", "tie"],
    category: str | None = None,
) -> Judgement:
    """An A/B answer (``first`` shown as A) as a judgement: first better, second better, or tie."""
    groups = {
        "first": ((first,), (second,)),
        "second": ((second,), (first,)),
        "tie": ((first, second),),
    }
    if winner not in groups:
        raise ValueError(f"winner must be 'first', 'second' or 'tie'; got {winner!r}")
    return Judgement(prompt=prompt, labeler=labeler, groups=groups[winner], category=category)


@dataclass(frozen=True)
class PairOutcome:
    """One comparison implied by a judgement; ``score`` is ``first``'s: 1.0 a win, 0.5 a tie."""

    prompt: Hashable
    labeler: Hashable
    category: str | None
    first: Hashable
    second: Hashable
    score: float

    def score_of(self, model: Hashable) -> float:
        return self.score if model == self.first else 1.0 - self.score


def judgement_outcomes(judgement: Judgement) -> list[PairOutcome]:
    """Every pair of models the judgement compares: C(K, 2) for K distinct models.

    Winners come first with score 1.0; tied models come in group order with 0.5. Two outputs of
    the same model in one ranking say nothing about that model against itself and are skipped."""
    scored = [(pair, 1.0) for pair in ranking_pairs(judgement.groups)]
    scored += [(pair, 0.5) for pair in ranking_ties(judgement.groups)]
    return [
        PairOutcome(
            prompt=judgement.prompt,
            labeler=judgement.labeler,
            category=judgement.category,
            first=first,
            second=second,
            score=score,
        )
        for (first, second), score in scored
        if first != second
    ]


def outcomes_of(judgements: Iterable[Judgement]) -> list[PairOutcome]:
    return [outcome for judgement in judgements for outcome in judgement_outcomes(judgement)]


@dataclass(frozen=True)
class Estimate:
    """A statistic with its interval; ``n`` observations from ``units`` resampled units."""

    value: float
    low: float
    high: float
    n: int
    units: int


def check_interval_args(*, resamples: int, level: float) -> None:
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1; got {resamples}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be between 0 and 1, e.g. 0.95; got {level}")


def resampled_counts(
    *, rng: np.random.Generator, units: int, resamples: int
) -> Iterator[np.ndarray]:
    """Bootstrap draws of ``units`` units, in chunks: row r counts how often each unit was drawn."""
    chunk = max(1, _CELLS_PER_CHUNK // max(units, 1))
    for start in range(0, resamples, chunk):
        rows = min(chunk, resamples - start)
        drawn = rng.integers(0, units, size=(rows, units))
        flat = (drawn + units * np.arange(rows)[:, None]).ravel()
        yield np.bincount(flat, minlength=rows * units).reshape(rows, units).astype(float)


def bootstrap_ratios(
    *,
    numerators: ArrayLike,
    denominators: ArrayLike,
    seed: int,
    resamples: int = RESAMPLES,
    level: float = LEVEL,
) -> list[tuple[float, float, float] | None]:
    """(value, low, high) of sum(numerators) / sum(denominators) for each row, by a percentile
    bootstrap over the columns (the units); None for a row whose denominators are all zero.

    All rows share the same resampled units, so rows stay comparable (one evaluation's models).
    A resample in which a row's denominator is zero is left out of that row's percentiles."""
    check_interval_args(resamples=resamples, level=level)
    top_units = np.atleast_2d(np.asarray(numerators, dtype=float))
    bottom_units = np.atleast_2d(np.asarray(denominators, dtype=float))
    if top_units.shape != bottom_units.shape:
        raise ValueError(
            f"numerators {top_units.shape} and denominators {bottom_units.shape} differ"
        )
    if not top_units.shape[1]:
        return [None] * len(top_units)
    rng = np.random.default_rng(seed)
    sums = [
        (counts @ top_units.T, counts @ bottom_units.T)
        for counts in resampled_counts(rng=rng, units=top_units.shape[1], resamples=resamples)
    ]
    top = np.concatenate([s[0] for s in sums])
    bottom = np.concatenate([s[1] for s in sums])
    with np.errstate(invalid="ignore", divide="ignore"):
        ratios = np.where(bottom > 0, top / bottom, np.nan)
    tail = (1.0 - level) / 2
    results: list[tuple[float, float, float] | None] = []
    for row, (num, den) in enumerate(zip(top_units, bottom_units, strict=True)):
        column = ratios[:, row]
        column = column[~np.isnan(column)]
        if den.sum() <= 0 or not column.size:
            results.append(None)
            continue
        low, high = np.quantile(column, [tail, 1.0 - tail])
        results.append((float(num.sum() / den.sum()), float(low), float(high)))
    return results


def ratio_estimates(
    *,
    names: Sequence[Hashable],
    numerators: np.ndarray,
    denominators: np.ndarray,
    seed: int,
    resamples: int,
    level: float,
) -> dict[Hashable, Estimate]:
    """``bootstrap_ratios`` as an Estimate per named row; rows with nothing observed are left
    out. ``n`` is a row's summed denominator, ``units`` the units where it is not zero."""
    intervals = bootstrap_ratios(
        numerators=numerators,
        denominators=denominators,
        seed=seed,
        resamples=resamples,
        level=level,
    )
    return {
        name: Estimate(
            *interval,
            n=int(denominators[row].sum()),
            units=int((denominators[row] > 0).sum()),
        )
        for row, (name, interval) in enumerate(zip(names, intervals, strict=True))
        if interval is not None
    }


def unit_columns(units: Iterable[Hashable]) -> dict[Hashable, int]:
    """Each distinct unit (prompt, item) -> its column, in a stable order."""
    return {unit: column for column, unit in enumerate(sorted(set(units), key=repr))}


def win_rates_against(
    *,
    judgements: Iterable[Judgement],
    baseline: Hashable,
    seed: int,
    resamples: int = RESAMPLES,
    level: float = LEVEL,
) -> dict[Hashable, Estimate]:
    """Each model's win rate against ``baseline``: its wins plus half its ties, over every
    comparison with the baseline (pairwise answers and pairs taken from K-way rankings alike).

    The interval is a percentile bootstrap over prompts, one set of resampled prompts for all
    models. Models never compared with the baseline are left out; ``n`` counts comparisons,
    ``units`` the prompts they come from."""
    against = [o for o in outcomes_of(judgements) if baseline in (o.first, o.second)]
    models = sorted({o.first for o in against} | {o.second for o in against}, key=repr)
    models = [m for m in models if m != baseline]
    rows = {model: row for row, model in enumerate(models)}
    columns = unit_columns(o.prompt for o in against)
    scores = np.zeros((len(models), len(columns)))
    counts = np.zeros_like(scores)
    for o in against:
        other = o.second if o.first == baseline else o.first
        scores[rows[other], columns[o.prompt]] += o.score_of(other)
        counts[rows[other], columns[o.prompt]] += 1
    return ratio_estimates(
        names=models,
        numerators=scores,
        denominators=counts,
        seed=seed,
        resamples=resamples,
        level=level,
    )


def win_rates_by_category(
    *,
    judgements: Iterable[Judgement],
    baseline: Hashable,
    seed: int,
    resamples: int = RESAMPLES,
    level: float = LEVEL,
) -> dict[str | None, dict[Hashable, Estimate]]:
    """``win_rates_against`` within each prompt category, by name, uncategorised (None) last."""
    by_category: dict[str | None, list[Judgement]] = defaultdict(list)
    for judgement in judgements:
        by_category[judgement.category].append(judgement)
    return {
        category: win_rates_against(
            judgements=members, baseline=baseline, seed=seed, resamples=resamples, level=level
        )
        for category, members in sorted(
            by_category.items(), key=lambda c: (c[0] is None, str(c[0]))
        )
    }
