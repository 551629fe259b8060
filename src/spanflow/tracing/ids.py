"""Trace and span ids as users write them, turned into the ids OpenTelemetry exports.

Users hand spanflow ids copied from logs, headers and Jaeger's UI: short, upper case, padded
with spaces. `normalize_trace_id` and `normalize_span_id` accept 1–32 (1–16) hex characters in
any case and left-pad them with zeros to the fixed width OTLP requires (Jaeger's own rule for
short ids), so what is exported is always valid. `parse_traceparent` reads a W3C
``traceparent`` header. Every rule broken raises a `TracingOptionsError` subclass whose message
names the field and the rule, so the caller can either raise it (strict mode) or log and record
it.
"""

from __future__ import annotations

import reprlib
from dataclasses import dataclass
from typing import Final

from spanflow.errors import SpanflowError
from spanflow.tracing.redaction import DEFAULT_REDACTOR

__all__ = [
    "SPAN_ID_HEX_LENGTH",
    "TRACE_ID_HEX_LENGTH",
    "InvalidSpanIdError",
    "InvalidTraceIdError",
    "InvalidTraceparentError",
    "TraceParent",
    "TracingOptionsError",
    "format_span_id",
    "format_trace_id",
    "normalize_span_id",
    "normalize_trace_id",
    "parse_traceparent",
    "short_repr",
    "span_id_int",
    "trace_id_int",
]

TRACE_ID_HEX_LENGTH: Final = 32
"""A trace id is 16 bytes: 32 hex characters once normalised."""

SPAN_ID_HEX_LENGTH: Final = 16
"""A span id is 8 bytes: 16 hex characters once normalised."""

_HEX_DIGITS: Final = frozenset("0123456789abcdefABCDEF")
_TRACEPARENT_V00_LENGTH: Final = 55  # "00-" + 32 + "-" + 16 + "-" + 2
_SAMPLED_FLAG: Final = 0x01

_short = reprlib.Repr()
_short.maxstring = 60
_short.maxother = 60
_short.maxlist = 6
_short.maxdict = 6
_short.maxlevel = 2


def short_repr(value: object) -> str:
    """Return a bounded `repr` of a user value, safe to put in a log line or span attribute."""
    return _short.repr(value)


class TracingOptionsError(SpanflowError, ValueError):
    """A tracing option was invalid (raised only under ``strict=True``; logged otherwise).

    The message reads ``"<field>: <value> <reason>"``; the parts are kept as attributes so the
    same facts can be logged and recorded on the run span when the error is not raised.
    """

    def __init__(self, field: str, value: object, reason: str) -> None:
        self.field = field
        """The option that was rejected, e.g. ``"trace_id"`` or ``"tags[2]"``."""
        self.value_repr = (
            value
            if isinstance(value, _ValueRepr)
            else _ValueRepr(short_repr(DEFAULT_REDACTOR.preview(value)))
        )
        """A bounded `repr` of the rejected value, redacted (the value itself is not kept): an
        API key passed as a trace id is never echoed."""
        self.reason = reason
        """The rule broken, phrased to follow the value: ``"is not hex (...)"``."""
        super().__init__(f"{field}: {self.value_repr} {reason}")

    def __reduce__(self) -> tuple[type[TracingOptionsError], tuple[str, _ValueRepr, str]]:
        return (type(self), (self.field, self.value_repr, self.reason))


class _ValueRepr(str):
    """A repr that is already computed; lets `TracingOptionsError` survive pickling."""

    __slots__ = ()


class InvalidTraceIdError(TracingOptionsError):
    """A trace id is not 1–32 hex characters, or is all zeros."""


class InvalidSpanIdError(TracingOptionsError):
    """A span id is not 1–16 hex characters, or is all zeros."""


class InvalidTraceparentError(TracingOptionsError):
    """A ``traceparent`` value is not a valid W3C trace context header."""


@dataclass(frozen=True, slots=True)
class TraceParent:
    """The parts of a W3C ``traceparent`` header spanflow uses, ids already normalised."""

    trace_id: str
    """The trace id, 32 lowercase hex characters."""
    span_id: str
    """The parent span id, 16 lowercase hex characters."""
    sampled: bool
    """Whether the caller sampled its span (bit 0 of the trace flags)."""


def normalize_trace_id(value: object, *, field: str = "trace_id") -> str:
    """Normalise a trace id to 32 lowercase hex characters.

    Args:
        value: 1–32 hex characters in any case; surrounding whitespace is ignored.
        field: The option name used in the error message.

    Returns:
        The id left-padded with zeros to 32 lowercase hex characters.

    Raises:
        InvalidTraceIdError: The value is not a string, is empty, too long, not hex, or all
            zeros.
    """
    return _normalize_hex_id(value, field, TRACE_ID_HEX_LENGTH, InvalidTraceIdError)


def normalize_span_id(value: object, *, field: str = "parent_span_id") -> str:
    """Normalise a span id to 16 lowercase hex characters.

    Args:
        value: 1–16 hex characters in any case; surrounding whitespace is ignored.
        field: The option name used in the error message.

    Returns:
        The id left-padded with zeros to 16 lowercase hex characters.

    Raises:
        InvalidSpanIdError: The value is not a string, is empty, too long, not hex, or all
            zeros.
    """
    return _normalize_hex_id(value, field, SPAN_ID_HEX_LENGTH, InvalidSpanIdError)


def trace_id_int(value: object) -> int:
    """Return the integer OpenTelemetry uses for a trace id given as hex (normalised first)."""
    return int(normalize_trace_id(value), 16)


def span_id_int(value: object) -> int:
    """Return the integer OpenTelemetry uses for a span id given as hex (normalised first)."""
    return int(normalize_span_id(value), 16)


def format_trace_id(value: int) -> str:
    """Render an OpenTelemetry trace id integer as 32 lowercase hex characters."""
    return format(value, "032x")


def format_span_id(value: int) -> str:
    """Render an OpenTelemetry span id integer as 16 lowercase hex characters."""
    return format(value, "016x")


def parse_traceparent(value: object, *, field: str = "traceparent") -> TraceParent:
    """Parse a W3C ``traceparent`` header value.

    Follows W3C Trace Context level 1: version ``00`` is exactly
    ``00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>``; a higher version is parsed the
    same way and may carry more ``-``-separated fields after the flags; version ``ff`` and
    all-zero ids are invalid. One deliberate leniency: W3C allows lowercase hex only, but a
    value copied by hand is often upper case, so hex is accepted in any case and normalised to
    lowercase (surrounding whitespace is ignored too, as HTTP does).

    Args:
        value: The header value.
        field: The option name used in the error message.

    Returns:
        The normalised trace id, parent span id and sampled flag.

    Raises:
        InvalidTraceparentError: The value is not a valid ``traceparent``.
    """
    if not isinstance(value, str):
        raise InvalidTraceparentError(field, value, f"must be a string, got {type(value).__name__}")
    text = value.strip()
    shape = "'00-<32 hex trace id>-<16 hex span id>-<2 hex flags>'"
    if len(text) < _TRACEPARENT_V00_LENGTH:
        raise InvalidTraceparentError(
            field, value, f"is too short: expected {_TRACEPARENT_V00_LENGTH} characters, {shape}"
        )
    version = text[0:2]
    if not _is_hex(version) or text[2] != "-":
        raise InvalidTraceparentError(field, value, f"has no valid version: expected {shape}")
    version = version.lower()
    if version == "ff":
        raise InvalidTraceparentError(field, value, "has version ff, which W3C forbids")
    if version == "00" and len(text) != _TRACEPARENT_V00_LENGTH:
        raise InvalidTraceparentError(
            field, value, f"is {len(text)} characters long; version 00 needs exactly 55, {shape}"
        )
    if len(text) > _TRACEPARENT_V00_LENGTH and text[_TRACEPARENT_V00_LENGTH] != "-":
        raise InvalidTraceparentError(
            field, value, "has trace flags longer than 2 characters (extra fields need a '-')"
        )
    trace_part, span_part, flags_part = text[3:35], text[36:52], text[53:55]
    if text[35] != "-" or text[52] != "-":
        raise InvalidTraceparentError(field, value, f"is not shaped like {shape}")
    if not (_is_hex(trace_part) and _is_hex(span_part) and _is_hex(flags_part)):
        raise InvalidTraceparentError(field, value, f"has non-hex characters: expected {shape}")
    if int(trace_part, 16) == 0:
        raise InvalidTraceparentError(field, value, "has an all-zero trace id, which is invalid")
    if int(span_part, 16) == 0:
        raise InvalidTraceparentError(field, value, "has an all-zero span id, which is invalid")
    return TraceParent(
        trace_id=trace_part.lower(),
        span_id=span_part.lower(),
        sampled=bool(int(flags_part, 16) & _SAMPLED_FLAG),
    )


def _is_hex(text: str) -> bool:
    # A set check, not int(text, 16): int() also accepts "0x", "_", "+" and inner whitespace.
    return bool(text) and _HEX_DIGITS.issuperset(text)


def _normalize_hex_id(
    value: object, field: str, width: int, error: type[TracingOptionsError]
) -> str:
    rule = f"use 1–{width} hex characters (0-9, a-f)"
    if not isinstance(value, str):
        raise error(field, value, f"must be a string, got {type(value).__name__}: {rule}")
    text = value.strip()
    if not text:
        raise error(field, value, f"is empty: {rule}")
    if len(text) > width:
        raise error(field, value, f"is {len(text)} characters long: {rule}")
    if not _HEX_DIGITS.issuperset(text):
        raise error(field, value, f"is not hex: {rule}")
    if int(text, 16) == 0:
        raise error(field, value, "is all zeros, which OpenTelemetry treats as no id")
    return text.lower().rjust(width, "0")
