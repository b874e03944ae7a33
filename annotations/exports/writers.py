"""One file per split, written as rows arrive: JSONL (optionally gzipped) or Parquet row groups."""

import contextlib
import gzip
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import pyarrow as pa
import pyarrow.parquet as pq

from annotations.exports.filters import FORMATS

Row = dict[str, Any]
PARQUET_ROW_GROUP = 10_000
JSONL_SLICE = 2_000  # rows encoded at a time


@dataclass(frozen=True)
class FileInfo:
    name: str
    split: str
    rows: int
    bytes: int
    sha256: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "split": self.split,
            "rows": self.rows,
            "bytes": self.bytes,
            "sha256": self.sha256,
        }


class _Writer(Protocol):
    def write(self, rows: list[Row]) -> None: ...

    def close(self) -> None: ...


class _JsonlWriter:
    def __init__(self, path: Path, *, gzipped: bool) -> None:
        self._raw = path.open("wb")
        # mtime=0: the same rows give the same bytes, so checksums compare across exports
        self._out: BinaryIO = (
            gzip.GzipFile(filename="", fileobj=self._raw, mode="wb", mtime=0)  # type: ignore[assignment]
            if gzipped
            else self._raw
        )
        self._dumps = json.JSONEncoder(ensure_ascii=False, separators=(", ", ": ")).encode

    def write(self, rows: list[Row]) -> None:
        dumps = self._dumps
        for start in range(0, len(rows), JSONL_SLICE):
            part = rows[start : start + JSONL_SLICE]
            self._out.write("".join([dumps(row) + "\n" for row in part]).encode())

    def close(self) -> None:
        if self._out is not self._raw:
            self._out.close()
        self._raw.close()


class _ParquetWriter:
    def __init__(self, path: Path, *, schema: pa.Schema) -> None:
        self._schema = schema
        self._writer = pq.ParquetWriter(path, schema, compression="zstd")
        self._pending: list[Row] = []

    def write(self, rows: list[Row]) -> None:
        self._pending.extend(rows)
        while len(self._pending) >= PARQUET_ROW_GROUP:
            self._flush(self._pending[:PARQUET_ROW_GROUP])
            del self._pending[:PARQUET_ROW_GROUP]

    def _flush(self, rows: list[Row]) -> None:
        self._writer.write_table(pa.Table.from_pylist(rows, schema=self._schema))

    def close(self) -> None:
        if self._pending:
            self._flush(self._pending)
            self._pending = []
        self._writer.close()


class SplitFiles:
    """`<split><ext>` files in one folder, opened when a split's first row arrives."""

    def __init__(self, directory: Path, *, fmt: str, schema: pa.Schema) -> None:
        self.directory = directory
        self.fmt = fmt
        self.schema = schema
        self._writers: dict[str, _Writer] = {}
        self._rows: dict[str, int] = {}

    def file_name(self, split: str) -> str:
        return f"{split}{FORMATS[self.fmt]}"

    def _writer(self, split: str) -> _Writer:
        writer = self._writers.get(split)
        if writer is None:
            path = self.directory / self.file_name(split)
            writer = (
                _ParquetWriter(path, schema=self.schema)
                if self.fmt == "parquet"
                else _JsonlWriter(path, gzipped=self.fmt == "jsonl.gz")
            )
            self._writers[split] = writer
            self._rows[split] = 0
        return writer

    def write(self, rows: list[Row]) -> None:
        by_split: dict[str, list[Row]] = {}
        for row in rows:
            by_split.setdefault(row["split"], []).append(row)
        for split, part in by_split.items():
            self._writer(split).write(part)
            self._rows[split] += len(part)

    def close(self) -> list[FileInfo]:
        """Close every file and describe it (rows, bytes, sha256), splits in name order."""
        infos = []
        for split in sorted(self._writers):
            self._writers[split].close()
            path = self.directory / self.file_name(split)
            infos.append(
                FileInfo(
                    name=path.name,
                    split=split,
                    rows=self._rows[split],
                    bytes=path.stat().st_size,
                    sha256=file_sha256(path),
                )
            )
        self._writers = {}
        return infos

    def abort(self) -> None:
        """Close what is open without describing it (the folder is about to be removed)."""
        for writer in self._writers.values():
            with contextlib.suppress(Exception):  # the files are thrown away either way
                writer.close()
        self._writers = {}


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()
