"""Tracing never fails a run: every error inside tracing is logged and swallowed.

A user's redaction function that raises, a span method or span processor that raises, a tracer
or logger provider that is broken: the run ends exactly as it would untraced, the error is
logged on the ``spanflow.tracing`` logger, and whatever could still be traced is. These tests
break tracing on purpose, so the guard behaves as in production here (``tracing_errors_logged``)
instead of re-raising as it does in the rest of the suite.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry._logs import Logger, LogRecord, NoOpLogger, NoOpLoggerProvider
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.util.types import Attributes
from spanflow_otel.testing import SpanCapture

from spanflow import StepContext, TracingConfig, Workflow, create_workflow, step
from spanflow.tracing import Redactor, StepTracing

from .span_helpers import attribute, expected, run, traced, tree

pytestmark = pytest.mark.usefixtures("tracing_errors_logged")

NOT_RECORDED = "[not recorded: tracing error, see the spanflow.tracing log]"


@step
async def lookup(ctx: StepContext[dict[str, Any]]) -> dict[str, Any]:
    return {"customer": ctx.input_data["customer"], "fragile": "yes"}


@step
async def summarize(ctx: StepContext[dict[str, Any]]) -> str:
    return f"customer {ctx.input_data['customer']}"


@step
async def explode(ctx: StepContext[Any]) -> None:
    raise RuntimeError("the step itself failed")


def customers() -> Workflow:
    return create_workflow(id="customers").then(lookup).then(summarize).commit()


def failing() -> Workflow:
    return create_workflow(id="failing").then(explode).commit()


def tracing_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "spanflow.tracing" and record.levelno >= logging.ERROR
    ]


def refuse_fragile(key: str, value: object) -> object:
    """A user's redaction function with a bug: it raises for one key."""
    if key == "fragile":
        raise LookupError("no rule for 'fragile'")
    return value


async def test_a_redaction_function_that_raises_leaves_that_value_out_not_the_run(
    span_capture: SpanCapture, caplog: pytest.LogCaptureFixture
) -> None:
    workflow = traced(customers(), TracingConfig(redactor=Redactor(function=refuse_fragile)))

    result = await run(workflow, {"customer": "c-1"})

    assert (result.status, result.result) == ("success", "customer c-1")
    assert tree(span_capture, "spanflow.input", "spanflow.output", events=False) == expected(
        f"""
        invoke_workflow customers [INTERNAL] UNSET {{spanflow.input='{{"customer":"c-1"}}', spanflow.output='"customer c-1"'}}
          workflow_step lookup [INTERNAL] UNSET {{spanflow.input='{{"customer":"c-1"}}', spanflow.output='{NOT_RECORDED}'}}
          workflow_step summarize [INTERNAL] UNSET {{spanflow.input='{NOT_RECORDED}', spanflow.output='"customer c-1"'}}
        """  # noqa: E501
    )
    assert tracing_errors(caplog)
    assert all("could not redact" in message for message in tracing_errors(caplog))


async def test_a_redaction_function_that_always_raises_never_shows_raw_values(
    span_capture: SpanCapture,
) -> None:
    def broken(key: str, value: object) -> object:
        raise ValueError("broken redactor")

    workflow = traced(customers(), TracingConfig(redactor=Redactor(function=broken)))

    result = await run(workflow, {"customer": "c-1"})

    assert result.status == "success"
    for span in span_capture.spans:
        for key in ("spanflow.input", "spanflow.output"):
            assert attribute(span, key) in (None, NOT_RECORDED, '"customer c-1"')
        for event in span.events:
            payload = (event.attributes or {}).get("spanflow.event.payload")
            assert payload in (None, NOT_RECORDED, '{"workflowId":"customers"}')


@pytest.mark.parametrize(
    "method",
    ["end", "add_event", "set_attribute", "set_status", "record_exception", "get_span_context"],
)
@pytest.mark.parametrize(
    ("workflow", "status"),
    [
        pytest.param(customers, "success", id="succeeding"),
        pytest.param(failing, "failed", id="failing"),
    ],
)
async def test_a_span_method_that_raises_never_changes_how_the_run_ends(
    span_capture: SpanCapture,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    method: str,
    workflow: Any,
    status: str,
) -> None:
    def broken(*args: object, **kwargs: object) -> Any:
        raise RuntimeError(f"Span.{method} is broken")

    monkeypatch.setattr(Span, method, broken)

    result = await run(workflow(), {"customer": "c-1"})
    stream = (await workflow().create_run(run_id="run-2")).stream({"customer": "c-1"})
    streamed = await stream.result

    assert (result.status, streamed.status) == (status, status)
    if method == "record_exception":
        # Never called: spanflow adds the `exception` event itself, redacted and cut, where
        # the SDK's method would put the raw message and stack on the span.
        assert tracing_errors(caplog) == []
        return
    used_on_success = method != "set_status"
    if status == "failed" or used_on_success:
        assert tracing_errors(caplog)


class BrokenProcessor(SpanProcessor):
    """A span processor with a bug in every hook."""

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        raise RuntimeError("on_start is broken")

    def on_end(self, span: ReadableSpan) -> None:
        raise RuntimeError("on_end is broken")


async def test_a_span_processor_that_raises_never_fails_the_run(span_capture: SpanCapture) -> None:
    span_capture.provider.add_span_processor(BrokenProcessor())

    result = await run(customers(), {"customer": "c-1"})

    assert (result.status, result.result) == ("success", "customer c-1")


class FailsOnEnd(SpanProcessor):
    """A span processor whose ``on_end`` raises (an exporter bug, say)."""

    def on_end(self, span: ReadableSpan) -> None:
        raise RuntimeError("on_end is broken")


async def test_a_failure_ending_a_user_span_never_fails_the_step(
    span_capture: SpanCapture, caplog: pytest.LogCaptureFixture
) -> None:
    span_capture.provider.add_span_processor(FailsOnEnd())

    @step
    async def fetch(ctx: StepContext[None]) -> str:
        with ctx.tracing.span("fetch prices"):
            return "prices"

    result = await run(create_workflow(id="pricing").then(fetch).commit())

    assert (result.status, result.result) == ("success", "prices")
    assert tree(span_capture, events=False) == expected("""
        invoke_workflow pricing [INTERNAL] UNSET
          workflow_step fetch [INTERNAL] UNSET
            fetch prices [INTERNAL] UNSET
    """)
    assert "spanflow: could not end span 'fetch prices'" in tracing_errors(caplog)


class BrokenTracer(trace.NoOpTracer):
    """A tracer that cannot start spans."""

    def start_span(self, *args: Any, **kwargs: Any) -> trace.Span:
        raise RuntimeError("no spans today")


def test_a_user_span_that_cannot_be_opened_still_runs_the_block(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tracing = StepTracing(trace.INVALID_SPAN, BrokenTracer())
    ran: list[trace.Span] = []

    with tracing.span("fetch prices") as span:
        ran.append(span)

    assert ran == [trace.INVALID_SPAN]
    assert tracing_errors(caplog) == ["spanflow: could not open span 'fetch prices'"]
    with pytest.raises(KeyError) as raised, tracing.span("fetch prices"):
        raise KeyError("the user's own error")
    assert raised.value.__context__ is None  # not chained to the tracing error


class BrokenTracerProvider(trace.TracerProvider):
    """A tracer provider that cannot hand out tracers."""

    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        attributes: Attributes = None,
    ) -> trace.Tracer:
        raise RuntimeError("no tracer today")


async def test_a_broken_tracer_provider_leaves_the_run_untraced_but_successful(
    caplog: pytest.LogCaptureFixture,
) -> None:
    workflow = traced(customers(), TracingConfig(tracer_provider=BrokenTracerProvider()))

    result = await run(workflow, {"customer": "c-1"})

    assert (result.status, result.trace_id, result.span_id) == ("success", None, None)
    assert tracing_errors(caplog) == [
        "spanflow: could not open the run span; tracing this run is off"
    ]


class BrokenLogger(NoOpLogger):
    """A logger that fails on every record."""

    def emit(self, record: LogRecord | None = None, **kwargs: Any) -> None:
        raise RuntimeError("log pipeline is down")


class BrokenLoggerProvider(NoOpLoggerProvider):
    """A logger provider whose loggers fail on every record."""

    def get_logger(
        self,
        name: str,
        version: str | None = None,
        schema_url: str | None = None,
        attributes: Attributes = None,
    ) -> Logger:
        return BrokenLogger(name)


async def test_a_broken_log_pipeline_never_fails_the_run(
    span_capture: SpanCapture, caplog: pytest.LogCaptureFixture
) -> None:
    workflow = traced(
        customers(), TracingConfig(events="logs", logger_provider=BrokenLoggerProvider())
    )

    result = await run(workflow, {"customer": "c-1"})

    assert result.status == "success"
    assert tree(span_capture) == expected("""
        invoke_workflow customers [INTERNAL] UNSET
          workflow_step lookup [INTERNAL] UNSET
          workflow_step summarize [INTERNAL] UNSET
    """)
    assert any("could not record an event" in message for message in tracing_errors(caplog))
