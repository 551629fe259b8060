"""``create_workflow(metadata=...)`` is recorded on the workflow's run spans.

One attribute per leaf, ``spanflow.workflow.metadata.<path>``, flattened, redacted and
length-limited like a run's own metadata (``spanflow.metadata.*``, from `TracingOptions`), so
Jaeger can search it; under a prefix of its own, so the workflow's facts and a run's never
overwrite each other. It is a fact about the workflow, not the run: it sits on the run span
(of every execution: resumes too), not on every span of the run.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from spanflow_otel.testing import SpanCapture

from spanflow import StepContext, TracingOptions, create_step, create_workflow
from tests.tracing.span_helpers import run, span_named, spans_named

METADATA = {"team": "payments", "owner": {"name": "ada", "on_call": True}, "version": 3}


def workflow_metadata(span: ReadableSpan) -> dict[str, Any]:
    return {
        key: value
        for key, value in (span.attributes or {}).items()
        if key.startswith("spanflow.workflow.metadata.")
    }


async def charge(ctx: StepContext[int]) -> int:
    if ctx.resume_data is None and ctx.input_data > 100:
        ctx.suspend({"amount": ctx.input_data})
    return ctx.input_data


def payments(metadata: Any = METADATA) -> Any:
    return (
        create_workflow(id="payments", metadata=metadata)
        .then(create_step(id="charge", execute=charge))
        .commit()
    )


async def test_the_workflows_metadata_is_on_its_run_span_one_attribute_per_leaf(
    span_capture: SpanCapture,
) -> None:
    await run(payments(), 10)

    assert workflow_metadata(span_named(span_capture, "invoke_workflow payments")) == {
        "spanflow.workflow.metadata.team": "payments",
        "spanflow.workflow.metadata.owner.name": "ada",
        "spanflow.workflow.metadata.owner.on_call": True,
        "spanflow.workflow.metadata.version": 3,
    }
    assert workflow_metadata(span_named(span_capture, "workflow_step charge")) == {}


async def test_a_runs_own_metadata_and_the_workflows_sit_side_by_side(
    span_capture: SpanCapture,
) -> None:
    await run(payments({"team": "payments"}), 10, options=TracingOptions(metadata={"team": "x"}))

    attributes = span_named(span_capture, "invoke_workflow payments").attributes or {}
    assert attributes["spanflow.workflow.metadata.team"] == "payments"
    assert attributes["spanflow.metadata.team"] == "x"


async def test_credentials_in_the_metadata_are_redacted(span_capture: SpanCapture) -> None:
    await run(payments({"team": "payments", "api_key": "sk-live-123"}), 10)

    assert workflow_metadata(span_named(span_capture, "invoke_workflow payments")) == {
        "spanflow.workflow.metadata.team": "payments",
        "spanflow.workflow.metadata.api_key": "[REDACTED]",
    }


async def test_a_resumed_run_span_carries_the_metadata_too(span_capture: SpanCapture) -> None:
    workflow = payments()
    started = await workflow.create_run(run_id="run-1")
    await started.start(500)

    await started.resume("approved")

    run_spans = spans_named(span_capture, "invoke_workflow payments")
    assert [(s.attributes or {}).get("spanflow.run.resumed", False) for s in run_spans] == [
        False,
        True,
    ]
    assert [workflow_metadata(s)["spanflow.workflow.metadata.team"] for s in run_spans] == [
        "payments",
        "payments",
    ]


async def test_a_workflow_without_metadata_adds_no_attributes(span_capture: SpanCapture) -> None:
    await run(payments(None), 10)

    assert workflow_metadata(span_named(span_capture, "invoke_workflow payments")) == {}
