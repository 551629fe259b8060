"""The export child process, and the wire format its parent and it share.

`ChildProcessSpanProcessor` (in `child_export`) keeps the OTLP exporter out of the traced
process: the SDK's protobuf encoding costs 45-85 µs per span, and on the traced process's GIL
that time is taken from the program's own threads. The parent turns each batch of finished
spans into plain tuples (`encode_batch`, 6-20 µs per span), pickles it and sends it to this
process, which rebuilds the spans (`decode_batch`) and hands them to the same OTLP exporter
`build_exporter` gives the in-process processor, encoding with `_otlp_encode` instead of the
SDK's encoder (`_use_fast_encoder`: the same messages in about a fourth of the time).

Frames, both ways: a 4-byte big-endian length, then a pickled tuple whose first item is a tag.
Parent to child: `CONFIG` (first, once), `BATCH`, `FLUSH`, `STOP`. Child to parent: `READY`
(the exporter is built), `DONE` (a batch's outcome), `FLUSHED` (every frame before the marker
was handled), `LOG` (a log record, re-emitted by the parent on the same logger). The settings
travel in the `CONFIG` frame rather than on the command line, where headers (often an API key)
would be visible to every user of the machine.

The child is started with ``python -P -c`` and a bootstrap that registers `spanflow_otel` as a bare
namespace (its ``__init__`` imports the engine, a second of imports the child does not need),
so only this module, `otlp`, `config` and `_otlp_encode` are imported here.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import signal
import struct
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import IO, Any

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY, attach, set_value
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.util import BoundedList
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.span import DEFAULT_TRACE_STATE, TraceState

__all__ = [
    "BATCH",
    "CONFIG",
    "DONE",
    "FLUSH",
    "FLUSHED",
    "LOG",
    "READY",
    "STOP",
    "EncodedBatch",
    "decode_batch",
    "encode_batch",
    "encode_frame",
    "main",
    "read_frame",
]

# Parent to child.
CONFIG = 0
"""``(CONFIG, endpoint, protocol, headers, timeout, log_level, parent_pid)``."""
BATCH = 1
"""``(BATCH, batch_id, resources, scopes, spans)``: see `encode_batch`."""
FLUSH = 2
"""``(FLUSH, marker)``: answer once every frame before it was handled."""
STOP = 3
"""``(STOP,)``: shut the exporter down and exit."""

# Child to parent.
READY = 10
"""``(READY, pid)``: the exporter is built; batches may come."""
DONE = 11
"""``(DONE, batch_id, span_count, delivered)``."""
FLUSHED = 12
"""``(FLUSHED, marker)``."""
LOG = 13
"""``(LOG, logger_name, level, message)``."""

_HEADER = struct.Struct(">I")

Attributes = dict[str, Any] | None
ContextRow = tuple[int, int, bool, int, tuple[tuple[str, str], ...]]
"""trace id, span id, is_remote, trace flags, trace state items."""
EventRow = tuple[str, int, Attributes, int]
"""name, timestamp, attributes, dropped attribute count."""
LinkRow = tuple[ContextRow, Attributes, int]
"""context, attributes, dropped attribute count."""
SpanRow = tuple[
    str,
    ContextRow | None,
    ContextRow | None,
    int,
    int | None,
    int | None,
    Attributes,
    int,
    tuple[EventRow, ...],
    int,
    tuple[LinkRow, ...],
    int,
    int,
    str | None,
    int,
    int,
]
"""name, context, parent, kind, start, end, attributes, dropped attributes, events, dropped
events, links, dropped links, status code, status description, resource index, scope index
(-1: none)."""
ResourceRow = tuple[Attributes, str]
ScopeRow = tuple[str, str | None, str | None, Attributes]
EncodedBatch = tuple[list[ResourceRow], list[ScopeRow], list[SpanRow]]


def encode_frame(message: tuple[Any, ...]) -> bytes:
    """`message` pickled and length-prefixed, ready to be written whole."""
    payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(payload)) + payload


def read_frame(stream: IO[bytes]) -> tuple[Any, ...] | None:
    """The next message on `stream`; None at end of stream (the other side is gone)."""
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    (length,) = _HEADER.unpack(header)
    payload = stream.read(length)
    if len(payload) < length:
        return None
    message: tuple[Any, ...] = pickle.loads(payload)
    return message


def encode_batch(spans: Sequence[ReadableSpan]) -> EncodedBatch:
    """`spans` as plain picklable rows; resources and scopes once each, in small tables.

    Runs in the traced process, on its GIL: it reads only what the OTLP encoder reads, and
    copies attribute dicts at C speed where it can (`_copy`).
    """
    resources: list[ResourceRow] = []
    scopes: list[ScopeRow] = []
    resource_index: dict[int, int] = {}
    scope_index: dict[int, int] = {}
    rows: list[SpanRow] = []
    for span in spans:
        resource = span.resource
        r = resource_index.get(id(resource))
        if r is None:
            r = resource_index[id(resource)] = len(resources)
            resources.append((_copy(resource.attributes), resource.schema_url))
        scope = span.instrumentation_scope
        s = -1
        if scope is not None:
            s = scope_index.get(id(scope), -1)
            if s < 0:
                s = scope_index[id(scope)] = len(scopes)
                scopes.append(
                    (scope.name, scope.version, scope.schema_url, _copy(scope.attributes))
                )
        rows.append(_span_row(span, r, s))
    return resources, scopes, rows


def _span_row(span: ReadableSpan, resource: int, scope: int) -> SpanRow:
    context, parent, status = span.context, span.parent, span.status
    # The private fields spare the copies the public properties make (a MappingProxyType, a
    # tuple per list); every ReadableSpan has them. `_otlp_encode._contents` reads the same in
    # the child.
    events, links = span._events, span._links
    return (
        span.name,
        None if context is None else _context_row(context),
        None if parent is None else _context_row(parent),
        span.kind.value,
        span.start_time,
        span.end_time,
        _copy(span._attributes),
        span.dropped_attributes,
        tuple([(e.name, e.timestamp, _copy(e.attributes), e.dropped_attributes) for e in events])
        if events
        else (),
        span.dropped_events,
        tuple([(_context_row(k.context), _copy(k.attributes), k.dropped_attributes) for k in links])
        if links
        else (),
        span.dropped_links,
        status.status_code.value,
        status.description,
        resource,
        scope,
    )


def decode_batch(
    resources: Sequence[ResourceRow], scopes: Sequence[ScopeRow], rows: Sequence[SpanRow]
) -> list[ReadableSpan]:
    """The `ReadableSpan`s `encode_batch` was given, equal in everything the encoder reads."""
    sdk_resources = [Resource(attributes or {}, schema_url) for attributes, schema_url in resources]
    sdk_scopes = [
        InstrumentationScope(name, version, schema_url, attributes)
        for name, version, schema_url, attributes in scopes
    ]
    return [_decode_span(row, sdk_resources, sdk_scopes) for row in rows]


def _decode_span(
    row: SpanRow, resources: Sequence[Resource], scopes: Sequence[InstrumentationScope]
) -> ReadableSpan:
    (name, context, parent, kind, start, end, attributes, dropped_attributes, events) = row[:9]
    (dropped_events, links, dropped_links, code, description, r, s) = row[9:]
    return ReadableSpan(
        name=name,
        context=None if context is None else _span_context(context),
        parent=None if parent is None else _span_context(parent),
        resource=resources[r],
        attributes=_bounded(attributes, dropped_attributes),
        events=_bounded_list(
            [Event(n, _bounded(a, dropped), t) for n, t, a, dropped in events], dropped_events
        ),
        links=_bounded_list(
            [Link(_span_context(c), _bounded(a, dropped)) for c, a, dropped in links],
            dropped_links,
        ),
        kind=SpanKind(kind),
        status=Status(StatusCode(code), description),
        start_time=start,
        end_time=end,
        instrumentation_scope=None if s < 0 else scopes[s],
    )


def _copy(attributes: Mapping[str, Any] | None) -> Attributes:
    if attributes is None:
        return None
    # BoundedAttributes keeps its items in a plain dict; copying that one is a C-level copy,
    # where dict(bounded) goes through the Mapping protocol key by key, under a lock.
    inner = getattr(attributes, "_dict", None)
    return dict(inner) if isinstance(inner, dict) else dict(attributes)


def _context_row(context: SpanContext) -> ContextRow:
    state = context.trace_state
    return (
        context.trace_id,
        context.span_id,
        context.is_remote,
        int(context.trace_flags),
        tuple(state.items()) if state else (),
    )


def _span_context(row: ContextRow) -> SpanContext:
    trace_id, span_id, is_remote, flags, state = row
    return SpanContext(
        trace_id,
        span_id,
        is_remote,
        TraceFlags(flags),
        TraceState(list(state)) if state else DEFAULT_TRACE_STATE,
    )


def _bounded(attributes: Attributes, dropped: int) -> Mapping[str, Any] | None:
    # The SDK reads a dropped count only off a BoundedAttributes; a plain dict is the same
    # export when nothing was dropped, and cheaper to build.
    if not dropped:
        return attributes
    bounded = BoundedAttributes(attributes=attributes, immutable=True)
    bounded.dropped = dropped
    return bounded


def _bounded_list(items: list[Any], dropped: int) -> Sequence[Any]:
    if not dropped:
        return items
    bounded: BoundedList[Any] = BoundedList(None)
    bounded.extend(items)
    bounded.dropped = dropped
    return bounded


class _Answers:
    """Writes frames to the parent; log records come from any thread, hence the lock."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._lock = threading.Lock()

    def send(self, message: tuple[Any, ...]) -> None:
        frame = memoryview(encode_frame(message))
        with self._lock:
            while frame:
                frame = frame[os.write(self._fd, frame) :]


class _ForwardingHandler(logging.Handler):
    """Sends every log record to the parent, which re-emits it on the same logger."""

    def __init__(self, answers: _Answers) -> None:
        super().__init__()
        self._answers = answers

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.exc_info:
                message += "\n" + logging.Formatter().formatException(record.exc_info)
            self._answers.send((LOG, record.name, record.levelno, message))
        except Exception:
            self.handleError(record)


def _export(exporter: SpanExporter, spans: Sequence[ReadableSpan]) -> bool:
    try:
        return exporter.export(spans) is SpanExportResult.SUCCESS
    except Exception:
        # The SDK's batch processor logs an exporter that raised this way, on this logger.
        logging.getLogger("opentelemetry.sdk._shared_internal").exception(
            "Exception while exporting Span."
        )
        return False


def _serve(requests: IO[bytes], answers: _Answers, exporter: SpanExporter) -> None:
    while (message := read_frame(requests)) is not None:
        tag = message[0]
        if tag == BATCH:
            _, batch_id, resources, scopes, rows = message
            try:
                spans = decode_batch(resources, scopes, rows)
            except Exception:
                logging.getLogger("spanflow.tracing").exception(
                    "The span export child could not rebuild a batch of %d spans.", len(rows)
                )
                answers.send((DONE, batch_id, len(rows), False))
                continue
            answers.send((DONE, batch_id, len(rows), _export(exporter, spans)))
        elif tag == FLUSH:
            answers.send((FLUSHED, message[1]))
        elif tag == STOP:
            return


def _exit_with(parent_pid: int) -> None:
    """Exit as soon as the parent is gone, even in the middle of an export.

    Spans a dead parent sent are counted by nobody, and a child that outlived its parent would
    hold the parent's stderr open: ``subprocess.run(capture_output=True)`` or a shell pipeline
    would then wait for the child's export retries instead of the parent's bounded shutdown.
    """
    while os.getppid() == parent_pid:
        time.sleep(0.1)
    os._exit(0)


def _build(config: tuple[Any, ...], answers: _Answers) -> SpanExporter:
    from spanflow_otel.otlp import ResolvedExport, build_exporter

    _, endpoint, protocol, headers, timeout, log_level, parent_pid = config
    threading.Thread(target=_exit_with, args=(parent_pid,), daemon=True).start()
    root = logging.getLogger()
    root.handlers[:] = [_ForwardingHandler(answers)]
    root.setLevel(log_level)
    exporter = build_exporter(ResolvedExport(endpoint, protocol, headers, timeout))
    _use_fast_encoder(sys.modules.get(type(exporter).__module__))
    _start_connecting(exporter)
    return exporter


def _use_fast_encoder(exporter_module: ModuleType | None) -> bool:
    """Make the OTLP exporter's module encode with `_otlp_encode.encode_spans`; True if it did.

    The SDK's exporters (HTTP in ``export``, gRPC in ``_translate_data``) call the
    ``encode_spans`` global of the module that defines them, and that encoder is most of this
    process's CPU: about 85 µs a span, where `_otlp_encode` takes a fourth of that for a
    message equal (``==``) to the SDK's, which the tests check over every shape of span, with
    the SDK's encoder taking any batch it cannot promise that for. Replacing a module global is
    acceptable here only because this process is our own and runs nothing but this exporter;
    the traced process's modules are never touched (``export_in="thread"`` keeps the SDK's
    encoder). A module without an ``encode_spans`` global (an SDK that renamed it) is left as
    it is, and so is every module when the fast path does not give this SDK's message for a
    sample of every part of a span (`matches_the_sdk`: an SDK that changed how it encodes):
    export still works, only slower.
    """
    if exporter_module is None or not hasattr(exporter_module, "encode_spans"):
        logging.getLogger("spanflow.tracing").debug("The export child keeps the SDK's encoder.")
        return False
    # Imported here, so that the parent, which imports this module for the wire format, does
    # not load (and build the tables of) an encoder it never uses.
    from spanflow_otel._otlp_encode import encode_spans, matches_the_sdk

    if not matches_the_sdk():
        logging.getLogger("spanflow.tracing").debug(
            "The export child keeps the SDK's encoder: the fast one does not match this SDK."
        )
        return False
    exporter_module.encode_spans = encode_spans  # type: ignore[attr-defined]
    return True


def _start_connecting(exporter: SpanExporter) -> None:
    """Let a gRPC channel connect while the first batch is on its way.

    A fresh process's first gRPC call connects first, on the export's own timeout; the thread
    processor's channel lives in a process that was usually connected already. Connecting
    now, in the background, keeps the first export as quick as the later ones.
    """
    channel = getattr(exporter, "_channel", None)
    subscribe = getattr(channel, "subscribe", None)
    if callable(subscribe):
        subscribe(lambda state: None, try_to_connect=True)


def main(fd: int) -> None:
    """Run the export child: frames in and answers out on the socket descriptor `fd`.

    The child runs in its own session, so a Ctrl-C at the terminal does not reach it; SIGINT
    and SIGTERM are ignored anyway, so that one sent to it by pid (a process manager) does not
    take the exporter away from the flush the parent then does. The child ends on `STOP`, at
    end of input, when its parent is gone (`_exit_with`), or killed at the end of the parent's
    shutdown budget.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # The program's stdout may be its data (a pipe to another program): what the exporter or
    # a library prints goes to stderr, with the diagnostics.
    with contextlib.suppress(OSError):
        os.dup2(2, 1)
    sys.stdout = sys.stderr
    logging.raiseExceptions = False
    answers = _Answers(fd)
    requests: IO[bytes] = os.fdopen(fd, "rb", closefd=False)
    # Exports make HTTP/gRPC calls; instrumentation loaded into this process must not trace them.
    attach(set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))
    try:
        config = read_frame(requests)
        if config is None or config[0] != CONFIG:
            return
        exporter = _build(config, answers)
        answers.send((READY, os.getpid()))
        try:
            _serve(requests, answers, exporter)
        finally:
            exporter.shutdown()
    except (BrokenPipeError, ConnectionResetError):
        pass  # The parent is gone; nobody is left to answer.
