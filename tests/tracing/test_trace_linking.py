"""Linking a run into an existing trace: explicit ids, a traceparent, or the ambient span.

Precedence for the parent of the run span: explicit `TracingOptions`, then the span active
when the run starts, then a new trace. Ids are padded to full length; invalid ones never fail
the run: they are logged once, ignored, and listed on the run span in
``spanflow.tracing.rejected``, unless ``strict=True`` asks for an error before anything runs.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from spanflow_otel.testing import SpanCapture

from spanflow import (
    StepContext,
    TracingConfig,
    TracingOptions,
    TracingOptionsError,
    create_step,
    create_workflow,
    step,
)
from spanflow.tracing import InvalidTraceIdError

from .span_helpers import attribute, expected, run, span_named, traced, tree

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
SPAN_ID = "b7ad6b7169203331"


@step
async def greet(ctx: StepContext[str]) -> str:
    return f"hello {ctx.input_data}"


def greeting() -> Any:
    return create_workflow(id="greeting").then(greet).commit()


def run_span(capture: SpanCapture) -> ReadableSpan:
    return span_named(capture, "invoke_workflow greeting")


def trace_ids(capture: SpanCapture) -> set[str]:
    """The trace ids of the captured spans, as 32 hex characters."""
    return {f"{span.context.trace_id:032x}" for span in capture.spans if span.context}


def tracing_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "spanflow.tracing" and record.levelno == logging.WARNING
    ]


async def test_a_run_joins_a_given_trace_under_a_given_parent_span_ids_padded(
    span_capture: SpanCapture, caplog: pytest.LogCaptureFixture
) -> None:
    options = TracingOptions(trace_id=" ABC ", parent_span_id="1F")

    result = await run(greeting(), "ada", options=options)

    assert tree(span_capture, events=False) == expected("""
        invoke_workflow greeting [INTERNAL] UNSET (parent=000000000000001f)
          workflow_step greet [INTERNAL] UNSET
    """)
    parent = run_span(span_capture).parent
    assert parent is not None
    assert (parent.trace_id, parent.span_id, parent.is_remote) == (0xABC, 0x1F, True)
    assert trace_ids(span_capture) == {"00000000000000000000000000000abc"}
    assert result.trace_id == "00000000000000000000000000000abc"
    assert tracing_warnings(caplog) == []


async def test_a_trace_id_alone_makes_the_run_span_a_root_span_of_that_trace(
    span_capture: SpanCapture, caplog: pytest.LogCaptureFixture
) -> None:
    result = await run(greeting(), "ada", options=TracingOptions(trace_id=TRACE_ID))

    assert tree(span_capture, events=False) == expected("""
        invoke_workflow greeting [INTERNAL] UNSET
          workflow_step greet [INTERNAL] UNSET
    """)
    assert run_span(span_capture).parent is None
    assert trace_ids(span_capture) == {TRACE_ID}
    assert result.trace_id == TRACE_ID
    assert tracing_warnings(caplog) == []


async def test_a_run_started_inside_an_active_span_joins_its_trace_with_no_options(
    span_capture: SpanCapture,
) -> None:
    with span_capture.tracer().start_as_current_span("GET /greetings/ada"):
        await run(greeting(), "ada")

    assert tree(span_capture, events=False) == expected("""
        GET /greetings/ada [INTERNAL] UNSET
          invoke_workflow greeting [INTERNAL] UNSET
            workflow_step greet [INTERNAL] UNSET
    """)
    assert len(trace_ids(span_capture)) == 1


async def test_explicit_ids_win_over_the_active_span_which_the_run_links(
    span_capture: SpanCapture,
) -> None:
    options = TracingOptions(trace_id=TRACE_ID, parent_span_id=SPAN_ID)

    with span_capture.tracer().start_as_current_span("GET /greetings/ada"):
        await run(greeting(), "ada", options=options)

    assert tree(span_capture, events=False) == expected(f"""
        GET /greetings/ada [INTERNAL] UNSET
        invoke_workflow greeting [INTERNAL] UNSET (parent={SPAN_ID})
          ↔ link to GET /greetings/ada
          workflow_step greet [INTERNAL] UNSET
    """)
    (link,) = run_span(span_capture).links
    assert link.attributes == {"spanflow.link": "request"}


async def test_a_resume_inside_an_active_span_continues_the_run_and_links_that_span(
    span_capture: SpanCapture,
) -> None:
    async def ask(ctx: StepContext[str]) -> str:
        if ctx.resume_data is None:
            ctx.suspend({"question": "ok?"})
        return str(ctx.resume_data)

    workflow = create_workflow(id="ask").then(create_step(id="ask", execute=ask)).commit()
    run = await workflow.create_run(run_id="run-1")
    first = await run.start("go")
    with span_capture.tracer().start_as_current_span("POST /resume") as request:
        await run.resume("yes")

    resumed = [s for s in span_capture.spans if s.name == "invoke_workflow ask"][-1]
    assert resumed.parent is not None
    assert f"{resumed.parent.span_id:016x}" == first.span_id  # the run's own trace goes on
    assert [link.context.span_id for link in resumed.links] == [request.get_span_context().span_id]
    assert resumed.links[0].attributes == {"spanflow.link": "request"}


async def test_an_explicit_trace_id_alone_wins_over_the_active_span_too(
    span_capture: SpanCapture,
) -> None:
    with span_capture.tracer().start_as_current_span("GET /greetings/ada"):
        await run(greeting(), "ada", options=TracingOptions(trace_id=TRACE_ID))

    assert run_span(span_capture).parent is None
    assert f"{run_span(span_capture).context.trace_id:032x}" == TRACE_ID


async def test_a_traceparent_header_value_gives_the_trace_and_the_parent(
    span_capture: SpanCapture,
) -> None:
    options = TracingOptions(traceparent=f"00-{TRACE_ID}-{SPAN_ID}-01")

    result = await run(greeting(), "ada", options=options)

    assert tree(span_capture, events=False) == expected(f"""
        invoke_workflow greeting [INTERNAL] UNSET (parent={SPAN_ID})
          workflow_step greet [INTERNAL] UNSET
    """)
    parent = run_span(span_capture).parent
    assert parent is not None
    assert parent.trace_flags.sampled
    assert trace_ids(span_capture) == {TRACE_ID}
    assert result.trace_id == TRACE_ID


@pytest.mark.parametrize(
    ("options", "rejected"),
    [
        pytest.param(
            {"trace_id": "not-a-trace"},
            ["trace_id: 'not-a-trace' is not hex: use 1–32 hex characters (0-9, a-f)"],
            id="non-hex trace id",
        ),
        pytest.param(
            {"trace_id": "1" * 33},
            [f"trace_id: '{'1' * 33}' is 33 characters long: use 1–32 hex characters (0-9, a-f)"],
            id="trace id too long",
        ),
        pytest.param(
            {"trace_id": "0" * 32},
            [f"trace_id: '{'0' * 32}' is all zeros, which OpenTelemetry treats as no id"],
            id="all-zero trace id",
        ),
        pytest.param(
            {"trace_id": 0xABC},
            ["trace_id: 2748 must be a string, got int: use 1–32 hex characters (0-9, a-f)"],
            id="trace id of the wrong type",
        ),
        pytest.param(
            {"trace_id": "xyz", "parent_span_id": "1f"},
            [
                "trace_id: 'xyz' is not hex: use 1–32 hex characters (0-9, a-f)",
                "parent_span_id: '1f' needs a valid trace_id: a span id means nothing without "
                "its trace",
            ],
            id="parent span id with an invalid trace id",
        ),
        pytest.param(
            {"parent_span_id": SPAN_ID},
            [
                f"parent_span_id: '{SPAN_ID}' was given without trace_id: a span id means "
                "nothing without its trace"
            ],
            id="parent span id without a trace id",
        ),
        pytest.param(
            {"traceparent": f"00-{TRACE_ID}-{SPAN_ID}"},
            [
                f"traceparent: '00-{TRACE_ID}-{SPAN_ID}' is too short: expected 55 characters, "
                "'00-<32 hex trace id>-<16 hex span id>-<2 hex flags>'"
            ],
            id="truncated traceparent",
        ),
        pytest.param(
            {"traceparent": ("00", TRACE_ID)},
            [f"traceparent: ('00', '{TRACE_ID}') must be a string, got tuple"],
            id="traceparent of the wrong type",
        ),
        pytest.param(
            {"tags": "beta"},
            ["tags: 'beta' must be a list of strings, not a single string: write tags=['beta']"],
            id="tags as one string",
        ),
        pytest.param(
            {"request_context_keys": "user.id"},
            [
                "request_context_keys: 'user.id' must be a list of strings, not a single string: "
                "write request_context_keys=['user.id']"
            ],
            id="request-context keys as one string",
        ),
        pytest.param(
            {"metadata": "user=ada"},
            [
                "metadata: 'user=ada' must be a mapping such as {'user_id': 'u-1'}, got str",
            ],
            id="metadata as a string",
        ),
    ],
)
async def test_an_invalid_option_never_fails_the_run_and_is_shown_on_the_run_span(
    span_capture: SpanCapture,
    caplog: pytest.LogCaptureFixture,
    options: dict[str, Any],
    rejected: list[str],
) -> None:
    result = await run(greeting(), "ada", options=TracingOptions(**options))

    assert result.status == "success"
    span = run_span(span_capture)
    assert span.parent is None  # a new trace, rooted at the run span
    assert attribute(span, "spanflow.tracing.rejected") == rejected
    assert len(tracing_warnings(caplog)) == len(rejected)
    step_span = span_named(span_capture, "workflow_step greet")
    assert attribute(step_span, "spanflow.tracing.rejected") is None


@pytest.mark.parametrize(
    ("parent_span_id", "rejected"),
    [
        pytest.param("b7ad-6b71", "is not hex: use 1–16 hex characters (0-9, a-f)", id="non-hex"),
        pytest.param(
            "1" * 17, "is 17 characters long: use 1–16 hex characters (0-9, a-f)", id="too long"
        ),
        pytest.param("0" * 16, "is all zeros, which OpenTelemetry treats as no id", id="all zeros"),
        pytest.param(
            0xB7AD,
            "must be a string, got int: use 1–16 hex characters (0-9, a-f)",
            id="wrong type",
        ),
    ],
)
async def test_an_invalid_parent_span_id_leaves_the_run_a_root_of_the_given_trace(
    span_capture: SpanCapture, parent_span_id: Any, rejected: str
) -> None:
    options = TracingOptions(trace_id=TRACE_ID, parent_span_id=parent_span_id)

    result = await run(greeting(), "ada", options=options)

    assert result.status == "success"
    span = run_span(span_capture)
    assert span.parent is None
    assert trace_ids(span_capture) == {TRACE_ID}
    assert attribute(span, "spanflow.tracing.rejected") == [
        f"parent_span_id: {parent_span_id!r} {rejected}"
    ]


async def test_an_invalid_option_falls_back_to_the_active_span(span_capture: SpanCapture) -> None:
    with span_capture.tracer().start_as_current_span("GET /greetings/ada"):
        await run(greeting(), "ada", options=TracingOptions(trace_id="not-a-trace"))

    assert tree(span_capture, "spanflow.tracing.rejected", events=False) == expected("""
        GET /greetings/ada [INTERNAL] UNSET
          invoke_workflow greeting [INTERNAL] UNSET {spanflow.tracing.rejected=["trace_id: 'not-a-trace' is not hex: use 1–32 hex characters (0-9, a-f)"]}
            workflow_step greet [INTERNAL] UNSET
    """)  # noqa: E501


async def test_strict_options_raise_from_start_before_anything_runs(
    span_capture: SpanCapture,
) -> None:
    calls: list[str] = []

    @step
    async def record(ctx: StepContext[str]) -> str:
        calls.append(ctx.input_data)
        return ctx.input_data

    workflow = create_workflow(id="strict").then(record).commit()
    started = await workflow.create_run(run_id="run-1")

    with pytest.raises(InvalidTraceIdError, match="trace_id: 'xyz' is not hex") as raised:
        await started.start("ada", tracing_options=TracingOptions(trace_id="xyz", strict=True))

    assert isinstance(raised.value, TracingOptionsError)
    assert isinstance(raised.value, ValueError)
    assert calls == []
    assert started.status == "pending"
    stored = await workflow.storage.get_run("run-1")
    assert stored is not None
    assert stored.status == "pending"  # as create_run stored it: the start changed nothing
    assert span_capture.spans == ()


async def test_a_provider_without_the_plugins_id_generator_starts_a_new_trace_and_warns_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()  # the SDK's random ids: it cannot honour a requested trace id
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    workflow = traced(greeting(), TracingConfig(tracer_provider=provider))

    first = await run(workflow, "ada", run_id="run-1", options=TracingOptions(trace_id=TRACE_ID))
    second = await run(workflow, "bob", run_id="run-2", options=TracingOptions(trace_id=TRACE_ID))

    assert TRACE_ID not in {first.trace_id, second.trace_id}
    assert first.trace_id != second.trace_id
    roots = [span for span in exporter.get_finished_spans() if span.name.startswith("invoke")]
    assert [span.parent for span in roots] == [None, None]
    (warning,) = tracing_warnings(caplog)
    assert "cannot start a root span in a requested trace id" in warning
    provider.shutdown()


async def test_result_and_stream_expose_the_ids_of_the_run_span(span_capture: SpanCapture) -> None:
    workflow = greeting()

    result = await run(workflow, "ada", run_id="run-1")
    stream = (await workflow.create_run(run_id="run-2")).stream("bob")
    streamed = await stream.result

    first, second = spans_of_runs(span_capture)
    assert (result.trace_id, result.span_id) == ids_of(first)
    assert (stream.trace_id, stream.span_id) == ids_of(second)
    assert (streamed.trace_id, streamed.span_id) == ids_of(second)


async def test_the_stream_knows_the_ids_from_its_first_event(span_capture: SpanCapture) -> None:
    stream = (await greeting().create_run(run_id="run-1")).stream("ada")

    async for event in stream:
        assert event.type == "workflow-start"
        assert stream.trace_id is not None
        assert stream.span_id is not None
        break
    await stream.result

    assert (stream.trace_id, stream.span_id) == ids_of(run_span(span_capture))


@pytest.mark.parametrize(
    "config",
    [
        pytest.param(TracingConfig(tracer_provider=trace.NoOpTracerProvider()), id="no SDK"),
        pytest.param(TracingConfig(enabled=False), id="tracing disabled"),
    ],
)
async def test_ids_are_none_when_the_run_is_not_traced(
    span_capture: SpanCapture, config: TracingConfig
) -> None:
    workflow = traced(greeting(), config)

    result = await run(workflow, "ada", run_id="run-1")
    stream = (await workflow.create_run(run_id="run-2")).stream("bob")
    streamed = await stream.result

    assert (result.status, streamed.status) == ("success", "success")
    assert (result.trace_id, result.span_id) == (None, None)
    assert (stream.trace_id, stream.span_id) == (None, None)
    assert (streamed.trace_id, streamed.span_id) == (None, None)
    assert span_capture.spans == ()


def spans_of_runs(capture: SpanCapture) -> list[ReadableSpan]:
    """The run spans, in the order their runs started."""
    runs = [span for span in capture.spans if span.name.startswith("invoke_workflow")]
    return sorted(runs, key=lambda span: span.start_time or 0)


def ids_of(span: ReadableSpan) -> tuple[str, str]:
    context = span.get_span_context()
    assert context is not None
    return f"{context.trace_id:032x}", f"{context.span_id:016x}"


async def test_a_run_started_by_a_step_is_nested_in_it_whatever_ids_it_is_given(
    span_capture: SpanCapture, caplog: pytest.LogCaptureFixture
) -> None:
    child = create_workflow(id="child").then(greet).commit()

    @step
    async def delegate(ctx: StepContext[str]) -> str:
        options = TracingOptions(
            trace_id=TRACE_ID, parent_span_id=SPAN_ID, tags=["child"], metadata={"part": "b"}
        )
        started = await child.create_run(run_id="run-2")
        return str((await started.start(ctx.input_data, tracing_options=options)).result)

    parent = create_workflow(id="parent").then(delegate).commit()
    options = TracingOptions(tags=["parent"], metadata={"user": "u-42", "part": "a"})

    result = await run(parent, "ada", options=options)

    assert result.result == "hello ada"
    shown = ("spanflow.run.id", "spanflow.tags", "spanflow.metadata.*")
    assert tree(span_capture, *shown, events=False) == expected("""
        invoke_workflow parent [INTERNAL] UNSET {spanflow.metadata.part='a', spanflow.metadata.user='u-42', spanflow.run.id='run-1', spanflow.tags=['parent']}
          workflow_step delegate [INTERNAL] UNSET {spanflow.metadata.part='a', spanflow.metadata.user='u-42', spanflow.run.id='run-1', spanflow.tags=['parent']}
            invoke_workflow child [INTERNAL] UNSET {spanflow.metadata.part='b', spanflow.metadata.user='u-42', spanflow.run.id='run-2', spanflow.tags=['parent', 'child']}
              workflow_step greet [INTERNAL] UNSET {spanflow.metadata.part='b', spanflow.metadata.user='u-42', spanflow.run.id='run-2', spanflow.tags=['parent', 'child']}
    """)  # noqa: E501
    assert len(trace_ids(span_capture)) == 1
    assert tracing_warnings(caplog) == []
