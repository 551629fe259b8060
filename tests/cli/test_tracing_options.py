"""Tracing from the command line: ids, tags and ``--meta`` reach the exported spans.

Each test runs ``spanflow run`` (or ``runs resume``) in-process against the in-process OTLP
receiver and looks at what arrived on the wire.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.otlp_receiver import OtlpReceiver, ReceivedSpan, otlp_receiver

from .conftest import Cli

HELLO = "tests.cli.sample_workflows:hello"
APPROVAL = "tests.cli.sample_workflows:approval"
ADA = '{"name": "Ada"}'


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with otlp_receiver() as started:
        yield started


def run_span(spans: list[ReceivedSpan]) -> ReceivedSpan:
    [span] = [s for s in spans if s.name.startswith("invoke_workflow ")]
    return span


def test_meta_and_tags_land_on_every_span_as_searchable_attributes(
    cli: Cli, db: Path, receiver: OtlpReceiver
) -> None:
    done = cli(
        "run", HELLO, "--input", ADA, "--db", str(db), "--otlp", receiver.http_base,
        "--meta", "user.id=u-42", "--meta", "user.plan=pro", "--meta", "count=7",
        "--tag", "vip", "--tag", "beta",
    )  # fmt: skip

    assert done.code == 0, done.err
    spans = receiver.wait_for_spans(2)
    assert {s.name for s in spans} == {"invoke_workflow hello", "workflow_step greet"}
    for span in spans:
        assert span.attributes["spanflow.metadata.user.id"] == "u-42"
        assert span.attributes["spanflow.metadata.user.plan"] == "pro"
        assert span.attributes["spanflow.metadata.count"] == "7"  # values are strings
        assert span.attributes["spanflow.tag.vip"] is True
        assert span.attributes["spanflow.tag.beta"] is True
        assert span.attributes["spanflow.tags"] == ["vip", "beta"]
        assert span.resource["service.name"] == "spanflow"


def test_trace_and_parent_ids_link_the_run_into_the_callers_trace(
    cli: Cli, db: Path, receiver: OtlpReceiver
) -> None:
    done = cli(
        "run", HELLO, "--input", ADA, "--db", str(db), "--otlp", receiver.http_base,
        "--trace-id", "ABC123", "--parent-span-id", "def456",
    )  # fmt: skip

    span = run_span(receiver.wait_for_spans(2))
    assert span.trace_id == bytes.fromhex("abc123".rjust(32, "0"))
    assert span.parent_span_id == bytes.fromhex("def456".rjust(16, "0"))
    trace_id = "abc123".rjust(32, "0")
    assert f"trace id  {trace_id}" in done.out
    assert done.out.splitlines()[-1] == (
        f"✓ 2 spans exported to {receiver.http_endpoint}; "
        f"the trace in Jaeger: http://localhost:16686/trace/{trace_id}"
    )


def test_a_traceparent_header_value_works_too(cli: Cli, db: Path, receiver: OtlpReceiver) -> None:
    trace_id, parent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"

    cli(
        "run", HELLO, "--input", ADA, "--db", str(db), "--otlp", receiver.http_base,
        "--traceparent", f"00-{trace_id}-{parent}-01",
    )  # fmt: skip

    span = run_span(receiver.wait_for_spans(2))
    assert (span.trace_id.hex(), span.parent_span_id.hex()) == (trace_id, parent)


def test_a_trace_id_alone_makes_the_run_a_root_span_of_that_trace(
    cli: Cli, db: Path, receiver: OtlpReceiver
) -> None:
    cli("run", HELLO, "--input", ADA, "--db", str(db), "--otlp", receiver.http_base,
        "--trace-id", "feed")  # fmt: skip

    span = run_span(receiver.wait_for_spans(2))
    assert span.trace_id.hex() == "feed".rjust(32, "0")
    assert span.parent_span_id == b""


def test_the_otlp_variable_turns_export_on_and_grpc_works(
    cli: Cli, db: Path, receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.grpc_endpoint)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")

    done = cli("run", HELLO, "--input", ADA, "--db", str(db), "--service", "greeter")

    spans = receiver.wait_for_spans(2)
    assert {s.transport for s in spans} == {"grpc"}
    assert {s.resource["service.name"] for s in spans} == {"greeter"}
    assert f"✓ 2 spans exported to {receiver.grpc_endpoint}; the trace in Jaeger" in done.out


def test_otel_service_name_wins_over_the_commands_default(
    cli: Cli, db: Path, receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-env")

    cli("run", HELLO, "--input", ADA, "--db", str(db), "--otlp", receiver.http_base)

    assert {s.resource["service.name"] for s in receiver.wait_for_spans(2)} == {"from-env"}


def test_without_otlp_nothing_is_exported_and_no_link_is_printed(
    cli: Cli, db: Path, receiver: OtlpReceiver
) -> None:
    done = cli("run", HELLO, "--input", ADA, "--db", str(db))

    assert "trace id" in done.out
    assert "exported to" not in done.out
    assert "Jaeger" not in done.out
    assert receiver.spans() == []


def test_the_jaeger_link_follows_jaeger_ui(cli: Cli, db: Path, receiver: OtlpReceiver) -> None:
    done = cli(
        "run", HELLO, "--input", ADA, "--db", str(db), "--otlp", receiver.http_base,
        "--trace-id", "1", "--jaeger-ui", "https://jaeger.example.com/",
    )  # fmt: skip

    assert f"https://jaeger.example.com/trace/{'1'.rjust(32, '0')}" in done.out


def test_a_resume_with_explicit_options_links_back_to_the_first_run_span(
    cli: Cli, db: Path, receiver: OtlpReceiver
) -> None:
    cli("run", APPROVAL, "--input", ADA, "--db", str(db), "--otlp", receiver.http_base,
        "--meta", "user.id=u-42")  # fmt: skip
    first = run_span(receiver.wait_for_spans(3))
    run_id = first.attributes["spanflow.run.id"]
    receiver.clear()

    done = cli(
        "runs", "resume", run_id, "--workflow", APPROVAL, "--data", '{"approved": true}',
        "--db", str(db), "--otlp", receiver.http_base, "--trace-id", "beef", "--tag", "retry",
    )  # fmt: skip

    assert done.code == 0, done.err
    resumed = run_span(receiver.wait_for_spans(2))
    assert resumed.trace_id.hex() == "beef".rjust(32, "0")
    assert [(link.trace_id, link.span_id) for link in resumed.links] == [
        (first.trace_id, first.span_id)
    ]
    assert resumed.attributes["spanflow.run.resumed"] is True
    assert resumed.attributes["spanflow.metadata.user.id"] == "u-42"  # kept from the first half
    assert resumed.attributes["spanflow.tag.retry"] is True


def test_exporting_to_a_collector_that_is_down_still_runs_and_warns_in_one_line(
    cli: Cli, db: Path
) -> None:
    done = cli("run", HELLO, "--input", ADA, "--db", str(db), "--otlp", "http://127.0.0.1:9")

    assert done.code == 0
    assert "hello: success" in done.out
    for line in done.err.splitlines():
        assert line.startswith("spanflow: warning: ")
