"""SpanCapture and the span_capture fixture: deterministic ids, a fake clock, per-test swap."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from spanflow_otel.testing import GlobalTracerProviderTakenError, SpanCapture

from spanflow.tracing._requested import REQUESTED_TRACE_ID

# Obtained at import, before any capture exists: a proxy that binds to the global provider on
# first use, as a library's module-level tracer would.
EARLY_TRACER = trace.get_tracer("spanflow.early")


def context(trace_id: int, span_id: int) -> dict[str, Any]:
    return {"trace_id": trace_id, "span_id": span_id, "is_remote": False}


def test_spans_get_sequential_ids_and_fake_clock_timestamps() -> None:
    capture = SpanCapture(fake_clock=True)
    tracer = capture.tracer()
    with tracer.start_as_current_span("run", attributes={"spanflow.tags": ("a",)}) as run:
        run.add_event("workflow-start", {"n": 1})
        with tracer.start_as_current_span("step"):
            pass

    assert capture.as_dicts() == [
        {
            "name": "step",
            "kind": "INTERNAL",
            "context": context(1, 2),
            "parent": context(1, 1),
            "start_time": 3_000_000,
            "end_time": 4_000_000,
            "status": {"code": "UNSET", "description": None},
            "attributes": {},
            "events": [],
            "links": [],
        },
        {
            "name": "run",
            "kind": "INTERNAL",
            "context": context(1, 1),
            "parent": None,
            "start_time": 1_000_000,
            "end_time": 5_000_000,
            "status": {"code": "UNSET", "description": None},
            "attributes": {"spanflow.tags": ["a"]},
            "events": [{"name": "workflow-start", "timestamp": 2_000_000, "attributes": {"n": 1}}],
            "links": [],
        },
    ]


def test_a_recorded_exception_is_stamped_by_the_fake_clock_when_it_happens() -> None:
    capture = SpanCapture(fake_clock=True)
    with capture.tracer().start_as_current_span("step") as step:
        step.record_exception(ValueError("boom"))
    [span] = capture.as_dicts()
    [event] = span["events"]
    assert (event["name"], event["timestamp"], span["end_time"]) == (
        "exception",
        2_000_000,
        3_000_000,
    )
    assert event["attributes"]["exception.type"] == "ValueError"


def test_a_second_trace_gets_trace_id_two() -> None:
    capture = SpanCapture()
    capture.tracer().start_span("first").end()
    capture.tracer().start_span("second").end()
    assert [(s.name, s.context.trace_id, s.context.span_id) for s in capture.spans] == [
        ("first", 1, 1),
        ("second", 2, 2),
    ]


def test_the_fixture_captures_spans_of_a_tracer_obtained_before_it(
    span_capture: SpanCapture,
) -> None:
    with EARLY_TRACER.start_as_current_span("outer"):
        trace.get_tracer("late").start_span("inner").end()

    assert span_capture.dump() == "outer [INTERNAL] UNSET\n  inner [INTERNAL] UNSET"
    assert [s.context.span_id for s in span_capture.spans] == [2, 1]


def test_each_test_gets_a_fresh_capture_with_ids_from_one_again(
    span_capture: SpanCapture,
) -> None:
    EARLY_TRACER.start_span("again").end()
    [span] = span_capture.spans
    assert (span.context.trace_id, span.context.span_id) == (1, 1)
    assert span.start_time == 1_000_000


@pytest.mark.span_capture(fake_clock=False)
def test_the_marker_turns_the_fake_clock_off(span_capture: SpanCapture) -> None:
    EARLY_TRACER.start_span("real time").end()
    [span] = span_capture.spans
    assert span.start_time is not None
    assert span.start_time > 10**18


def test_the_fixture_honours_a_requested_trace_id(span_capture: SpanCapture) -> None:
    token = REQUESTED_TRACE_ID.set(0xABC)
    try:
        run = trace.get_tracer("engine").start_span("invoke_workflow w")
    finally:
        REQUESTED_TRACE_ID.reset(token)
    run.end()
    [span] = span_capture.spans
    assert (span.context.trace_id, span.parent) == (0xABC, None)


def test_after_install_ends_spans_go_nowhere_but_contexts_still_propagate() -> None:
    capture = SpanCapture()
    with capture.install():
        trace.get_tracer("t").start_span("inside").end()
    with trace.get_tracer("t").start_as_current_span("outside") as outside:
        assert not outside.is_recording()
    assert [span.name for span in capture.spans] == ["inside"]


def test_nested_installs_restore_the_outer_capture() -> None:
    outer, inner = SpanCapture(), SpanCapture()
    with outer.install():
        with inner.install():
            trace.get_tracer("t").start_span("to inner").end()
        trace.get_tracer("t").start_span("to outer").end()
    assert [s.name for s in inner.spans] == ["to inner"]
    assert [s.name for s in outer.spans] == ["to outer"]


def test_install_refuses_when_another_provider_owns_the_global_slot(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    foreign = TracerProvider(shutdown_on_exit=False)
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: foreign)
    with pytest.raises(GlobalTracerProviderTakenError, match="set_global=False"):  # noqa: SIM117
        with SpanCapture().install():
            pass
