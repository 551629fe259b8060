"""Limits hold: long keys, many attributes, long errors, huge values and unrenderable metadata.

A 1 MB metadata key or tag is cut like a long value; tags and metadata are capped so that
spanflow's own attributes always fit in the SDK's 128, with one warning and a count of what was
cut; error messages and stacks are cut with a marker; rendering a huge input or output costs
what is kept, not what was given; and a metadata value that cannot be rendered is dropped
alone instead of switching tracing off for the run.
"""

from __future__ import annotations

import json
import logging
import tracemalloc
from typing import Any

import pytest
from spanflow_otel.testing import SpanCapture

from spanflow import StepContext, TracingConfig, TracingOptions, create_workflow, step
from spanflow.tracing.attributes import DROPPED_ATTRIBUTE, MAX_ATTRIBUTE_KEY_LENGTH
from spanflow.tracing.redaction import (
    DEFAULT_MAX_ERROR_LENGTH,
    REDACTED,
    redact_error_message,
    to_attribute_json,
)
from spanflow.workflows.results import error_to_dict
from tests.support.stores import StoreSpec

from .span_helpers import attribute, run, span_named, spans_named, traced

SDK_ATTRIBUTE_LIMIT = 128


@step
async def echo(ctx: StepContext[Any]) -> Any:
    return ctx.input_data


@step
async def wordy(ctx: StepContext[Any]) -> Any:
    raise RuntimeError("boom " + "x" * 100_000)


def echoing() -> Any:
    return create_workflow(id="echo").then(echo).commit()


# --- attribute keys and counts ---------------------------------------------------------------


async def test_a_huge_metadata_key_or_tag_never_becomes_a_huge_attribute_key(
    span_capture: SpanCapture,
) -> None:
    huge = "k" * 1_000_000
    options = TracingOptions(metadata={huge: 1, "plan": "pro"}, tags=[huge, "beta"])

    await run(echoing(), 1, options=options)

    for span in span_capture.spans:
        assert max(len(key) for key in span.attributes or {}) <= MAX_ATTRIBUTE_KEY_LENGTH
    span = span_named(span_capture, "invoke_workflow echo")
    assert attribute(span, "spanflow.metadata.plan") == "pro"
    assert attribute(span, "spanflow.tag.beta") is True
    cut = [key for key in span.attributes or {} if key.startswith("spanflow.metadata.kkk")]
    assert len(cut) == 1
    assert cut[0].endswith(" chars]")


async def test_many_tags_and_metadata_never_push_spanflows_own_attributes_off_a_span(
    span_capture: SpanCapture, caplog: pytest.LogCaptureFixture
) -> None:
    options = TracingOptions(
        metadata={f"m{i:03}": i for i in range(300)}, tags=[f"t{i:03}" for i in range(100)]
    )

    with caplog.at_level(logging.WARNING, logger="spanflow.tracing"):
        result = await run(echoing(), {"x": 1}, options=options)

    assert result.status == "success"
    for span in span_capture.spans:
        attributes = span.attributes or {}
        assert len(attributes) < SDK_ATTRIBUTE_LIMIT
        assert attributes["spanflow.run.id"] == "run-1"
        assert attributes["spanflow.workflow.id"] == "echo"
        assert attribute(span, DROPPED_ATTRIBUTE) > 0
    run_span = span_named(span_capture, "invoke_workflow echo")
    step_span = span_named(span_capture, "workflow_step echo")
    assert attribute(run_span, "spanflow.run.status") == "success"
    assert attribute(step_span, "spanflow.step.status") == "success"
    assert attribute(step_span, "spanflow.output") == '{"x":1}'
    kept = [
        key
        for key in run_span.attributes or {}
        if key.startswith(("spanflow.metadata.m", "spanflow.tag."))
    ]
    assert attribute(run_span, DROPPED_ATTRIBUTE) == 400 - len(kept)
    assert len(attribute(run_span, "spanflow.tags")) == 100  # the display list keeps them all
    warnings = [r for r in caplog.records if "attributes" in r.getMessage()]
    assert len(warnings) == 1


async def test_a_few_tags_and_metadata_are_not_counted_as_cut(span_capture: SpanCapture) -> None:
    await run(echoing(), 1, options=TracingOptions(metadata={"a": 1}, tags=["b"]))

    assert attribute(span_named(span_capture, "invoke_workflow echo"), DROPPED_ATTRIBUTE) is None


async def test_workflow_metadata_is_capped_too(span_capture: SpanCapture) -> None:
    workflow = (
        create_workflow(id="echo", metadata={f"w{i:03}": i for i in range(300)}).then(echo).commit()
    )

    await run(workflow, 1)

    span = span_named(span_capture, "invoke_workflow echo")
    assert len(span.attributes or {}) < SDK_ATTRIBUTE_LIMIT
    assert attribute(span, "spanflow.run.status") == "success"
    assert attribute(span, "spanflow.run.id") == "run-1"


# --- error messages ----------------------------------------------------------------------------


async def test_a_long_error_message_is_cut_on_the_span_with_a_marker(
    span_capture: SpanCapture,
) -> None:
    result = await run(create_workflow(id="wordy").then(wordy).commit())

    assert result.status == "failed"
    step_span = span_named(span_capture, "workflow_step wordy")
    description = step_span.status.description or ""
    assert len(description) == DEFAULT_MAX_ERROR_LENGTH
    assert description.startswith("boom xxx")
    assert description.endswith(" chars]")
    (exception,) = [event for event in step_span.events if event.name == "exception"]
    assert len(str((exception.attributes or {})["exception.message"])) == DEFAULT_MAX_ERROR_LENGTH
    assert len(str((exception.attributes or {})["exception.stacktrace"])) < 20_000


async def test_the_error_limit_is_configurable(span_capture: SpanCapture) -> None:
    workflow = traced(
        create_workflow(id="wordy").then(wordy).commit(), TracingConfig(max_error_length=100)
    )

    await run(workflow)

    for span in spans_named(span_capture, "workflow_step wordy"):
        assert len(span.status.description or "") == 100


async def test_a_long_error_message_is_cut_in_the_snapshot(store_spec: StoreSpec) -> None:
    workflow = create_workflow(id="wordy").then(wordy).commit()
    workflow.storage = store_spec.open()
    try:
        await (await workflow.create_run(run_id="run-1")).start(None)
        stored = await workflow.storage.get_run("run-1")
    finally:
        await workflow.storage.close()

    assert stored is not None
    text = json.dumps(stored.snapshot)
    assert "x" * 100_000 not in text
    assert "chars]" in text
    assert len(text) < 60_000


def test_a_cut_error_is_redacted_before_it_is_cut() -> None:
    message = "password=" + "p" * 10_000

    assert redact_error_message(message, limit=50) == f"password={REDACTED}"
    wire = error_to_dict(ValueError("v" * 10_000))
    assert len(wire["message"]) == DEFAULT_MAX_ERROR_LENGTH


# --- big values --------------------------------------------------------------------------------


def _peak_bytes(value: object) -> tuple[str, int]:
    tracemalloc.start()
    try:
        text = to_attribute_json(value)
        return text, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize(
    "value",
    [
        pytest.param({"data": "x" * 10_000_000, "password": "p"}, id="a 10 MB string"),
        pytest.param(
            {"rows": [{"id": i, "text": "lorem ipsum"} for i in range(300_000)], "api_key": "k"},
            id="300,000 records",
        ),
        pytest.param({"a": {"b": {"c": {"d": ["y" * 10_000_000]}}}}, id="deep inside"),
    ],
)
def test_rendering_a_huge_value_costs_what_is_kept_not_what_was_given(value: object) -> None:
    text, peak = _peak_bytes(value)

    assert len(text) == 8192
    assert text.endswith(" chars]")
    assert 'password":"p' not in text
    assert peak < 1_000_000  # the value itself is 10 MB or more


def test_a_huge_value_is_shown_as_the_start_of_its_redacted_json() -> None:
    value = {"api_key": "k", "rows": [{"id": i, "token": f"t{i}"} for i in range(100_000)]}

    text = to_attribute_json(value, limit=200)

    assert text.startswith('{"api_key":"[REDACTED]","rows":[{"id":0,"token":"[REDACTED]"},')
    assert len(text) == 200


def test_a_secret_straddling_the_cut_is_redacted_whole() -> None:
    key = "sk-" + "Z9" * 30
    value = {"note": "n" * 150 + " " + key}

    text = to_attribute_json(value, limit=200)

    assert "Z9Z9" not in text
    assert "sk-" not in text


# --- unrenderable metadata ------------------------------------------------------------------


async def test_an_unrenderable_metadata_value_is_dropped_alone(
    span_capture: SpanCapture, caplog: pytest.LogCaptureFixture
) -> None:
    options = TracingOptions(metadata={"big": 10**5000, "plan": "pro"})

    with caplog.at_level(logging.WARNING, logger="spanflow.tracing"):
        result = await run(echoing(), 1, options=options)

    assert result.status == "success"
    span = span_named(span_capture, "invoke_workflow echo")
    assert attribute(span, "spanflow.metadata.plan") == "pro"
    assert attribute(span, "spanflow.metadata.big") is None
    assert (
        attribute(span_named(span_capture, "workflow_step echo"), "spanflow.metadata.plan") == "pro"
    )
    (warning,) = [r for r in caplog.records if "spanflow.metadata.big" in r.getMessage()]
    assert warning.levelno == logging.WARNING
