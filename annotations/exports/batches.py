"""Batches of export rows and the chunked reading that makes them."""

from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from annotations.exports.schemas import Row

CHUNK_SIZE = 2000


@dataclass
class Batch:
    """Rows read from `units` source records (rankings, demonstrations, prompts)."""

    units: int
    rows: list[Row]
    schema_versions: set[int] = field(default_factory=set)


def chunks(iterable: Any, size: int) -> Iterator[list[Any]]:
    iterator = iter(iterable)
    while chunk := list(islice(iterator, size)):
        yield chunk
