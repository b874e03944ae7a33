"""Pure text rules of prompt intake: normalisation, the dedup key, token estimate, PII."""

import hashlib
import re
import unicodedata

_NOT_WORD = re.compile(r"[^\w\s]+")
_SPACE = re.compile(r"\s+")
# About one token per 4 characters of a word, one per punctuation mark: close to byte-level BPE
# counts for English, and needs no tokenizer download.
_TOKEN = re.compile(r"\w{1,4}|[^\w\s]")


def normalise(text: str) -> str:
    """Lower case, compatibility forms folded, punctuation dropped, white space collapsed."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = _NOT_WORD.sub(" ", text)
    return _SPACE.sub(" ", text).strip()


def dedup_key(text: str, prefix_chars: int) -> str:
    """Equal for two prompts iff their normalised texts share the first `prefix_chars` characters
    (or are equal, when shorter): InstructGPT's 'long common prefix' rule as an indexable key."""
    return hashlib.sha1(normalise(text)[:prefix_chars].encode(), usedforsecurity=False).hexdigest()


def estimate_tokens(text: str) -> int:
    return len(_TOKEN.findall(text))


_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_CARD = re.compile(r"(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])")
_PHONE = re.compile(r"(?<![\w+])\+?\(?\d{1,4}\)?(?:[ .-]?\(?\d{2,5}\)?){2,4}(?!\w)")
_NATIONAL_ID = re.compile(r"(?<!\d)\d{3}-\d{2}-\d{4}(?!\d)")  # US SSN shape
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){3,7}(?: ?[A-Z0-9]{1,3})?\b")
_IP = re.compile(
    r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)(?![\d.])"
)


def _luhn_ok(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def detect_pii(text: str) -> list[str]:
    """The kinds of personal data the text seems to hold: email, phone, card, national_id,
    iban, ip_address. Patterns err towards flagging; the flag is for review, not proof."""
    kinds: list[str] = []
    if _EMAIL.search(text):
        kinds.append("email")
    card_spans: list[tuple[int, int]] = []
    for match in _CARD.finditer(text):
        digits = re.sub(r"\D", "", match.group())
        if 13 <= len(digits) <= 19 and _luhn_ok(digits):
            card_spans.append(match.span())
    if card_spans:
        kinds.append("card")
    if _NATIONAL_ID.search(text):
        kinds.append("national_id")
    for match in _PHONE.finditer(text):
        if any(start <= match.start() < end for start, end in card_spans):
            continue
        if _NATIONAL_ID.fullmatch(match.group().strip()):
            continue
        digit_count = sum(char.isdigit() for char in match.group())
        separated = any(sep in match.group() for sep in " .-()+")
        if 9 <= digit_count <= 15 and (separated or digit_count >= 10):
            kinds.append("phone")
            break
    if _IBAN.search(text):
        kinds.append("iban")
    if _IP.search(text):
        kinds.append("ip_address")
    return kinds


def split_for_customer(
    *, project_id: int, customer_id: str, ratios: list[tuple[str, float]]
) -> str:
    """A deterministic split for a customer: the same customer always gets the same split."""
    digest = hashlib.sha256(f"{project_id}:{customer_id}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") / 2**64
    cumulative = 0.0
    for split, ratio in ratios:
        cumulative += ratio
        if point < cumulative:
            return split
    return next(split for split, ratio in reversed(ratios) if ratio > 0)
