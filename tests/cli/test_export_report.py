"""After exporting, a command says in its last line how many spans arrived, what failed and why,
and links the trace only when something arrived; a tracing failure never fails the run."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from spanflow.cli.export_report import ExportReport, failure_reason
from tests.support.otlp_receiver import otlp_receiver

from .conftest import Cli

HELLO = "tests.cli.sample_workflows:hello"
ADA = '{"name": "Ada"}'
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_with_nothing_listening_the_demo_says_every_span_failed_and_links_nothing(
    cli: Cli, tmp_path: Path
) -> None:
    endpoint = f"http://127.0.0.1:{unused_port()}"

    done = cli("demo", "--db", str(tmp_path / "demo.db"), "--speed", "1000", "--otlp", endpoint)

    assert done.code == 0
    assert done.err == ""  # the exporter's retries and failure are folded into the last line
    assert done.out.splitlines()[-1] == (
        f"✗ 0 of 30 spans exported to {endpoint}/v1/traces: 30 failed (connection refused); "
        "no trace link, since nothing arrived"
    )
    assert "/trace/" not in done.out
    assert "Jaeger" not in done.out


def test_a_collector_refusing_the_spans_is_reported_with_its_http_status(
    cli: Cli, db: Path
) -> None:
    with otlp_receiver(http_status=404) as receiver:
        done = cli("run", HELLO, "--input", ADA, "--db", str(db), "--otlp", receiver.http_base)

    assert done.code == 0
    assert done.err == ""
    assert done.out.splitlines()[-1] == (
        f"✗ 0 of 2 spans exported to {receiver.http_endpoint}: 2 failed (HTTP 404 Not Found); "
        "no trace link, since nothing arrived"
    )


def test_when_every_span_arrives_the_last_line_counts_them_and_links_the_trace(
    cli: Cli, db: Path
) -> None:
    with otlp_receiver() as receiver:
        done = cli(
            "run", HELLO, "--input", ADA, "--db", str(db), "--otlp", receiver.http_base,
            "--trace-id", TRACE_ID, "--jaeger-ui", "http://jaeger:16686/",
        )  # fmt: skip

    assert done.out.splitlines()[-1] == (
        f"✓ 2 spans exported to {receiver.http_endpoint}; "
        f"the trace in Jaeger: http://jaeger:16686/trace/{TRACE_ID}"
    )


def test_an_endpoint_on_phoenixs_port_is_linked_as_phoenix_not_jaeger() -> None:
    report = ExportReport("http://localhost:6006/v1/traces", exported=2, failed=0)

    assert report.line(TRACE_ID) == (
        "2 spans exported to http://localhost:6006/v1/traces; "
        "the trace in Phoenix: http://localhost:6006"
    )


def test_an_explicit_jaeger_ui_means_jaeger_whatever_the_port() -> None:
    report = ExportReport("http://localhost:6006/v1/traces", exported=2, failed=0)

    assert report.line(TRACE_ID, "http://ui:16686").endswith(
        f"the trace in Jaeger: http://ui:16686/trace/{TRACE_ID}"
    )


def test_a_partial_export_says_what_was_lost_and_links_what_arrived() -> None:
    report = ExportReport(
        "http://collector:4318/v1/traces",
        exported=5,
        failed=2,
        dropped=1,
        unsent=3,
        reason="HTTP 503 Service Unavailable",
    )

    assert report.line(TRACE_ID) == (
        "5 of 11 spans exported to http://collector:4318/v1/traces: 2 failed (HTTP 503 Service "
        "Unavailable), 1 dropped (the export queue was full), 3 not sent within the 5 s flush "
        "limit; part of the trace in Jaeger: "
        f"http://localhost:16686/trace/{TRACE_ID}"
    )


def test_without_a_trace_id_a_partial_export_says_what_was_lost_and_no_more() -> None:
    # A command that failed before its summary reports its spans with no trace id to link.
    report = ExportReport(
        "http://collector:4318/v1/traces", exported=5, failed=5, reason="timed out"
    )

    assert report.line(None) == (
        "5 of 10 spans exported to http://collector:4318/v1/traces: 5 failed (timed out)"
    )


def test_without_a_trace_id_nothing_arriving_still_says_why_there_is_no_link() -> None:
    report = ExportReport("http://collector:4318/v1/traces", exported=0, failed=3)

    assert report.line(None) == (
        "0 of 3 spans exported to http://collector:4318/v1/traces: 3 failed; "
        "no trace link, since nothing arrived"
    )


@pytest.mark.parametrize(
    ("messages", "reason"),
    [
        (
            [
                "Transient error HTTPConnectionPool(host='localhost', port=4999): Max retries "
                'exceeded with url: /v1/traces (Caused by NewConnectionError("HTTPConnection('
                "host='localhost', port=4999): Failed to establish a new connection: [Errno 111]"
                ' Connection refused")) encountered while exporting spans batch, retrying in '
                "1.05s.",
                "Failed to export spans batch due to timeout, max retries or shutdown.",
            ],
            "connection refused",
        ),
        (
            [
                "Failed to export traces to localhost:4999, error code: StatusCode.UNAVAILABLE, "
                "error details: failed to connect to all addresses; last error: UNKNOWN: "
                "ipv4:127.0.0.1:4999: Failed to connect to remote host: Connection refused"
            ],
            "connection refused",
        ),
        (["Failed to export spans batch code: 404, reason: Not Found"], "HTTP 404 Not Found"),
        (
            ["Failed to export traces to collector:4317, error code: StatusCode.UNAUTHENTICATED"],
            "gRPC UNAUTHENTICATED",
        ),
        (["Failed to export spans batch due to timeout, max retries or shutdown."], "timed out"),
        ([], None),
    ],
    ids=["http-refused", "grpc-refused", "http-status", "grpc-status", "timeout", "nothing"],
)
def test_the_failure_reason_is_the_most_telling_exporter_message(
    messages: list[str], reason: str | None
) -> None:
    assert failure_reason(messages) == reason
