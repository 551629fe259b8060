"""The OTLP exporter in a child process: spans arrive as the thread processor sends them, and
drops, failures, flushes, shutdowns, a killed child, a fork and a child that cannot start are
all handled as the thread processor handles them, or better."""

from __future__ import annotations

import io
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import spanflow_otel as so
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope as ProtoScope
from opentelemetry.proto.resource.v1.resource_pb2 import Resource as ProtoResource
from opentelemetry.proto.trace.v1.trace_pb2 import Span as ProtoSpan
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanLimits, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.span import TraceState
from spanflow_otel import _export_child as wire
from spanflow_otel import child_export

from tests.support.otlp_receiver import OtlpReceiver, otlp_receiver

PROTOCOLS: list[so.OtlpProtocol] = ["http/protobuf", "grpc"]
MARGIN = 0.5
"""Seconds a bounded call may overrun on a loaded machine."""
MANUAL = 600_000
"""A schedule delay no test waits for: batches go when full or flushed."""


def endpoint_of(receiver: OtlpReceiver, protocol: so.OtlpProtocol) -> str:
    return receiver.grpc_endpoint if protocol == "grpc" else receiver.http_endpoint


def resolved(
    receiver: OtlpReceiver, protocol: so.OtlpProtocol = "http/protobuf", timeout: float = 2.0
) -> so.ResolvedExport:
    """Where `receiver` listens for `protocol`, with an export `timeout` in seconds."""
    return so.ResolvedExport(endpoint_of(receiver, protocol), protocol, {}, timeout)


@pytest.fixture
def processors() -> Iterator[list[SpanProcessor]]:
    """Processors made by a test, shut down after it (briefly: some face a hung collector)."""
    made: list[SpanProcessor] = []
    yield made
    for processor in made:
        processor.shutdown()


def child_processor(
    processors: list[SpanProcessor], destination: so.ResolvedExport, **options: Any
) -> so.ChildProcessSpanProcessor:
    options.setdefault("schedule_delay_millis", MANUAL)
    options.setdefault("shutdown_timeout_millis", 1000)
    processor = so.ChildProcessSpanProcessor(destination, **options)
    processors.append(processor)
    return processor


def tracer_for(*processors: SpanProcessor) -> trace.Tracer:
    provider = TracerProvider(shutdown_on_exit=False)
    for processor in processors:
        provider.add_span_processor(processor)
    return provider.get_tracer("test")


def emit(tracer: trace.Tracer, *names: str) -> None:
    for name in names:
        tracer.start_span(name).end()


def wait_until(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


# Spans arrive intact.

ExportedSpan = tuple[ProtoResource, str, ProtoScope, str, ProtoSpan]


def exported(receiver: OtlpReceiver) -> list[ExportedSpan]:
    """Every span received, with its resource and scope, as the OTLP messages that carried it."""
    spans = [
        (rs.resource, rs.schema_url, ss.scope, ss.schema_url, span)
        for request in receiver.requests
        for rs in request.message.resource_spans
        for ss in rs.scope_spans
        for span in ss.spans
    ]
    return sorted(spans, key=lambda item: item[4].span_id)


def emit_every_kind_of_detail(provider: TracerProvider) -> None:
    """Spans with all an OTLP span can carry: two scopes, a remote parent with a trace state,
    events, links, an error status, every attribute type, and attributes, events and links
    dropped by the span limits."""
    workflows = provider.get_tracer(
        "spanflow.workflows", "1.2.3", "https://opentelemetry.io/schemas/1.26.0", {"team": "core"}
    )
    agents = provider.get_tracer("spanflow.agents")
    remote = SpanContext(
        0x1234,
        0x99,
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
        trace_state=TraceState([("vendor", "value"), ("other", "1")]),
    )
    linked = SpanContext(0x5678, 0x77, is_remote=False, trace_state=TraceState([("linked", "yes")]))
    parent_context = trace.set_span_in_context(trace.NonRecordingSpan(remote))
    with workflows.start_as_current_span(
        "invoke_workflow checkout",
        context=parent_context,
        kind=SpanKind.SERVER,
        links=[
            Link(SpanContext(0x5678, 0x76, is_remote=False), {"evicted by": "the limit"}),
            Link(linked, {"why": "retry", "attempt": 2, "dropped": True}),
        ],
        attributes={
            "text": "é ünïcode",
            "count": 3,
            "ratio": 0.5,
            "flag": False,
            "texts": ("a", "b"),
            "counts": (1, 2, 3),
            "dropped by the limit": "x",
        },
    ) as root:
        root.add_event("evicted by the limit of two events")
        root.add_event("with attributes", {"key": "value", "n": 1, "dropped": "x"})
        root.add_event("timed", timestamp=1_700_000_000_000_000_000)
        with agents.start_as_current_span("agent.run", kind=SpanKind.CLIENT) as child:
            child.set_status(Status(StatusCode.ERROR, "the model refused"))
            child.record_exception(ValueError("bad answer"))
        agents.start_span("plain", kind=SpanKind.PRODUCER).end()
        root.set_status(Status(StatusCode.OK))


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_spans_reach_the_collector_exactly_as_the_thread_processor_sends_them(
    processors: list[SpanProcessor], protocol: so.OtlpProtocol
) -> None:
    with otlp_receiver() as through_thread, otlp_receiver() as through_child:
        thread = so.DropCountingBatchSpanProcessor(
            so.build_exporter(resolved(through_thread, protocol)),
            schedule_delay_millis=MANUAL,
        )
        processors.append(thread)
        child = child_processor(processors, resolved(through_child, protocol))
        provider = TracerProvider(
            resource=Resource.create({"service.name": "shop", "deployment.environment.name": "ci"}),
            span_limits=SpanLimits(
                max_span_attributes=6, max_events=2, max_links=1, max_attributes=2
            ),
            id_generator=so.SequentialIdGenerator(),
            shutdown_on_exit=False,
        )
        provider.add_span_processor(thread)
        provider.add_span_processor(child)

        emit_every_kind_of_detail(provider)
        assert thread.force_flush()
        assert child.force_flush()

        via_thread, via_child = exported(through_thread), exported(through_child)

    assert via_child == via_thread
    root = next(span for *_, span in via_child if span.name == "invoke_workflow checkout")
    # The details the comparison covers are really there.
    assert (root.dropped_attributes_count, root.dropped_events_count) == (1, 1)
    assert root.dropped_links_count == 1
    assert root.links[0].dropped_attributes_count == 1
    assert root.events[0].dropped_attributes_count == 1
    assert root.trace_state == "vendor=value,other=1"
    assert root.links[0].trace_state == ""  # the SDK's encoder sends no link trace state
    assert len({scope.name for _, _, scope, _, _ in via_child}) == 2
    assert child.export_counts == so.ExportCounts(exported=3)


# Counting: drops, failures, flush and shutdown bounds.


def test_a_slow_collector_backs_up_into_the_queue_where_drops_are_counted(
    processors: list[SpanProcessor], caplog: pytest.LogCaptureFixture
) -> None:
    created = [f"s{index}" for index in range(30)]
    with otlp_receiver(delay=0.5) as slow:
        processor = child_processor(
            processors, resolved(slow), max_queue_size=4, max_export_batch_size=4
        )
        tracer = tracer_for(processor)
        emit(tracer, *created[:4])
        wait_until(lambda: slow.attempts == 1)  # the child is exporting the first batch
        with caplog.at_level(logging.WARNING, logger="spanflow.tracing"):
            emit(tracer, *created[4:])
            assert processor.force_flush(10_000)
        received = [span.name for span in slow.spans()]

    counts = processor.export_counts
    assert counts == so.ExportCounts(exported=len(received), dropped=30 - len(received))
    # Held at once: the batch being exported, the next one in the child, a queue of four.
    assert len(received) <= 12
    assert received[:4] == created[:4]
    assert received[-4:] == created[-4:]  # the oldest queued spans are the ones evicted
    assert caplog.text.count("Span export queue is full") == 1


@pytest.mark.parametrize(
    ("protocol", "failure"),
    [("http/protobuf", {"http_status": 500}), ("grpc", {"grpc_code": grpc.StatusCode.INTERNAL})],
    ids=["http-500", "grpc-internal"],
)
def test_a_batch_the_collector_refuses_is_counted_as_failed_and_its_error_logged_here(
    processors: list[SpanProcessor],
    caplog: pytest.LogCaptureFixture,
    protocol: so.OtlpProtocol,
    failure: dict[str, Any],
) -> None:
    with otlp_receiver(**failure) as failing:
        processor = child_processor(processors, resolved(failing, protocol))
        tracer = tracer_for(processor)
        with caplog.at_level(logging.WARNING):
            emit(tracer, "a", "b", "c")
            assert processor.force_flush(10_000)
            failing.http_status, failing.grpc_code = 200, None
            emit(tracer, "d")
            assert processor.force_flush(10_000)

    assert processor.export_counts == so.ExportCounts(exported=1, failed=3)
    # The exporter's own message, logged in the child, re-emitted here on the same logger.
    [record] = [r for r in caplog.records if r.name.startswith("opentelemetry.exporter")]
    assert record.levelno == logging.ERROR
    assert ("code: 500" if protocol == "http/protobuf" else "StatusCode.INTERNAL") in (
        record.getMessage()
    )


def test_with_the_collector_down_spans_fail_and_the_refusal_is_logged_here(
    processors: list[SpanProcessor], caplog: pytest.LogCaptureFixture
) -> None:
    with otlp_receiver() as receiver:
        down = resolved(receiver)  # nothing listens there any more
    processor = child_processor(processors, down)
    with caplog.at_level(logging.WARNING):
        emit(tracer_for(processor), "a", "b")
        assert processor.force_flush(10_000)

    assert processor.export_counts == so.ExportCounts(failed=2)
    assert "Connection refused" in caplog.text


def test_force_flush_says_false_at_its_timeout_and_shutdown_keeps_its_budget(
    processors: list[SpanProcessor],
) -> None:
    with otlp_receiver(delay=30.0) as hung:
        processor = child_processor(processors, resolved(hung, timeout=30.0))
        emit(tracer_for(processor), "a", "b", "c")
        started = time.monotonic()
        assert not processor.force_flush(300)
        assert time.monotonic() - started < 0.3 + MARGIN
        pid = processor.child_pid
        assert pid is not None

        started = time.monotonic()
        processor.shutdown(timeout_millis=1000)
        elapsed = time.monotonic() - started
        counts = processor.export_counts

    assert 1.0 - 0.1 <= elapsed < 1.0 + MARGIN
    # Nothing arrived, nothing failed: the shutdown gave up on them.
    assert counts == so.ExportCounts(unsent=3)
    wait_until(lambda: not is_running(pid), timeout=2.0)  # the child was killed, not left


def test_shutdown_delivers_what_is_queued_then_the_child_exits(
    processors: list[SpanProcessor], receiver: OtlpReceiver
) -> None:
    processor = child_processor(processors, resolved(receiver))
    emit(tracer_for(processor), "a", "b")
    wait_until(lambda: processor.child_pid is not None)
    pid = processor.child_pid
    assert pid is not None

    processor.shutdown()
    processor.shutdown()  # idempotent

    assert sorted(span.name for span in receiver.spans()) == ["a", "b"]
    assert processor.export_counts == so.ExportCounts(exported=2)
    assert not processor.force_flush()
    wait_until(lambda: not is_running(pid), timeout=2.0)


# The child's life: killed, forked, impossible to start.


def test_a_killed_child_is_replaced_and_the_spans_it_held_count_as_failed(
    processors: list[SpanProcessor], caplog: pytest.LogCaptureFixture
) -> None:
    with otlp_receiver(delay=30.0) as receiver:
        processor = child_processor(processors, resolved(receiver))
        tracer = tracer_for(processor)
        emit(tracer, "held", "by the", "child")
        assert not processor.force_flush(100)
        wait_until(lambda: receiver.attempts == 1)  # stuck exporting them
        first = processor.child_pid
        assert first is not None

        receiver.delay = 0.0
        with caplog.at_level(logging.WARNING, logger="spanflow.tracing"):
            os.kill(first, signal.SIGKILL)
            wait_until(lambda: processor.child_pid not in (None, first))
            emit(tracer, "after", "restart")
            assert processor.force_flush(10_000)
        received = sorted(span.name for span in receiver.spans())

    assert received == ["after", "restart"]
    assert processor.export_counts == so.ExportCounts(exported=2, failed=3)
    assert f"(pid {first}) ended unexpectedly (exit code -9)" in caplog.text
    assert "the 3 spans it had not answered are counted as failed" in caplog.text


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_process_starts_its_own_child_and_leaves_the_parents_alone(
    processors: list[SpanProcessor], receiver: OtlpReceiver
) -> None:
    processor = child_processor(processors, resolved(receiver))
    tracer = tracer_for(processor)
    emit(tracer, "parent before fork")
    assert processor.force_flush(10_000)
    parent_child = processor.child_pid

    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the forked process, which reports by exit code
        code = 1
        try:
            fresh = processor.child_pid is None and processor.export_counts.unsent == 0
            emit(tracer, "from the fork")
            flushed = processor.force_flush(10_000)
            own_child = processor.child_pid not in (None, parent_child)
            processor.shutdown()
            code = 0 if fresh and flushed and own_child else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)

    assert os.waitstatus_to_exitcode(status) == 0
    emit(tracer, "parent after fork")
    assert processor.force_flush(10_000)
    assert processor.child_pid == parent_child
    assert sorted(span.name for span in receiver.spans()) == [
        "from the fork",
        "parent after fork",
        "parent before fork",
    ]
    assert processor.export_counts == so.ExportCounts(exported=2)


def never_ready(tmp_path: Path) -> str:
    """An "interpreter" that starts and never answers."""
    script = tmp_path / "silent-python"
    script.write_text("#!/bin/sh\nexec sleep 30\n")
    script.chmod(0o755)
    return str(script)


@pytest.mark.parametrize(
    ("interpreter", "reason"),
    [
        (lambda tmp_path: "/nonexistent/python", "could not be started"),
        (lambda tmp_path: "/bin/false", "exited at start (exit code 1)"),
        (never_ready, "did not report ready within 0.5 s"),
    ],
    ids=["missing", "exits-at-once", "never-ready"],
)
def test_without_a_child_spans_are_exported_from_this_process_instead(
    processors: list[SpanProcessor],
    receiver: OtlpReceiver,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
    interpreter: Any,
    reason: str,
) -> None:
    with caplog.at_level(logging.WARNING, logger="spanflow.tracing"):
        processor = child_processor(
            processors,
            resolved(receiver),
            python_executable=interpreter(tmp_path),
            start_timeout=0.5,
        )
        tracer = tracer_for(processor)
        emit(tracer, "a", "b")
        assert processor.force_flush(10_000)
        emit(tracer, "c")
        processor.shutdown()

    assert processor.exports_in_thread
    assert sorted(span.name for span in receiver.spans()) == ["a", "b", "c"]
    assert processor.export_counts == so.ExportCounts(exported=3)
    [warning] = [m for m in caplog.messages if "export child process could not be started" in m]
    assert reason in warning


def test_a_shutdown_does_not_wait_for_a_child_still_starting(
    processors: list[SpanProcessor],
    receiver: OtlpReceiver,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    # A short program on a loaded machine: the child is not ready when the program ends.
    processor = child_processor(
        processors, resolved(receiver), python_executable=never_ready(tmp_path), start_timeout=60
    )
    emit(tracer_for(processor), "a", "b")
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="spanflow.tracing"):
        processor.shutdown(timeout_millis=2000)

    assert time.monotonic() - started < 2.0
    assert sorted(span.name for span in receiver.spans()) == ["a", "b"]
    assert processor.export_counts == so.ExportCounts(exported=2)
    assert caplog.messages == []  # no fallback: the child was not failing, only late


def scripted_python(tmp_path: Path, *starts: str) -> str:
    """An "interpreter" whose n-th start runs the n-th of `starts` (the last one repeats):
    ``python`` (this interpreter, given the arguments), or a shell command such as
    ``exit 1`` or ``exec sleep 30``. Each start appends its ``SPANFLOW_EXPORT_CHILD`` to
    ``starts.log`` in `tmp_path`."""
    commands = [f'exec {sys.executable} "$@"' if start == "python" else start for start in starts]
    cases = "".join(f"  {index}) {command};;\n" for index, command in enumerate(commands[:-1]))
    script = tmp_path / "scripted-python"
    script.write_text(
        "#!/bin/sh\n"
        f"log={tmp_path}/starts.log\n"
        'n=$(wc -l < "$log" 2>/dev/null || echo 0)\n'
        'echo "${SPANFLOW_EXPORT_CHILD:-unset}" >> "$log"\n'
        f'case "$n" in\n{cases}  *) {commands[-1]};;\nesac\n'
    )
    script.chmod(0o755)
    return str(script)


def starts_of(tmp_path: Path) -> list[str]:
    """What each start of a `scripted_python` saw as ``SPANFLOW_EXPORT_CHILD``."""
    log = tmp_path / "starts.log"
    return log.read_text().split() if log.exists() else []


def test_the_child_starts_on_the_first_span_in_its_own_session_marked_as_an_export_child(
    processors: list[SpanProcessor], receiver: OtlpReceiver, tmp_path: Path
) -> None:
    processor = child_processor(
        processors, resolved(receiver), python_executable=scripted_python(tmp_path, "python")
    )
    assert processor.force_flush()  # nothing to flush: no child needed for that
    assert starts_of(tmp_path) == []

    emit(tracer_for(processor), "first")
    assert processor.force_flush(10_000)

    assert [span.name for span in receiver.spans()] == ["first"]
    # Marked, so a program that is its own "interpreter" (a frozen app) cannot recurse.
    assert starts_of(tmp_path) == ["1"]
    pid = processor.child_pid
    assert pid is not None
    assert os.getsid(pid) == pid  # a Ctrl-C sent to the program's process group misses it


@pytest.mark.parametrize(
    "setting",
    ["SPANFLOW_EXPORT_CHILD set", "frozen application", "no sys.executable"],
)
def test_where_a_child_would_rerun_the_program_spans_are_exported_from_this_process_quietly(
    processors: list[SpanProcessor],
    receiver: OtlpReceiver,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    setting: str,
) -> None:
    if setting == "SPANFLOW_EXPORT_CHILD set":
        monkeypatch.setenv("SPANFLOW_EXPORT_CHILD", "1")
    elif setting == "frozen application":
        monkeypatch.setattr(sys, "frozen", True, raising=False)
    else:
        monkeypatch.setattr(sys, "executable", None)
    with caplog.at_level(logging.INFO, logger="spanflow.tracing"):
        processor = child_processor(processors, resolved(receiver))
        emit(tracer_for(processor), "a", "b")
        assert processor.force_flush(10_000)

    assert processor.exports_in_thread
    assert processor.child_pid is None
    assert sorted(span.name for span in receiver.spans()) == ["a", "b"]
    assert [r.levelname for r in caplog.records] == ["INFO"]


def test_on_windows_no_child_is_started(monkeypatch: pytest.MonkeyPatch) -> None:
    # Asked directly: the rest of the SDK is not to be run with a pretended os.name.
    monkeypatch.setattr(os, "name", "nt")
    reason = child_export._no_child_reason(sys.executable)
    monkeypatch.undo()
    assert reason is not None
    assert "Windows" in reason
    assert child_export._no_child_reason(sys.executable) is None


def test_a_start_that_fails_is_tried_again_before_the_fallback(
    processors: list[SpanProcessor],
    receiver: OtlpReceiver,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    # A Ctrl-C sent to the child while it imports, say: the next start works.
    processor = child_processor(
        processors,
        resolved(receiver),
        python_executable=scripted_python(tmp_path, "exit 1", "python"),
    )
    with caplog.at_level(logging.WARNING, logger="spanflow.tracing"):
        emit(tracer_for(processor), "a")
        assert processor.force_flush(10_000)

    assert not processor.exports_in_thread
    assert processor.child_pid is not None
    assert starts_of(tmp_path) == ["1", "1"]
    assert [span.name for span in receiver.spans()] == ["a"]
    assert caplog.messages == []


def test_any_error_starting_the_child_leads_to_the_fallback_leaving_nothing_open(
    processors: list[SpanProcessor],
    receiver: OtlpReceiver,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pairs: list[socket.socket] = []
    real_socketpair = socket.socketpair

    def recorded_socketpair() -> tuple[socket.socket, socket.socket]:
        pair = real_socketpair()
        pairs.extend(pair)
        return pair

    attempts = []

    def failing_popen(*args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        attempts.append(args)
        raise TypeError("expected str, bytes or os.PathLike object, not NoneType")

    monkeypatch.setattr(socket, "socketpair", recorded_socketpair)
    monkeypatch.setattr(subprocess, "Popen", failing_popen)
    with caplog.at_level(logging.WARNING, logger="spanflow.tracing"):
        processor = child_processor(processors, resolved(receiver))
        emit(tracer_for(processor), "a")
        assert processor.force_flush(10_000)

    assert processor.exports_in_thread
    assert [span.name for span in receiver.spans()] == ["a"]
    assert len(attempts) == 3
    assert pairs
    assert all(end.fileno() == -1 for end in pairs)  # both ends closed, every time
    [warning] = caplog.messages  # no traceback, no repeated messages
    assert "could not be started (expected str, bytes or os.PathLike object" in warning


def test_a_shutdown_while_a_replacement_child_starts_exports_the_queue_from_here(
    processors: list[SpanProcessor], receiver: OtlpReceiver, tmp_path: Path
) -> None:
    # The replacement is slow to start (a loaded machine): it never answers.
    processor = child_processor(
        processors,
        resolved(receiver),
        python_executable=scripted_python(tmp_path, "python", "exec sleep 30"),
        start_timeout=60,
    )
    tracer = tracer_for(processor)
    emit(tracer, "before")
    assert processor.force_flush(10_000)
    first = processor.child_pid
    assert first is not None
    os.kill(first, signal.SIGKILL)
    emit(tracer, "a", "b")
    wait_until(lambda: len(starts_of(tmp_path)) == 2)  # the replacement is starting

    started = time.monotonic()
    processor.shutdown(timeout_millis=3000)

    assert time.monotonic() - started < 3.0
    assert sorted(span.name for span in receiver.spans()) == ["a", "b", "before"]
    assert processor.export_counts == so.ExportCounts(exported=3)


def test_force_flush_under_steady_load_returns_once_the_spans_before_it_are_delivered(
    processors: list[SpanProcessor],
) -> None:
    with otlp_receiver(delay=0.3) as slow:
        processor = child_processor(
            processors, resolved(slow), max_export_batch_size=2, max_queue_size=100
        )
        tracer = tracer_for(processor)
        emit(tracer, "warm up", "the child")
        assert processor.force_flush(10_000)
        emit(tracer, "a1", "a2", "a3", "a4")  # two batches: the child holds as many as it takes
        emit(tracer, "before the flush")
        results: list[bool] = []
        taken = processor._flush_taken
        flush = threading.Thread(target=lambda: results.append(processor.force_flush(20_000)))
        flush.start()
        wait_until(lambda: processor._flush_taken > taken)  # the flush covers five spans
        emit(tracer, *[f"after {index}" for index in range(20)])  # the load goes on
        flush.join()
        received = [span.name for span in slow.spans()]

    assert results == [True]
    assert "before the flush" in received
    assert len(received) < 2 + 5 + 20  # it did not wait for the spans that came after it


def test_after_a_shutdown_out_of_time_the_feeder_ends_even_exporting_from_here(
    processors: list[SpanProcessor], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPANFLOW_EXPORT_CHILD", "1")
    with otlp_receiver(delay=30.0) as hung:
        processor = child_processor(
            processors, resolved(hung, timeout=1.0), max_export_batch_size=2
        )
        emit(tracer_for(processor), *"abcdef")
        feeder = processor._feeder
        assert feeder is not None
        processor.shutdown(timeout_millis=300)
        feeder.join(10)

    assert not feeder.is_alive()
    assert processor.export_counts.unsent > 0


def test_an_unreadable_answer_stops_that_child_like_one_that_died(
    processors: list[SpanProcessor], receiver: OtlpReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    processor = child_processor(processors, resolved(receiver))
    ours, theirs = socket.socketpair()
    stand_in = subprocess.Popen(["sleep", "30"])
    child = child_export._ExportChild(stand_in, ours)
    child.in_flight[1] = 3
    reader = threading.Thread(target=processor._read_answers, args=(child,))
    with caplog.at_level(logging.WARNING, logger="spanflow.tracing"):
        reader.start()
        theirs.sendall(wire.encode_frame((wire.READY, stand_in.pid)))
        theirs.sendall(b"\x00\x00\x00\x04" + b"junk")  # a frame that does not unpickle
        reader.join(10)
    theirs.close()

    assert not reader.is_alive()
    assert child.ended
    assert stand_in.wait(5) == -signal.SIGKILL
    assert processor.export_counts.failed == 3
    assert "unreadable answer" in caplog.text


def test_spans_popped_for_a_child_that_ended_meanwhile_are_exported_from_here(
    processors: list[SpanProcessor], receiver: OtlpReceiver
) -> None:
    memory = InMemorySpanExporter()
    emit(tracer_for(SimpleSpanProcessor(memory)), "a", "b")
    processor = child_processor(processors, resolved(receiver))
    ours, theirs = socket.socketpair()
    theirs.close()
    gone = subprocess.Popen(["true"])
    gone.wait()
    ended = child_export._ExportChild(gone, ours, ended=True)

    processor._send_batch(ended, list(memory.get_finished_spans()))
    ours.close()

    assert sorted(span.name for span in receiver.spans()) == ["a", "b"]
    assert processor.export_counts == so.ExportCounts(exported=2)


def test_a_stray_module_or_print_in_the_childs_start_up_does_not_break_it(
    processors: list[SpanProcessor],
    receiver: OtlpReceiver,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    here = tmp_path / "cwd"
    here.mkdir()
    (here / "types.py").write_text(f"open({str(tmp_path / 'imported')!r}, 'w').close()\n")
    on_path = tmp_path / "on_path"
    on_path.mkdir()
    (on_path / "sitecustomize.py").write_text("print('hello from sitecustomize')\n")
    monkeypatch.chdir(here)
    monkeypatch.setenv("PYTHONPATH", str(on_path))
    processor = child_processor(processors, resolved(receiver))
    emit(tracer_for(processor), "a")
    assert processor.force_flush(10_000)

    assert not processor.exports_in_thread
    assert [span.name for span in receiver.spans()] == ["a"]
    assert not (tmp_path / "imported").exists()


@pytest.mark.parametrize("option", ["max_queue_size", "max_export_batch_size"])
def test_a_queue_or_batch_of_zero_is_refused(option: str) -> None:
    destination = so.ResolvedExport("http://127.0.0.1:9/v1/traces", "http/protobuf", {}, 1.0)
    options: dict[str, Any] = {option: 0}
    with pytest.raises(ValueError, match="needs max_queue_size > 0, 0 < max_export_batch_size"):
        so.ChildProcessSpanProcessor(destination, **options)


# Where configure() exports.


def test_configure_exports_through_a_child_process_unless_told_to_use_a_thread(
    make_telemetry: Any, receiver: OtlpReceiver
) -> None:
    in_child = make_telemetry(export=so.ExportOptions(endpoint=receiver.http_endpoint))
    in_thread = make_telemetry(
        export=so.ExportOptions(endpoint=receiver.http_endpoint),
        batch=so.BatchOptions(export_in="thread"),
    )
    for telemetry, name in [(in_child, "via child"), (in_thread, "via thread")]:
        telemetry.tracer("t").start_span(name).end()
        assert telemetry.force_flush()
        assert telemetry.export_counts == so.ExportCounts(exported=1)

    assert sorted(span.name for span in receiver.spans()) == ["via child", "via thread"]
    assert [type(p).__name__ for p in processors_of(in_child)] == ["ChildProcessSpanProcessor"]
    assert [type(p).__name__ for p in processors_of(in_thread)] == [
        "DropCountingBatchSpanProcessor"
    ]


def processors_of(telemetry: so.Telemetry) -> list[object]:
    return list(telemetry._batch_processors)


# The wire format on its own.


def test_a_batch_survives_the_trip_through_the_wire_format() -> None:
    memory = InMemorySpanExporter()
    provider = TracerProvider(
        span_limits=SpanLimits(max_span_attributes=6, max_events=2, max_links=1, max_attributes=2),
        shutdown_on_exit=False,
    )
    provider.add_span_processor(SimpleSpanProcessor(memory))
    emit_every_kind_of_detail(provider)
    spans = memory.get_finished_spans()

    frame = wire.encode_frame((wire.BATCH, 1, *wire.encode_batch(spans)))
    message = wire.read_frame(io.BytesIO(frame))
    assert message is not None
    _, _, resources, scopes, rows = message
    rebuilt = wire.decode_batch(resources, scopes, rows)

    assert (len(rows), len(resources), len(scopes)) == (3, 1, 2)  # each resource, scope once
    assert encode_spans(rebuilt) == encode_spans(spans)
