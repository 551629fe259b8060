"""Spans lost to collector errors are counted exactly, beside queue drops, over HTTP and gRPC.

The receiver is healthy, then fails (an error status, a 429 with a retry hint, a hang past the
export timeout), then heals, with a flush in each phase: every flush exports what was queued in
one batch, so the spans of the middle phase, and only those, are the failed ones.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import grpc
import pytest
import spanflow_otel as so
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from tests.support.otlp_receiver import OtlpReceiver, otlp_receiver

from .helpers import MakeTelemetry

EXPORT_TIMEOUT = 1.0
"""Seconds one export may take, retries included: short, so a hang costs little, and long
enough for a healthy export on a loaded machine."""
HANG = 30.0
"""A receiver delay far past the export timeout (stopping the receiver ends it)."""
FAILED_REPORT = "spans failed to export"


@dataclass(frozen=True)
class Fault:
    """A way for the collector to fail one protocol's exports."""

    protocol: so.OtlpProtocol
    inflict: Callable[[OtlpReceiver], None]
    retried: bool | None
    """Whether the SDK exporter retries this failure before giving the batch up (None: it
    depends on timing; a request that timed out may be resent once if time is left)."""


def answers_http(status: int) -> Callable[[OtlpReceiver], None]:
    def inflict(receiver: OtlpReceiver) -> None:
        receiver.http_status = status

    return inflict


def answers_grpc(code: grpc.StatusCode) -> Callable[[OtlpReceiver], None]:
    def inflict(receiver: OtlpReceiver) -> None:
        receiver.grpc_code = code

    return inflict


def hangs(receiver: OtlpReceiver) -> None:
    receiver.delay = HANG


def heal(receiver: OtlpReceiver) -> None:
    receiver.http_status, receiver.grpc_code, receiver.delay = 200, None, 0.0


FAULTS = {
    "http-500": Fault("http/protobuf", answers_http(500), retried=False),
    "http-429": Fault("http/protobuf", answers_http(429), retried=True),
    "http-timeout": Fault("http/protobuf", hangs, retried=None),
    "grpc-internal": Fault("grpc", answers_grpc(grpc.StatusCode.INTERNAL), retried=False),
    "grpc-resource-exhausted": Fault(
        "grpc", answers_grpc(grpc.StatusCode.RESOURCE_EXHAUSTED), retried=True
    ),
    "grpc-unavailable": Fault("grpc", answers_grpc(grpc.StatusCode.UNAVAILABLE), retried=True),
    "grpc-timeout": Fault("grpc", hangs, retried=None),
}


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def endpoint_for(receiver: OtlpReceiver, protocol: so.OtlpProtocol) -> str:
    return receiver.grpc_endpoint if protocol == "grpc" else receiver.http_endpoint


def flushed_by_hand(
    make_telemetry: MakeTelemetry, endpoint: str, protocol: so.OtlpProtocol
) -> so.Telemetry:
    """Telemetry whose worker never exports on its own: each `force_flush` is one batch."""
    return make_telemetry(
        export=so.ExportOptions(endpoint=endpoint, protocol=protocol, timeout=EXPORT_TIMEOUT),
        batch=so.BatchOptions(schedule_delay=600.0),
        shutdown=so.ShutdownOptions(flush_timeout=3.0, atexit=False, sigterm=False),
    )


def emit(telemetry: so.Telemetry, *names: str) -> None:
    tracer = telemetry.tracer("t")
    for name in names:
        tracer.start_span(name).end()


@pytest.mark.parametrize("fault", FAULTS.values(), ids=FAULTS.keys())
def test_spans_of_batches_the_collector_failed_are_counted_once_and_exactly(
    make_telemetry: MakeTelemetry, fault: Fault
) -> None:
    with otlp_receiver(retry_after=0.0) as receiver:
        telemetry = flushed_by_hand(
            make_telemetry, endpoint_for(receiver, fault.protocol), fault.protocol
        )
        emit(telemetry, "before-1", "before-2", "before-3")
        assert telemetry.force_flush()
        attempts_before = receiver.attempts

        fault.inflict(receiver)
        emit(telemetry, "lost-1", "lost-2", "lost-3", "lost-4")
        assert telemetry.force_flush()
        failing_attempts = receiver.attempts - attempts_before

        heal(receiver)
        emit(telemetry, "after-1", "after-2")
        assert telemetry.shutdown()
        received = sorted(span.name for span in receiver.spans())

    assert telemetry.export_counts == so.ExportCounts(exported=5, failed=4, dropped=0, unsent=0)
    assert (telemetry.failed_spans, telemetry.dropped_spans) == (4, 0)
    assert received == ["after-1", "after-2", "before-1", "before-2", "before-3"]
    # However many times the exporter tried the failing batch, its four spans count once.
    assert failing_attempts >= 1
    if fault.retried is not None:
        assert (failing_attempts > 1) == fault.retried


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_spans_sent_to_a_refused_connection_are_counted_as_failed(
    make_telemetry: MakeTelemetry, protocol: so.OtlpProtocol, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"http://127.0.0.1:{closed_port()}" + ("" if protocol == "grpc" else "/v1/traces")
    telemetry = flushed_by_hand(make_telemetry, url, protocol)
    emit(telemetry, *(f"s{index}" for index in range(6)))
    with caplog.at_level(logging.WARNING, logger="spanflow.tracing"):
        assert telemetry.force_flush()
        emit(telemetry, "s6")
        telemetry.shutdown()

    assert telemetry.export_counts == so.ExportCounts(exported=0, failed=7, dropped=0, unsent=0)
    assert telemetry.failed_spans == 7
    assert "6 spans failed to export" in caplog.text
    assert "7 spans failed to export" in caplog.text


def test_each_flush_reports_only_failures_it_has_not_reported_yet(
    make_telemetry: MakeTelemetry, caplog: pytest.LogCaptureFixture
) -> None:
    with otlp_receiver() as receiver:
        telemetry = flushed_by_hand(make_telemetry, receiver.http_endpoint, "http/protobuf")
        reports: list[str] = []
        with caplog.at_level(logging.WARNING, logger="spanflow.tracing"):
            for status, count in [(500, 4), (200, 3), (500, 2), (200, 1)]:
                receiver.http_status = status
                emit(telemetry, *(f"s{index}" for index in range(count)))
                telemetry.force_flush()
                reports.append(" | ".join(m for m in caplog.messages if FAILED_REPORT in m))
                caplog.clear()

    assert reports == [
        "4 spans failed to export: the collector answered an error, could not be reached or "
        "did not answer in time (4 since the last report); see the exporter's messages for "
        "the cause.",
        "",
        "6 spans failed to export: the collector answered an error, could not be reached or "
        "did not answer in time (2 since the last report); see the exporter's messages for "
        "the cause.",
        "",
    ]
    assert telemetry.export_counts == so.ExportCounts(exported=4, failed=6)


class ScriptedExporter(SpanExporter):
    """Blocks its first export until released, then answers each export from `results`."""

    def __init__(self, results: Sequence[SpanExportResult | Exception]) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self._results = list(results)
        self.batches: list[list[str]] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.entered.set()
        self.release.wait(5)
        self.batches.append([span.name for span in spans])
        result = self._results.pop(0)
        if isinstance(result, Exception):
            raise result
        return result


def traced_by(processor: so.DropCountingBatchSpanProcessor) -> TracerProvider:
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(processor)
    return provider


def test_drops_and_failures_add_up_to_every_span_created() -> None:
    exporter = ScriptedExporter([SpanExportResult.FAILURE, SpanExportResult.SUCCESS])
    processor = so.DropCountingBatchSpanProcessor(
        exporter, max_queue_size=4, max_export_batch_size=4, schedule_delay_millis=60_000
    )
    tracer = traced_by(processor).get_tracer("t")
    for index in range(4):
        tracer.start_span(f"s{index}").end()
    # The worker is stuck exporting the first four (that batch will fail); of the next ten,
    # the queue of four keeps the newest four and evicts six.
    assert exporter.entered.wait(5)
    for index in range(4, 14):
        tracer.start_span(f"s{index}").end()
    exporter.release.set()
    processor.shutdown(timeout_millis=5000)

    counts = processor.export_counts
    assert counts == so.ExportCounts(exported=4, failed=4, dropped=6, unsent=0)
    assert (counts.total, counts.lost) == (14, 10)
    assert exporter.batches == [["s0", "s1", "s2", "s3"], ["s10", "s11", "s12", "s13"]]


def test_an_exporter_that_raises_has_its_batch_counted_as_failed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    exporter = ScriptedExporter(
        [ConnectionResetError("collector hung up"), SpanExportResult.SUCCESS]
    )
    exporter.release.set()
    processor = so.DropCountingBatchSpanProcessor(exporter, schedule_delay_millis=60_000)
    tracer = traced_by(processor).get_tracer("t")
    with caplog.at_level(logging.ERROR):
        tracer.start_span("a").end()
        tracer.start_span("b").end()
        assert processor.force_flush()
        tracer.start_span("c").end()
        processor.shutdown(timeout_millis=5000)

    assert processor.export_counts == so.ExportCounts(exported=1, failed=2)
    assert processor.failed_spans == 2
    # The exception still reaches the SDK, which logs it; the program never sees it.
    assert "collector hung up" in caplog.text


@pytest.mark.parametrize(
    "fault", [FAULTS["http-500"], FAULTS["grpc-internal"]], ids=["http", "grpc"]
)
def test_on_the_wire_delivered_dropped_and_failed_add_up_to_every_span_created(
    make_telemetry: MakeTelemetry, fault: Fault
) -> None:
    created = 200
    # A slow and failing collector behind a small queue: some spans are dropped, the rest fail.
    with otlp_receiver(delay=0.1) as sick:
        fault.inflict(sick)
        telemetry = make_telemetry(
            export=so.ExportOptions(
                endpoint=endpoint_for(sick, fault.protocol), protocol=fault.protocol
            ),
            batch=so.BatchOptions(max_queue_size=8, max_export_batch_size=8, schedule_delay=0.01),
            shutdown=so.ShutdownOptions(flush_timeout=5.0, atexit=False, sigterm=False),
        )
        emit(telemetry, *(f"s{index}" for index in range(created)))
        telemetry.shutdown()
        received = len(sick.spans())

    counts = telemetry.export_counts
    assert (counts.exported, received, counts.unsent) == (0, 0, 0)
    assert counts.dropped > 0
    assert counts.failed > 0
    assert counts.exported + counts.dropped + counts.failed == created
    assert (telemetry.dropped_spans, telemetry.failed_spans) == (counts.dropped, counts.failed)


def test_failures_of_each_destination_are_summed(make_telemetry: MakeTelemetry) -> None:
    with otlp_receiver() as healthy:
        telemetry = make_telemetry(
            export=[
                so.ExportOptions(endpoint=healthy.http_endpoint, timeout=EXPORT_TIMEOUT),
                so.ExportOptions(
                    endpoint=f"http://127.0.0.1:{closed_port()}",
                    protocol="grpc",
                    timeout=EXPORT_TIMEOUT,
                ),
            ],
            shutdown=so.ShutdownOptions(flush_timeout=3.0, atexit=False, sigterm=False),
        )
        emit(telemetry, "a", "b")
        # Not everything arrived, so the shutdown does not say it is done.
        assert not telemetry.shutdown()
        received = sorted(span.name for span in healthy.spans())

    assert received == ["a", "b"]
    assert telemetry.export_counts == so.ExportCounts(exported=2, failed=2)
    assert telemetry.failed_spans == 2
