"""A span processor whose OTLP exporter runs in a child process, off the program's GIL.

The SDK's `BatchSpanProcessor` encodes every batch to protobuf on its worker thread: about
45-80 µs per span with two events, taken under the GIL the program's own threads need. Here the
traced process only turns spans into plain tuples and pickles them (a third of that or less, see
`_export_child.encode_batch`); an export child process rebuilds the spans and runs the very
exporter `build_exporter` makes (HTTP or gRPC, same headers and timeout).

The parts, and why each is so:

- `on_end` (the program's thread) appends to the same counting deque as
  `DropCountingBatchSpanProcessor`: bounded, the oldest span evicted and counted as dropped.
- The feeder thread sends batches every schedule delay, when a batch is full, or on a flush.
  At most two batches are in the child at once (the one it exports and the next, ready), so a
  slow collector backs up into the bounded deque, where drops are counted, exactly as with the
  thread processor, instead of into pipe buffers.
- The reader thread takes the child's answers: exported and failed counts, flush markers, and
  the child's log records, re-emitted on the same logger names (the exporter's warnings still
  reach this process's logging, the CLI's export report and caplog).
- A child that dies has the spans it had not answered counted as failed; a warning says so and
  a new child starts after a short backoff. A start that fails (no interpreter, an error
  starting it, no ready answer within `start_timeout`) is tried again after a backoff; after
  `_START_ATTEMPTS` in a row the processor exports in the feeder thread itself, with the same
  counting, after one warning: spans are never lost for want of a child. For the same reason
  a shutdown that finds the child still starting kills it and exports the queue from the
  feeder thread within its budget.
- No child at all, and export from the feeder thread from the start, where one would start
  the program again or cannot work: a frozen application (its executable is the app),
  Windows, no `sys.executable`, or a process started as an export child
  (``SPANFLOW_EXPORT_CHILD`` set).
- The child starts on the first span, from the feeder thread: ~45 MB and ~0.3 s of CPU that
  a program ending no span does not pay, and no wait on the program's thread.
- The child is a ``subprocess.Popen`` of the same interpreter, not `multiprocessing`: spawn
  would re-import the program's ``__main__``, fork is unsafe in a threaded program. It talks
  over a socket pair (its end handed over as an extra descriptor, see `_spawn`), written with
  ``MSG_NOSIGNAL`` where there is one, so a program that restored the default SIGPIPE
  disposition is not killed when a child dies.
- After `os.fork()` the forked process closes its inherited end of the socket (the child
  would otherwise never see its end of input) and starts its own child on its next span.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opentelemetry.context import (
    _SUPPRESS_INSTRUMENTATION_KEY,
    Context,
    attach,
    detach,
    set_value,
)
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from spanflow_otel import _export_child as wire
from spanflow_otel.otlp import ResolvedExport, build_exporter
from spanflow_otel.processors import CountedProcessor, CountingDeque, ExportCounter, env_int

__all__ = ["ChildProcessSpanProcessor"]

logger = logging.getLogger("spanflow.tracing")

_MAX_BATCHES_IN_CHILD = 2
"""Batches sent to the child and not answered yet, at most: the one it exports, the next."""
_FIRST_BACKOFF = 0.25
_MAX_BACKOFF = 8.0
_START_ATTEMPTS = 3
"""Starts tried in a row before exporting from the feeder thread for good: one start can be
unlucky (a signal sent to the child while it imports, a loaded machine past `start_timeout`)."""
_NO_SIGNAL = getattr(socket, "MSG_NOSIGNAL", 0)
_PACKAGE_DIR = str(Path(__file__).resolve().parent)
_EXPORT_CHILD_ENV = "SPANFLOW_EXPORT_CHILD"
"""Set in the export child's environment: a processor made where it is set never starts a
child (an embedding host or frozen app whose "interpreter" re-runs the program would
otherwise start copies of itself without end)."""
_BOOTSTRAP = (
    "import sys\n"
    "sys.path[:] = [p for p in sys.path if p] + [p for p in sys.argv[3:] if p not in sys.path]\n"
    "package = type(sys)('spanflow_otel')\n"
    "package.__path__ = [sys.argv[1]]\n"
    "sys.modules['spanflow_otel'] = package\n"
    "from spanflow_otel._export_child import main\n"
    "main(int(sys.argv[2]))\n"
)
"""Run with ``-P`` (no unsafe path entry: a stray ``types.py`` or ``logging.py`` in the current
directory is never imported) and importing only ``sys`` before it cleans the path. Registers
`spanflow_otel` without running its ``__init__`` (which imports the engine) and adds the
parent's path after the child's own, so packages the parent found are found too. ``argv``:
the package directory, the socket's descriptor number, the parent's path."""


def _no_child_reason(python: str | None) -> str | None:
    """Why this process must export in a thread rather than start a child; None if it may."""
    if os.environ.get(_EXPORT_CHILD_ENV):
        return f"{_EXPORT_CHILD_ENV} is set (this process was started as an export child)"
    if getattr(sys, "frozen", False):
        return "a frozen application's executable is the application, not a Python interpreter"
    if os.name == "nt":
        return "on Windows a socket cannot be handed to a child process as a file descriptor"
    if not python:
        return "no Python interpreter is known (sys.executable is empty)"
    return None


def _parent_path() -> list[str]:
    """This process's import path, absolute, for the child to search after its own."""
    return [os.path.abspath(entry) for entry in sys.path if entry]


@dataclass(slots=True)
class _ExportChild:
    """One export child process and what it was sent; fields guarded by the processor's lock."""

    process: subprocess.Popen[bytes]
    sock: socket.socket
    ready: threading.Event = field(default_factory=threading.Event)
    """Set when the child said it is ready, or ended before."""
    ended: bool = False
    expected_end: bool = False
    """We stopped or killed it: its end is no failure, and nothing restarts."""
    in_flight: dict[int, int] = field(default_factory=dict)
    """Batch id to span count, for batches sent and not answered."""
    marker_sent: int = 0

    def send(self, frame: bytes) -> None:
        self.sock.sendall(frame, _NO_SIGNAL)

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            self.process.kill()

    def abandon(self) -> None:
        """In a forked process: close the inherited socket without touching the child."""
        with contextlib.suppress(OSError):
            os.close(self.sock.detach())


class _InThreadExport:
    """The fallback: the OTLP exporter called from the feeder thread, built on first use."""

    def __init__(self, resolved: ResolvedExport) -> None:
        self._resolved = resolved
        self._exporter: SpanExporter | None = None

    def export(self, spans: Sequence[ReadableSpan]) -> bool:
        token = attach(set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))
        try:
            if self._exporter is None:
                self._exporter = build_exporter(self._resolved)
            return self._exporter.export(spans) is SpanExportResult.SUCCESS
        except Exception:
            logging.getLogger("opentelemetry.sdk._shared_internal").exception(
                "Exception while exporting Span."
            )
            return False
        finally:
            detach(token)

    def shutdown(self) -> None:
        if self._exporter is not None:
            self._exporter.shutdown()


_Sink = _ExportChild | _InThreadExport
"""Where the feeder sends batches: the child, or (the fallback) the exporter in this process."""


class ChildProcessSpanProcessor(CountedProcessor, SpanProcessor):
    """Batches finished spans to an OTLP exporter in a child process; counts like
    `DropCountingBatchSpanProcessor` (exported, failed, dropped, unsent) and bounds its
    flush and shutdown the same way."""

    def __init__(
        self,
        resolved: ResolvedExport,
        *,
        max_queue_size: int | None = None,
        schedule_delay_millis: float | None = None,
        max_export_batch_size: int | None = None,
        shutdown_timeout_millis: float = 5000,
        python_executable: str | None = None,
        start_timeout: float = 5.0,
    ) -> None:
        """
        Args:
            resolved: Where and how to export (see `resolve_export`).
            max_queue_size: Spans waiting; ``None``: `OTEL_BSP_MAX_QUEUE_SIZE`, else 2048.
            schedule_delay_millis: Between two exports; ``None``: `OTEL_BSP_SCHEDULE_DELAY`,
                else 5000.
            max_export_batch_size: ``None``: `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`, else 512, at
                most the queue size.
            shutdown_timeout_millis: `shutdown()`'s budget when it is given none.
            python_executable: The interpreter the child runs on (default: this one); one
                that is not a working Python makes the processor export in this process.
            start_timeout: Seconds a child has to say it is ready before it is given up.
        """
        queue_size = max_queue_size
        if queue_size is None:
            queue_size = env_int("OTEL_BSP_MAX_QUEUE_SIZE", 2048)
        batch_size = max_export_batch_size
        if batch_size is None:
            batch_size = min(queue_size, env_int("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512))
        delay = schedule_delay_millis
        if delay is None:
            delay = env_int("OTEL_BSP_SCHEDULE_DELAY", 5000)
        if queue_size <= 0 or not 0 < batch_size <= queue_size or delay <= 0:
            raise ValueError(
                "ChildProcessSpanProcessor needs max_queue_size > 0, 0 < max_export_batch_size "
                f"<= max_queue_size and schedule_delay_millis > 0 (got {queue_size}, "
                f"{batch_size}, {delay})"
            )
        self._resolved = resolved
        self._queue_size = queue_size
        self._batch_size = batch_size
        self._delay = delay / 1000
        self._shutdown_timeout_millis = shutdown_timeout_millis
        self._python = sys.executable if python_executable is None else python_executable
        self._start_timeout = start_timeout
        self.counts_drops = True
        """Always True: this processor's queue is its own (kept for `Telemetry`'s protocol)."""
        self._counter = ExportCounter()
        self._is_shut_down = False
        self._local: _InThreadExport | None = None
        self._fallback: _InThreadExport | None = None
        """Set once no child could start: every batch is exported in the feeder thread."""
        self._no_child = _no_child_reason(self._python)
        """Why this process never starts a child (then it exports in a thread from the start)."""
        self._new_machinery()
        if self._no_child is not None:
            logger.info("Spans are exported from this process's feeder thread: %s.", self._no_child)
        if hasattr(os, "register_at_fork"):  # not on Windows, where nothing forks
            weak_reset = weakref.WeakMethod(self._after_fork_in_child)
            os.register_at_fork(after_in_child=lambda: (reset := weak_reset()) and reset())
        # No child, nor feeder thread, until the first span: a program that ends none (or a
        # configure() "just in case") does not pay for a child process (~45 MB, ~0.3 s CPU).

    def _new_machinery(self) -> None:
        """Locks, queue, threads and flush bookkeeping: fresh at start and after a fork."""
        self._lock = threading.Lock()
        self._settled = threading.Condition(self._lock)
        self._wake = threading.Event()
        counter = self._counter
        self._queue = CountingDeque(self._queue_size, counter.count_drop, counter.count_queued)
        self._feeder: threading.Thread | None = None
        self._child: _ExportChild | None = None
        self._closing = False
        self._close_deadline = 0.0
        self._finished = False
        self._owed = 0
        self._batch_ids = 0
        self._flush_requested = self._flush_taken = self._flush_sent = self._flush_answered = 0
        self._restart_at = 0.0
        self._backoff = _FIRST_BACKOFF
        self._start_failures = 0
        self._local = None
        self._fallback = None
        if self._no_child is not None:
            self._fallback = self._in_thread()

    @property
    def child_pid(self) -> int | None:
        """The export child's process id; None while there is none (or after the fallback)."""
        child = self._child
        return None if child is None or child.ended else child.process.pid

    @property
    def exports_in_thread(self) -> bool:
        """True when this process exports itself: no child could be started, or none may be."""
        return self._fallback is not None

    # SpanProcessor.

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        """Queue `span` (on the program's thread: kept to an append and a length check)."""
        if self._is_shut_down:
            return
        context = span.context
        if context is None or not context.trace_flags.sampled:
            return
        if self._feeder is None:
            self._start_feeder()  # the first span: the feeder starts the child, off this thread
        queue = self._queue
        queue.appendleft(span)
        if len(queue) >= self._batch_size and not self._wake.is_set():
            self._wake.set()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Send everything that ended before the call; True once the child confirmed it had
        handled all of it (exported or failed) within `timeout_millis`."""
        if self._is_shut_down:
            return False
        deadline = time.monotonic() + max(timeout_millis, 0) / 1000
        marker = self._request_flush()
        return marker == 0 or self._wait_flushed(marker, deadline)

    def shutdown(self, timeout_millis: float | None = None) -> None:
        """Export what is queued and stop the child, within `timeout_millis` (default: the
        configured); a child still busy at the deadline is killed. Idempotent."""
        with self._lock:
            if self._is_shut_down:
                return
            self._is_shut_down = True
        budget = self._shutdown_timeout_millis if timeout_millis is None else timeout_millis
        # At exit the interpreter may end this thread before its last act, the kill; the child
        # then sees its parent gone and exits by itself (`_export_child._exit_with`).
        deadline = time.monotonic() + max(budget, 0) / 1000
        marker = self._request_flush()
        with self._settled:
            self._closing = True
            self._close_deadline = deadline
            starting = self._child if self._child and not self._child.ready.is_set() else None
            if starting is not None:
                starting.expected_end = True
            self._settled.notify_all()
        if starting is not None:
            # A child still importing may not be ready before the budget ends (on a loaded
            # machine it takes seconds); what is queued is exported from here instead.
            starting.kill()
        self._wake.set()
        if marker:
            self._wait_flushed(marker, deadline)
        feeder = self._feeder
        if feeder is not None:
            feeder.join(max(deadline - time.monotonic(), 0))
        self._stop_child(deadline)

    # Flushing.

    def _request_flush(self) -> int:
        """A new flush marker, or 0 when every span queued so far is settled already."""
        if self._counter.settled:
            return 0
        with self._settled:
            self._flush_requested += 1
            marker = self._flush_requested
            self._settled.notify_all()
        if self._feeder is None:
            self._start_feeder()
        self._wake.set()
        return marker

    def _wait_flushed(self, marker: int, deadline: float) -> bool:
        with self._settled:
            while self._flush_answered < marker:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._settled.wait(remaining)
        return True

    def _stop_child(self, deadline: float) -> None:
        child = self._child
        if child is None:
            return
        with self._lock:
            child.expected_end = True
        try:
            child.process.wait(max(deadline - time.monotonic(), 0))
        except subprocess.TimeoutExpired:
            child.kill()

    # The feeder thread.

    def _start_feeder(self) -> None:
        with self._lock:
            if self._feeder is not None or self._is_shut_down:
                return
            self._feeder = threading.Thread(
                target=self._feed, daemon=True, name="spanflow-export-feeder"
            )
        self._feeder.start()

    def _feed(self) -> None:
        """Send batches when due, until the shutdown's stop was sent (or its time ran out)."""
        feeder = self._feeder
        self._guarded(self._sink)  # Start the child now, before the first batch is due.
        next_tick = time.monotonic() + self._delay
        while not self._finished and self._feeder is feeder:
            self._wake.wait(max(self._next_wake(next_tick) - time.monotonic(), 0))
            self._wake.clear()
            if time.monotonic() >= next_tick:
                with self._lock:
                    self._owed = max(self._owed, min(len(self._queue), self._batch_size))
                next_tick = time.monotonic() + self._delay
            self._guarded(self._feed_once)

    def _guarded(self, step: Callable[[], object]) -> None:
        # Tracing must never break the program, nor stop exporting over one bad batch.
        try:
            step()
        except Exception:
            logger.exception("The span export feeder failed; it goes on with the next batch.")

    def _next_wake(self, next_tick: float) -> float:
        """When the feeder looks again: the next tick, or, while a new child waits for its
        backoff, the restart time. Nothing wakes the feeder when a backoff ends, and a restart
        due already (the last start failed just now) must not make it spin: hence 50 ms at
        least, short enough that a flush waiting for the new child hardly notices."""
        if self._child is None and self._fallback is None and not self._closing:
            return min(next_tick, max(self._restart_at, time.monotonic() + 0.05))
        return next_tick

    def _feed_once(self) -> None:
        """One round of the feeder: the batches due, to the child (or this thread), the flush
        marker as soon as the batches it covers are sent, and while closing the stop.

        The marker goes out in the middle of the round, not after it: under steady load the
        queue never drains, and a flush must not wait for spans that ended after it.
        """
        sink = None if self._out_of_time() else self._sink()
        if sink is None:
            if self._out_of_time():
                self._give_up()
            return
        while (count := self._due()) and not self._out_of_time():
            if isinstance(sink, _ExportChild) and not self._wait_for_room(sink):
                return
            spans = [self._queue.pop() for _ in range(min(count, len(self._queue)))]
            with self._lock:
                self._owed = max(self._owed - len(spans), 0)
            if spans:
                self._send_batch(sink, spans)
            self._send_marker(sink)
        self._send_marker(sink)
        if self._out_of_time():
            self._give_up()
        elif self._closing:
            self._finish(sink)

    def _out_of_time(self) -> bool:
        """Closing, and the shutdown's budget is spent: what is still queued stays unsent."""
        return self._closing and time.monotonic() >= self._close_deadline

    def _due(self) -> int:
        """How many spans to send now: a full batch, or what a flush, the timer or the
        shutdown owes."""
        with self._lock:
            queued = len(self._queue)
            if self._flush_requested > self._flush_taken:
                self._owed = max(self._owed, queued)
                self._flush_taken = self._flush_requested
            if self._closing:
                self._owed = max(self._owed, queued)  # even spans that ended after the flush
            if not queued:
                self._owed = 0
                return 0
            if queued >= self._batch_size or self._owed:
                return min(queued, self._batch_size)
            return 0

    def _wait_for_room(self, child: _ExportChild) -> bool:
        with self._settled:
            while len(child.in_flight) >= _MAX_BATCHES_IN_CHILD and not child.ended:
                self._settled.wait(1.0)
            return not child.ended

    def _send_marker(self, sink: _Sink) -> None:
        with self._lock:
            if self._owed or self._flush_taken <= self._flush_sent:
                return
            marker = self._flush_sent = self._flush_taken
        if isinstance(sink, _ExportChild):
            with self._lock:
                sink.marker_sent = marker
            self._write(sink, wire.encode_frame((wire.FLUSH, marker)))
        else:
            self._settle_flush(marker)

    def _finish(self, sink: _Sink) -> None:
        """While closing: once everything was sent, stop the child (or the fallback)."""
        with self._lock:
            if self._queue or self._flush_sent < self._flush_requested:
                return
            self._finished = True
        if isinstance(sink, _ExportChild):
            self._write(sink, wire.encode_frame((wire.STOP,)))
            with contextlib.suppress(OSError):
                sink.sock.shutdown(socket.SHUT_WR)
        self._shutdown_local()

    def _give_up(self) -> None:
        """Closing and out of time: the feeder ends, what is queued stays unsent (the shutdown
        kills a child still busy)."""
        self._finished = True
        self._shutdown_local()

    def _shutdown_local(self) -> None:
        local, self._local = self._local, None
        if local is not None:
            local.shutdown()

    # Sending.

    def _sink(self) -> _Sink | None:
        """The running child (started or restarted if due); the in-thread exporter after the
        fallback, or while closing without a child; None while a restart waits its backoff."""
        no_child = self._fallback is None and self._child is None and not self._closing
        if no_child and time.monotonic() >= self._restart_at:
            self._start_child()  # sets self._child, or schedules a retry, or falls back
        if self._fallback is not None:
            return self._fallback
        child = self._child
        if child is not None and not child.ended:
            return child
        if self._closing and not self._out_of_time():
            # No child to finish with: export the rest from here while the budget lasts.
            return self._in_thread()
        return None

    def _send_batch(self, sink: _Sink, spans: list[ReadableSpan]) -> None:
        """Send `spans` to the child, or export them here when the child cannot take them (it
        ended meanwhile, or they do not pickle): they were popped already, and the bounded
        queue has no room to give them back without evicting others."""
        if isinstance(sink, _ExportChild) and self._send_to_child(sink, spans):
            return
        self._count_export(len(spans), self._in_thread().export(spans))

    def _send_to_child(self, child: _ExportChild, spans: list[ReadableSpan]) -> bool:
        """False when `child` cannot take `spans`; True when sent (or, out of time, given up)."""
        with self._lock:
            self._batch_ids += 1
            batch_id = self._batch_ids
        try:
            frame = wire.encode_frame((wire.BATCH, batch_id, *wire.encode_batch(spans)))
        except Exception:
            logger.exception(
                "A batch of %d spans could not be sent to the export child; exporting it in "
                "this process.",
                len(spans),
            )
            return False
        with self._lock:
            if child.ended:
                # Killed at the shutdown's deadline: these spans stay unsent, as the others left.
                return self._closing and time.monotonic() >= self._close_deadline
            child.in_flight[batch_id] = len(spans)
        self._write(child, frame)
        return True

    def _write(self, child: _ExportChild, frame: bytes) -> None:
        """Write `frame` whole, or nothing if the child died: its reader then sees the end and
        counts what the child had not answered, so the feeder need not know."""
        with contextlib.suppress(OSError):
            child.send(frame)

    def _in_thread(self) -> _InThreadExport:
        if self._local is None:
            self._local = _InThreadExport(self._resolved)
        return self._local

    # The child's life.

    def _start_child(self) -> _ExportChild | None:
        """A started, ready child; None when this start failed (another is tried after a
        backoff; after `_START_ATTEMPTS` failures in a row, the fallback) or the shutdown
        began meanwhile."""
        try:
            child = self._spawn()
        except Exception as error:
            # EMFILE on the socket pair, an interpreter that is missing or not a string, a
            # thread that cannot start: any of them means this start, not tracing, failed.
            self._start_failed(f"{self._python} could not be started ({error})")
            return None
        with self._lock:
            closing = child.expected_end = self._closing
            if not closing:
                self._child = child
        if closing:
            child.kill()
            return None
        self._write(child, wire.encode_frame(self._config_message()))
        ready = child.ready.wait(self._start_timeout)
        with self._lock:
            started = ready and not child.ended and not child.expected_end
            expected = child.expected_end or self._closing
            if not started:
                child.expected_end = True
                if self._child is child:
                    self._child = None
        if started:
            self._start_failures = 0
            return child
        child.kill()
        if not expected:
            self._start_failed(
                f"the child did not report ready within {self._start_timeout:g} s"
                if not ready
                else f"the child exited at start (exit code {child.process.poll()})"
            )
        return None

    def _spawn(self) -> _ExportChild:
        """The child process and its reader thread; on any error, nothing left behind.

        The socket is handed over as an extra descriptor (its number in ``argv``), not as
        stdin and stdout: whatever the interpreter prints while it starts (a ``sitecustomize``,
        a warning) cannot reach the frames. Its own session keeps a Ctrl-C sent to the
        program's process group from killing it mid-import; its environment marks it as an
        export child, so a host whose "interpreter" re-runs the program never recurses.
        """
        parent_end, child_end = socket.socketpair()
        process: subprocess.Popen[bytes] | None = None
        try:
            fd = child_end.fileno()
            process = subprocess.Popen(
                [self._python, "-P", "-c", _BOOTSTRAP, _PACKAGE_DIR, str(fd), *_parent_path()],
                stdin=subprocess.DEVNULL,
                pass_fds=(fd,),
                start_new_session=True,
                env={**os.environ, _EXPORT_CHILD_ENV: "1"},
            )
            child = _ExportChild(process, parent_end)
            threading.Thread(
                target=self._read_answers, args=(child,), daemon=True, name="spanflow-export-reader"
            ).start()
        except BaseException:
            parent_end.close()
            if process is not None:
                with contextlib.suppress(OSError):
                    process.kill()
                process.wait()
            raise
        finally:
            child_end.close()
        return child

    def _start_failed(self, reason: str) -> None:
        """Try again after a backoff, or (the last attempt) export in the feeder for good."""
        self._start_failures += 1
        if self._start_failures >= _START_ATTEMPTS:
            self._fall_back(reason)
            return
        with self._lock:
            delay = self._backoff
            self._restart_at = time.monotonic() + delay
            self._backoff = min(delay * 2, _MAX_BACKOFF)
        logger.info("Starting the span export child failed (%s); retrying in %g s.", reason, delay)

    def _config_message(self) -> tuple[Any, ...]:
        resolved = self._resolved
        # Records below the level the program logs at would only be discarded on arrival.
        level = min(logging.getLogger().getEffectiveLevel(), logging.WARNING)
        return (
            wire.CONFIG,
            resolved.endpoint,
            resolved.protocol,
            dict(resolved.headers),
            resolved.timeout,
            level,
            os.getpid(),
        )

    def _fall_back(self, reason: str) -> None:
        self._fallback = self._in_thread()
        logger.warning(
            "The span export child process could not be started: %s. Spans are exported from "
            "this process instead (their encoding then runs on the program's GIL).",
            reason,
        )

    def _read_answers(self, child: _ExportChild) -> None:
        """The reader thread of one child: its answers, until it ends.

        A frame that cannot be read or makes no sense leaves the stream out of step: the child
        is killed, and ends like one that died (its unanswered spans failed, a new one started).
        """
        stream = child.sock.makefile("rb")
        try:
            while (message := wire.read_frame(stream)) is not None:
                self._on_answer(child, message)
        except OSError as error:
            logger.debug("Reading the span export child's answers stopped: %r", error)
        except Exception as error:
            logger.warning(
                "The span export child sent an unreadable answer (%r); stopping it.", error
            )
            child.kill()
        finally:
            stream.close()
            self._child_ended(child)

    def _on_answer(self, child: _ExportChild, message: tuple[Any, ...]) -> None:
        tag = message[0]
        if tag == wire.DONE:
            _, batch_id, count, delivered = message
            self._counter.count_export(count, delivered)
            with self._settled:
                child.in_flight.pop(batch_id, None)
                self._backoff = _FIRST_BACKOFF
                self._settled.notify_all()
        elif tag == wire.FLUSHED:
            self._settle_flush(message[1])
        elif tag == wire.LOG:
            _, name, level, text = message
            logging.getLogger(name).log(level, text)
        elif tag == wire.READY:
            child.ready.set()

    def _child_ended(self, child: _ExportChild) -> None:
        """Count what a child took with it and, if it died on its own, schedule a new one."""
        try:
            returncode = child.process.wait(5)
        except subprocess.TimeoutExpired:
            child.kill()
            returncode = child.process.wait()
        child.sock.close()
        with self._settled:
            child.ended = True
            lost = sum(child.in_flight.values())
            child.in_flight.clear()
            died = child.ready.is_set() and not (child.expected_end or self._closing)
            if died:
                self._counter.count_export(lost, delivered=False)
                self._flush_answered = max(self._flush_answered, child.marker_sent)
                self._restart_at = time.monotonic() + self._backoff
                self._backoff = min(self._backoff * 2, _MAX_BACKOFF)
            if self._child is child:
                self._child = None
            self._settled.notify_all()
        child.ready.set()
        self._wake.set()
        if died:
            logger.warning(
                "The span export child process (pid %d) ended unexpectedly (exit code %s); "
                "the %d spans it had not answered are counted as failed. A new one starts.",
                child.process.pid,
                returncode,
                lost,
            )

    # Counting.

    def _count_export(self, spans: int, delivered: bool) -> None:
        self._counter.count_export(spans, delivered)

    def _settle_flush(self, marker: int) -> None:
        with self._settled:
            self._flush_answered = max(self._flush_answered, marker)
            self._settled.notify_all()

    # Fork safety.

    def _after_fork_in_child(self) -> None:
        """In a forked process: drop the parent's child, queue and threads; keep the counts.

        The spans still queued or in flight are the parent's to deliver, so they leave this
        process's books (nothing is unsent here); a new export child starts on the next span.
        """
        child = self._child
        if child is not None:
            child.abandon()
        # An exporter built here holds the parent's gRPC channel or HTTP pool: _new_machinery
        # drops it (and the fallback that may be it).
        self._counter.forget_unsettled()
        self._new_machinery()
