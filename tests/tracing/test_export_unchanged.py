"""What a representative traced run exports, attribute for attribute, against a fixture.

One run of each shape the engine traces (sequential steps with pydantic schemas, a parallel
block, a nested workflow, a retried failure, a suspend and its resume, an agent step with a
scripted model, tracing options with tags and metadata, values under credential-like keys) is
captured in memory and compared, span by span, with ``golden/export_unchanged.json``: name,
parent, kind, status, attributes, events and links. Ids become ordinals and timestamps, stack
traces and generated ids placeholders, so only what spanflow decides is compared. A change that
is meant to alter what is exported regenerates the fixture on purpose
(``SPANFLOW_REGENERATE_GOLDEN=1``); any other change to it is a regression.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pydantic
from opentelemetry.sdk.trace import ReadableSpan
from spanflow_otel.testing import SpanCapture

from spanflow import StepContext, TracingOptions, create_step, create_workflow, step
from spanflow.agents import Agent, ScriptedModel, ScriptedReply, ScriptedToolCall, tool
from spanflow.agents.models import ModelRequest, last_tool_results

GOLDEN = Path(__file__).parent / "golden" / "export_unchanged.json"
SECRET = "s3cr3t-value"
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_EPOCH_MS = re.compile(r"(?<![0-9])1[0-9]{12}(?![0-9])")
_TIME_KEYS = re.compile(r"(_at|At|timestamp|time|duration|_ms|time_to_first_chunk)$")


class Order(pydantic.BaseModel):
    item: str
    quantity: int
    api_key: str = SECRET


class Priced(pydantic.BaseModel):
    item: str
    total: float
    notes: list[str] = []


async def price(ctx: StepContext[Order]) -> Priced:
    order = ctx.input_data
    return Priced(item=order.item, total=order.quantity * 2.5, notes=["ok"])


async def label(ctx: StepContext[Priced]) -> dict[str, Any]:
    return {"label": f"{ctx.input_data.item}: {ctx.input_data.total}", "password": SECRET}


@step
async def shout(ctx: StepContext[dict[str, Any]]) -> dict[str, Any]:
    await ctx.writer.write({"progress": "shouting", "token": SECRET})
    return {"text": str(ctx.input_data["label"]).upper()}


@step
async def count(ctx: StepContext[dict[str, Any]]) -> int:
    return len(str(ctx.input_data["label"]))


@step
async def wrap(ctx: StepContext[dict[str, Any]]) -> dict[str, Any]:
    return {"wrapped": ctx.input_data, "Authorization": "Bearer " + SECRET}


attempts: list[int] = []


async def flaky(ctx: StepContext[Any]) -> Any:
    attempts.append(1)
    if len(attempts) == 1:
        raise RuntimeError("first attempt fails")
    return {"after": ctx.input_data, "max_tokens": 7}


@step
async def approve(ctx: StepContext[Any]) -> dict[str, Any]:
    if ctx.resume_data is None:
        ctx.suspend({"waiting_for": "manager", "session_id": SECRET})
    return {"approved_by": ctx.resume_data, "input": ctx.input_data}


@tool
def lookup(topic: str) -> str:
    """Look a topic up."""
    return f"facts about {topic}"


def planner() -> Agent:
    def reply(request: ModelRequest) -> ScriptedReply:
        if last_tool_results(request):
            return ScriptedReply("launch at dawn")
        return ScriptedReply(tool_calls=[ScriptedToolCall("lookup", {"topic": "launch"})])

    return Agent(id="planner", instructions="Plan.", model=ScriptedModel(reply), tools=[lookup])


def orders() -> Any:
    inner = create_workflow(id="inner").then(wrap).commit()
    return (
        create_workflow(id="orders", input_schema=Order)
        .then(create_step(id="price", execute=price, input_schema=Order, output_schema=Priced))
        .then(create_step(id="label", execute=label, input_schema=Priced))
        .parallel([shout, count])
        .map(lambda ctx: {"label": str(ctx.input_data["shout"]["text"])}, id="pick")
        .then(inner)
        .then(create_step(id="flaky", execute=flaky, retries=1))
        .then(approve)
        .commit()
    )


OPTIONS = TracingOptions(
    tags=["golden", "perf"],
    metadata={"user": {"id": "u-42", "plan": "pro"}, "client_secret": SECRET, "ratio": 0.5},
    request_context_keys=["tenant"],
)


async def capture_runs() -> None:
    attempts.clear()
    workflow = orders()
    started = await workflow.create_run(run_id="run-1")
    suspended = await started.start(
        {"item": "tea", "quantity": 4},
        request_context={"tenant": "acme", "cookie": SECRET},
        tracing_options=OPTIONS,
    )
    assert suspended.status == "suspended"
    resumed = await started.resume({"by": "manager", "refresh_token": SECRET})
    assert resumed.status == "success"

    agentic = create_workflow(id="plan").then(planner().as_step()).commit()
    planned = await (await agentic.create_run(run_id="run-2")).start({"prompt": "plan it"})
    assert planned.status == "success"

    streamed = await create_workflow(id="plain").then(count).commit().create_run(run_id="run-3")
    async for _ in streamed.stream({"label": "abc"}):
        pass


def normalised(spans: tuple[ReadableSpan, ...]) -> list[dict[str, Any]]:
    """The spans as plain data in creation order, ids as ordinals, volatile values masked."""
    ordered = sorted(spans, key=lambda span: span.context.span_id if span.context else 0)
    span_ids = {span.context.span_id: n for n, span in enumerate(ordered) if span.context}
    trace_ids: dict[int, int] = {}
    for span in ordered:
        if span.context:
            trace_ids.setdefault(span.context.trace_id, len(trace_ids))

    def ref(context: Any) -> str | None:
        if context is None:
            return None
        trace_n, span_n = trace_ids.get(context.trace_id, "?"), span_ids.get(context.span_id, "?")
        return f"trace {trace_n} span {span_n}"

    return [
        {
            "id": ref(span.context),
            "name": span.name,
            "parent": ref(span.parent),
            "kind": span.kind.name,
            "status": [span.status.status_code.name, span.status.description],
            "attributes": _attributes(span.attributes),
            "events": [
                {"name": e.name, "attributes": _attributes(e.attributes)} for e in span.events
            ],
            "links": [
                {"context": ref(link.context), "attributes": _attributes(link.attributes)}
                for link in span.links
            ],
        }
        for span in ordered
    ]


def _attributes(attributes: Any) -> dict[str, Any]:
    return {key: _value(key, value) for key, value in sorted((attributes or {}).items())}


def _value(key: str, value: Any) -> Any:
    if key == "exception.stacktrace":
        return "<stacktrace>"
    if isinstance(value, tuple):
        return [_value(key, item) for item in value]
    if isinstance(value, int) and not isinstance(value, bool) and _TIME_KEYS.search(key):
        return "<time>"
    if isinstance(value, float) and _TIME_KEYS.search(key):
        return "<time>"
    if isinstance(value, str):
        return _EPOCH_MS.sub("<time>", _UUID.sub("<uuid>", value))
    return value


async def test_what_a_traced_run_exports_matches_the_golden_fixture(
    span_capture: SpanCapture,
) -> None:
    await capture_runs()

    exported = normalised(span_capture.spans)

    assert not [value for value in json.dumps(exported).split('"') if SECRET in value]
    if os.environ.get("SPANFLOW_REGENERATE_GOLDEN") == "1":
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps(exported, indent=1, ensure_ascii=False) + "\n")
    assert exported == json.loads(GOLDEN.read_text())
