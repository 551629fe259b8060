"""Nothing secret reaches a span, and inputs and outputs can be hidden or cut short.

Values under credential-like keys (in any case or separator style, at any depth) are replaced by
``[REDACTED]`` in inputs, outputs, metadata and event payloads before they are set on a span.
``hide_input``/``hide_output`` (per run) and ``capture_input``/``capture_output`` (globally)
leave them out; long values end in a visible truncation marker.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from spanflow_otel.testing import SpanCapture

from spanflow import (
    StepContext,
    TracingConfig,
    TracingOptions,
    create_workflow,
    step,
)
from spanflow.tracing import Redactor

from .span_helpers import attribute, run, span_named, traced

SECRET = "s3cr3t-value"


@step
async def echo(ctx: StepContext[Any]) -> Any:
    await ctx.writer.write(ctx.input_data)
    return ctx.input_data


def echoing() -> Any:
    return create_workflow(id="echo").then(echo).commit()


def recorded_values(spans: tuple[ReadableSpan, ...]) -> Iterator[str]:
    """Every attribute value of every span and span event, as text."""
    for span in spans:
        for value in (span.attributes or {}).values():
            yield str(value)
        for event in span.events:
            for value in (event.attributes or {}).values():
                yield str(value)


def assert_never_recorded(capture: SpanCapture, secret: str) -> None:
    leaks = [value for value in recorded_values(capture.spans) if secret in value]
    assert leaks == []


@pytest.mark.parametrize(
    "key",
    [
        "api_key",
        "API-Key",
        "apiKey",
        "X-Api-Key",
        "password",
        "Authorization",
        "client_secret",
        "refreshToken",
        "access_token",
        "session_id",
        "set-cookie",
        "private_key",
        "jwt",
        "SSN",
        "bearer",
        "credentials",
    ],
)
async def test_every_default_key_style_is_redacted_in_inputs_outputs_and_payloads(
    span_capture: SpanCapture, key: str
) -> None:
    result = await run(echoing(), {key: SECRET, "city": "Lyon"})

    assert result.result == {key: SECRET, "city": "Lyon"}  # the run itself sees the value
    shown = json.dumps({key: "[REDACTED]", "city": "Lyon"}, separators=(",", ":"))
    for name in ("invoke_workflow echo", "workflow_step echo"):
        span = span_named(span_capture, name)
        assert (attribute(span, "spanflow.input"), attribute(span, "spanflow.output")) == (
            shown,
            shown,
        )
    assert_never_recorded(span_capture, SECRET)


async def test_nested_keys_and_keys_inside_lists_are_redacted(span_capture: SpanCapture) -> None:
    payload = {
        "user": {"name": "ada", "auth": {"apiKey": SECRET}},
        "providers": [{"name": "openai", "api_key": SECRET}],
        "headers": {"Authorization": f"Bearer {SECRET}"},
    }

    await run(echoing(), payload)

    assert json.loads(
        attribute(span_named(span_capture, "workflow_step echo"), "spanflow.input")
    ) == {
        "user": {"name": "ada", "auth": "[REDACTED]"},  # "auth" hides its whole subtree
        "providers": [{"name": "openai", "api_key": "[REDACTED]"}],
        "headers": {"Authorization": "[REDACTED]"},
    }
    assert_never_recorded(span_capture, SECRET)


async def test_event_payloads_are_redacted(span_capture: SpanCapture) -> None:
    await run(echoing(), {"password": SECRET})

    step_span = span_named(span_capture, "workflow_step echo")
    payloads = {
        event.name: json.loads(str((event.attributes or {})["spanflow.event.payload"]))
        for event in step_span.events
    }
    assert payloads["workflow-step-start"]["payload"] == {"password": "[REDACTED]"}
    assert payloads["workflow-step-output"]["output"] == {"password": "[REDACTED]"}
    assert payloads["workflow-step-result"]["output"] == {"password": "[REDACTED]"}
    assert_never_recorded(span_capture, SECRET)


async def test_metadata_under_a_credential_key_is_redacted(span_capture: SpanCapture) -> None:
    options = TracingOptions(metadata={"user": {"id": "u-42", "api_key": SECRET}})

    await run(echoing(), 1, options=options)

    step_span = span_named(span_capture, "workflow_step echo")
    assert attribute(step_span, "spanflow.metadata.user.id") == "u-42"
    assert attribute(step_span, "spanflow.metadata.user.api_key") == "[REDACTED]"
    assert_never_recorded(span_capture, SECRET)


async def test_credential_request_context_entries_are_never_stored(
    span_capture: SpanCapture,
) -> None:
    workflow = echoing()

    await run(workflow, 1, request_context={"tenant": "acme", "api_key": SECRET})

    stored = await workflow.storage.get_run("run-1")
    assert stored is not None
    assert stored.snapshot["requestContext"] == {"tenant": "acme"}


async def test_users_can_add_keys_and_a_redaction_function(span_capture: SpanCapture) -> None:
    def mask_emails(key: str, value: object) -> object:
        return "***@***" if key == "email" else value

    redactor = Redactor(extra_keys=("iban",), function=mask_emails)
    workflow = traced(echoing(), TracingConfig(redactor=redactor))

    await run(workflow, {"IBAN": SECRET, "email": "ada@example.com", "token": SECRET})

    assert json.loads(
        attribute(span_named(span_capture, "workflow_step echo"), "spanflow.input")
    ) == {
        "IBAN": "[REDACTED]",
        "email": "***@***",
        "token": "[REDACTED]",
    }
    assert_never_recorded(span_capture, SECRET)
    assert_never_recorded(span_capture, "ada@example.com")


def data_attributes(capture: SpanCapture) -> dict[str, list[str]]:
    """Per span, which of input, output and event payloads it records."""
    shown: dict[str, list[str]] = {}
    for span in capture.spans:
        keys = [k for k in ("spanflow.input", "spanflow.output") if attribute(span, k) is not None]
        if any("spanflow.event.payload" in (event.attributes or {}) for event in span.events):
            keys.append("payloads")
        shown[span.name] = keys
    return shown


async def test_a_run_can_hide_its_input(span_capture: SpanCapture) -> None:
    await run(echoing(), {"note": "private"}, options=TracingOptions(hide_input=True))

    # Event payloads carry inputs too, so they are hidden with them.
    assert data_attributes(span_capture) == {
        "workflow_step echo": ["spanflow.output"],
        "invoke_workflow echo": ["spanflow.output"],
    }


async def test_a_run_can_hide_its_output(span_capture: SpanCapture) -> None:
    await run(echoing(), {"note": "private"}, options=TracingOptions(hide_output=True))

    assert data_attributes(span_capture) == {
        "workflow_step echo": ["spanflow.input"],
        "invoke_workflow echo": ["spanflow.input"],
    }


@pytest.mark.parametrize(
    ("config", "recorded"),
    [
        pytest.param(
            TracingConfig(), ["spanflow.input", "spanflow.output", "payloads"], id="default"
        ),
        pytest.param(TracingConfig(capture_input=False), ["spanflow.output"], id="no inputs"),
        pytest.param(TracingConfig(capture_output=False), ["spanflow.input"], id="no outputs"),
    ],
)
async def test_inputs_and_outputs_can_be_left_out_for_every_run(
    span_capture: SpanCapture, config: TracingConfig, recorded: list[str]
) -> None:
    workflow = traced(echoing(), config)

    await run(workflow, {"note": "private"})

    assert data_attributes(span_capture) == {
        "workflow_step echo": recorded,
        "invoke_workflow echo": recorded,
    }


async def test_long_values_are_cut_with_a_visible_marker(span_capture: SpanCapture) -> None:
    workflow = traced(echoing(), TracingConfig(max_attribute_length=40))
    long_text = "x" * 100

    await run(workflow, long_text, options=TracingOptions(metadata={"note": long_text}))

    step_span = span_named(span_capture, "workflow_step echo")
    assert attribute(step_span, "spanflow.input") == '"' + "x" * 18 + "…[truncated 83 chars]"
    assert attribute(step_span, "spanflow.metadata.note") == "x" * 19 + "…[truncated 81 chars]"
    for event in step_span.events:
        payload = str((event.attributes or {})["spanflow.event.payload"])
        assert len(payload) <= 40
        assert "…[truncated " in payload


async def test_the_default_limit_is_8_kib(span_capture: SpanCapture) -> None:
    await run(echoing(), "y" * 10_000)

    text = attribute(span_named(span_capture, "workflow_step echo"), "spanflow.input")
    assert len(text) == 8192
    assert text.endswith("…[truncated 1833 chars]")
