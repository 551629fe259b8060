"""Explicit options win; otherwise the standard OTEL_* variables decide where spans go."""

from __future__ import annotations

import logging

import pytest
import spanflow_otel as so
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from spanflow_otel.otlp import resolve_export

from tests.support.otlp_receiver import OtlpReceiver

from .helpers import MakeTelemetry


def test_without_options_or_variables_http_goes_to_localhost_4318() -> None:
    resolved = resolve_export(so.ExportOptions(), {})
    assert (resolved.protocol, resolved.endpoint) == (
        "http/protobuf",
        "http://localhost:4318/v1/traces",
    )


def test_the_generic_endpoint_gets_the_traces_path_for_http() -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "https://collector:4318/"}
    assert resolve_export(so.ExportOptions(), env).endpoint == "https://collector:4318/v1/traces"


def test_the_traces_endpoint_is_used_as_is_and_wins_over_the_generic_one() -> None:
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://generic:4318",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://traces:9999/custom",
    }
    assert resolve_export(so.ExportOptions(), env).endpoint == "http://traces:9999/custom"


def test_grpc_endpoints_get_no_path() -> None:
    env = {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317"}
    resolved = resolve_export(so.ExportOptions(), env)
    assert (resolved.protocol, resolved.endpoint) == ("grpc", "http://c:4317")
    assert resolve_export(so.ExportOptions(), {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}).endpoint == (
        "http://localhost:4317"
    )


def test_the_traces_protocol_wins_over_the_generic_one() -> None:
    env = {
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
    }
    assert resolve_export(so.ExportOptions(), env).protocol == "http/protobuf"


def test_an_unsupported_protocol_falls_back_to_http_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="spanflow.tracing"):
        resolved = resolve_export(so.ExportOptions(), {"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"})
    assert resolved.protocol == "http/protobuf"
    assert "http/json" in caplog.text


def test_explicit_options_win_over_every_variable() -> None:
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://generic:4318",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://traces:4318/v1/traces",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
    }
    resolved = resolve_export(so.presets.jaeger(host="jaeger"), env)
    assert (resolved.protocol, resolved.endpoint) == (
        "http/protobuf",
        "http://jaeger:4318/v1/traces",
    )


def test_an_explicit_http_endpoint_without_a_path_gets_the_traces_path() -> None:
    resolved = resolve_export(so.ExportOptions(endpoint="http://collector:4318"), {})
    assert resolved.endpoint == "http://collector:4318/v1/traces"


def test_headers_come_from_the_traces_variable_else_the_generic_one_and_options_win() -> None:
    generic_only = {"OTEL_EXPORTER_OTLP_HEADERS": "a=1,b=2"}
    assert resolve_export(so.ExportOptions(), generic_only).headers == {"a": "1", "b": "2"}
    both = {**generic_only, "OTEL_EXPORTER_OTLP_TRACES_HEADERS": "b=3"}
    resolved = resolve_export(so.ExportOptions(headers={"C": "4"}), both)
    assert resolved.headers == {"b": "3", "c": "4"}


def test_presets_point_at_the_usual_local_ports() -> None:
    assert so.presets.jaeger().endpoint == "http://localhost:4318/v1/traces"
    assert so.presets.jaeger("grpc") == so.ExportOptions(
        endpoint="http://localhost:4317", protocol="grpc"
    )
    assert so.presets.phoenix().endpoint == "http://localhost:6006/v1/traces"
    assert so.presets.otlp() == so.ExportOptions()


def test_spans_follow_the_generic_endpoint_variable_over_the_wire(
    receiver: OtlpReceiver, make_telemetry: MakeTelemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.http_base)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "tenant=acme")
    telemetry = make_telemetry("env-service")
    telemetry.tracer("t").start_span("via env").end()
    telemetry.force_flush()

    [span] = receiver.wait_for_spans(1)
    assert (span.name, span.transport) == ("via env", "http")
    assert receiver.requests[0].headers["tenant"] == "acme"


def test_spans_follow_the_protocol_variable_to_grpc(
    receiver: OtlpReceiver, make_telemetry: MakeTelemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", receiver.grpc_endpoint)
    telemetry = make_telemetry()
    telemetry.tracer("t").start_span("via grpc").end()
    telemetry.force_flush()

    assert [span.transport for span in receiver.wait_for_spans(1)] == ["grpc"]


def test_resource_without_a_name_uses_otel_service_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-env")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "service.name=ignored,region=eu")
    resource = so.build_resource(so.ServiceOptions(environment="prod"))
    assert resource.attributes["service.name"] == "from-env"
    assert resource.attributes["region"] == "eu"
    assert resource.attributes["deployment.environment.name"] == "prod"
    explicit = so.build_resource(so.ServiceOptions(name="explicit", attributes={"region": "us"}))
    assert (explicit.attributes["service.name"], explicit.attributes["region"]) == (
        "explicit",
        "us",
    )


def test_sampling_ratio_builds_a_parent_based_ratio_sampler() -> None:
    sampler = so.build_sampler(so.SamplingOptions(ratio=0.25))
    assert isinstance(sampler, ParentBased)
    assert isinstance(
        so.build_sampler(so.SamplingOptions(ratio=0.25, parent_based=False)), (TraceIdRatioBased)
    )


def test_without_a_ratio_otel_traces_sampler_decides(
    make_telemetry: MakeTelemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_off")
    telemetry = make_telemetry(export=None)
    assert not telemetry.tracer("t").start_span("dropped").is_recording()
    kept = make_telemetry(export=None, sampling=so.SamplingOptions(ratio=1.0))
    assert kept.tracer("t").start_span("kept").is_recording()
