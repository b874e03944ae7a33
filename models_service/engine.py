"""The batcher: rows from concurrent requests share `generate` calls, run in one worker thread.

A request becomes rows (n samples of each prompt). The worker waits a short window after the
oldest queued row arrives, then takes up to `max_rows` queued rows for that row's model, in arrival
order, and samples them with one `generate_rows` call. Rows of one request may span batches; the
request completes when all its rows are back. Because each row carries its own seed and settings,
the rows sampled do not depend on how they were batched.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

from models_service.registry import LoadedModel
from models_service.sampling import RowRequest, SampledRow, generate_rows


@dataclass
class _Job:
    model: LoadedModel
    rows: Sequence[RowRequest]
    future: Future
    results: list[SampledRow | None] = field(default_factory=list)
    remaining: int = 0

    def __post_init__(self) -> None:
        self.results = [None] * len(self.rows)
        self.remaining = len(self.rows)


@dataclass(frozen=True)
class _Slot:
    job: _Job
    index: int
    queued_at: float


@dataclass
class EngineStats:
    requests: int = 0
    rows: int = 0
    generate_calls: int = 0
    max_batch_rows: int = 0
    failed_batches: int = 0

    def as_dict(self) -> dict[str, float | int]:
        mean = self.rows / self.generate_calls if self.generate_calls else 0.0
        return {
            "requests": self.requests,
            "rows": self.rows,
            "generate_calls": self.generate_calls,
            "max_batch_rows": self.max_batch_rows,
            "mean_batch_rows": round(mean, 2),
            "failed_batches": self.failed_batches,
        }


class BatchEngine:
    """Collects rows from many threads and samples them in batches on one worker thread."""

    def __init__(self, *, window_s: float = 0.008, max_rows: int = 64) -> None:
        self.window_s = window_s
        self.max_rows = max_rows
        self._queue: deque[_Slot] = deque()
        self._condition = threading.Condition()
        self._stats = EngineStats()
        self._running = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        with self._condition:
            if self._running:
                return
            self._running = True
        self._thread = threading.Thread(target=self._work, name="batch-engine", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the worker after its current batch; queued requests fail with RuntimeError."""
        with self._condition:
            self._running = False
            pending, self._queue = list(self._queue), deque()
            self._condition.notify_all()
        for slot in pending:
            _fail(slot.job, RuntimeError("the inference engine is shutting down"))
        if self._thread is not None:
            self._thread.join(timeout)

    def submit(self, model: LoadedModel, rows: Sequence[RowRequest]) -> Future:
        """A future of the sampled rows, in the order of `rows`."""
        job = _Job(model=model, rows=list(rows), future=Future())
        if not rows:
            job.future.set_result([])
            return job.future
        now = time.monotonic()
        with self._condition:
            if not self._running:
                raise RuntimeError("the inference engine is not running")
            self._stats.requests += 1
            self._queue.extend(_Slot(job, index, now) for index in range(len(rows)))
            self._condition.notify_all()
        return job.future

    def stats(self) -> dict[str, float | int]:
        with self._condition:
            return {**self._stats.as_dict(), "queued_rows": len(self._queue)}

    def _work(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            self._run(batch)

    def _next_batch(self) -> list[_Slot] | None:
        with self._condition:
            while self._running:
                if not self._queue:
                    self._condition.wait()
                    continue
                wait = self._queue[0].queued_at + self.window_s - time.monotonic()
                if wait > 0 and len(self._queue) < self.max_rows:
                    self._condition.wait(wait)
                    continue
                return self._take_batch()
            return None

    def _take_batch(self) -> list[_Slot]:
        model = self._queue[0].job.model
        batch: list[_Slot] = []
        kept: deque[_Slot] = deque()
        while self._queue:
            slot = self._queue.popleft()
            if len(batch) < self.max_rows and slot.job.model is model:
                batch.append(slot)
            else:
                kept.append(slot)
        self._queue = kept
        return batch

    def _run(self, batch: list[_Slot]) -> None:
        live = [slot for slot in batch if not slot.job.future.done()]
        if not live:
            return
        model = live[0].job.model
        try:
            sampled = generate_rows(
                model.model, model.tokenizer, [slot.job.rows[slot.index] for slot in live]
            )
        except Exception as error:
            with self._condition:
                self._stats.failed_batches += 1
            for slot in live:
                _fail(slot.job, error)
            return
        with self._condition:
            self._stats.generate_calls += 1
            self._stats.rows += len(live)
            self._stats.max_batch_rows = max(self._stats.max_batch_rows, len(live))
        for slot, row in zip(live, sampled, strict=True):
            job = slot.job
            job.results[slot.index] = row
            job.remaining -= 1
            if job.remaining == 0 and not job.future.done():
                job.future.set_result(job.results)


def _fail(job: _Job, error: BaseException) -> None:
    if not job.future.done():
        job.future.set_exception(error)
