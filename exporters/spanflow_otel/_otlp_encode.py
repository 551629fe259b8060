"""A faster `encode_spans`: the OTLP request written as protobuf bytes, then parsed once.

The SDK's encoder (``opentelemetry.exporter.otlp.proto.common.trace_encoder.encode_spans``)
builds one protobuf object per span, event, link, key-value and value in Python: about 85 µs
per span of ours, 20 key-values each. This one writes the same message's wire bytes directly
(varints and length-prefixed fields, each key's bytes cached) and lets protobuf parse them at C
speed with `ExportTraceServiceRequest.FromString`. The result is *equal* (``==``) to the SDK's
message for the same spans: grouped by resource, then scope, in order of first appearance;
attribute values of every type the SDK encodes; the SDK's span flags (the remote-parent bits
only), its kind numbers, its status, dropped counts and links (without their trace state, as
the SDK sends them).

Anything the fast path does not write exactly as the SDK would (an attribute value of another
type, an integer out of range, text that is not valid UTF-8, a span without a context) makes it
give up on the batch, and the SDK's own encoder encodes it: its logs, its skipped keys and its
exceptions are then the SDK's own. `encode_request_bytes` is the fast path alone, which raises
`UnsupportedSpans` instead; the tests compare it with the SDK's encoder shape by shape.

Used only in the export child (`_export_child`), a process that runs nothing else.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.exporter.otlp.proto.common.trace_encoder import (
    encode_spans as sdk_encode_spans,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util import BoundedList
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.span import TraceState

__all__ = ["UnsupportedSpans", "encode_request_bytes", "encode_spans", "matches_the_sdk"]

logger = logging.getLogger("spanflow.tracing")


class UnsupportedSpans(Exception):
    """The fast path cannot write these spans exactly as the SDK's encoder would."""


def encode_spans(spans: Sequence[ReadableSpan]) -> ExportTraceServiceRequest:
    """The SDK's ``encode_spans(spans)``, equal message, several times faster.

    The fast path gives up on any batch it cannot write exactly as the SDK would, for whatever
    reason (`UnsupportedSpans`, or an error such as an id too large for its 16 bytes); the SDK
    then encodes that batch itself, with its own logging and errors.
    """
    try:
        # The parse too: protobuf refuses values nested deeper than it parses (about 100
        # messages), and the whole request nests a value a few levels deeper than the SDK's
        # own message for the attribute does.
        request: ExportTraceServiceRequest = ExportTraceServiceRequest.FromString(
            encode_request_bytes(spans)
        )
    except Exception as error:
        _note_fallback(error)
        return sdk_encode_spans(spans)
    return request


_fell_back = False


def _note_fallback(error: Exception) -> None:
    """Say once (at DEBUG) that a batch went to the SDK's encoder, and why: a fast path that
    gives up on every batch (a future SDK's span objects, say) only costs time, so it would
    otherwise go unnoticed."""
    global _fell_back
    if not _fell_back:
        _fell_back = True
        logger.debug("The fast OTLP encoder gave a batch to the SDK's encoder: %r", error)


# The wire format: https://protobuf.dev/programming-guides/encoding/ (numbers are the field
# numbers of the opentelemetry-proto messages, read from their descriptors below).

_VARINT, _FIXED64, _LENGTH_DELIMITED, _FIXED32 = 0, 1, 2, 5
_WIRE_TYPES = {
    "string": _LENGTH_DELIMITED,
    "bytes": _LENGTH_DELIMITED,
    "message": _LENGTH_DELIMITED,
    "bool": _VARINT,
    "int64": _VARINT,
    "uint32": _VARINT,
    "enum": _VARINT,
    "double": _FIXED64,
    "fixed64": _FIXED64,
    "fixed32": _FIXED32,
}
# FieldDescriptor.type numbers, by the names above.
_TYPE_NAMES = {
    9: "string",
    12: "bytes",
    11: "message",
    8: "bool",
    3: "int64",
    13: "uint32",
    14: "enum",
    1: "double",
    6: "fixed64",
    7: "fixed32",
}
_INT64_MIN, _INT64_END = -(1 << 63), 1 << 63
_UINT32_END, _UINT64_END = 1 << 32, 1 << 64


def _varint(value: int) -> bytes:
    """`value` (not negative) as a protobuf varint: 7 bits a byte, low bits first."""
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_SHORT = 4096
_SHORT_VARINTS = [bytes((n,)) for n in range(0x80)] + [
    bytes((n & 0x7F | 0x80, n >> 7)) for n in range(0x80, _SHORT)
]
"""Varints of the lengths most fields have (two bytes at most), looked up, not computed."""


def _length(n: int) -> bytes:
    return _SHORT_VARINTS[n] if n < _SHORT else _varint(n)


def _key(message: Any, field: str, type_name: str) -> bytes:
    """The bytes that open `field` of `message` on the wire: its number and wire type.

    Read from the generated descriptor, so a field number is never copied by hand; a field
    whose type is not the one this module writes stops the import, not an export.
    """
    descriptor = message.DESCRIPTOR.fields_by_name[field]
    actual = _TYPE_NAMES.get(descriptor.type)
    if actual != type_name:
        raise RuntimeError(
            f"{message.DESCRIPTOR.full_name}.{field} is a {actual or descriptor.type} field, "
            f"not the {type_name} field spanflow_otel._otlp_encode writes"
        )
    return _varint(descriptor.number << 3 | _WIRE_TYPES[type_name])


_REQUEST_RESOURCE_SPANS = _key(ExportTraceServiceRequest, "resource_spans", "message")
_RESOURCE_SPANS_RESOURCE = _key(trace_pb2.ResourceSpans, "resource", "message")
_RESOURCE_SPANS_SCOPE_SPANS = _key(trace_pb2.ResourceSpans, "scope_spans", "message")
_RESOURCE_SPANS_SCHEMA_URL = _key(trace_pb2.ResourceSpans, "schema_url", "string")
_SCOPE_SPANS_SCOPE = _key(trace_pb2.ScopeSpans, "scope", "message")
_SCOPE_SPANS_SPANS = _key(trace_pb2.ScopeSpans, "spans", "message")
_SCOPE_SPANS_SCHEMA_URL = _key(trace_pb2.ScopeSpans, "schema_url", "string")
_SCOPE_NAME = _key(common_pb2.InstrumentationScope, "name", "string")
_SCOPE_VERSION = _key(common_pb2.InstrumentationScope, "version", "string")
_SPAN_TRACE_ID = _key(trace_pb2.Span, "trace_id", "bytes") + _varint(16)
_SPAN_SPAN_ID = _key(trace_pb2.Span, "span_id", "bytes") + _varint(8)
_SPAN_TRACE_STATE = _key(trace_pb2.Span, "trace_state", "string")
_SPAN_PARENT_SPAN_ID = _key(trace_pb2.Span, "parent_span_id", "bytes") + _varint(8)
_SPAN_NAME = _key(trace_pb2.Span, "name", "string")
_SPAN_KIND = _key(trace_pb2.Span, "kind", "enum")
_SPAN_START = _key(trace_pb2.Span, "start_time_unix_nano", "fixed64")
_SPAN_END = _key(trace_pb2.Span, "end_time_unix_nano", "fixed64")
_SPAN_DROPPED_ATTRIBUTES = _key(trace_pb2.Span, "dropped_attributes_count", "uint32")
_SPAN_EVENTS = _key(trace_pb2.Span, "events", "message")
_SPAN_DROPPED_EVENTS = _key(trace_pb2.Span, "dropped_events_count", "uint32")
_SPAN_LINKS = _key(trace_pb2.Span, "links", "message")
_SPAN_DROPPED_LINKS = _key(trace_pb2.Span, "dropped_links_count", "uint32")
_SPAN_STATUS = _key(trace_pb2.Span, "status", "message")
_SPAN_FLAGS = _key(trace_pb2.Span, "flags", "fixed32")
_EVENT_TIME = _key(trace_pb2.Span.Event, "time_unix_nano", "fixed64")
_EVENT_NAME = _key(trace_pb2.Span.Event, "name", "string")
_EVENT_DROPPED_ATTRIBUTES = _key(trace_pb2.Span.Event, "dropped_attributes_count", "uint32")
_LINK_TRACE_ID = _key(trace_pb2.Span.Link, "trace_id", "bytes") + _varint(16)
_LINK_SPAN_ID = _key(trace_pb2.Span.Link, "span_id", "bytes") + _varint(8)
_LINK_DROPPED_ATTRIBUTES = _key(trace_pb2.Span.Link, "dropped_attributes_count", "uint32")
_LINK_FLAGS = _key(trace_pb2.Span.Link, "flags", "fixed32")
_STATUS_MESSAGE = _key(trace_pb2.Status, "message", "string")
_STATUS_CODE = _key(trace_pb2.Status, "code", "enum")
_KEY_VALUE_KEY = _key(common_pb2.KeyValue, "key", "string")
_KEY_VALUE_VALUE = _key(common_pb2.KeyValue, "value", "message")
_STRING_VALUE = _key(common_pb2.AnyValue, "string_value", "string")
_BOOL_VALUE = _key(common_pb2.AnyValue, "bool_value", "bool")
_INT_VALUE = _key(common_pb2.AnyValue, "int_value", "int64")
_DOUBLE_VALUE = _key(common_pb2.AnyValue, "double_value", "double")
_ARRAY_VALUE = _key(common_pb2.AnyValue, "array_value", "message")
_KVLIST_VALUE = _key(common_pb2.AnyValue, "kvlist_value", "message")
_BYTES_VALUE = _key(common_pb2.AnyValue, "bytes_value", "bytes")
_ARRAY_VALUES = _key(common_pb2.ArrayValue, "values", "message")
_KVLIST_VALUES = _key(common_pb2.KeyValueList, "values", "message")

_FIXED32_STRUCT = struct.Struct("<I")
_FIXED64_STRUCT = struct.Struct("<Q")
_DOUBLE_STRUCT = struct.Struct("<d")

# What the SDK's encoder writes for these (its `_SPAN_KIND_MAP` and `_span_flags`).
_KINDS = {
    SpanKind.INTERNAL: _varint(trace_pb2.Span.SpanKind.SPAN_KIND_INTERNAL),
    SpanKind.SERVER: _varint(trace_pb2.Span.SpanKind.SPAN_KIND_SERVER),
    SpanKind.CLIENT: _varint(trace_pb2.Span.SpanKind.SPAN_KIND_CLIENT),
    SpanKind.PRODUCER: _varint(trace_pb2.Span.SpanKind.SPAN_KIND_PRODUCER),
    SpanKind.CONSUMER: _varint(trace_pb2.Span.SpanKind.SPAN_KIND_CONSUMER),
}
_INTERNAL_KIND = _SPAN_KIND + _KINDS[SpanKind.INTERNAL]
_UNSET_STATUS = _SPAN_STATUS + _varint(0)
_LOCAL_FLAGS = _FIXED32_STRUCT.pack(trace_pb2.SpanFlags.SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK)
_REMOTE_FLAGS = _FIXED32_STRUCT.pack(
    trace_pb2.SpanFlags.SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK
    | trace_pb2.SpanFlags.SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK
)


# Fields.


def _delimited(key: bytes, data: bytes) -> bytes:
    """A length-delimited field: `key`, the length of `data`, `data`."""
    return key + _length(len(data)) + data


def _text(key: bytes, value: object) -> bytes:
    """An optional string field; nothing for None or "" (proto3 does not send defaults)."""
    if type(value) is str:
        return _delimited(key, value.encode()) if value else b""
    if value is None:
        return b""
    raise UnsupportedSpans(f"{value!r} is not a string")


def _fixed64(key: bytes, value: object) -> bytes:
    """An optional timestamp; nothing for None or 0."""
    if type(value) is int and 0 <= value < _UINT64_END:
        return key + _FIXED64_STRUCT.pack(value) if value else b""
    if value is None:
        return b""
    raise UnsupportedSpans(f"{value!r} is not a fixed64")


def _uint32(key: bytes, value: object) -> bytes:
    """An optional count; nothing for 0."""
    if type(value) is int and 0 <= value < _UINT32_END:
        return key + _varint(value) if value else b""
    raise UnsupportedSpans(f"{value!r} is not a uint32")


# Attribute values: AnyValue bodies, by exact type. A subclass (an enum, a numpy number) is
# left to the SDK, whose isinstance chain decides what it becomes.


def _string_value(value: str) -> bytes:
    return _delimited(_STRING_VALUE, value.encode())


def _bool_value(value: bool) -> bytes:
    return _BOOL_VALUE + (b"\x01" if value else b"\x00")


def _int_value(value: int) -> bytes:
    if not _INT64_MIN <= value < _INT64_END:
        raise UnsupportedSpans(f"{value} does not fit an int64")
    # Negative int64s go on the wire as their 64-bit two's complement, in ten bytes.
    return _INT_VALUE + _varint(value if value >= 0 else value + _UINT64_END)


def _double_value(value: float) -> bytes:
    return _DOUBLE_VALUE + _DOUBLE_STRUCT.pack(value)


def _bytes_value(value: bytes) -> bytes:
    return _delimited(_BYTES_VALUE, value)


def _none_value(value: None) -> bytes:
    return b""  # The SDK sends an empty AnyValue.


def _array_value(value: Sequence[Any]) -> bytes:
    items = [_delimited(_ARRAY_VALUES, _any_value(item)) for item in value]
    return _delimited(_ARRAY_VALUE, b"".join(items))


def _kvlist_value(value: Mapping[Any, Any]) -> bytes:
    # Like the SDK, keys of a nested mapping are sent as str(key).
    items = [_KVLIST_VALUES + _key_value(str(k), v) for k, v in value.items()]
    return _delimited(_KVLIST_VALUE, b"".join(items))


_VALUE_WRITERS: dict[type, Callable[[Any], bytes]] = {
    str: _string_value,
    bool: _bool_value,
    int: _int_value,
    float: _double_value,
    bytes: _bytes_value,
    type(None): _none_value,
    list: _array_value,
    tuple: _array_value,
    dict: _kvlist_value,
}


def _any_value(value: object) -> bytes:
    """The body of the AnyValue the SDK's ``_encode_value(value)`` builds."""
    writer = _VALUE_WRITERS.get(type(value))
    if writer is None:
        raise UnsupportedSpans(f"attribute values of type {type(value).__name__}")
    return writer(value)


# Key-values: the hot path, 20 per span of ours. Every key repeats from span to span, and so
# do most values (the run id, the step status, an attempt number): both are cached.

_CACHE_LIMIT = 4096
"""Entries a cache keeps; it starts over past that, so that unique values cannot grow it."""
_CACHED_STRING_LIMIT = 256
"""Longer string values (payloads, mostly unique) are not cached, nor hashed to look them up."""

_STRING_HEADS = [
    _length(len(_STRING_VALUE) + len(_SHORT_VARINTS[n]) + n) + _STRING_VALUE + _SHORT_VARINTS[n]
    for n in range(_SHORT)
]
"""What precedes a string value of n bytes in a KeyValue: the AnyValue's length, the
string_value key and the string's length."""

_key_heads: dict[object, bytes] = {}


def _key_head(key: object) -> bytes:
    """What precedes the value in a KeyValue: the key field, then the value field's key."""
    head = _key_heads.get(key)
    if head is None:
        if type(key) is not str:
            raise UnsupportedSpans(f"attribute key {key!r} is not a string")
        head = _text(_KEY_VALUE_KEY, key) + _KEY_VALUE_VALUE
        if len(key) <= _CACHED_STRING_LIMIT:  # long keys are rare: not kept 4,096 times
            if len(_key_heads) >= _CACHE_LIMIT:
                _key_heads.clear()
            _key_heads[key] = head
    return head


def _key_value(key: object, value: object) -> bytes:
    """A KeyValue message, its length first, ready to follow its field's key."""
    head = _key_heads.get(key) or _key_head(key)
    if type(value) is str:
        # The commonest value type, written out: a call fewer.
        data = value.encode()
        n = len(data)
        if n < _SHORT:
            return _length_first(head + _STRING_HEADS[n] + data)
    return _length_first(head + _length_first(_any_value(value)))


def _length_first(data: bytes) -> bytes:
    """`data`, its length first: a length-delimited field's body."""
    n = len(data)
    return (_SHORT_VARINTS[n] if n < _SHORT else _varint(n)) + data


class _AttributeField:
    """The repeated KeyValue field of one message type: a span's attributes, an event's...

    Each encoded field is remembered by its (key, value) when the value is an int or a short
    str. No other type is looked up: a float -0.0 equals 0.0 and True equals 1, but their
    encodings differ.
    """

    __slots__ = ("_key", "_remembered")

    def __init__(self, message: Any, field: str) -> None:
        self._key = _key(message, field, "message")
        self._remembered: dict[tuple[object, object], bytes] = {}

    def fields(self, attributes: Mapping[str, Any] | None) -> list[bytes]:
        """One field a key-value, in the mapping's order, as the SDK's ``_encode_attributes``."""
        if not attributes:
            return []
        remembered = self._remembered
        fields = []
        for item in attributes.items():
            value = item[1]
            kind = type(value)
            if kind is int or (kind is str and len(value) <= _CACHED_STRING_LIMIT):
                field = remembered.get(item) or self._remember(item)
            else:
                field = self._key + _key_value(*item)
            fields.append(field)
        return fields

    def _remember(self, item: tuple[object, object]) -> bytes:
        # `self._key + _key_value(*item)`, written out: two calls fewer on the path that every
        # new value takes.
        key, value = item
        head = _key_heads.get(key) or _key_head(key)
        if type(value) is str and (n := len(data := value.encode())) < _SHORT:
            kv = head + _STRING_HEADS[n] + data
        else:
            kv = head + _length_first(_any_value(value))
        m = len(kv)
        field = self._key + (_SHORT_VARINTS[m] if m < _SHORT else _varint(m)) + kv
        if len(self._remembered) >= _CACHE_LIMIT:
            self._remembered.clear()
        self._remembered[item] = field
        return field


_SPAN_ATTRIBUTES = _AttributeField(trace_pb2.Span, "attributes")
_EVENT_ATTRIBUTES = _AttributeField(trace_pb2.Span.Event, "attributes")
_LINK_ATTRIBUTES = _AttributeField(trace_pb2.Span.Link, "attributes")
_SCOPE_ATTRIBUTES = _AttributeField(common_pb2.InstrumentationScope, "attributes")
_RESOURCE_ATTRIBUTES = _AttributeField(resource_pb2.Resource, "attributes")


# Spans.


def _span(span: ReadableSpan) -> bytes:
    """One Span message, as the SDK's ``_encode_span`` builds it."""
    context = span.get_span_context()
    if context is None:
        raise UnsupportedSpans("a span without a context")
    parent = span.parent
    kind = span.kind
    attributes, events, links, dropped = _contents(span)
    parts = [
        _SPAN_TRACE_ID,
        context.trace_id.to_bytes(16, "big"),
        _SPAN_SPAN_ID,
        context.span_id.to_bytes(8, "big"),
        _trace_state(context),
        b"" if parent is None else _SPAN_PARENT_SPAN_ID + parent.span_id.to_bytes(8, "big"),
        _text(_SPAN_NAME, span.name),
        # Enum members hash in Python code: the common member is compared, not looked up.
        _INTERNAL_KIND if kind is SpanKind.INTERNAL else _kind(kind),
        _fixed64(_SPAN_START, span.start_time),
        _fixed64(_SPAN_END, span.end_time),
        *_SPAN_ATTRIBUTES.fields(attributes),
        *[_delimited(_SPAN_EVENTS, _event(event)) for event in events],
        *[_delimited(_SPAN_LINKS, _link(link)) for link in links],
        _status(span.status),
        dropped,
        _SPAN_FLAGS,
        _flags(parent),
    ]
    return b"".join(parts)


def _kind(kind: SpanKind) -> bytes:
    encoded = _KINDS.get(kind)
    if encoded is None:
        raise UnsupportedSpans(f"span kind {kind!r}")
    return _SPAN_KIND + encoded


SpanContents = tuple[Mapping[str, Any] | None, Sequence[Event], Sequence[Link], bytes]


def _contents(span: ReadableSpan) -> SpanContents:
    """A span's attributes, events and links, and its dropped-count fields.

    Of a `ReadableSpan` itself (what the export child rebuilds), read from the fields its
    properties view: the properties copy them (a MappingProxyType, two tuples) and test each
    for a bounded container, a third of the cost of a span without attributes. A subclass may
    override the properties, so it is read through them. The same private fields are what
    `_export_child._span_row` reads in the parent; the shortcut for plain containers is the
    common case because `_export_child.decode_batch` rebuilds a span that dropped nothing with
    a plain dict and list (`_bounded`, `_bounded_list`).
    """
    if type(span) is not ReadableSpan:
        dropped = (
            _uint32(_SPAN_DROPPED_ATTRIBUTES, span.dropped_attributes)
            + _uint32(_SPAN_DROPPED_EVENTS, span.dropped_events)
            + _uint32(_SPAN_DROPPED_LINKS, span.dropped_links)
        )
        return span.attributes, span.events, span.links, dropped
    attributes, events, links = span._attributes, span._events, span._links
    plain_attributes = attributes is None or type(attributes) is dict
    if plain_attributes and type(events) in _PLAIN_SEQUENCES and type(links) in _PLAIN_SEQUENCES:
        return attributes, events, links, b""  # Nothing can have been dropped.
    dropped = (
        _uint32(_SPAN_DROPPED_ATTRIBUTES, _dropped(attributes, BoundedAttributes))
        + _uint32(_SPAN_DROPPED_EVENTS, _dropped(events, BoundedList))
        + _uint32(_SPAN_DROPPED_LINKS, _dropped(links, BoundedList))
    )
    return attributes, events, links, dropped


_PLAIN_SEQUENCES = (tuple, list)


def _dropped(container: object, bounded: type) -> int:
    """What ReadableSpan's `dropped_*` properties say of `container`."""
    return container.dropped if isinstance(container, bounded) else 0  # type: ignore[attr-defined]


def _trace_state(context: SpanContext) -> bytes:
    state = context.trace_state
    if not state:
        return b""
    return _text(_SPAN_TRACE_STATE, ",".join([f"{k}={v}" for k, v in state.items()]))


def _flags(context: SpanContext | None) -> bytes:
    """The SDK's `_span_flags`: "remote is known", and "remote" for a remote context."""
    return _REMOTE_FLAGS if context is not None and context.is_remote else _LOCAL_FLAGS


def _event(event: Event) -> bytes:
    attributes = event.attributes
    if type(event) is Event and (attributes is None or type(attributes) is dict):
        dropped = b""  # An Event counts drops in its BoundedAttributes only; spare the test.
    else:
        dropped = _uint32(_EVENT_DROPPED_ATTRIBUTES, event.dropped_attributes)
    parts = [
        _fixed64(_EVENT_TIME, event.timestamp),
        _text(_EVENT_NAME, event.name),
        *_EVENT_ATTRIBUTES.fields(attributes),
        dropped,
    ]
    return b"".join(parts)


def _link(link: Link) -> bytes:
    # The SDK sends no trace state for a link, and only the remote bits as its flags.
    context = link.context
    parts = [
        _LINK_TRACE_ID,
        context.trace_id.to_bytes(16, "big"),
        _LINK_SPAN_ID,
        context.span_id.to_bytes(8, "big"),
        *_LINK_ATTRIBUTES.fields(link.attributes),
        _uint32(_LINK_DROPPED_ATTRIBUTES, link.dropped_attributes),
        _LINK_FLAGS,
        _flags(context),
    ]
    return b"".join(parts)


def _status(status: Status | None) -> bytes:
    """The status field, present (if empty) whenever the span has a status, as in the SDK."""
    if status is None:
        return b""
    code = status.status_code
    if code is StatusCode.UNSET and status.description is None:
        return _UNSET_STATUS  # Most spans'; an enum's `value` is a slow Python property.
    number = code.value
    if type(number) is not int or not 0 <= number < 1 << 31:
        raise UnsupportedSpans(f"status code {code!r}")
    body = _text(_STATUS_MESSAGE, status.description)
    if number:
        body += _STATUS_CODE + _varint(number)
    return _delimited(_SPAN_STATUS, body)


# The request: spans grouped by resource, then scope.

ScopeKey = InstrumentationScope | None
Grouped = dict[Resource, dict[ScopeKey, list[bytes]]]


def _grouped(spans: Sequence[ReadableSpan]) -> Grouped:
    """Encoded spans by resource, then scope, both in order of first appearance.

    The SDK groups with dicts keyed by the resource and scope objects, so equal resources (or
    scopes) of different spans share one group; this does the same, hashing each distinct
    object once (a resource's hash dumps its attributes to JSON) rather than once a span.
    """
    groups: Grouped = {}
    # The objects are kept with their group: an id is only unique while its object lives, and
    # a span whose property builds a new scope each time would otherwise free it at once.
    by_identity: dict[tuple[int, int], tuple[Resource, ScopeKey, list[bytes]]] = {}
    for span in spans:
        resource = span.resource
        scope = span.instrumentation_scope or None
        identity = (id(resource), id(scope))
        encoded = _span(span)
        known = by_identity.get(identity)
        if known is None:
            group = groups.setdefault(resource, {}).setdefault(scope, [])
            known = by_identity[identity] = (resource, scope, group)
        known[2].append(encoded)
    return groups


def _scope_spans(scope: ScopeKey, spans: list[bytes]) -> bytes:
    if scope is None:
        scope_body = b""  # The SDK sends an empty scope message for spans without one.
        schema_url = b""
    else:
        scope_body = b"".join(
            [
                _text(_SCOPE_NAME, scope.name),
                _text(_SCOPE_VERSION, scope.version),
                *_SCOPE_ATTRIBUTES.fields(scope.attributes),
            ]
        )
        schema_url = _text(_SCOPE_SPANS_SCHEMA_URL, scope.schema_url)
    parts = [
        _delimited(_SCOPE_SPANS_SCOPE, scope_body),
        *[_delimited(_SCOPE_SPANS_SPANS, span) for span in spans],
        schema_url,
    ]
    return b"".join(parts)


def _resource_spans(resource: Resource, scopes: dict[ScopeKey, list[bytes]]) -> bytes:
    resource_body = b"".join(_RESOURCE_ATTRIBUTES.fields(resource.attributes))
    parts = [
        _delimited(_RESOURCE_SPANS_RESOURCE, resource_body),
        *[
            _delimited(_RESOURCE_SPANS_SCOPE_SPANS, _scope_spans(scope, spans))
            for scope, spans in scopes.items()
        ],
        _text(_RESOURCE_SPANS_SCHEMA_URL, resource.schema_url),
    ]
    return b"".join(parts)


def encode_request_bytes(spans: Sequence[ReadableSpan]) -> bytes:
    """The serialized ExportTraceServiceRequest the SDK's ``encode_spans(spans)`` builds.

    Raises `UnsupportedSpans` (or the error the spans cause, such as an `OverflowError` for a
    trace id wider than 128 bits) where it cannot promise the SDK's message.
    """
    return b"".join(
        [
            _delimited(_REQUEST_RESOURCE_SPANS, _resource_spans(resource, scopes))
            for resource, scopes in _grouped(spans).items()
        ]
    )


def matches_the_sdk() -> bool:
    """Whether the fast path gives the installed SDK's message for a sample of every part of a
    span: checked once when the export child starts, so that an SDK that changed how it
    encodes (new span flags, trace state on links, dropped counts kept elsewhere) gets its own
    encoder rather than a message that differs from it. The tests cover far more shapes, for
    the SDK they run with."""
    try:
        sample = _sample_spans()
        fast = ExportTraceServiceRequest.FromString(encode_request_bytes(sample))
        return bool(fast == sdk_encode_spans(sample))
    except Exception as error:
        logger.debug("The fast OTLP encoder could not be checked against the SDK's: %r", error)
        return False


def _sample_spans() -> list[ReadableSpan]:
    """Two spans holding one of each: attribute types, an event, a link, dropped counts, trace
    state, a remote parent, an error status, a scope with a version and a schema."""
    dropped = BoundedAttributes(attributes={"kept": "yes"}, immutable=True)
    dropped.dropped = 2
    events: BoundedList[Event] = BoundedList(None)
    events.extend([Event("started", {"n": 1, "ok": True}, 1_000), Event("bare", None, 2_000)])
    events.dropped = 1
    values: dict[str, Any] = {"s": "text", "i": -7, "f": 0.5, "b": False, "l": ("a", "b")}
    values["m"] = {"k": [1, None]}
    trace_id, flags = 0x0AF7651916CD43DD8448EB211C80319C, TraceFlags(1)
    remote = SpanContext(trace_id, 0x21, True, flags, TraceState([("vendor", "x")]))
    resource = Resource({"service.name": "check"}, "https://opentelemetry.io/schemas/1.21.0")
    scope = InstrumentationScope("check", "1.0", "https://example.com/schema", {"a": 1})
    first = ReadableSpan(
        name="first",
        context=SpanContext(trace_id, 0x22, False, flags, TraceState([("vendor", "y")])),
        parent=remote,
        resource=resource,
        attributes=values,
        events=events,
        links=[Link(remote, dropped)],
        kind=SpanKind.SERVER,
        status=Status(StatusCode.ERROR, "failed"),
        start_time=1_000,
        end_time=3_000,
        instrumentation_scope=scope,
    )
    second = ReadableSpan(
        name="second",
        context=SpanContext(trace_id, 0x23, False, flags),
        parent=first.get_span_context(),
        resource=resource,
        attributes=dropped,
        status=Status(StatusCode.OK),
        start_time=1_500,
        end_time=2_500,
        instrumentation_scope=None,
    )
    return [first, second]
