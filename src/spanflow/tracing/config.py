"""`TracingConfig`: deployment-wide tracing settings for the engine (one small dataclass).

Per-run choices live in `TracingOptions`; everything that is the same for every run of a process
(where spans go, what is captured, how events are recorded, size limits, redaction) lives here
and is handed to the registry (``Spanflow(tracing=...)``) or to a workflow's instrumentation.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from typing import Any, Final, Literal

from opentelemetry._logs import LoggerProvider
from opentelemetry.trace import TracerProvider

from spanflow.errors import StoredError
from spanflow.tracing._guard import internal_errors
from spanflow.tracing._payload_json import spliced_json
from spanflow.tracing._render_memo import RenderMemo
from spanflow.tracing.attributes import error_type
from spanflow.tracing.redaction import (
    DEFAULT_MAX_ATTRIBUTE_LENGTH,
    DEFAULT_MAX_ERROR_LENGTH,
    DEFAULT_MAX_STACK_LENGTH,
    DEFAULT_REDACTOR,
    Redactor,
    redact_error_message,
    redact_stack,
    to_attribute_json,
)

__all__ = ["NOT_RECORDED", "EventMode", "TracingConfig"]

NOT_RECORDED: Final = "[not recorded: tracing error, see the spanflow.tracing log]"
"""Put where an input, output or payload could not be redacted: never the raw value."""

# The guards of the hot paths, one each (see `internal_errors`).
_RENDERING = internal_errors("could not redact a value for a span; it is not recorded")
_RENDERING_ERROR = internal_errors("could not redact an error for a span; it is not recorded")

EventMode = Literal["span_events", "logs", "none"]


@dataclass(frozen=True, slots=True, kw_only=True)
class TracingConfig:
    """How the engine traces runs. The defaults suit production."""

    enabled: bool = True
    """Set False to trace nothing (every scope is a no-op)."""
    tracer_provider: TracerProvider | None = None
    """Where spans go; ``None`` means OpenTelemetry's global provider (set by the plugin)."""
    capture_input: bool = True
    """Record ``spanflow.input`` on run and step spans (a run can still hide it)."""
    capture_output: bool = True
    """Record ``spanflow.output`` on run and step spans (a run can still hide it)."""
    max_attribute_length: int = DEFAULT_MAX_ATTRIBUTE_LENGTH
    """Longest JSON attribute or event payload, in characters; longer ones end in a marker."""
    max_error_length: int = DEFAULT_MAX_ERROR_LENGTH
    """Longest error message on a span (status and ``exception`` event), in characters; longer
    ones end in a marker. Snapshots and stream events use the default."""
    max_stack_length: int = DEFAULT_MAX_STACK_LENGTH
    """Longest stack trace in an ``exception`` event, in characters (its start is kept)."""
    redactor: Redactor = DEFAULT_REDACTOR
    """Masks credential-like keys in inputs, outputs, metadata, event payloads and errors."""
    request_context_keys: tuple[str, ...] = ()
    """Request-context keys exported for every run, as ``spanflow.metadata.<key>``."""
    metadata_on_every_span: bool = True
    """Copy tags and metadata to every span of a run (False: the run span only)."""
    events: EventMode = "span_events"
    """Record stream events as span events, as log records correlated to the span, or not."""
    logger_provider: LoggerProvider | None = None
    """Where log records go with ``events="logs"``; ``None`` means the global logger provider."""
    event_payloads: bool = True
    """Add the redacted, truncated payload JSON (``spanflow.event.payload``) to each event."""

    def attribute_json(self, value: Any, memo: RenderMemo | None = None) -> str:
        """`value` as a span attribute under these settings: redacted, truncated JSON.

        `NOT_RECORDED` (and a log line) instead when it cannot be rendered, a redactor's own
        function raising among the reasons: never the raw value, and never an error. `memo`
        (a run's) spares reading a text the run rendered lately again; the result is the same.
        """
        with _RENDERING:
            return to_attribute_json(
                value, redactor=self.redactor, limit=self.max_attribute_length, memo=memo
            )
        return NOT_RECORDED

    def payload_json(self, wire: dict[str, Any], memo: RenderMemo | None = None) -> str:
        """An event payload's wire dict (JSON data) as ``spanflow.event.payload``: exactly
        `attribute_json` of it, built from its parts when that is provably the same
        (`spliced_json`), so the input and output inside are not read for keys again."""
        with _RENDERING:
            wire = self._error_as_configured(wire)
            spliced = spliced_json(wire, self.redactor, self.max_attribute_length, memo)
            if spliced is not None:
                return spliced
            return to_attribute_json(wire, redactor=self.redactor, limit=self.max_attribute_length)
        return NOT_RECORDED

    def _error_as_configured(self, wire: dict[str, Any]) -> dict[str, Any]:
        """`wire` with its ``error`` redacted and cut by these settings, as the span's status
        and ``exception`` event are. The wire form (`error_wire`) applies the default rules
        only, for snapshots and streams; a custom redactor's keys must not show in a payload."""
        error = wire.get("error")
        if type(error) is not dict or (
            self.redactor is DEFAULT_REDACTOR
            and self.max_error_length >= DEFAULT_MAX_ERROR_LENGTH
            and self.max_stack_length >= DEFAULT_MAX_STACK_LENGTH
        ):
            return wire
        fixed = dict(error)
        message, stack = fixed.get("message"), fixed.get("stack")
        if isinstance(message, str):
            fixed["message"] = redact_error_message(
                message, redactor=self.redactor, limit=self.max_error_length
            )
        if isinstance(stack, str):
            fixed["stack"] = redact_stack(
                stack, redactor=self.redactor, limit=self.max_stack_length
            )
        return {**wire, "error": fixed}

    def render_memo(self) -> RenderMemo:
        """A new memo of what this configuration's redactor finds in texts (one per run)."""
        return RenderMemo(self.redactor)

    def error_message(self, error: BaseException | None) -> str:
        """The status description of a span that failed with ``error``: redacted and cut."""
        if error is None:
            return "failed"
        with _RENDERING_ERROR:
            return redact_error_message(
                _message(error), redactor=self.redactor, limit=self.max_error_length
            )
        return NOT_RECORDED

    def exception_attributes(self, error: BaseException) -> dict[str, str]:
        """The attributes of the ``exception`` event recording ``error``, redacted and cut.

        The same keys the SDK's ``record_exception`` sets (type, message, stack trace and
        ``exception.escaped``), so an exporter sees no difference, but nothing unredacted ever
        reaches the span. A restored error keeps its original type name and stack.
        """
        with _RENDERING_ERROR:
            if isinstance(error, StoredError):
                kind, stack, extra = error.name, error.stack or "", {}
            else:
                kind = error_type(error)
                stack = "".join(traceback.format_exception(error))
                extra = {"exception.escaped": "False"}
            return {
                "exception.type": kind,
                "exception.message": self.error_message(error),
                "exception.stacktrace": redact_stack(
                    stack, redactor=self.redactor, limit=self.max_stack_length
                ),
                **extra,
            }
        return {"exception.type": type(error).__name__, "exception.message": NOT_RECORDED}


def _message(error: BaseException) -> str:
    try:
        return str(error)
    except Exception:  # an exception whose __str__ raises still fails its span
        return f"<{type(error).__name__} whose message cannot be rendered>"
