"""HTTP requests as SERVER spans: the OpenTelemetry ASGI instrumentation, set up for spanflow.

The server (``spanflow.server``) must not import OpenTelemetry itself, so this module is the
seam: `instrument_asgi` wraps an ASGI app in ``OpenTelemetryMiddleware`` (imported lazily: it
is part of the ``server`` extra, not of the engine). What that middleware gives, and we rely on:

- one SERVER span per request with the HTTP semantic-convention attributes, started in a
  context extracted from the incoming W3C ``traceparent``/``tracestate``/``baggage`` headers
  by the global propagator (OpenTelemetry's default: trace context and baggage), and active
  while the app runs, so a run started by the request is its child (the run's asyncio task
  inherits the context);
- the tracer provider of the registry's `TracingConfig` when it names one, else the global one.

What we set on top: the span is named after the route template (``POST
/api/workflows/{workflowId}/stream``, not the concrete path: a name per run id would make
every request its own operation in Jaeger), with ``http.route``; the per-message ``receive``
and ``send`` child spans are off (a stream would get one span per event); and credential
headers (``Authorization``, cookies) are always sanitised, even when the user asks the
instrumentation to capture request headers through ``OTEL_INSTRUMENTATION_HTTP_CAPTURE_*``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any, Final

from spanflow.tracing.config import TracingConfig

__all__ = ["SENSITIVE_HEADERS", "RouteTemplate", "instrument_asgi", "traceparent_header"]

RouteTemplate = Callable[[Mapping[str, Any]], str | None]
"""Gives the route template of an ASGI scope (``/api/workflows/{workflowId}/stream``), or
``None`` when no route matches."""

SENSITIVE_HEADERS: Final = ("authorization", "proxy-authorization", "cookie", "set-cookie")
"""Headers never recorded on a span, whatever the capture settings say."""

_SANITIZE_VARIABLE: Final = "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SANITIZE_FIELDS"


def instrument_asgi(app: Any, *, config: TracingConfig, route_template: RouteTemplate) -> Any:
    """`app` wrapped so that each HTTP request is a SERVER span (see the module docstring).

    Returns `app` itself when tracing is disabled in `config`.

    Raises:
        ImportError: The ASGI instrumentation is not installed (``pip install
            'spanflow[server]'``).
    """
    if not config.enabled:
        return app
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

    def span_details(scope: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        method = str(scope.get("method", "HTTP")).upper()
        template = route_template(scope)
        if template is None:
            return f"{method} {scope.get('path', '')}".strip(), {}
        return f"{method} {template}", {"http.route": template}

    return OpenTelemetryMiddleware(
        app,
        default_span_details=span_details,
        tracer_provider=config.tracer_provider,
        exclude_spans=["receive", "send"],
        http_capture_headers_sanitize_fields=_sanitized_headers(os.environ),
    )


def traceparent_header(trace_id: str | None, span_id: str | None) -> str | None:
    """The W3C ``traceparent`` value naming a run (or agent) span, or ``None`` if untraced."""
    if not trace_id or not span_id:
        return None
    return f"00-{trace_id}-{span_id}-01"


def _sanitized_headers(environ: Mapping[str, str]) -> list[str]:
    """The user's sanitised headers (from the environment) plus `SENSITIVE_HEADERS`."""
    given = [name.strip() for name in environ.get(_SANITIZE_VARIABLE, "").split(",")]
    return list(dict.fromkeys([*(name for name in given if name), *SENSITIVE_HEADERS]))
