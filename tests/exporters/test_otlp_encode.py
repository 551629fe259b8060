"""The export child's OTLP encoder: the very message the SDK's `encode_spans` builds, for every
shape of span, or the SDK's own encoder where it cannot promise that; and the child uses it."""

from __future__ import annotations

import asyncio
import logging
import math
import os
import subprocess
import sys
import types
from collections.abc import Mapping, Sequence
from enum import Enum, IntEnum
from pathlib import Path
from typing import Any

import pytest
import spanflow_otel as so
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as sdk_encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span as ProtoSpan
from opentelemetry.proto.trace.v1.trace_pb2 import Status as ProtoStatus
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.util import BoundedList
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.span import TraceState
from pydantic import BaseModel
from spanflow_otel import _export_child as wire
from spanflow_otel import _otlp_encode
from spanflow_otel._otlp_encode import UnsupportedSpans, encode_request_bytes, encode_spans

from spanflow import StepContext, TracingConfig, create_step, create_workflow
from spanflow.storage.memory import MemoryStorage
from spanflow.tracing.otel import OtelInstrumentation
from tests.support.otlp_receiver import OtlpReceiver, otlp_receiver

ROOT = Path(__file__).resolve().parents[2]
RESOURCE = Resource({"service.name": "shop"})
SCOPE = InstrumentationScope("spanflow.workflows", "1.2.3")
TRACE = 0x0AF7651916CD43DD8448EB211C80319C
UNSET = Status(StatusCode.UNSET)


def context(span_id: int, *, remote: bool = False, state: TraceState | None = None) -> SpanContext:
    return SpanContext(
        TRACE, span_id, is_remote=remote, trace_flags=TraceFlags(1), trace_state=state
    )


def span(
    name: str = "step",
    *,
    span_id: int = 0x10,
    parent: SpanContext | None = None,
    attributes: Mapping[str, Any] | None = None,
    events: Sequence[Event] = (),
    links: Sequence[Link] = (),
    kind: SpanKind = SpanKind.INTERNAL,
    status: Status = UNSET,
    resource: Resource = RESOURCE,
    scope: InstrumentationScope | None = SCOPE,
    span_context: SpanContext | None = None,
    start: int | None = 1_700_000_000_000_000_000,
    end: int | None = 1_700_000_000_000_500_000,
) -> ReadableSpan:
    """A finished span as the export child rebuilds it: every part settable."""
    return ReadableSpan(
        name=name,
        context=span_context or context(span_id),
        parent=parent,
        resource=resource,
        attributes=attributes,
        events=events,
        links=links,
        kind=kind,
        status=status,
        start_time=start,
        end_time=end,
        instrumentation_scope=scope,
    )


def fast_path(spans: Sequence[ReadableSpan]) -> ExportTraceServiceRequest:
    """What the fast path alone writes: no fallback to the SDK to hide a difference."""
    request: ExportTraceServiceRequest = ExportTraceServiceRequest.FromString(
        encode_request_bytes(spans)
    )
    return request


def assert_encoded_as_the_sdk_does(spans: Sequence[ReadableSpan]) -> ExportTraceServiceRequest:
    expected = sdk_encode_spans(spans)
    assert fast_path(spans) == expected
    assert encode_spans(spans) == expected
    return expected


@pytest.fixture(autouse=True)
def cold_caches() -> None:
    """Each test starts with nothing remembered, as a fresh export child does."""
    _otlp_encode._key_heads.clear()
    for field in (
        _otlp_encode._SPAN_ATTRIBUTES,
        _otlp_encode._EVENT_ATTRIBUTES,
        _otlp_encode._LINK_ATTRIBUTES,
        _otlp_encode._SCOPE_ATTRIBUTES,
        _otlp_encode._RESOURCE_ATTRIBUTES,
    ):
        field._remembered.clear()


# Attribute values: every type the SDK encodes, wherever attributes go.

VALUES: dict[str, Any] = {
    "text": "plain",
    "unicode": "é ünïcode ✓ 🚀",
    "empty text": "",
    "long text": "x" * 300,  # not cached
    "very long text": "y" * 70_000,  # a three-byte length
    "true": True,
    "false": False,
    "zero": 0,
    "one": 1,
    "minus one": -1,
    "byte edge": 127,
    "two bytes": 128,
    "large": 1 << 40,
    "int64 max": (1 << 63) - 1,
    "int64 min": -(1 << 63),
    "float": 1.5,
    "float zero": 0.0,
    "negative zero": -0.0,
    "nan": math.nan,
    "infinity": math.inf,
    "minus infinity": -math.inf,
    "tiny": 5e-324,
    "bytes": b"\x00\xffbin",
    "empty bytes": b"",
    "none": None,
    "texts": ("a", "b"),
    "text list": ["a", "", "é"],
    "bools": (True, False),
    "ints": (1, -2, 1 << 62),
    "floats": (1.5, math.nan, -0.0),
    "bytes list": [b"a", b""],
    "empty tuple": (),
    "empty list": [],
    "mixed": [1, "a", None, 2.5, True, b"z"],
    "nested": [[1, 2], ["x"], []],
    "mapping": {"a": 1, "b": {"c": [1, "d"]}, "": None},
    "empty mapping": {},
    "mapping with odd keys": {1: "int key", None: "none key", 2.5: "float key"},
}


@pytest.mark.parametrize("name", VALUES)
def test_every_attribute_value_type_is_encoded_as_the_sdk_does(name: str) -> None:
    value = VALUES[name]
    attributes = {name: value, "ünï": value, "": value}
    spans = [
        span(
            attributes=attributes,
            events=[Event("event", attributes, 1_700_000_000_000_100_000)],
            links=[Link(context(0x99), attributes)],
            resource=Resource(attributes),
            scope=InstrumentationScope("scope", None, None, attributes),
        )
    ]
    expected = assert_encoded_as_the_sdk_does(spans)
    assert len(expected.resource_spans[0].scope_spans[0].spans[0].attributes) == 3


def test_all_value_types_in_one_span_twice_over_with_caches_warm() -> None:
    spans = [span(span_id=i, attributes=VALUES) for i in range(1, 4)]
    assert_encoded_as_the_sdk_does(spans)
    assert_encoded_as_the_sdk_does(spans)


def test_equal_values_of_other_types_are_not_taken_from_the_cache() -> None:
    # 1 == True == 1.0 and 0.0 == -0.0, but each is encoded differently.
    values: list[Any] = [1, True, 1.0, 0, False, 0.0, -0.0, "1", b"1", (1,), [True]]
    spans = [span(span_id=i + 1, attributes={"v": value}) for i, value in enumerate(values)]
    assert_encoded_as_the_sdk_does(spans)
    assert_encoded_as_the_sdk_does(list(reversed(spans)))


def test_more_keys_and_values_than_the_caches_keep_are_still_right() -> None:
    limit = _otlp_encode._CACHE_LIMIT
    spans = [
        span(span_id=i + 1, attributes={f"key {i}-{j}": f"value {j}" for j in range(100)})
        for i in range(limit // 50)
    ]
    assert_encoded_as_the_sdk_does(spans)
    assert_encoded_as_the_sdk_does(spans[::-1])
    assert 0 < len(_otlp_encode._key_heads) <= limit
    assert 0 < len(_otlp_encode._SPAN_ATTRIBUTES._remembered) <= limit


def test_long_keys_are_encoded_but_not_kept() -> None:
    long_key = "k" * 1000
    assert_encoded_as_the_sdk_does([span(attributes={long_key: 1, "short": 2})])
    assert "short" in _otlp_encode._key_heads
    assert long_key not in _otlp_encode._key_heads


def test_a_value_nested_deeper_than_protobuf_parses_goes_to_the_sdk() -> None:
    # The SDK encodes 48 nested lists itself; inside the whole request they nest too deep for
    # protobuf to parse, so the fast path cannot give that message and hands the batch over.
    value: Any = "leaf"
    for _ in range(48):
        value = [value]
    spans = [span(attributes={"deep": value})]
    with pytest.raises(Exception, match=r"[Dd]epth"):
        fast_path(spans)
    assert encode_spans(spans) == sdk_encode_spans(spans)


# The rest of a span.


def test_events_with_and_without_attributes_and_dropped_counts() -> None:
    bounded = BoundedAttributes(attributes={"kept": 1}, immutable=True)
    bounded.dropped = 3
    events = [
        Event("plain", timestamp=1),
        Event("with attributes", {"key": "value", "n": 2}, 1_700_000_000_000_000_001),
        Event("", {}, 5),
        Event("dropped", bounded, 6),
    ]
    expected = assert_encoded_as_the_sdk_does([span(events=events)])
    [encoded] = expected.resource_spans[0].scope_spans[0].spans
    assert [e.dropped_attributes_count for e in encoded.events] == [0, 0, 0, 3]


def test_links_with_attributes_remote_or_not_and_dropped_counts() -> None:
    bounded = BoundedAttributes(attributes={"kept": "yes"}, immutable=True)
    bounded.dropped = 2
    links = [
        Link(context(0x21)),
        Link(context(0x22, remote=True), {"why": "retry", "attempt": 2}),
        Link(context(0x23, state=TraceState([("vendor", "v")])), bounded),
    ]
    expected = assert_encoded_as_the_sdk_does([span(links=links)])
    [encoded] = expected.resource_spans[0].scope_spans[0].spans
    assert [link.flags for link in encoded.links] == [0x100, 0x300, 0x100]


@pytest.mark.parametrize(
    "status",
    [
        Status(StatusCode.UNSET),
        Status(StatusCode.OK),
        Status(StatusCode.ERROR),
        Status(StatusCode.ERROR, "the model refused: é"),
    ],
    ids=["unset", "ok", "error", "error with description"],
)
def test_every_status(status: Status) -> None:
    assert_encoded_as_the_sdk_does([span(status=status)])


@pytest.mark.parametrize("kind", list(SpanKind))
def test_every_kind(kind: SpanKind) -> None:
    assert_encoded_as_the_sdk_does([span(kind=kind)])


@pytest.mark.parametrize(
    "parent",
    [None, context(0x01), context(0x01, remote=True)],
    ids=["root", "local parent", "remote parent"],
)
def test_parents_and_their_remote_flags(parent: SpanContext | None) -> None:
    expected = assert_encoded_as_the_sdk_does([span(parent=parent)])
    [encoded] = expected.resource_spans[0].scope_spans[0].spans
    assert encoded.flags == (0x300 if parent is not None and parent.is_remote else 0x100)


def test_trace_state_and_odd_ids_and_times() -> None:
    state = TraceState([("vendor", "value"), ("other", "1")])
    spans = [
        span(span_context=context(0x01, state=state)),
        span(span_context=SpanContext(0, 0, is_remote=False), parent=SpanContext(0, 0, False)),
        span(span_context=SpanContext((1 << 128) - 1, (1 << 64) - 1, is_remote=False)),
        span(start=None, end=None),
        span(start=0, end=(1 << 64) - 1),
        span(name=""),
        span(name="ünïcode ✓"),
    ]
    assert_encoded_as_the_sdk_does(spans)


def test_dropped_attribute_event_and_link_counts() -> None:
    attributes = BoundedAttributes(attributes={"a": 1}, immutable=True)
    attributes.dropped = 4
    events: BoundedList[Event] = BoundedList(None)
    events.extend([Event("kept", timestamp=1)])
    events.dropped = 5
    links: BoundedList[Link] = BoundedList(None)
    links.extend([Link(context(0x30))])
    links.dropped = (1 << 32) - 1
    expected = assert_encoded_as_the_sdk_does(
        [span(attributes=attributes, events=events, links=links)]
    )
    [encoded] = expected.resource_spans[0].scope_spans[0].spans
    assert (encoded.dropped_attributes_count, encoded.dropped_events_count) == (4, 5)
    assert encoded.dropped_links_count == (1 << 32) - 1


class PropertySpan(ReadableSpan):
    """A subclass, which may override any property: it is read through them, as the SDK does."""

    @property
    def attributes(self) -> Mapping[str, Any]:
        return {**(self._attributes or {}), "added by the property": True}


def as_property_span(span: ReadableSpan) -> PropertySpan:
    return PropertySpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=span._attributes,
        events=span._events,
        links=span._links,
        kind=span.kind,
        status=span.status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


@pytest.mark.parametrize("subclass", [False, True], ids=["ReadableSpan", "a subclass"])
def test_spans_recorded_with_limits_that_drop(subclass: bool) -> None:
    memory = InMemorySpanExporter()
    provider = TracerProvider(
        span_limits=SpanLimits(max_span_attributes=2, max_events=1, max_links=1, max_attributes=1),
        shutdown_on_exit=False,
    )
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("limited", "0.1")
    # The limits keep the last link, one attribute of each, the last event.
    links = [Link(context(0x41, remote=True)), Link(context(0x42), {"a": 1, "b": 2})]
    with (
        tracer.start_as_current_span("root", links=links, attributes={"x": 1, "y": 2, "z": 3}),
        tracer.start_as_current_span("child", kind=SpanKind.CLIENT) as child,
    ):
        child.add_event("dropped")
        child.add_event("kept", {"k": "v", "dropped": True})
        child.set_status(Status(StatusCode.ERROR, "failed"))
    spans = list(memory.get_finished_spans())
    if subclass:
        spans = [as_property_span(s) for s in spans]

    expected = assert_encoded_as_the_sdk_does(spans)
    child_span, root = expected.resource_spans[0].scope_spans[0].spans
    assert (root.dropped_attributes_count, root.dropped_links_count) == (1, 1)
    assert root.links[0].dropped_attributes_count == 1
    assert (child_span.dropped_events_count, child_span.events[0].dropped_attributes_count) == (
        1,
        1,
    )
    assert any(kv.key == "added by the property" for kv in root.attributes) is subclass


# Grouping by resource and scope.


def test_spans_are_grouped_by_resource_then_scope_in_order_of_first_appearance() -> None:
    shop = Resource({"service.name": "shop", "n": 1}, "https://opentelemetry.io/schemas/1.26.0")
    same_shop = Resource(
        {"service.name": "shop", "n": 1}, "https://opentelemetry.io/schemas/1.26.0"
    )
    bank = Resource({"service.name": "bank"})
    workflows = InstrumentationScope(
        "spanflow.workflows", "1.2.3", "https://opentelemetry.io/schemas/1.26.0", {"team": "core"}
    )
    agents = InstrumentationScope("spanflow.agents")
    same_agents = InstrumentationScope("spanflow.agents")
    placed = [
        (bank, workflows),
        (shop, agents),
        (same_shop, workflows),
        (bank, None),
        (shop, same_agents),
        (bank, workflows),
        (shop, None),
    ]
    spans = [
        span(f"span {i}", span_id=i + 1, resource=resource, scope=scope)
        for i, (resource, scope) in enumerate(placed)
    ]
    expected = assert_encoded_as_the_sdk_does(spans)
    groups = [
        (rs.resource.attributes[0].value.string_value, ss.scope.name, [s.name for s in ss.spans])
        for rs in expected.resource_spans
        for ss in rs.scope_spans
    ]
    assert groups == [
        ("bank", "spanflow.workflows", ["span 0", "span 5"]),
        ("bank", "", ["span 3"]),
        ("shop", "spanflow.agents", ["span 1", "span 4"]),
        ("shop", "spanflow.workflows", ["span 2"]),
        ("shop", "", ["span 6"]),
    ]


class FreshScopeSpan(ReadableSpan):
    """A subclass whose scope is built anew at every read, as a property may do: each one is
    freed as soon as it was read, so its id is soon another object's."""

    @property
    def instrumentation_scope(self) -> InstrumentationScope | None:
        scope = self._instrumentation_scope
        assert scope is not None
        return InstrumentationScope(scope.name, scope.version, scope.schema_url, scope.attributes)


def test_scopes_built_anew_at_every_read_are_grouped_by_what_they_are() -> None:
    one, two = InstrumentationScope("one"), InstrumentationScope("two")
    spans = [
        FreshScopeSpan(
            name=f"s{i}",
            context=SpanContext(1, i + 1, False),
            resource=RESOURCE,
            instrumentation_scope=scope,
            start_time=1,
            end_time=2,
        )
        for i, scope in enumerate([one, one, two, two, one, two])
    ]
    expected = assert_encoded_as_the_sdk_does(spans)
    [resource_spans] = expected.resource_spans
    grouped = {ss.scope.name: [s.name for s in ss.spans] for ss in resource_spans.scope_spans}
    assert grouped == {"one": ["s0", "s1", "s4"], "two": ["s2", "s3", "s5"]}


def test_an_empty_batch_is_an_empty_request() -> None:
    assert encode_request_bytes([]) == b""
    assert assert_encoded_as_the_sdk_does([]) == ExportTraceServiceRequest()


# What the fast path leaves to the SDK.


class Colour(Enum):
    RED = "red"


class Level(IntEnum):
    HIGH = 3


class Text(str):
    pass


UNSUPPORTED: dict[str, Any] = {
    "int beyond int64": 1 << 63,
    "int below int64": -(1 << 63) - 1,
    "a set": {1, 2},
    "an object": object(),
    "an enum": Colour.RED,
    "an int enum": Level.HIGH,
    "a str subclass": Text("sub"),
    "a bytearray": bytearray(b"ab"),
    "a range": range(3),
    "a lone surrogate": "\ud800",
    "a bad value in a list": [1, {2}],
    "a bad value in a mapping": {"k": object()},
}


@pytest.mark.parametrize("name", UNSUPPORTED)
def test_values_the_fast_path_cannot_promise_go_to_the_sdk_with_its_logs(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    spans = [span(attributes={"before": 1, name: UNSUPPORTED[name], "after": "x"})]
    with pytest.raises(Exception):  # noqa: B017, PT011 - whatever stops the fast path
        encode_request_bytes(spans)

    with caplog.at_level(logging.ERROR):
        expected = sdk_encode_spans(spans)
        sdk_logs = [(r.name, r.getMessage()) for r in caplog.records]
        caplog.clear()
        assert encode_spans(spans) == expected
        assert [(r.name, r.getMessage()) for r in caplog.records] == sdk_logs


def test_a_key_that_is_not_a_string_goes_to_the_sdk() -> None:
    spans = [span(attributes={1: "int key", "fine": True})]  # type: ignore[dict-item]
    with pytest.raises(UnsupportedSpans, match="is not a string"):
        encode_request_bytes(spans)
    assert encode_spans(spans) == sdk_encode_spans(spans)


BROKEN: dict[str, ReadableSpan] = {
    "no context": ReadableSpan("no context", context=None, resource=RESOURCE),
    "negative start time": span(start=-1),
    "trace id too wide": span(span_context=SpanContext(1 << 128, 1, is_remote=False)),
    "an unknown kind": span(kind=7),  # type: ignore[arg-type]
}


@pytest.mark.parametrize("name", BROKEN)
def test_spans_the_sdk_cannot_encode_raise_the_sdks_error(name: str) -> None:
    spans = [BROKEN[name]]
    with pytest.raises(Exception) as sdk_error:  # noqa: PT011 - whichever the SDK raises
        sdk_encode_spans(spans)
    with pytest.raises(type(sdk_error.value)):
        encode_spans(spans)


def test_text_given_as_bytes_goes_to_the_sdk_which_takes_it() -> None:
    spans = [
        span(name=b"bytes name", events=[Event(b"bytes event", timestamp=1)])  # type: ignore[arg-type]
    ]
    with pytest.raises(UnsupportedSpans, match="is not a string"):
        encode_request_bytes(spans)
    expected = sdk_encode_spans(spans)
    assert encode_spans(spans) == expected
    assert expected.resource_spans[0].scope_spans[0].spans[0].name == "bytes name"


def test_a_field_of_another_type_than_expected_stops_the_import() -> None:
    with pytest.raises(RuntimeError, match=r"Span\.name is a string field, not the bytes"):
        _otlp_encode._key(ProtoSpan, "name", "bytes")


# The spans of a real run, as the export child gets them.


class Value(BaseModel):
    v: int


async def _increment(ctx: StepContext[Value]) -> Value:
    return Value(v=ctx.input_data.v + 1)


async def _fail(ctx: StepContext[Value]) -> Value:
    raise ValueError("the step failed: é")


def traced_run_spans(steps: int, fail: bool = False) -> list[ReadableSpan]:
    memory = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    workflow = create_workflow(id=f"chain-{steps}", input_schema=Value, output_schema=Value)
    for i in range(steps):
        execute = _fail if fail and i == steps - 1 else _increment
        workflow.then(
            create_step(id=f"s{i}", input_schema=Value, output_schema=Value, execute=execute)
        )
    committed = workflow.commit()
    committed.instrumentation = OtelInstrumentation(TracingConfig(tracer_provider=provider))
    committed.storage = MemoryStorage()

    async def run() -> None:
        created = await committed.create_run()
        await created.start(input_data=Value(v=0))

    asyncio.run(run())
    return list(memory.get_finished_spans())


@pytest.mark.parametrize("fail", [False, True], ids=["success", "a failing step"])
def test_the_spans_of_a_traced_run_as_the_export_child_rebuilds_them(fail: bool) -> None:
    spans = traced_run_spans(50, fail=fail)
    rebuilt = wire.decode_batch(*wire.encode_batch(spans))
    expected = assert_encoded_as_the_sdk_does(rebuilt)
    assert_encoded_as_the_sdk_does(spans)
    encoded = [s for ss in expected.resource_spans[0].scope_spans for s in ss.spans]
    assert len(encoded) == len(spans) > 50
    assert sum(len(s.attributes) + sum(len(e.attributes) for e in s.events) for s in encoded) > 500
    assert any(s.status.code == ProtoStatus.STATUS_CODE_ERROR for s in encoded) is fail


# The export child, and only it, encodes with it.


def test_the_wiring_replaces_an_exporter_modules_encode_spans() -> None:
    module = types.ModuleType("an_exporter")
    module.encode_spans = sdk_encode_spans  # type: ignore[attr-defined]
    assert wire._use_fast_encoder(module)
    assert module.encode_spans is encode_spans


def test_a_fast_path_that_does_not_match_this_sdk_is_not_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As an SDK that sent the W3C trace flags too: the check at the child's start sees it.
    assert _otlp_encode.matches_the_sdk()

    def another_sdk(spans: Sequence[ReadableSpan]) -> ExportTraceServiceRequest:
        request = sdk_encode_spans(spans)
        request.resource_spans[0].scope_spans[0].spans[0].flags |= int(TraceFlags.SAMPLED)
        return request

    monkeypatch.setattr(_otlp_encode, "sdk_encode_spans", another_sdk)
    module = types.ModuleType("an_exporter")
    module.encode_spans = another_sdk  # type: ignore[attr-defined]

    assert not _otlp_encode.matches_the_sdk()
    assert not wire._use_fast_encoder(module)
    assert module.encode_spans is another_sdk


def test_an_export_through_the_wired_module_takes_the_fast_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from opentelemetry.exporter.otlp.proto.http import trace_exporter as http_module

    sdk = getattr(http_module, "encode_spans")  # noqa: B009 (not re-exported: typed as absent)
    monkeypatch.setattr(http_module, "encode_spans", sdk)  # put back after the test
    assert wire._use_fast_encoder(http_module)
    fast_batches: list[int] = []
    original = _otlp_encode.encode_request_bytes

    def counted(spans: Sequence[ReadableSpan]) -> bytes:
        fast_batches.append(len(spans))
        return original(spans)

    monkeypatch.setattr(_otlp_encode, "encode_request_bytes", counted)
    spans = [span(span_id=i + 1, attributes={"n": i}) for i in range(3)]
    with otlp_receiver() as receiver:
        exporter = so.build_exporter(destination(receiver, "http/protobuf"))
        try:
            assert exporter.export(spans) is SpanExportResult.SUCCESS
        finally:
            exporter.shutdown()
        received = requests_of(receiver)

    assert fast_batches == [3]
    assert received == [sdk_encode_spans(spans)]


def test_a_module_without_encode_spans_keeps_what_it_has() -> None:
    module = types.ModuleType("a_renamed_exporter")
    module.encode = sdk_encode_spans  # type: ignore[attr-defined]
    assert not wire._use_fast_encoder(module)
    assert not wire._use_fast_encoder(None)
    assert not hasattr(module, "encode_spans")
    assert module.encode is sdk_encode_spans


CHILD_BUILD = """
import logging, os, socket, sys
from spanflow_otel import _export_child, _otlp_encode
from opentelemetry.exporter.otlp.proto.common import trace_encoder
from opentelemetry.exporter.otlp.proto.grpc import trace_exporter as grpc_module
from opentelemetry.exporter.otlp.proto.http import trace_exporter as http_module
ours, theirs = socket.socketpair()
protocol, endpoint = sys.argv[1], sys.argv[2]
config = (_export_child.CONFIG, endpoint, protocol, {}, 1.0, logging.WARNING, os.getppid())
exporter = _export_child._build(config, _export_child._Answers(ours.fileno()))
used = {"grpc": grpc_module, "http/protobuf": http_module}[protocol]
other = http_module if used is grpc_module else grpc_module
print(used.encode_spans is _otlp_encode.encode_spans,
      other.encode_spans is trace_encoder.encode_spans, flush=True)
os._exit(0)  # The exporter's shutdown is not what is tested here.
"""


@pytest.mark.parametrize(
    ("protocol", "endpoint"),
    [("http/protobuf", "http://127.0.0.1:9/v1/traces"), ("grpc", "http://127.0.0.1:9")],
)
def test_the_export_child_builds_its_exporter_with_the_fast_encoder(
    protocol: str, endpoint: str
) -> None:
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "exporters"), str(ROOT / "src")]),
    }
    done = subprocess.run(
        [sys.executable, "-c", CHILD_BUILD, protocol, endpoint],
        capture_output=True,
        text=True,
        timeout=60,
        env=environment,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    # The exporter's module encodes with ours; the other protocol's module is untouched.
    assert done.stdout.split() == ["True", "True"]


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_an_exporter_built_in_the_traced_process_keeps_the_sdks_encoder(
    protocol: so.OtlpProtocol,
) -> None:
    exporter = so.build_exporter(so.ResolvedExport("http://127.0.0.1:9", protocol, {}, 1.0))
    try:
        module = sys.modules[type(exporter).__module__]
        assert vars(module)["encode_spans"] is sdk_encode_spans
    finally:
        exporter.shutdown()


RECORDABLE: dict[str, Any] = {
    name: VALUES[name]
    for name in (
        "text",
        "unicode",
        "empty text",
        "long text",
        "true",
        "false",
        "zero",
        "minus one",
        "int64 min",
        "large",
        "float",
        "negative zero",
        "nan",
        "infinity",
        "texts",
        "bools",
        "ints",
        "floats",
        "empty tuple",
    )
}
"""The values a recording span keeps (the SDK's attribute rules drop the others)."""


def requests_of(receiver: OtlpReceiver) -> list[ExportTraceServiceRequest]:
    return [request.message for request in receiver.requests]


def destination(receiver: OtlpReceiver, protocol: so.OtlpProtocol) -> so.ResolvedExport:
    endpoint = receiver.grpc_endpoint if protocol == "grpc" else receiver.http_endpoint
    return so.ResolvedExport(endpoint, protocol, {}, 2.0)


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_through_the_export_child_spans_arrive_as_through_the_thread_processor(
    protocol: so.OtlpProtocol,
) -> None:
    with otlp_receiver() as via_thread, otlp_receiver() as via_child:
        thread = so.DropCountingBatchSpanProcessor(
            so.build_exporter(destination(via_thread, protocol)),
            schedule_delay_millis=600_000,
        )
        child = so.ChildProcessSpanProcessor(
            destination(via_child, protocol),
            schedule_delay_millis=600_000,
            shutdown_timeout_millis=1000,
        )
        provider = TracerProvider(
            resource=Resource({"service.name": "shop", "ünï": "✓"}),
            id_generator=so.SequentialIdGenerator(),
            shutdown_on_exit=False,
        )
        provider.add_span_processor(thread)
        provider.add_span_processor(child)
        try:
            tracer = provider.get_tracer("spanflow.workflows", "1.2.3", "https://example.com/s")
            for i in range(300):
                with tracer.start_as_current_span(f"step {i}", attributes=RECORDABLE) as step:
                    step.add_event("workflow-step-start", {"spanflow.event.id": f"s{i}"})
            assert thread.force_flush()
            assert child.force_flush()
            through_thread, through_child = requests_of(via_thread), requests_of(via_child)
        finally:
            thread.shutdown()
            child.shutdown()

    assert through_child == through_thread
    scope_spans = [ss for r in through_child for rs in r.resource_spans for ss in rs.scope_spans]
    assert sum(len(ss.spans) for ss in scope_spans) == 300
