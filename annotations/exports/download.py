"""Downloads of a snapshot: one file as it is, or the whole folder as a zip streamed in chunks
(zipfile writes to a sink the response drains, so the archive is never held in memory)."""

import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, cast

STORED_SUFFIXES = (".gz", ".parquet")  # compressed already
READ_BLOCK = 1 << 20


class _Sink:
    """A write-only file object for zipfile; the generator empties it after each write."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.offset = 0

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        self.offset += len(data)
        return len(data)

    def tell(self) -> int:
        return self.offset

    def flush(self) -> None:
        return None

    def drain(self) -> bytes:
        data = b"".join(self.parts)
        self.parts = []
        return data


def zip_stream(*, folder: Path, names: list[str], prefix: str) -> Iterator[bytes]:
    """The files `names` of `folder` as a zip archive under `prefix/`, chunk by chunk."""
    sink = _Sink()
    with zipfile.ZipFile(cast(IO[bytes], sink), mode="w", allowZip64=True) as archive:
        for name in names:
            compress = (
                zipfile.ZIP_STORED if name.endswith(STORED_SUFFIXES) else zipfile.ZIP_DEFLATED
            )
            info = zipfile.ZipInfo(f"{prefix}/{name}")
            info.compress_type = compress
            with (
                (folder / name).open("rb") as source,
                archive.open(info, "w", force_zip64=True) as out,
            ):
                while block := source.read(READ_BLOCK):
                    out.write(block)
                    yield sink.drain()
            yield sink.drain()
    yield sink.drain()
