"""Rankings as data: rank groups, the pairs they imply, consensus and agreement between labelers.

A ranking is a list of rank groups, best first: ``[[a], [b, c], [d]]`` says a is best, b and c
are tied, d is worst. Items are any hashable, orderable ids (completion ids in the product).
Every function here is pure: no database, no randomness except the seeded shown order.
"""

import random
from collections.abc import Hashable, Iterable, Sequence
from itertools import combinations
from typing import Any, TypeVar

Item = TypeVar("Item", bound=Hashable)
Groups = Sequence[Sequence[Any]]


def shown_order(*, item_ids: Sequence[Item], task_id: int, labeler_id: int) -> list[Item]:
    """The order one labeler sees a task's outputs in: shuffled, but the same on every load.

    Seeded by (task, labeler), so two labelers see different orders (position bias averages out)
    while one labeler's page does not reshuffle on reload."""
    order = list(item_ids)
    random.Random(f"ranking:{task_id}:{labeler_id}").shuffle(order)
    return order


def rank_of(groups: Groups) -> dict[Any, int]:
    """Item -> the 0-based index of its rank group."""
    return {item: index for index, group in enumerate(groups) for item in group}


def ranking_pairs(groups: Groups) -> list[tuple[Any, Any]]:
    """(winner, loser) for every two items in different groups; tied items give no pair.

    For K items this is C(K, 2) minus the tied pairs, the comparisons a reward model trains on
    (InstructGPT drops ties)."""
    pairs: list[tuple[Any, Any]] = []
    for upper, lower in combinations(range(len(groups)), 2):
        pairs.extend((winner, loser) for winner in groups[upper] for loser in groups[lower])
    return pairs


def ranking_ties(groups: Groups) -> list[tuple[Any, Any]]:
    """Every two items that share a group, in group order: the ties ``ranking_pairs`` leaves out."""
    return [pair for group in groups for pair in combinations(group, 2)]


def _margins(rankings: Iterable[Groups]) -> tuple[list[Any], dict[tuple[Any, Any], int]]:
    wins: dict[tuple[Any, Any], int] = {}
    items: set[Any] = set()
    for groups in rankings:
        items.update(item for group in groups for item in group)
        for winner, loser in ranking_pairs(groups):
            wins[(winner, loser)] = wins.get((winner, loser), 0) + 1
    return sorted(items), wins


def _reaches(edges: dict[Any, set[Any]], start: Any, goal: Any) -> bool:
    seen, stack = {start}, [start]
    while stack:
        node = stack.pop()
        if node == goal:
            return True
        for nxt in edges.get(node, ()):
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return False


def consensus_ranked_pairs(rankings: Sequence[Groups]) -> list[list[Any]]:
    """The consensus of several labelers' rankings of the same items, by Tideman's ranked pairs.

    Why ranked pairs (as Open-Assistant) rather than Bradley-Terry: it is exact and deterministic
    (no iterations, no learning rate, no divergence when an item wins every comparison, which
    makes the Bradley-Terry MLE infinite), it takes ties as they are, it never overrules a
    majority that beats every other item (Condorcet), and unanimous labelers get back exactly
    their ranking, ties included.

    Method: for each ordered pair, wins(a, b) counts the labelers who put a above b; a tie counts
    for neither side. Pairs with a positive margin wins(a, b) - wins(b, a) are locked in from the
    largest margin down (then the larger win count, then item order, so the result does not
    depend on input order), skipping any that would close a cycle. Items are then grouped in
    layers: the first group is every item nothing beats in the locked graph, and so on. Items no
    locked pair separates (ties, equal margins, or never compared) share a group: a tie.
    """
    items, wins = _margins(rankings)
    order = {item: index for index, item in enumerate(items)}
    candidates = []
    for a, b in combinations(items, 2):
        margin = wins.get((a, b), 0) - wins.get((b, a), 0)
        if margin > 0:
            candidates.append((margin, wins.get((a, b), 0), a, b))
        elif margin < 0:
            candidates.append((-margin, wins.get((b, a), 0), b, a))
    candidates.sort(key=lambda c: (-c[0], -c[1], order[c[2]], order[c[3]]))
    edges: dict[Any, set[Any]] = {}
    for _, _, winner, loser in candidates:
        if not _reaches(edges, loser, winner):
            edges.setdefault(winner, set()).add(loser)
    indegree = {item: 0 for item in items}
    for losers in edges.values():
        for loser in losers:
            indegree[loser] += 1
    result: list[list[Any]] = []
    layer = [item for item in items if indegree[item] == 0]
    while layer:
        result.append(layer)
        following: list[Any] = []
        for winner in layer:
            for loser in edges.get(winner, ()):
                indegree[loser] -= 1
                if indegree[loser] == 0:
                    following.append(loser)
        layer = sorted(following, key=order.__getitem__)
    return result


def _relation(ranks: dict[Any, int], a: Any, b: Any) -> int:
    return (ranks[a] > ranks[b]) - (ranks[a] < ranks[b])


def agreement_counts(first: Groups, second: Groups) -> tuple[int, int]:
    """(agreed, shared) comparisons of two rankings."""
    first_ranks, second_ranks = rank_of(first), rank_of(second)
    shared = sorted(set(first_ranks) & set(second_ranks), key=repr)
    agreed = total = 0
    for a, b in combinations(shared, 2):
        total += 1
        agreed += _relation(first_ranks, a, b) == _relation(second_ranks, a, b)
    return agreed, total


def pairwise_agreement(first: Groups, second: Groups) -> float | None:
    """The share of shared comparisons on which two labelers agree (InstructGPT's
    inter-annotator agreement), or None when they share no comparison.

    A comparison is an unordered pair of items; it is shared when both labelers ranked both
    items. They agree on it when they give the same answer: both put the same item above, or
    both tie the two. A tie is an answer of its own, so a tie against a strict order is a
    disagreement: ties are encouraged in the guidelines, so a labeler who ties two outputs that
    another clearly separates does disagree. Symmetric, in [0, 1], and 1.0 for a ranking with
    itself (when it has at least two items).
    """
    agreed, total = agreement_counts(first, second)
    return agreed / total if total else None


def agreement_mean(rankings: Sequence[Groups]) -> float | None:
    """Agreement over every two labelers of one task, weighted by their shared comparisons
    (so the figure is the share of all shared comparisons agreed on); None with no overlap."""
    agreed = total = 0
    for first, second in combinations(rankings, 2):
        pair_agreed, pair_total = agreement_counts(first, second)
        agreed += pair_agreed
        total += pair_total
    return agreed / total if total else None
