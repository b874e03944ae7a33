"""The pure rules of prompt intake."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from annotations.intake.text import (
    dedup_key,
    detect_pii,
    estimate_tokens,
    normalise,
    split_for_customer,
)

RATIOS = [("train", 0.8), ("valid", 0.1), ("test", 0.1)]


def test_normalise_folds_case_punctuation_and_space():
    assert normalise("  Hello,   WORLD!\n\tHow are you?") == "hello world how are you"


def test_dedup_key_matches_on_long_common_prefix_only():
    base = "Write a poem about the sea and the sky, with rhymes. " * 3
    assert dedup_key(base + "Make it sad.", 100) == dedup_key(base + "Make it happy!", 100)
    assert dedup_key("WRITE a poem!!", 100) == dedup_key("write a poem", 100)
    assert dedup_key("Write a poem about cats", 100) != dedup_key("Write a poem about dogs", 100)


@given(st.text(min_size=1), st.text())
def test_dedup_key_is_a_function_of_the_normalised_prefix(prefix, tail):
    # Whatever follows a prompt's first 20 normalised characters leaves its key alone (a margin
    # of two characters: white space and combining marks at the junction may merge).
    if len(normalise(prefix)) >= 22:
        assert dedup_key(prefix + tail, 20) == dedup_key(prefix, 20)


def test_estimate_tokens_grows_with_text():
    assert estimate_tokens("") == 0
    assert estimate_tokens("hello world") == 4  # 'hell' 'o' 'worl' 'd'
    assert estimate_tokens("word " * 1000) == 1000


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("mail me at jane.doe@example.com please", "email"),
        ("call +1 (415) 555-2671 tomorrow", "phone"),
        ("my number is 020 7946 0958", "phone"),
        ("card 4111 1111 1111 1111 exp 12/28", "card"),
        ("ssn 078-05-1120", "national_id"),
        ("IBAN GB82 WEST 1234 5698 7654 32", "iban"),
        ("server at 192.168.10.4 is down", "ip_address"),
    ],
)
def test_detect_pii_finds(text, kind):
    assert kind in detect_pii(text)


@pytest.mark.parametrize(
    "text",
    [
        "Write a poem about 1999 and 2024.",
        "Add 12 and 35, then multiply by 7.",
        "The card number 4111 1111 1111 1112 fails the Luhn check",
        "Version 1.2.3 is out",
    ],
)
def test_detect_pii_leaves_ordinary_numbers_alone(text):
    kinds = detect_pii(text)
    assert "card" not in kinds
    assert "ip_address" not in kinds
    assert "phone" not in kinds


@given(st.text(min_size=1, max_size=40))
def test_split_is_deterministic_per_customer(customer):
    first = split_for_customer(project_id=1, customer_id=customer, ratios=RATIOS)
    assert first == split_for_customer(project_id=1, customer_id=customer, ratios=RATIOS)
    assert first in {"train", "valid", "test"}


def test_split_follows_the_ratios():
    counts = {"train": 0, "valid": 0, "test": 0}
    for index in range(20000):
        counts[split_for_customer(project_id=7, customer_id=f"c{index}", ratios=RATIOS)] += 1
    assert 0.78 < counts["train"] / 20000 < 0.82
    assert 0.08 < counts["valid"] / 20000 < 0.12


def test_split_never_picks_a_zero_ratio():
    ratios = [("train", 1.0), ("valid", 0.0), ("test", 0.0)]
    assert {
        split_for_customer(project_id=1, customer_id=str(i), ratios=ratios) for i in range(500)
    } == {"train"}
