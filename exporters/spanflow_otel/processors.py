"""A batch span processor that counts, exactly, the spans it drops and the spans it fails to export.

How the SDK (1.3x-1.45) drops: `BatchSpanProcessor.on_end` hands each sampled span to
`BatchProcessor.emit`, which does ``self._queue.appendleft(span)`` on a
``deque(maxlen=max_queue_size)``; when the deque is full that append silently evicts the oldest
span from the other end. That eviction is the one and only queue-full drop. The SDK's own
``len(queue) == max_queue_size`` check before the append (used for its log line and metric)
is not atomic with the append nor with the worker thread popping batches, so it can miss or
double-count under concurrency. We therefore replace the (still empty) deque at construction
with `CountingDeque`, whose ``appendleft`` and ``pop`` share a lock: "full before this append"
is then exactly "this append evicts one span".

Failed exports are counted by `_CountingExporter`, which sits between the processor and the
OTLP exporter: the SDK exporters retry transient errors (HTTP 429/502/503/504, gRPC
UNAVAILABLE, RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED...) inside one ``export`` call until their
timeout, and log each attempt; only the final outcome of that call reaches the wrapper, so a
batch retried six times is still counted once, as the spans it held. A batch counts as failed
when the call returns anything but ``SUCCESS`` or raises (a refused connection, an error
status, a timeout, an encoding error); the exception still propagates to the SDK, which logs it.
"""

from __future__ import annotations

import inspect
import logging
import os
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

__all__ = ["DropCountingBatchSpanProcessor", "ExportCounts"]

logger = logging.getLogger("spanflow.tracing")


@dataclass(frozen=True, slots=True)
class ExportCounts:
    """What became of the spans handed to the OTLP exporters so far (destinations summed)."""

    exported: int = 0
    """Spans in batches the collector accepted."""
    failed: int = 0
    """Spans in batches the exporter gave up on after its retries: an error status (HTTP 500,
    429, gRPC UNAVAILABLE...), a refused connection, a timeout, or an exporter that raised."""
    dropped: int = 0
    """Spans evicted from a full export queue, never sent."""
    unsent: int = 0
    """Spans still queued or being sent; after a shutdown, those it had no time left for."""

    @property
    def total(self) -> int:
        """Every span handed to the exporters."""
        return self.exported + self.failed + self.dropped + self.unsent

    @property
    def lost(self) -> int:
        """Spans that did not reach the collector: failed, dropped or (after a shutdown) unsent."""
        return self.failed + self.dropped + self.unsent

    def __add__(self, other: ExportCounts) -> ExportCounts:
        return ExportCounts(
            self.exported + other.exported,
            self.failed + other.failed,
            self.dropped + other.dropped,
            self.unsent + other.unsent,
        )


class ExportCounter:
    """The spans a processor queued, exported, failed and dropped, under one lock of its own.

    Shared by `DropCountingBatchSpanProcessor` and `ChildProcessSpanProcessor`, so both count
    and report alike. The lock is a leaf: nothing else is taken while it is held, so any thread
    (the program's in ``on_end``, a feeder, a reader) may count at any time.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.queued = self.exported = self.failed = self.dropped = 0
        self._warned_full = False

    def count_queued(self) -> None:
        with self._lock:
            self.queued += 1

    def count_drop(self) -> None:
        """One span evicted from a full queue; the first drop is also logged, once."""
        with self._lock:
            self.dropped += 1
            first = not self._warned_full
            self._warned_full = True
        if first:
            logger.warning(
                "Span export queue is full: dropping spans (the collector is down or too slow "
                "for the span rate). Drops are counted in Telemetry.dropped_spans and reported "
                "at flush and shutdown."
            )

    def count_export(self, spans: int, delivered: bool) -> None:
        with self._lock:
            if delivered:
                self.exported += spans
            else:
                self.failed += spans

    @property
    def settled(self) -> bool:
        """True when every span queued so far was exported, failed or dropped."""
        with self._lock:
            return self.queued == self.exported + self.failed + self.dropped

    @property
    def counts(self) -> ExportCounts:
        with self._lock:
            exported, failed, dropped = self.exported, self.failed, self.dropped
            unsent = max(self.queued - exported - failed - dropped, 0)
        return ExportCounts(exported, failed, dropped, unsent)

    def forget_unsettled(self) -> None:
        """After a fork: the spans still queued or in flight are the parent's to deliver.

        The lock is new too: a thread that held it at the fork does not exist in this process.
        """
        self._lock = threading.Lock()
        self.queued = self.exported + self.failed + self.dropped


class CountingDeque(deque[Any]):
    """A bounded deque that reports every item added and every item its ``appendleft`` evicts."""

    def __init__(
        self, maxlen: int, on_drop: Callable[[], None], on_add: Callable[[], None]
    ) -> None:
        super().__init__((), maxlen)
        self._lock = threading.Lock()
        self._on_drop = on_drop
        self._on_add = on_add

    def appendleft(self, item: Any, /) -> None:
        with self._lock:
            evicts = len(self) == self.maxlen
            super().appendleft(item)
        self._on_add()
        if evicts:
            self._on_drop()

    def pop(self, *index: int) -> Any:
        with self._lock:
            return super().pop(*index)


class _CountingExporter(SpanExporter):
    """Passes each batch on to `exporter` and reports its size and whether it was delivered."""

    def __init__(self, exporter: SpanExporter, on_result: Callable[[int, bool], None]) -> None:
        self.exporter = exporter
        self._on_result = on_result

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        delivered = False
        try:
            result = self.exporter.export(spans)
            delivered = result is SpanExportResult.SUCCESS
            return result
        finally:
            self._on_result(len(spans), delivered)

    def shutdown(self, timeout_millis: float = 30_000) -> None:
        # The SDK passes its remaining budget to an exporter whose shutdown takes one.
        if "timeout_millis" in inspect.signature(self.exporter.shutdown).parameters:
            self.exporter.shutdown(timeout_millis=timeout_millis)  # type: ignore[call-arg]
        else:
            self.exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.exporter.force_flush(timeout_millis)


def env_int(name: str, default: int) -> int:
    """`name` as an integer; `default` when unset or not a number (as the SDK reads the
    ``OTEL_BSP_*`` variables). Both export processors read their sizes through it."""
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


class CountedProcessor:
    """The counting interface `Telemetry` reads, answered from the processor's `ExportCounter`
    (both export processors, in a thread and in a child process, are one)."""

    _counter: ExportCounter

    @property
    def dropped_spans(self) -> int:
        """Spans dropped so far because the export queue was full."""
        return self._counter.dropped

    @property
    def failed_spans(self) -> int:
        """Spans in batches the exporter gave up on (after its own retries), that raised, or
        that an export child took with it when it died."""
        return self._counter.failed

    @property
    def export_counts(self) -> ExportCounts:
        """Spans exported, failed, dropped and not sent yet (unsent is 0 if drops go uncounted)."""
        return self._counter.counts


class DropCountingBatchSpanProcessor(CountedProcessor, BatchSpanProcessor):
    """`BatchSpanProcessor` that counts queue-full drops, exports and failed exports, and
    bounds its shutdown."""

    def __init__(
        self,
        exporter: SpanExporter,
        *,
        max_queue_size: int | None = None,
        schedule_delay_millis: float | None = None,
        max_export_batch_size: int | None = None,
        shutdown_timeout_millis: float = 5000,
    ) -> None:
        if max_queue_size is not None and max_export_batch_size is None:
            # The SDK refuses a batch larger than the queue; a small queue means small batches.
            default = env_int("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512)
            max_export_batch_size = min(max_queue_size, default)
        self._counter = ExportCounter()
        super().__init__(
            _CountingExporter(exporter, self._counter.count_export),
            max_queue_size=max_queue_size,
            schedule_delay_millis=schedule_delay_millis,
            max_export_batch_size=max_export_batch_size,
        )
        self._shutdown_timeout_millis = shutdown_timeout_millis
        self.counts_drops = self._install_counting_queue()
        """False when this SDK version's queue was not recognised (drops go uncounted)."""

    def shutdown(self, timeout_millis: float | None = None) -> None:
        """Export what is queued and stop, within `timeout_millis` (default: the configured)."""
        budget = self._shutdown_timeout_millis if timeout_millis is None else timeout_millis
        # The SDK's BatchSpanProcessor.shutdown() would wait up to 30 s on a dead collector.
        self._batch_processor.shutdown(timeout_millis=max(0, int(budget)))

    def _install_counting_queue(self) -> bool:
        # Private SDK internals: the 1.3x+ layout (BatchProcessor._queue) and the older one
        # (BatchSpanProcessor.queue). Anything else: export still works, drops go uncounted.
        holder: object = getattr(self, "_batch_processor", self)
        name = "_queue" if hasattr(holder, "_queue") else "queue"
        queue = getattr(holder, name, None)
        if not isinstance(queue, deque) or queue.maxlen is None or queue:
            logger.warning(
                "This opentelemetry-sdk version's BatchSpanProcessor is not recognised; "
                "spans dropped on a full export queue will not be counted."
            )
            return False
        counter = self._counter
        setattr(holder, name, CountingDeque(queue.maxlen, counter.count_drop, counter.count_queued))
        return True
