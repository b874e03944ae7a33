"""Hypothesis strategies shared by test modules."""

from hypothesis import strategies as st


@st.composite
def rankings(draw, items=None):
    """A ranking of 4..9 items (or of the given items): a shuffled order cut into tie groups."""
    if items is None:
        items = list(range(draw(st.integers(min_value=4, max_value=9))))
    order = draw(st.permutations(items))
    cuts = draw(st.lists(st.booleans(), min_size=len(order) - 1, max_size=len(order) - 1))
    groups, current = [], [order[0]]
    for item, cut in zip(order[1:], cuts, strict=True):
        if cut:
            groups.append(current)
            current = []
        current.append(item)
    groups.append(current)
    return groups
