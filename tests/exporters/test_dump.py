"""dump_spans renders a span tree that reads well in a failing assertion."""

from __future__ import annotations

from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    set_span_in_context,
)
from spanflow_otel.testing import SpanCapture, dump_spans

REMOTE_PARENT = SpanContext(0xAA, 0xBB, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED))
ELSEWHERE = SpanContext(0xCC, 0xDD, is_remote=True)


def hand_made_tree() -> SpanCapture:
    capture = SpanCapture(fake_clock=True)
    tracer = capture.tracer()
    incoming = set_span_in_context(NonRecordingSpan(REMOTE_PARENT))
    with tracer.start_as_current_span(
        "invoke_workflow order",
        context=incoming,
        kind=SpanKind.SERVER,
        attributes={"spanflow.run.id": "r-1", "spanflow.tags": ("vip", "eu")},
    ) as run:
        run.add_event("workflow-start", {"spanflow.event.status": "running"})
        with tracer.start_as_current_span(
            "workflow_step fetch", attributes={"spanflow.step.id": "fetch"}
        ):
            tracer.start_span("GET /prices", kind=SpanKind.CLIENT).end()
        with tracer.start_as_current_span(
            "workflow_step pay",
            links=[Link(run.get_span_context(), {"reason": "retry"})],
            attributes={"spanflow.step.id": "pay", "spanflow.step.attempt": 2},
            record_exception=False,
            set_status_on_exception=False,
        ) as pay:
            pay.record_exception(ValueError("card declined"))
            pay.set_status(Status(StatusCode.ERROR, "card declined"))
        run.set_status(Status(StatusCode.OK))
    unfinished = tracer.start_span("never ended")
    tracer.start_span("orphan", context=set_span_in_context(unfinished)).end()
    tracer.start_span("cleanup", links=[Link(ELSEWHERE)]).end()
    return capture


def test_the_tree_shows_kinds_statuses_attributes_events_links_and_foreign_parents() -> None:
    assert dump_spans(hand_made_tree().spans) == "\n".join(
        [
            "invoke_workflow order [SERVER] OK (parent=00000000000000bb)"
            " {spanflow.run.id='r-1', spanflow.tags=['vip', 'eu']}",
            "  • workflow-start {spanflow.event.status='running'}",
            "  workflow_step fetch [INTERNAL] UNSET {spanflow.step.id='fetch'}",
            "    GET /prices [CLIENT] UNSET",
            "  workflow_step pay [INTERNAL] ERROR: card declined"
            " {spanflow.step.attempt=2, spanflow.step.id='pay'}",
            "    • exception {exception.escaped='False', exception.message='card declined',"
            " exception.type='ValueError'}",
            "    ↔ link to invoke_workflow order {reason='retry'}",
            "orphan [INTERNAL] UNSET (parent=0000000000000005 missing)",
            "cleanup [INTERNAL] UNSET",
            "  ↔ link to 000000000000000000000000000000cc:00000000000000dd",
        ]
    )


def test_attributes_can_be_chosen_by_name_prefix_or_predicate_or_left_out() -> None:
    spans = hand_made_tree().spans
    by_name = dump_spans(spans, attributes=["spanflow.step.id"], include_events=False)
    assert by_name.splitlines()[1:4] == [
        "  workflow_step fetch [INTERNAL] UNSET {spanflow.step.id='fetch'}",
        "    GET /prices [CLIENT] UNSET",
        "  workflow_step pay [INTERNAL] ERROR: card declined {spanflow.step.id='pay'}",
    ]
    by_prefix = dump_spans(spans, attributes=["spanflow.run.*"], include_links=False)
    assert by_prefix.splitlines()[0] == (
        "invoke_workflow order [SERVER] OK (parent=00000000000000bb) {spanflow.run.id='r-1'}"
    )
    bare = dump_spans(spans, attributes=None, include_events=False, include_links=False)
    assert bare.splitlines() == [
        "invoke_workflow order [SERVER] OK (parent=00000000000000bb)",
        "  workflow_step fetch [INTERNAL] UNSET",
        "    GET /prices [CLIENT] UNSET",
        "  workflow_step pay [INTERNAL] ERROR: card declined",
        "orphan [INTERNAL] UNSET (parent=0000000000000005 missing)",
        "cleanup [INTERNAL] UNSET",
    ]
    predicate = dump_spans(spans, attributes=lambda key: key.endswith(".attempt"))
    assert "{spanflow.step.attempt=2}" in predicate


def test_the_order_does_not_depend_on_the_order_spans_are_given_in() -> None:
    spans = hand_made_tree().spans
    assert dump_spans(reversed(spans)) == dump_spans(spans)
