"""Pure ranking functions: pair expansion, ranked-pairs consensus, inter-labeler agreement."""

from math import comb

from hypothesis import given, settings
from hypothesis import strategies as st

from annotations.domain.ranking import (
    agreement_mean,
    consensus_ranked_pairs,
    pairwise_agreement,
    rank_of,
    ranking_pairs,
    shown_order,
)
from tests.strategies import rankings


@st.composite
def panels(draw):
    """Two to five labelers' rankings of the same 4..9 items."""
    items = list(range(draw(st.integers(min_value=4, max_value=9))))
    return [draw(rankings(items)) for _ in range(draw(st.integers(min_value=2, max_value=5)))]


def tied_pairs(groups) -> int:
    return sum(comb(len(group), 2) for group in groups)


@given(rankings())
def test_pairs_are_all_pairs_less_ties_and_point_downwards(groups):
    k = sum(len(group) for group in groups)
    pairs = ranking_pairs(groups)
    assert len(pairs) == comb(k, 2) - tied_pairs(groups)
    assert len(set(pairs)) == len(pairs)
    ranks = rank_of(groups)
    assert all(ranks[winner] < ranks[loser] for winner, loser in pairs)


def test_pairs_of_a_small_ranking():
    assert ranking_pairs([[1], [2, 3], [4]]) == [(1, 2), (1, 3), (1, 4), (2, 4), (3, 4)]
    assert ranking_pairs([[1, 2, 3, 4]]) == []


@given(rankings(), st.integers(min_value=2, max_value=6))
def test_unanimous_labelers_get_their_own_ranking_back(groups, labelers):
    assert consensus_ranked_pairs([groups] * labelers) == [sorted(g) for g in groups]


@given(panels())
@settings(max_examples=150)
def test_consensus_is_a_ranking_of_every_item(panel):
    result = consensus_ranked_pairs(panel)
    flat = [item for group in result for item in group]
    assert sorted(flat) == sorted({item for groups in panel for group in groups for item in group})
    assert len(flat) == len(set(flat)) and all(result)
    assert consensus_ranked_pairs(list(reversed(panel))) == result  # order of labelers is moot


def test_consensus_majority_and_cycle():
    # Two of three prefer 1 > 2 > 3; the consensus follows the majority.
    assert consensus_ranked_pairs([[[1], [2], [3]], [[1], [2], [3]], [[3], [1], [2]]]) == [
        [1],
        [2],
        [3],
    ]
    # A majority cycle: 1>2 by margin 3, 2>3 by 5, 3>1 by 1. Ranked pairs locks 2>3 and 1>2
    # and drops the weakest link 3>1.
    cycle = 4 * [[[1], [2], [3]]] + 3 * [[[2], [3], [1]]] + 2 * [[[3], [1], [2]]]
    assert consensus_ranked_pairs(cycle) == [[1], [2], [3]]
    # Opposed labelers cancel out: a tie.
    assert consensus_ranked_pairs([[[1], [2]], [[2], [1]]]) == [[1, 2]]


@given(panels())
def test_agreement_is_symmetric_bounded_and_one_with_itself(panel):
    first, second = panel[0], panel[1]
    score = pairwise_agreement(first, second)
    assert score == pairwise_agreement(second, first)
    assert 0.0 <= score <= 1.0
    assert pairwise_agreement(first, first) == 1.0
    assert 0.0 <= agreement_mean(panel) <= 1.0


def test_agreement_counts_ties_as_an_answer():
    # Pairs {1,2}: tie vs 1>2 (disagree); {1,3}, {2,3}: both put 3 last (agree).
    assert pairwise_agreement([[1, 2], [3]], [[1], [2], [3]]) == 2 / 3
    assert pairwise_agreement([[1], [2]], [[2], [1]]) == 0.0
    # Only shared items count; nothing shared -> no evidence.
    assert pairwise_agreement([[1], [2], [9]], [[2], [1], [8]]) == 0.0
    assert pairwise_agreement([[1], [2]], [[3], [4]]) is None
    assert agreement_mean([[[1], [2]], [[1], [2]], [[2], [1]]]) == 1 / 3


def test_shown_order_is_a_stable_shuffle_per_labeler():
    ids = list(range(100, 109))
    first = shown_order(item_ids=ids, task_id=7, labeler_id=1)
    assert first == shown_order(item_ids=ids, task_id=7, labeler_id=1)
    assert sorted(first) == ids
    others = {tuple(shown_order(item_ids=ids, task_id=7, labeler_id=n)) for n in range(2, 12)}
    assert len(others) > 5
