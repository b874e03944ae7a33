"""The ranking workspace in real Chromium: mouse drags and keyboard-only ranking, ties, reload,
the submit gate, and task text that tries to run script."""

import pytest

from annotations.models import Ranking
from tests.factories import ComparisonTaskFactory
from tests.helpers import XSS_IMG, XSS_SCRIPT, log_in

pytestmark = pytest.mark.django_db(transaction=True)
XSS = [XSS_SCRIPT, XSS_IMG]


def open_next(page, project, k):
    texts = [XSS[i % 2] + f" output {i}\n" * 3 for i in range(k)]
    texts[0] += "a long paragraph\n" * 60
    ComparisonTaskFactory(project=project, texts=texts)
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.goto(f"/projects/{project.slug}/rank/")
    page.get_by_role("button", name="Take the next comparison").click()
    page.wait_for_url("**/rank/*-*/")
    letters = "ABCDEFGHI"[:k]
    return {letter: int(chip_of(page, letter).get_attribute("data-id")) for letter in letters}


def chip_of(page, letter):
    return page.locator(f'.rk-chip[data-letter="{letter}"]')


def column(page, rank):
    return page.locator(f'.rk-list[data-rank="{rank}"]')


def rate_with_mouse(page, letter, likert):
    output = page.locator(f"#out-{letter}")
    output.locator(f'.rk-likert input[value="{likert}"]').check()
    output.get_by_role("button", name="All “No”").click()


def drag(page, chip, target):
    target.scroll_into_view_if_needed()
    start, end = chip.bounding_box(), target.bounding_box()
    page.mouse.move(start["x"] + start["width"] / 2, start["y"] + start["height"] / 2)
    page.mouse.down()
    page.mouse.move(start["x"] + start["width"] / 2 + 8, start["y"] + start["height"] / 2 + 8)
    page.mouse.move(end["x"] + end["width"] / 2, end["y"] + end["height"] - 12, steps=12)
    page.mouse.up()


def submit_and_check(page, ids, expected_letters):
    submit = page.locator("#rk-submit")
    assert submit.is_enabled(), page.locator("#rk-missing").inner_text()
    submit.click()
    page.wait_for_url("**/rank/")
    ranking = Ranking.objects.get()
    assert ranking.state == "submitted"
    assert [sorted(group) for group in ranking.groups] == [
        sorted(ids[letter] for letter in group) for group in expected_letters
    ]
    return ranking


def reading_aids(page, k):
    """Long outputs fold and unfold; any two side by side, as inert text; stacks when narrow."""
    long_output = page.locator(".rk-output", has_text="a long paragraph")
    short_output = page.locator(".rk-output").filter(has_not_text="a long paragraph").first
    long_text = long_output.locator(".rk-fold")
    folded = long_text.bounding_box()["height"]
    long_output.locator(".rk-toggle").press("Enter")
    assert long_text.bounding_box()["height"] > 3 * folded
    long_output.locator(".rk-toggle").press("Enter")
    assert short_output.locator(".rk-toggle").is_hidden()  # short outputs need no toggle
    page.select_option("#cmp-a", "B")
    page.select_option("#cmp-b", "A")
    page.locator("#cmp-show").press("Enter")
    sides = page.locator("#cmp-view .rk-text")
    assert sides.nth(0).inner_text() == page.locator("#out-B .rk-text").inner_text()
    assert sides.nth(1).inner_text() == page.locator("#out-A .rk-fold").inner_text()
    assert "alert(1)" in sides.nth(0).inner_text()
    assert page.locator("#cmp-view img, #cmp-view script, .rk-output img").count() == 0
    page.locator("#cmp-close").press("Enter")
    if k == 4:
        page.set_viewport_size({"width": 380, "height": 800})
        boxes = [page.locator(f"#out-{letter}").bounding_box() for letter in "AB"]
        assert boxes[0]["x"] == boxes[1]["x"] and boxes[1]["y"] > boxes[0]["y"]
        page.set_viewport_size({"width": 1400, "height": 1000})


@pytest.mark.parametrize("k", [4, 9])
def test_rate_and_rank_with_the_mouse(page, labeler, project, k):
    log_in(page, labeler)
    ids = open_next(page, project, k)
    letters = list(ids)
    submit = page.locator("#rk-submit")
    assert submit.is_disabled()  # untouched: the pool is full, nothing rated
    assert "place " + ", ".join(letters) in page.locator("#rk-missing").inner_text()
    if k == 4:
        rate_with_mouse(page, "A", 6)
        page.wait_for_function("document.getElementById('rk-status').textContent.includes('saved')")
        page.reload()
        assert page.locator('#out-A .rk-likert input[value="6"]').is_checked()
        assert page.locator('#out-A input[value="no"]:checked').count() == 11
    for index, letter in enumerate(letters):
        rate_with_mouse(page, letter, 7 - index % 7)
    assert submit.is_disabled()  # rated but not ranked
    # A and B tie for best, then one output per rank.
    expected = [letters[:2], *([letter] for letter in letters[2:])]
    for rank, group in enumerate(expected, start=1):
        for letter in group:
            drag(page, chip_of(page, letter), column(page, rank))
            column(page, rank).locator(f'[data-letter="{letter}"]').wait_for()
    assert page.locator("#rk-pool .rk-chip").count() == 0
    submit_and_check(page, ids, expected)


@pytest.mark.parametrize("k", [4, 9])
def test_rate_and_rank_with_the_keyboard_only(page, labeler, project, k):
    log_in(page, labeler)
    ids = open_next(page, project, k)
    letters = list(ids)
    reading_aids(page, k)
    for letter in letters:
        page.locator(f'#out-{letter} .rk-likert input[value="4"]').focus()
        page.keyboard.press("Space")
        page.locator(f"#out-{letter} .rk-allno").focus()
        page.keyboard.press("Enter")
    page.locator("h1").click()  # focus leaves the form controls; letters now pick outputs
    # B, C and D tie for rank 1, A is rank 2, the rest follow one per rank.
    expected = [letters[1:4], [letters[0]], *([letter] for letter in letters[4:])]
    for rank, group in enumerate(expected, start=1):
        for letter in group:
            page.keyboard.press(letter.lower())
            page.keyboard.press(str(rank))
    assert page.locator(f"#out-{letters[1]} .rk-rank").inner_text() == "· rank 1, tied"
    assert page.locator(f"#out-{letters[0]} .rk-rank").inner_text() == "· rank 2"
    page.keyboard.press("c")
    page.keyboard.press("0")  # back to the pool: the gate closes again
    assert page.locator("#out-C .rk-rank").inner_text() == "· not ranked"
    assert page.locator("#rk-submit").is_disabled()
    page.keyboard.press("c")
    page.keyboard.press("1")
    page.locator("#rk-submit").focus()
    assert page.locator("#rk-submit").is_enabled()
    with page.expect_navigation():
        page.keyboard.press("Enter")
    ranking = Ranking.objects.get()
    assert [sorted(group) for group in ranking.groups] == [
        sorted(ids[letter] for letter in group) for group in expected
    ]
    assert len(ranking.ratings) == k and ranking.time_spent_ms > 0
