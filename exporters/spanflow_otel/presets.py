"""Ready-made `ExportOptions` for the backends spanflow users run most.

A preset names a destination in code, so it is explicit and the `OTEL_EXPORTER_OTLP_*`
variables do not redirect it; `otlp()` with no endpoint is the one that follows them (and is
what `configure()` uses by default).
"""

from __future__ import annotations

from collections.abc import Mapping

from spanflow_otel.config import ExportOptions, OtlpProtocol

__all__ = ["jaeger", "otlp", "phoenix"]


def jaeger(
    protocol: OtlpProtocol = "http/protobuf", *, host: str = "localhost", timeout: float = 5.0
) -> ExportOptions:
    """Jaeger v2's OTLP receiver (``docker-compose.jaeger.yml``): HTTP 4318 or gRPC 4317."""
    if protocol == "grpc":
        return ExportOptions(endpoint=f"http://{host}:4317", protocol="grpc", timeout=timeout)
    return ExportOptions(
        endpoint=f"http://{host}:4318/v1/traces", protocol="http/protobuf", timeout=timeout
    )


def phoenix(
    endpoint: str = "http://localhost:6006/v1/traces",
    *,
    headers: Mapping[str, str] | None = None,
    timeout: float = 5.0,
) -> ExportOptions:
    """Arize Phoenix's OTLP/HTTP collector (pass an ``api_key`` header for Phoenix Cloud)."""
    return ExportOptions(
        endpoint=endpoint, protocol="http/protobuf", headers=dict(headers or {}), timeout=timeout
    )


def otlp(
    endpoint: str | None = None,
    *,
    headers: Mapping[str, str] | None = None,
    protocol: OtlpProtocol | None = None,
    timeout: float = 5.0,
) -> ExportOptions:
    """Any OTLP collector; what is not given comes from the `OTEL_EXPORTER_OTLP_*` variables."""
    return ExportOptions(
        endpoint=endpoint, protocol=protocol, headers=dict(headers or {}), timeout=timeout
    )
