"""A down, slow or failing collector never blocks or breaks the program; drops are counted."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Sequence
from typing import Any

import grpc
import pytest
import spanflow_otel as so
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from tests.support.otlp_receiver import otlp_receiver

from .helpers import MakeTelemetry

FLUSH_TIMEOUT = 1.0
MARGIN = 0.5
PROTOCOLS: list[so.OtlpProtocol] = ["http/protobuf", "grpc"]


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def endpoint(protocol: so.OtlpProtocol, port: int) -> str:
    return f"http://127.0.0.1:{port}" + ("" if protocol == "grpc" else "/v1/traces")


def emit(telemetry: so.Telemetry, count: int) -> None:
    tracer = telemetry.tracer("t")
    for index in range(count):
        tracer.start_span(f"span {index}").end()


def timed_shutdown(telemetry: so.Telemetry) -> tuple[bool, float]:
    started = time.monotonic()
    done = telemetry.shutdown()
    return done, time.monotonic() - started


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_with_the_collector_down_shutdown_ends_within_the_flush_timeout(
    make_telemetry: MakeTelemetry, protocol: so.OtlpProtocol
) -> None:
    telemetry = make_telemetry(
        export=so.ExportOptions(endpoint=endpoint(protocol, closed_port()), protocol=protocol),
        shutdown=so.ShutdownOptions(flush_timeout=FLUSH_TIMEOUT, atexit=False, sigterm=False),
    )
    emit(telemetry, 50)
    _, elapsed = timed_shutdown(telemetry)
    assert elapsed < FLUSH_TIMEOUT + MARGIN


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_with_a_slow_collector_shutdown_gives_up_at_the_flush_timeout(
    make_telemetry: MakeTelemetry, protocol: so.OtlpProtocol, caplog: pytest.LogCaptureFixture
) -> None:
    with otlp_receiver(delay=5.0) as slow:
        port = slow.grpc_endpoint if protocol == "grpc" else slow.http_endpoint
        telemetry = make_telemetry(
            # An export timeout longer than the flush timeout: the flush timeout still rules.
            export=so.ExportOptions(endpoint=port, protocol=protocol, timeout=10.0),
            shutdown=so.ShutdownOptions(flush_timeout=FLUSH_TIMEOUT, atexit=False, sigterm=False),
        )
        emit(telemetry, 5)
        with caplog.at_level(logging.WARNING, logger="spanflow.tracing"):
            done, elapsed = timed_shutdown(telemetry)
            delivered = telemetry.export_counts.exported
    # Whether the exporter was still waiting or gRPC cancelled its call at the deadline, the
    # shutdown is bounded, says it is not done, and nothing counted as delivered by then.
    assert not done
    assert elapsed < FLUSH_TIMEOUT + MARGIN
    assert "did not finish within 1.0s" in caplog.text
    assert delivered == 0


def test_force_flush_is_bounded_too(make_telemetry: MakeTelemetry) -> None:
    with otlp_receiver(delay=5.0) as slow:
        telemetry = make_telemetry(export=so.ExportOptions(endpoint=slow.http_endpoint))
        emit(telemetry, 3)
        started = time.monotonic()
        assert not telemetry.force_flush(timeout=0.3)
        assert time.monotonic() - started < 0.3 + MARGIN


@pytest.mark.parametrize(
    ("failure", "protocol"),
    [
        ({"http_status": 503}, "http/protobuf"),
        ({"http_status": 400}, "http/protobuf"),
        ({"grpc_code": grpc.StatusCode.UNAVAILABLE}, "grpc"),
        ({"grpc_code": grpc.StatusCode.INVALID_ARGUMENT}, "grpc"),
    ],
    ids=["http-503", "http-400", "grpc-unavailable", "grpc-invalid-argument"],
)
def test_a_collector_answering_errors_never_raises_and_stays_bounded(
    make_telemetry: MakeTelemetry, failure: dict[str, Any], protocol: so.OtlpProtocol
) -> None:
    with otlp_receiver(**failure) as failing:
        url = failing.grpc_endpoint if protocol == "grpc" else failing.http_endpoint
        telemetry = make_telemetry(
            export=so.ExportOptions(endpoint=url, protocol=protocol, timeout=0.5),
            shutdown=so.ShutdownOptions(flush_timeout=FLUSH_TIMEOUT, atexit=False, sigterm=False),
        )
        emit(telemetry, 3)
        _, elapsed = timed_shutdown(telemetry)
        assert failing.attempts >= 1
        assert failing.spans() == []
    assert elapsed < FLUSH_TIMEOUT + MARGIN


class GatedExporter(SpanExporter):
    """Blocks in export until released, so the test decides when the queue drains."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.exported: list[str] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.entered.set()
        self.release.wait(5)
        self.exported.extend(span.name for span in spans)
        return SpanExportResult.SUCCESS


def test_every_span_evicted_from_a_full_queue_is_counted_exactly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    exporter = GatedExporter()
    processor = so.DropCountingBatchSpanProcessor(
        exporter, max_queue_size=4, max_export_batch_size=4, schedule_delay_millis=60_000
    )
    assert processor.counts_drops
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("t")
    for index in range(4):
        tracer.start_span(f"s{index}").end()
    # The worker took those four and is stuck exporting them: the queue is empty again.
    assert exporter.entered.wait(5)
    with caplog.at_level(logging.WARNING, logger="spanflow.tracing"):
        for index in range(4, 14):
            tracer.start_span(f"s{index}").end()

    assert processor.dropped_spans == 6
    assert caplog.text.count("Span export queue is full") == 1
    exporter.release.set()
    processor.shutdown(timeout_millis=5000)
    # The oldest spans are the ones evicted.
    assert sorted(exporter.exported, key=lambda name: int(name[1:])) == [
        "s0",
        "s1",
        "s2",
        "s3",
        "s10",
        "s11",
        "s12",
        "s13",
    ]


def test_overflow_on_the_wire_is_counted_and_reported(
    make_telemetry: MakeTelemetry, caplog: pytest.LogCaptureFixture
) -> None:
    emitted = 200
    with otlp_receiver(delay=0.2) as slow:
        telemetry = make_telemetry(
            export=so.ExportOptions(endpoint=slow.http_endpoint, timeout=5.0),
            batch=so.BatchOptions(max_queue_size=8, max_export_batch_size=8, schedule_delay=0.05),
            shutdown=so.ShutdownOptions(flush_timeout=5.0, atexit=False, sigterm=False),
        )
        with caplog.at_level(logging.WARNING, logger="spanflow.tracing"):
            emit(telemetry, emitted)
            assert telemetry.shutdown()
        received = len(slow.spans())

    dropped = telemetry.dropped_spans
    assert dropped > 0
    assert received + dropped == emitted
    assert f"{dropped} spans were dropped because the export queue was full" in caplog.text


def test_each_flush_reports_only_drops_it_has_not_reported_yet(
    make_telemetry: MakeTelemetry, caplog: pytest.LogCaptureFixture
) -> None:
    with otlp_receiver(delay=0.1) as slow:
        telemetry = make_telemetry(
            export=so.ExportOptions(endpoint=slow.http_endpoint),
            batch=so.BatchOptions(max_queue_size=2, max_export_batch_size=2),
        )
        with caplog.at_level(logging.WARNING, logger="spanflow.tracing"):
            emit(telemetry, 20)
            telemetry.force_flush()
            telemetry.force_flush()
            assert caplog.text.count("spans were dropped") == 1
            emit(telemetry, 20)
            telemetry.force_flush()
            assert caplog.text.count("spans were dropped") == 2


def test_a_small_queue_alone_is_enough_configuration(make_telemetry: MakeTelemetry) -> None:
    telemetry = make_telemetry(
        export=so.ExportOptions(endpoint=endpoint("http/protobuf", closed_port())),
        batch=so.BatchOptions(max_queue_size=8),
    )
    emit(telemetry, 3)
    assert telemetry.dropped_spans == 0
