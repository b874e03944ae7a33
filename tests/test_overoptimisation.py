"""The over-optimisation marker and the best checkpoint on hand-made proxy-vs-gold curves."""

from annotations.domain.overoptimisation import (
    CheckpointPoint,
    best_checkpoint,
    overoptimisation_marker,
)


def curve(golds, proxies=None, half_width=0.03) -> list[CheckpointPoint]:
    """Checkpoints at KL 0, 1, 2, 4, ...; proxy rising by default; gold None = not judged."""
    proxies = proxies or [0.5 * i for i in range(len(golds))]
    points = []
    for i, (gold, proxy) in enumerate(zip(golds, proxies, strict=True)):
        low, high = (None, None) if gold is None else (gold - half_width, gold + half_width)
        points.append(
            CheckpointPoint(
                checkpoint=f"step-{i}",
                kl=0.0 if i == 0 else 2.0 ** (i - 1),
                proxy_reward=proxy,
                gold=gold,
                gold_low=low,
                gold_high=high,
            )
        )
    return points


def test_gao_shaped_curve_marks_the_gold_peak():
    points = curve([0.50, 0.58, 0.64, None, 0.66, 0.60, 0.52])
    marker = overoptimisation_marker(points=list(reversed(points)))  # input order is moot
    assert marker.onset.checkpoint == "step-4"  # gold's peak, never exceeded later
    assert marker.evidence.checkpoint == "step-5"  # 0.60 < 0.66 - 0.03 with the proxy higher
    assert best_checkpoint(points=points).checkpoint == "step-4"


def test_no_overoptimisation_gives_none():
    rising = curve([0.50, 0.55, 0.60, 0.62, 0.65])
    assert overoptimisation_marker(points=rising) is None
    assert best_checkpoint(points=rising).checkpoint == "step-4"
    # A dip within the peak's interval half-width is noise, not a fall.
    assert overoptimisation_marker(points=curve([0.50, 0.60, 0.62, 0.60])) is None
    # Gold falls, but so does the proxy: the proxy is not fooled, so no Goodhart marker.
    falling_together = curve([0.5, 0.6, 0.66, 0.55], proxies=[0.0, 1.0, 2.0, 1.5])
    assert overoptimisation_marker(points=falling_together) is None


def test_without_an_interval_any_fall_counts_and_unjudged_runs_have_no_answer():
    points = curve([0.5, 0.6, 0.59], half_width=0.0)
    points = [CheckpointPoint(p.checkpoint, p.kl, p.proxy_reward, p.gold) for p in points]
    assert overoptimisation_marker(points=points).onset.checkpoint == "step-1"
    unjudged = curve([None, None, None])
    assert overoptimisation_marker(points=unjudged) is None
    assert best_checkpoint(points=unjudged) is None


def test_best_checkpoint_prefers_the_smaller_kl_among_equals():
    assert best_checkpoint(points=curve([0.5, 0.62, 0.62, 0.4])).checkpoint == "step-1"
