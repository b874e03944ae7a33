"""Reading prompt files row by row (JSONL and CSV, streamed) and checking each row."""

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from annotations.label_schema import CATEGORY_KEYS

FORMATS = ("jsonl", "csv")
MAX_FIELD_CHARS = 200


@dataclass(slots=True)
class PromptRow:
    line: int
    text: str
    customer_id: str
    source: str = "customer"
    category: str = ""
    external_id: str = ""
    messages: list[dict[str, str]] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class RowError:
    line: int
    message: str


def guess_format(filename: str) -> str | None:
    name = filename.lower().removesuffix(".gz")
    if name.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    if name.endswith(".csv"):
        return "csv"
    return None


def _iter_jsonl(stream: IO[bytes]) -> Iterator[tuple[int, dict | None, str | None]]:
    for line_no, raw in enumerate(stream, start=1):
        if not raw.strip():
            continue
        try:
            value = json.loads(raw)
        except UnicodeDecodeError:
            yield line_no, None, "is not UTF-8 text; save the file as UTF-8"
            continue
        except json.JSONDecodeError as exc:
            yield line_no, None, f"is not valid JSON ({exc.msg} at column {exc.colno})"
            continue
        if not isinstance(value, dict):
            yield line_no, None, 'must be a JSON object like {"text": ..., "customer_id": ...}'
            continue
        yield line_no, value, None


def _iter_csv(stream: IO[bytes]) -> Iterator[tuple[int, dict | None, str | None]]:
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    reader = csv.reader(text)
    try:
        header = next(reader)
    except StopIteration:
        return
    except (UnicodeDecodeError, csv.Error) as exc:
        yield 1, None, f"the header cannot be read ({exc})"
        return
    header = [name.strip() for name in header]
    if "text" not in header and "prompt" not in header:
        yield 1, None, f"the header needs a 'text' column; it has {header}"
        return
    line_no = reader.line_num
    while True:
        start = line_no + 1
        try:
            values = next(reader)
        except StopIteration:
            return
        except UnicodeDecodeError:
            yield start, None, "is not UTF-8 text; save the file as UTF-8"
            return
        except csv.Error as exc:
            yield start, None, f"is not valid CSV ({exc})"
            line_no = reader.line_num
            continue
        line_no = reader.line_num
        if not any(value.strip() for value in values):
            continue
        if len(values) != len(header):
            yield start, None, f"has {len(values)} columns; the header has {len(header)}"
            continue
        yield start, {k: v for k, v in zip(header, values, strict=True) if v != ""}, None


def iter_raw_rows(stream: IO[bytes], fmt: str) -> Iterator[tuple[int, dict | None, str | None]]:
    """(line number, the row as a dict or None, an error or None) for each non-blank row.
    The line number is where the row starts, so CSV fields with newlines count right."""
    if fmt == "jsonl":
        return _iter_jsonl(stream)
    if fmt == "csv":
        return _iter_csv(stream)
    raise ValueError(f"unknown format {fmt!r}")


def _short_string(raw: dict, key: str, *, required: bool) -> tuple[str, str | None]:
    value = raw.get(key)
    if value is None or value == "":
        return "", (f"'{key}' is missing" if required else None)
    if isinstance(value, bool) or not isinstance(value, str | int):
        return "", f"'{key}' must be a string, got {type(value).__name__}"
    value = str(value).strip()
    if len(value) > MAX_FIELD_CHARS:
        return "", f"'{key}' is longer than {MAX_FIELD_CHARS} characters"
    return value, None


def _messages(raw: Any) -> tuple[list[dict[str, str]] | None, str | None]:
    if raw is None:
        return None, None
    if not isinstance(raw, list) or not raw:
        return None, '\'messages\' must be a non-empty list of {"role", "content"} objects'
    for index, message in enumerate(raw):
        if (
            not isinstance(message, dict)
            or message.get("role") not in {"system", "user", "assistant"}
            or not isinstance(message.get("content"), str)
        ):
            return None, (
                f"'messages'[{index}] must be {{\"role\": system|user|assistant, "
                '"content": string}'
            )
    return [{"role": m["role"], "content": m["content"]} for m in raw], None


def check_row(line: int, raw: dict) -> PromptRow | RowError:
    """A valid PromptRow, or a RowError that says what to fix."""
    problems: list[str] = []
    messages, problem = _messages(raw.get("messages"))
    if problem:
        problems.append(problem)
    text = raw.get("text", raw.get("prompt"))
    if text is None and messages:
        text = next((m["content"] for m in reversed(messages) if m["role"] == "user"), None)
    if text is None:
        problems.append("'text' is missing (the prompt itself)")
    elif not isinstance(text, str):
        problems.append(f"'text' must be a string, got {type(text).__name__}")
    elif not text.strip():
        problems.append("'text' is empty")
    elif "\x00" in text:
        problems.append("'text' contains a NUL character; remove it")
    customer_id, problem = _short_string(raw, "customer_id", required=True)
    if problem:
        problems.append(
            problem + " (the user or organisation the prompt came from)"
            if "missing" in problem
            else problem
        )
    source = raw.get("source", "customer")
    if not isinstance(source, str) or source not in ("customer", "labeler"):
        problems.append(f"'source' must be 'customer' or 'labeler', got {source!r}")
    category = raw.get("category", "")
    if category and (not isinstance(category, str) or category not in CATEGORY_KEYS):
        problems.append(f"'category' {category!r} is not one of {sorted(CATEGORY_KEYS)}")
    external_id, problem = _short_string(raw, "id", required=False)
    if problem:
        problems.append(problem)
    metadata = raw.get("metadata", {})
    if not isinstance(metadata, dict):
        problems.append("'metadata' must be an object")
    elif "\\u0000" in json.dumps(metadata) or any("\x00" in m["content"] for m in messages or []):
        problems.append("'metadata' or 'messages' contains a NUL character; remove it")
    if problems or not isinstance(text, str):
        return RowError(line, "; ".join(problems))
    return PromptRow(
        line=line,
        text=text,
        customer_id=customer_id,
        source=source,
        category=category,
        external_id=external_id,
        messages=messages,
        metadata=metadata,
    )
