"""Secrets never reach a span, a stream event or the store, wherever they hide.

Exception messages and stack traces (``password=...``, ``"api_key": "..."``, ``Bearer ...``),
secret-looking values under innocent keys (API keys, JWTs, URL passwords, AWS key ids, private
keys), credential key names beyond the obvious ones, rejected tracing options, tags, and a
request context's nested credentials: each is shown redacted, or not stored at all.
"""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

import pytest
from spanflow_otel.testing import SpanCapture

from spanflow import StepContext, TracingConfig, TracingOptions, create_workflow, step
from spanflow.errors import StoredError
from spanflow.tracing import Redactor
from spanflow.tracing.redaction import (
    REDACTED,
    redact_error_message,
    redact_stack,
    strip_credentials,
)
from spanflow.workflows.results import error_to_dict, error_wire
from tests.support.stores import StoreSpec

from .span_helpers import attribute, run, span_named, traced

SECRET = "hunter2-s3cr3t"
OPENAI_KEY = "sk-proj-" + "A1b2C3d4E5f6G7h8I9j0" * 2
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
    ".eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkFkYSJ9"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
AWS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
BASIC = base64.b64encode(b"ada:" + SECRET.encode()).decode()
PRIVATE_KEY = (
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA0Z3VS5JJcds3xfn/ygWyF8PbnGy0AHB7\n"
    "-----END RSA PRIVATE KEY-----"
)
LEAKY_MESSAGE = (
    f"login failed: password={SECRET} token: {SECRET} "
    f'{{"api_key": "{SECRET}"}} Authorization: Bearer {JWT} (Basic {BASIC})'
)
EVERY_SECRET = (SECRET, JWT, BASIC, OPENAI_KEY, AWS_KEY_ID, "MIIEowIBAAKCAQEA")


def leaks(text: str) -> list[str]:
    return [secret for secret in EVERY_SECRET if secret in text]


def everything_recorded(capture: SpanCapture) -> str:
    """Every span name, status, attribute and event attribute, as one text."""
    parts: list[str] = []
    for span in capture.spans:
        parts.append(f"{span.name} {span.status.description}")
        parts.extend(f"{key}={value!s}" for key, value in (span.attributes or {}).items())
        for event in span.events:
            parts.extend(f"{key}={value!s}" for key, value in (event.attributes or {}).items())
    return "\n".join(parts)


@step
async def leaky(ctx: StepContext[Any]) -> Any:
    raise ValueError(LEAKY_MESSAGE)


@step
async def echo(ctx: StepContext[Any]) -> Any:
    return ctx.input_data


# --- exception messages and stack traces ---------------------------------------------------


def test_an_error_message_keeps_its_words_and_loses_its_secrets() -> None:
    redacted = redact_error_message(LEAKY_MESSAGE)

    assert leaks(redacted) == []
    assert redacted == (
        f"login failed: password={REDACTED} token: {REDACTED} "
        f'{{"api_key": "{REDACTED}"}} Authorization: {REDACTED} (Basic {REDACTED})'
    )


def test_a_header_in_a_message_loses_its_credentials_and_keeps_its_punctuation() -> None:
    message = f"denied (Authorization: Basic {BASIC}), retry with api_key={OPENAI_KEY}; done"

    assert redact_error_message(message) == (
        f"denied (Authorization: {REDACTED}), retry with api_key={REDACTED}; done"
    )


def test_python_reprs_and_token_counts_in_messages() -> None:
    message = f"bad request {{'client_secret': '{SECRET}', 'max_tokens': 20, 'tokens': 'abc'}}"

    assert redact_error_message(message) == (
        f"bad request {{'client_secret': '{REDACTED}', 'max_tokens': 20, 'tokens': '{REDACTED}'}}"
    )


def test_a_stack_trace_is_redacted_like_a_message() -> None:
    try:
        raise RuntimeError(LEAKY_MESSAGE)
    except RuntimeError as error:
        wire = error_to_dict(error)

    assert wire["name"] == "RuntimeError"
    assert leaks(wire["message"]) == []
    assert leaks(wire["stack"]) == []
    assert "RuntimeError: login failed: password=[REDACTED]" in wire["stack"]
    assert "raise RuntimeError(LEAKY_MESSAGE)" in wire["stack"]  # the source line is kept


async def test_a_failing_step_shows_no_secret_in_span_status_or_exception_events(
    span_capture: SpanCapture,
) -> None:
    result = await run(create_workflow(id="leaky").then(leaky).commit())

    assert result.status == "failed"
    step_span = span_named(span_capture, "workflow_step leaky")
    assert step_span.status.description == redact_error_message(LEAKY_MESSAGE)
    (exception,) = [event for event in step_span.events if event.name == "exception"]
    assert (exception.attributes or {})["exception.type"] == "ValueError"
    assert "password=[REDACTED]" in str((exception.attributes or {})["exception.stacktrace"])
    assert leaks(everything_recorded(span_capture)) == []


async def test_the_finish_payload_and_stream_events_show_the_error_redacted(
    span_capture: SpanCapture,
) -> None:
    workflow = create_workflow(id="leaky").then(leaky).commit()
    started = await workflow.create_run(run_id="run-1")

    events = [event.to_dict() async for event in started.stream(None)]

    finish = next(event for event in events if event["type"] == "workflow-finish")
    assert finish["payload"]["error"]["message"] == redact_error_message(LEAKY_MESSAGE)
    assert leaks(json.dumps(events)) == []
    other = await (await workflow.create_run(run_id="run-2")).start(None)
    assert leaks(json.dumps(other.to_dict())) == []
    assert leaks(everything_recorded(span_capture)) == []


async def test_a_stored_error_holds_no_secret(store_spec: StoreSpec) -> None:
    workflow = create_workflow(id="leaky").then(leaky).commit()
    workflow.storage = store_spec.open()
    try:
        started = await workflow.create_run(run_id="run-1")
        await started.start(None)
        stored = await workflow.storage.get_run("run-1")
    finally:
        await workflow.storage.close()

    assert stored is not None
    assert stored.status == "failed"
    text = json.dumps(stored.snapshot)
    assert leaks(text) == []
    assert "password=[REDACTED]" in text


# --- secret-looking values under any key ---------------------------------------------------


def test_secret_looking_values_are_redacted_under_any_key() -> None:
    value = {
        "note": f"use {OPENAI_KEY} for now",
        "session": "ok",
        "claims": JWT,
        "header": f"Bearer {SECRET}",
        "dsn": f"postgresql://ada:{SECRET}@db.internal:5432/app",
        "url": f"https://bob:{SECRET}@example.com/path?q=1",
        "aws": f"id {AWS_KEY_ID} here",
        "pem": PRIVATE_KEY,
        "list": [OPENAI_KEY, "plain"],
        "model": "gpt-4o-mini",
        "prose": "the bearer of bad news had basic manners",
    }

    assert Redactor().redact(value) == {
        "note": f"use {REDACTED} for now",
        "session": REDACTED,
        "claims": REDACTED,
        "header": f"Bearer {REDACTED}",
        "dsn": f"postgresql://ada:{REDACTED}@db.internal:5432/app",
        "url": f"https://bob:{REDACTED}@example.com/path?q=1",
        "aws": f"id {REDACTED} here",
        "pem": f"-----BEGIN RSA PRIVATE KEY-----{REDACTED}",
        "list": [REDACTED, "plain"],
        "model": "gpt-4o-mini",
        "prose": "the bearer of bad news had basic manners",
    }


async def test_secret_looking_values_never_reach_a_span(span_capture: SpanCapture) -> None:
    data = {"notes": f"key {OPENAI_KEY}", "dsn": f"postgresql://ada:{SECRET}@db/app", "t": JWT}

    await run(create_workflow(id="echo").then(echo).commit(), data)

    shown = json.loads(attribute(span_named(span_capture, "workflow_step echo"), "spanflow.output"))
    assert shown == {
        "notes": f"key {REDACTED}",
        "dsn": f"postgresql://ada:{REDACTED}@db/app",
        "t": REDACTED,
    }
    assert leaks(everything_recorded(span_capture)) == []


def test_value_scanning_can_be_turned_off_and_extended() -> None:
    assert Redactor(scan_values=False).redact({"t": JWT}) == {"t": JWT}
    extended = Redactor(value_patterns=(r"\bFR76[0-9 ]{10,}",))
    assert extended.redact({"iban": "FR76 3000 6000 0112 3456 7890 189", "n": 1}) == {
        "iban": REDACTED,
        "n": 1,
    }


# --- key names -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "passwd",
        "pass",
        "db_pass",
        "pwd",
        "otp",
        "pin",
        "cvv",
        "auth",
        "authHeader",
        "creds",
        "signature",
        "x-auth-user",
        "X-Auth-Key",
        "session_key",
        "passphrase",
    ],
)
def test_credential_key_names_that_used_to_leak_are_redacted(key: str) -> None:
    assert Redactor().redact({key: SECRET}) == {key: REDACTED}


@pytest.mark.parametrize("key", ["passenger", "author", "compass", "spinner", "bypass_cache"])
def test_words_that_merely_contain_those_names_are_not(key: str) -> None:
    assert Redactor().redact({key: "kept"}) == {key: "kept"}


def test_token_counts_stay_visible_but_strings_under_their_keys_are_checked() -> None:
    value = {
        "tokens": 120,
        "token_total": 3.5,
        "tokens_remaining": 7,
        "usage": {"input_tokens": 5, "completion_tokens_details": {"reasoning_tokens": 2}},
        "output_tokens": "abc123",
        "tokens_used": [1, "xyz"],
    }

    assert Redactor().redact(value) == {
        "tokens": 120,
        "token_total": 3.5,
        "tokens_remaining": 7,
        "usage": {"input_tokens": 5, "completion_tokens_details": {"reasoning_tokens": 2}},
        "output_tokens": REDACTED,
        "tokens_used": [1, REDACTED],
    }


async def test_a_string_under_a_token_count_key_never_reaches_a_span(
    span_capture: SpanCapture,
) -> None:
    await run(create_workflow(id="echo").then(echo).commit(), {"tokens": SECRET, "max_tokens": 9})

    shown = attribute(span_named(span_capture, "workflow_step echo"), "spanflow.input")
    assert json.loads(shown) == {"tokens": REDACTED, "max_tokens": 9}


# --- rejected tracing options, tags ----------------------------------------------------------


async def test_rejected_options_are_named_and_shown_only_redacted(
    span_capture: SpanCapture, caplog: pytest.LogCaptureFixture
) -> None:
    options = TracingOptions(
        trace_id=OPENAI_KEY,
        traceparent=f"Bearer {JWT}",
        metadata=f"password={SECRET}",  # type: ignore[arg-type]
        tags=f"api_key={SECRET}",
    )

    with caplog.at_level(logging.WARNING, logger="spanflow.tracing"):
        await run(create_workflow(id="echo").then(echo).commit(), 1, options=options)

    rejected = attribute(
        span_named(span_capture, "invoke_workflow echo"), "spanflow.tracing.rejected"
    )
    assert [entry.split(":")[0] for entry in rejected] == [
        "trace_id",
        "traceparent",
        "tags",
        "metadata",
    ]
    assert all(REDACTED in entry for entry in rejected)
    assert leaks("\n".join(rejected)) == []
    assert len(caplog.records) == 4
    assert leaks(caplog.text) == []
    assert "trace_id" in caplog.text
    assert "metadata" in caplog.text


async def test_a_rejected_value_is_redacted_with_the_configured_redactor_too(
    span_capture: SpanCapture,
) -> None:
    config = TracingConfig(redactor=Redactor(extra_keys=("iban",)))
    workflow = traced(create_workflow(id="echo").then(echo).commit(), config)
    options = TracingOptions(metadata="iban=FR7630006000011234567890189")  # type: ignore[arg-type]

    await run(workflow, 1, options=options)

    (entry,) = attribute(
        span_named(span_capture, "invoke_workflow echo"), "spanflow.tracing.rejected"
    )
    assert "FR76" not in entry
    assert "iban=[REDACTED]" in entry


async def test_tags_pass_the_same_rules(span_capture: SpanCapture) -> None:
    options = TracingOptions(tags=[f"api_key={SECRET}", "env=prod", OPENAI_KEY])

    await run(create_workflow(id="echo").then(echo).commit(), 1, options=options)

    span = span_named(span_capture, "invoke_workflow echo")
    keys = [key for key in span.attributes or {} if key.startswith("spanflow.tag")]
    assert leaks("\n".join(keys)) == []
    assert attribute(span, "spanflow.tags") == [f"api_key={REDACTED}", "env=prod", REDACTED]
    assert attribute(span, "spanflow.tag.env=prod") is True
    assert attribute(span, f"spanflow.tag.api_key={REDACTED}") is True
    assert leaks(everything_recorded(span_capture)) == []


# --- the stored request context --------------------------------------------------------------


def test_credentials_are_stripped_at_any_depth() -> None:
    context = {
        "tenant": "acme",
        "user": {"id": "u-1", "token": SECRET, "cfg": {"Authorization": SECRET, "theme": "dark"}},
        "providers": [{"name": "openai", "api_key": SECRET}],
        "usage": {"tokens": 12, "tokens_remaining": "lots"},
    }

    assert strip_credentials(context) == {
        "tenant": "acme",
        "user": {"id": "u-1", "cfg": {"theme": "dark"}},
        "providers": [{"name": "openai"}],
        "usage": {"tokens": 12},
    }


async def test_nested_credentials_never_reach_the_stored_request_context(
    store_spec: StoreSpec,
) -> None:
    seen: list[dict[str, Any]] = []

    @step
    async def ask(ctx: StepContext[Any]) -> None:
        seen.append(ctx.request_context.to_dict())
        if ctx.resume_data is None:
            ctx.suspend(None)

    workflow = create_workflow(id="ctx").then(ask).commit()
    workflow.storage = store_spec.open()
    context = {
        "tenant": "acme",
        "user": {"id": "u-1", "token": SECRET, "cfg": {"Authorization": SECRET}},
    }
    try:
        started = await workflow.create_run(run_id="run-1")
        await started.start(None, request_context=context)
        stored = await workflow.storage.get_run("run-1")
        resumed = await (await workflow.create_run(run_id="run-1")).resume("go")
    finally:
        await workflow.storage.close()

    assert stored is not None
    assert stored.snapshot["requestContext"] == {"tenant": "acme", "user": {"id": "u-1", "cfg": {}}}
    assert SECRET not in json.dumps(stored.snapshot)
    assert resumed.status == "success"
    assert seen == [context, {"tenant": "acme", "user": {"id": "u-1", "cfg": {}}}]


def test_a_restored_error_is_redacted_again_on_the_wire() -> None:
    stored = StoredError("ValueError", f"pwd={SECRET}", f"Traceback ...\nValueError: pwd={SECRET}")

    assert error_wire(stored) == {
        "name": "ValueError",
        "message": f"pwd={REDACTED}",
        "stack": f"Traceback ...\nValueError: pwd={REDACTED}",
    }
    assert redact_stack(f"ValueError: pwd={SECRET}") == f"ValueError: pwd={REDACTED}"
