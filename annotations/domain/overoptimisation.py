"""Over-optimisation (Goodhart) on an RL run's checkpoints, as in Gao et al.'s proxy-vs-gold
curves: as the policy moves away from the SFT policy (KL), the proxy reward model's score keeps
rising while the gold measure (here: humans' win rate against SFT) rises, then falls.
"""

from collections.abc import Hashable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class CheckpointPoint:
    """One checkpoint on a fixed held-out prompt set: its KL from the SFT policy, its mean proxy
    reward, and, where humans judged its samples, their win rate against SFT with its interval
    (``gold_low``/``gold_high``; left out when there is no interval)."""

    checkpoint: Hashable
    kl: float
    proxy_reward: float
    gold: float | None = None
    gold_low: float | None = None
    gold_high: float | None = None

    @property
    def gold_half_width(self) -> float:
        if self.gold_low is None or self.gold_high is None:
            return 0.0
        return (self.gold_high - self.gold_low) / 2


@dataclass(frozen=True)
class OveroptimisationMarker:
    """Where over-optimisation sets in (``onset``) and the first later checkpoint that shows it
    (``evidence``: gold clearly lower, proxy higher)."""

    onset: CheckpointPoint
    evidence: CheckpointPoint


def _judged_by_kl(points: Sequence[CheckpointPoint]) -> list[CheckpointPoint]:
    return sorted((p for p in points if p.gold is not None), key=lambda p: p.kl)


def _gold(point: CheckpointPoint) -> float:
    """The gold rate of a judged point (`_judged_by_kl` keeps only those)."""
    if point.gold is None:
        raise ValueError(f"Checkpoint {point.checkpoint!r} has no gold rate.")
    return point.gold


def overoptimisation_marker(*, points: Sequence[CheckpointPoint]) -> OveroptimisationMarker | None:
    """The checkpoint after which the proxy keeps rising while the gold rate falls, or None.

    Over checkpoints with a gold rate, in order of KL, the onset is the first checkpoint ``c``
    such that
      1. no later checkpoint has a higher gold rate (gold never comes back above ``c``), and
      2. some later checkpoint ``d`` has a gold rate lower than ``c``'s by more than the
         half-width of ``c``'s interval (a fall beyond ``c``'s own noise), and a proxy reward
         higher than ``c``'s (the proxy still says things improve).
    ``evidence`` is the first such ``d``. A curve whose gold keeps rising, or falls only within
    its noise, or falls while the proxy falls too, has no marker.
    """
    judged = _judged_by_kl(points)
    for i, onset in enumerate(judged):
        later = judged[i + 1 :]
        if any(_gold(p) > _gold(onset) for p in later):
            continue
        for candidate in later:
            fallen = _gold(candidate) < _gold(onset) - onset.gold_half_width
            if fallen and candidate.proxy_reward > onset.proxy_reward:
                return OveroptimisationMarker(onset=onset, evidence=candidate)
    return None


def best_checkpoint(*, points: Sequence[CheckpointPoint]) -> CheckpointPoint | None:
    """The checkpoint with the highest gold rate (the smallest KL among equals: closest to SFT
    for the same quality); None when no checkpoint has a gold rate."""
    judged = _judged_by_kl(points)
    return max(judged, key=lambda p: p.gold or 0.0, default=None)
