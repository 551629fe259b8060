"""Turns `ExportOptions` plus the standard `OTEL_EXPORTER_OTLP_*` variables into an exporter.

Resolution is a pure function of the options and an environment mapping (`resolve_export`), so
the precedence rules are testable without sending anything: explicit options, then the
traces-specific variables, then the generic ones, then the OTLP defaults (HTTP/protobuf to
``localhost:4318``). Only an endpoint taken from the *generic* `OTEL_EXPORTER_OTLP_ENDPOINT`
gets the ``/v1/traces`` path appended for HTTP, as the OTLP exporter specification says.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GrpcSpanExporter,
)
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as HttpSpanExporter,
)
from opentelemetry.sdk.trace.export import SpanExporter
from opentelemetry.util.re import parse_env_headers

from spanflow_otel.config import ExportOptions, OtlpProtocol

__all__ = [
    "DEFAULT_GRPC_ENDPOINT",
    "DEFAULT_HTTP_ENDPOINT",
    "ResolvedExport",
    "build_exporter",
    "resolve_export",
]

DEFAULT_HTTP_ENDPOINT = "http://localhost:4318/v1/traces"
DEFAULT_GRPC_ENDPOINT = "http://localhost:4317"
_TRACES_PATH = "/v1/traces"

logger = logging.getLogger("spanflow.tracing")


@dataclass(frozen=True, slots=True)
class ResolvedExport:
    """Concrete export settings after options and environment were combined."""

    endpoint: str
    """HTTP: the full traces URL. gRPC: ``scheme://host:port``."""
    protocol: OtlpProtocol
    headers: Mapping[str, str]
    timeout: float


def resolve_export(
    options: ExportOptions, environ: Mapping[str, str] | None = None
) -> ResolvedExport:
    """Combine `options` with the `OTEL_EXPORTER_OTLP_*` variables (explicit options win)."""
    env = os.environ if environ is None else environ
    protocol = options.protocol or _protocol_from_env(env)
    if options.endpoint:
        endpoint = options.endpoint
        if protocol == "http/protobuf" and urlsplit(endpoint).path in ("", "/"):
            endpoint = endpoint.rstrip("/") + _TRACES_PATH
    elif traces_endpoint := env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip():
        endpoint = traces_endpoint
    elif base := env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip():
        endpoint = base.rstrip("/") + _TRACES_PATH if protocol == "http/protobuf" else base
    else:
        endpoint = DEFAULT_HTTP_ENDPOINT if protocol == "http/protobuf" else DEFAULT_GRPC_ENDPOINT
    # The SDK reads either the traces-specific or the generic variable, never both; so do we.
    env_headers = env.get("OTEL_EXPORTER_OTLP_TRACES_HEADERS") or env.get(
        "OTEL_EXPORTER_OTLP_HEADERS", ""
    )
    headers = {k.lower(): v for k, v in parse_env_headers(env_headers, liberal=True).items()}
    headers.update({k.lower(): v for k, v in options.headers.items()})
    return ResolvedExport(endpoint, protocol, headers, options.timeout)


def build_exporter(resolved: ResolvedExport) -> SpanExporter:
    """The SDK's OTLP span exporter for `resolved`, with its timeout bounding every export."""
    if resolved.protocol == "grpc":
        return GrpcSpanExporter(
            endpoint=resolved.endpoint,
            insecure=urlsplit(resolved.endpoint).scheme != "https",
            headers=dict(resolved.headers),
            timeout=resolved.timeout,
        )
    return HttpSpanExporter(
        endpoint=resolved.endpoint, headers=dict(resolved.headers), timeout=resolved.timeout
    )


def _protocol_from_env(env: Mapping[str, str]) -> OtlpProtocol:
    for name in ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
        value = env.get(name, "").strip().lower()
        if not value:
            continue
        if value == "grpc":
            return "grpc"
        if value == "http/protobuf":
            return "http/protobuf"
        logger.warning(
            "%s=%r is not supported by spanflow_otel (use 'http/protobuf' or 'grpc'); "
            "exporting with http/protobuf.",
            name,
            value,
        )
        return "http/protobuf"
    return "http/protobuf"
