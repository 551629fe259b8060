"""Helpers for the span-tree tests: wire a workflow to the capture, run it, render its tree.

Workflows trace through OpenTelemetry's global provider by default, which the `span_capture`
fixture routes to an in-memory capture (ids 1, 2, 3..., fake clock). `traced` swaps in an
instrumentation with another `TracingConfig`; `tree` renders the captured spans with
`dump_spans`, showing only the attributes a test is about, so a failing assertion shows both
trees side by side.
"""

from __future__ import annotations

import fnmatch
import textwrap
from collections.abc import Callable
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from spanflow_otel.testing import SpanCapture

from spanflow import TracingConfig, TracingOptions, Workflow, WorkflowResult
from spanflow.tracing import OtelInstrumentation

__all__ = [
    "CONTROL_FLOW",
    "STATUS",
    "attribute",
    "expected",
    "keys",
    "run",
    "span_named",
    "spans_named",
    "traced",
    "tree",
]

STATUS = ("spanflow.*.status",)
"""The status attribute of every kind of span (``spanflow.step.status``, ...)."""

CONTROL_FLOW = (
    *STATUS,
    "spanflow.step.attempt",
    "spanflow.foreach.index",
    "spanflow.loop.*",
    "spanflow.parallel.steps",
    "spanflow.branch.selected_steps",
    "spanflow.condition.index",
    "spanflow.condition.result",
    "spanflow.sleep.seconds",
    "spanflow.workflow.nested",
)
"""The key attributes of control-flow spans (§2 of the tracing spec)."""


def keys(*patterns: str) -> Callable[[str], bool]:
    """An attribute filter for `dump_spans`: exact keys or shell patterns (``spanflow.*``)."""
    return lambda key: any(fnmatch.fnmatchcase(key, pattern) for pattern in patterns)


def tree(capture: SpanCapture, *patterns: str, events: bool = True, links: bool = True) -> str:
    """The captured span tree, showing the attributes matching `patterns` (none if empty)."""
    return capture.dump(attributes=keys(*patterns), include_events=events, include_links=links)


def expected(text: str) -> str:
    """An expected tree written as an indented triple-quoted string."""
    return textwrap.dedent(text).strip("\n")


def traced(workflow: Workflow, config: TracingConfig) -> Workflow:
    """Trace `workflow` with `config` (still through the global provider unless it names one)."""
    workflow.instrumentation = OtelInstrumentation(config)
    return workflow


async def run(
    workflow: Workflow,
    input_data: Any = None,
    *,
    run_id: str = "run-1",
    options: TracingOptions | None = None,
    request_context: dict[str, Any] | None = None,
) -> WorkflowResult:
    """Start a new run of `workflow` with a fixed run id and wait for its result."""
    started = await workflow.create_run(run_id=run_id)
    return await started.start(input_data, request_context=request_context, tracing_options=options)


def spans_named(capture: SpanCapture, name: str) -> list[ReadableSpan]:
    """The captured spans called `name`, in the order they ended."""
    return [span for span in capture.spans if span.name == name]


def span_named(capture: SpanCapture, name: str) -> ReadableSpan:
    """The one captured span called `name`."""
    (span,) = spans_named(capture, name)
    return span


def attribute(span: ReadableSpan, key: str) -> Any:
    """One attribute of `span` (``None`` if it is not set); arrays come back as lists."""
    value = (span.attributes or {}).get(key)
    return list(value) if isinstance(value, tuple) else value
