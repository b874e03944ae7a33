"""Per-output ratings summarised per model (Likert means, metadata flag rates) and agreement
between labelers, each with an interval. Pure functions over plain data.
"""

from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
from scipy.stats import binomtest

from annotations.domain.evaluation import (
    LEVEL,
    RESAMPLES,
    Estimate,
    ratio_estimates,
    unit_columns,
)
from annotations.domain.ranking import Groups, agreement_counts


@dataclass(frozen=True)
class OutputRating:
    """One labeler's ratings of one model's output on one prompt: the Likert score (None when
    not given) and yes/no metadata flags (True yes, False no, None N/A)."""

    prompt: Hashable
    model: Hashable
    likert: float | None = None
    flags: Mapping[str, bool | None] = field(default_factory=dict)
    labeler: Hashable = None


def likert_means(
    *,
    ratings: Iterable[OutputRating],
    seed: int,
    resamples: int = RESAMPLES,
    level: float = LEVEL,
) -> dict[Hashable, Estimate]:
    """Each model's mean Likert score with a percentile-bootstrap interval over prompts.

    Bootstrap over prompts rather than a t-interval: the ratings of one prompt (several labelers,
    one labeler's calibration on that prompt) are correlated, which a t-interval would ignore."""
    rated = [r for r in ratings if r.likert is not None]
    models = sorted({r.model for r in rated}, key=repr)
    rows = {model: row for row, model in enumerate(models)}
    columns = unit_columns(r.prompt for r in rated)
    sums = np.zeros((len(models), len(columns)))
    counts = np.zeros_like(sums)
    for r in rated:
        sums[rows[r.model], columns[r.prompt]] += r.likert
        counts[rows[r.model], columns[r.prompt]] += 1
    return ratio_estimates(
        names=models,
        numerators=sums,
        denominators=counts,
        seed=seed,
        resamples=resamples,
        level=level,
    )


def wilson_interval(*, successes: int, trials: int, level: float = LEVEL) -> tuple[float, float]:
    """The Wilson score interval for a proportion (Wilson 1927), by scipy: unlike the normal
    approximation it stays inside [0, 1] and is not empty at 0 or ``trials`` successes."""
    if trials < 1 or not 0 <= successes <= trials:
        raise ValueError(f"need 0 <= successes <= trials and trials >= 1; got {successes}/{trials}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be between 0 and 1, e.g. 0.95; got {level}")
    interval = binomtest(successes, trials).proportion_ci(confidence_level=level, method="wilson")
    return float(interval.low), float(interval.high)


def flag_rates(
    *, ratings: Iterable[OutputRating], level: float = LEVEL
) -> dict[Hashable, dict[str, Estimate]]:
    """Per model, per flag: the share of "yes" among yes/no answers (N/A left out), with a Wilson
    interval (InstructGPT's Fig. 4 bars). Wilson treats answers as independent; ``units`` counts
    the prompts they come from, to show how far that holds."""
    yes: dict[tuple, int] = defaultdict(int)
    answered: dict[tuple, int] = defaultdict(int)
    prompts: dict[tuple, set] = defaultdict(set)
    for r in ratings:
        for flag, answer in r.flags.items():
            if answer is None:
                continue
            key = (r.model, flag)
            yes[key] += bool(answer)
            answered[key] += 1
            prompts[key].add(r.prompt)
    result: dict[Hashable, dict[str, Estimate]] = {}
    for model, flag in sorted(answered, key=repr):
        key = (model, flag)
        low, high = wilson_interval(successes=yes[key], trials=answered[key], level=level)
        result.setdefault(model, {})[flag] = Estimate(
            value=yes[key] / answered[key],
            low=low,
            high=high,
            n=answered[key],
            units=len(prompts[key]),
        )
    return result


def agreement_interval(
    *,
    rankings_by_item: Mapping[Hashable, Sequence[Groups]],
    seed: int,
    resamples: int = RESAMPLES,
    level: float = LEVEL,
) -> Estimate | None:
    """Agreement between labelers (``ranking.agreement_mean``: the share of shared comparisons
    on which two labelers give the same answer, a tie being an answer) over all items, with a
    percentile-bootstrap interval over items; None when no two labelers share a comparison.

    ``rankings_by_item`` maps an item (a comparison task) to its labelers' rankings of the same
    outputs; ``n`` counts shared comparisons (per pair of labelers), ``units`` the items."""
    agreed: dict[Hashable, int] = {}
    shared: dict[Hashable, int] = {}
    for item, rankings in rankings_by_item.items():
        counts = [agreement_counts(a, b) for a, b in combinations(rankings, 2)]
        agreed[item] = sum(a for a, _ in counts)
        shared[item] = sum(t for _, t in counts)
    columns = unit_columns(item for item, total in shared.items() if total)
    numerators = np.zeros((1, len(columns)))
    denominators = np.zeros_like(numerators)
    for item, column in columns.items():
        numerators[0, column], denominators[0, column] = agreed[item], shared[item]
    estimates = ratio_estimates(
        names=["all"],
        numerators=numerators,
        denominators=denominators,
        seed=seed,
        resamples=resamples,
        level=level,
    )
    return estimates.get("all")
