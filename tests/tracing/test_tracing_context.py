"""One tracing context: whatever starts inside a run or agent call inherits its tracing facts.

A workflow run or agent call started while another one's span is current reads the enclosing
call's tags, metadata and hide flags from one context variable, never back from span
attributes. So what a run hides stays hidden in every agent, model call, tool call and workflow
run it starts, and the inherited metadata does not depend on what the spans happen to carry.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from pydantic import BaseModel
from spanflow_otel.testing import SpanCapture

from spanflow import (
    Step,
    StepContext,
    TracingConfig,
    TracingOptions,
    create_step,
    create_workflow,
    step,
)
from spanflow.agents import Agent, ScriptedModel, ScriptedReply, ScriptedToolCall, tool
from spanflow.agents.models import ModelRequest, last_tool_results
from spanflow.tracing import OtelInstrumentation
from spanflow.tracing.context import TracingContext, current_tracing_context
from spanflow.tracing.instrumentation import NoopInstrumentation

PROMPT = "the secret launch plan"
ANSWER = "launch at dawn"
HIDDEN = TracingOptions(hide_input=True, hide_output=True)
PAYLOAD_KEYS = {
    "spanflow.input",
    "spanflow.output",
    "spanflow.resume_data",
    "spanflow.event.payload",
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "gen_ai.system_instructions",
    "gen_ai.tool.call.arguments",
    "gen_ai.tool.call.result",
}


@tool
def lookup(topic: str) -> str:
    """Look a topic up."""
    return f"facts about {topic}"


def planner() -> Agent:
    def reply(request: ModelRequest) -> ScriptedReply:
        if last_tool_results(request):
            return ScriptedReply(ANSWER)
        return ScriptedReply(tool_calls=[ScriptedToolCall("lookup", {"topic": "launch"})])

    return Agent(id="planner", instructions="Plan.", model=ScriptedModel(reply), tools=[lookup])


def recorded_payload_keys(capture: SpanCapture) -> dict[str, set[str]]:
    """For each span that records an input, output or message: which of those keys."""
    found: dict[str, set[str]] = {}
    for span in capture.spans:
        keys = set(span.attributes or {}) & PAYLOAD_KEYS
        for event in span.events:
            keys |= set(event.attributes or {}) & PAYLOAD_KEYS
        if keys:
            found[span.name] = keys
    return found


def leaked(capture: SpanCapture, *secrets: str) -> list[tuple[str, str]]:
    """(span name, attribute) pairs whose value contains one of `secrets`."""
    return [
        (span.name, key)
        for span in capture.spans
        for key, value in (span.attributes or {}).items()
        if any(secret in str(value) for secret in secrets)
    ]


async def test_an_agent_step_hides_what_its_run_hides(span_capture: SpanCapture) -> None:
    workflow = create_workflow(id="plan").then(planner().as_step()).commit()

    result = await (await workflow.create_run()).start({"prompt": PROMPT}, tracing_options=HIDDEN)

    assert result.status == "success"
    assert {s.name for s in span_capture.spans} >= {
        "invoke_agent planner",
        "chat scripted",
        "execute_tool lookup",
    }
    assert recorded_payload_keys(span_capture) == {}
    assert leaked(span_capture, PROMPT, ANSWER) == []


async def test_a_workflow_run_started_in_a_step_hides_what_its_caller_hides(
    span_capture: SpanCapture,
) -> None:
    class Note(BaseModel):
        text: str

    @step(input_schema=Note, output_schema=Note)
    async def copy(ctx: StepContext[Note]) -> Note:
        return Note(text=ctx.input_data.text + "!")

    inner = create_workflow(id="inner", input_schema=Note, output_schema=Note).then(copy).commit()

    async def call_inner(ctx: StepContext[Note]) -> Any:
        result = await (await inner.create_run()).start(ctx.input_data)
        return result.result

    outer = (
        create_workflow(id="outer", input_schema=Note)
        .then(create_step(id="call-inner", execute=call_inner, input_schema=Note))
        .commit()
    )

    result = await (await outer.create_run()).start({"text": PROMPT}, tracing_options=HIDDEN)

    assert result.status == "success"
    inner_spans = [
        s.name
        for s in span_capture.spans
        if (s.attributes or {}).get("spanflow.workflow.id") == "inner"
    ]
    assert inner_spans == ["workflow_step copy", "invoke_workflow inner"]
    assert recorded_payload_keys(span_capture) == {}
    assert leaked(span_capture, PROMPT) == []


async def test_hiding_is_inherited_fail_closed_and_adds_up(span_capture: SpanCapture) -> None:
    # The caller hides its input, the agent started inside hides its output: the agent hides both.
    async def ask(ctx: StepContext[Any]) -> Any:
        reply = await planner().generate(PROMPT, tracing_options=TracingOptions(hide_output=True))
        return reply.text

    workflow = create_workflow(id="ask").then(create_step(id="ask", execute=ask)).commit()

    await (await workflow.create_run()).start(
        {"q": PROMPT}, tracing_options=TracingOptions(hide_input=True)
    )

    agent_keys = {
        key
        for span in span_capture.spans
        if span.name.startswith(("invoke_agent", "chat", "execute_tool"))
        for key in (span.attributes or {})
    }
    assert not agent_keys & PAYLOAD_KEYS
    run_span = next(s for s in span_capture.spans if s.name == "invoke_workflow ask")
    assert "spanflow.output" in (run_span.attributes or {})


async def test_a_nested_agent_inherits_metadata_even_when_step_spans_do_not_carry_it() -> None:
    capture = SpanCapture()
    config = TracingConfig(tracer_provider=capture.provider, metadata_on_every_span=False)
    agent = planner()
    agent.instrumentation = config
    workflow = create_workflow(id="plan").then(agent.as_step()).commit()
    workflow.instrumentation = OtelInstrumentation(config)

    await (await workflow.create_run()).start(
        {"prompt": "go"}, tracing_options=TracingOptions(metadata={"tenant": "t-9"}, tags=["vip"])
    )

    step_span = next(s for s in capture.spans if s.name == "workflow_step planner")
    agent_span = next(s for s in capture.spans if s.name == "invoke_agent planner")
    assert "spanflow.metadata.tenant" not in (step_span.attributes or {})
    assert (agent_span.attributes or {})["spanflow.metadata.tenant"] == "t-9"
    assert (agent_span.attributes or {})["spanflow.tag.vip"] is True
    assert (agent_span.attributes or {})["spanflow.workflow.id"] == "plan"
    capture.shutdown()


async def test_the_context_holds_the_facts_of_the_current_run(span_capture: SpanCapture) -> None:
    seen: list[TracingContext | None] = []

    async def look(ctx: StepContext[Any]) -> Any:
        seen.append(current_tracing_context())
        return None

    workflow = create_workflow(id="look").then(create_step(id="look", execute=look)).commit()
    run = await workflow.create_run(run_id="run-1")
    await run.start(
        {},
        tracing_options=TracingOptions(
            tags=["vip"], metadata={"user": {"id": "u-42"}}, hide_input=True
        ),
    )

    assert current_tracing_context() is None
    [facts] = seen
    assert facts is not None
    assert (facts.run_id, facts.workflow_id, facts.tags) == ("run-1", "look", ("vip",))
    assert facts.attributes["spanflow.metadata.user.id"] == "u-42"
    assert (facts.hide_input, facts.hide_output) == (True, False)


def quiet_agent() -> Agent:
    return Agent(id="quiet", model=ScriptedModel(lambda request: ScriptedReply(ANSWER)))


def asking_an_agent_traced_to(capture: SpanCapture) -> Step[Any, Any]:
    """A step that asks an agent with tracing of its own, to `capture`."""
    agent = Agent(
        id="own",
        model=ScriptedModel(lambda request: ScriptedReply(ANSWER)),
        instrumentation=TracingConfig(tracer_provider=capture.provider),
    )

    async def ask(ctx: StepContext[Any]) -> Any:
        return (await agent.generate(PROMPT)).text

    return create_step(id="ask", execute=ask)


async def test_an_agent_step_of_a_run_with_tracing_disabled_records_nothing(
    span_capture: SpanCapture,
) -> None:
    workflow = create_workflow(id="off").then(quiet_agent().as_step()).commit()
    workflow.instrumentation = OtelInstrumentation(TracingConfig(enabled=False))

    result = await (await workflow.create_run()).start({"prompt": PROMPT})

    assert result.status == "success"
    assert span_capture.spans == ()


async def test_an_agent_step_of_an_untraced_workflow_records_nothing(
    span_capture: SpanCapture,
) -> None:
    workflow = create_workflow(id="off").then(quiet_agent().as_step()).commit()
    workflow.instrumentation = NoopInstrumentation()

    await (await workflow.create_run()).start({"prompt": PROMPT})

    assert span_capture.spans == ()


async def test_a_sampled_out_run_passes_its_decision_and_its_hiding_on(
    span_capture: SpanCapture,
) -> None:
    never = TracerProvider(sampler=ALWAYS_OFF)
    own = SpanCapture()  # an agent with tracing of its own, on a provider that samples all
    workflow = (
        create_workflow(id="sampled-out")
        .then(quiet_agent().as_step())
        .then(asking_an_agent_traced_to(own))
        .commit()
    )
    workflow.instrumentation = OtelInstrumentation(TracingConfig(tracer_provider=never))

    result = await (await workflow.create_run()).start({"prompt": PROMPT}, tracing_options=HIDDEN)

    assert result.status == "success"
    assert span_capture.spans == ()  # the step's agent traces like its run: not sampled
    # An agent with tracing of its own records its spans, as children of the sampled-out run
    # (same trace, not sampled), and hides what the run hides.
    assert [s.name for s in own.spans][-1] == "invoke_agent own"
    assert {s.context.trace_id for s in own.spans} == {own.spans[-1].context.trace_id}
    assert own.spans[-1].parent is not None
    assert recorded_payload_keys(own) == {}
    own.shutdown()


async def test_an_untraced_run_still_hides_from_an_agent_with_tracing_of_its_own() -> None:
    own = SpanCapture()
    workflow = create_workflow(id="no-sdk").then(asking_an_agent_traced_to(own)).commit()
    # A provider that records nothing, as OpenTelemetry's global one is without an SDK.
    workflow.instrumentation = OtelInstrumentation(
        TracingConfig(tracer_provider=trace.NoOpTracerProvider())
    )

    result = await (await workflow.create_run()).start({}, tracing_options=HIDDEN)

    assert result.status == "success"
    assert [s.name for s in own.spans][-1] == "invoke_agent own"
    assert recorded_payload_keys(own) == {}
    assert leaked(own, PROMPT, ANSWER) == []
    own.shutdown()


async def test_inside_a_resumed_run_an_agent_keeps_the_tags_of_both_halves(
    span_capture: SpanCapture,
) -> None:
    async def wait(ctx: StepContext[Any]) -> Any:
        if ctx.resume_data is None:
            return await ctx.suspend({"ask": "go on?"})
        return {}

    async def ask(ctx: StepContext[Any]) -> Any:
        reply = await quiet_agent().generate("q", tracing_options=TracingOptions(tags=["agent"]))
        return reply.text

    workflow = (
        create_workflow(id="tags")
        .then(create_step(id="wait", execute=wait))
        .then(create_step(id="ask", execute=ask))
        .commit()
    )
    run = await workflow.create_run()
    await run.start({}, tracing_options=TracingOptions(tags=["old"]))
    await run.resume({"ok": True}, tracing_options=TracingOptions(tags=["new"]))

    agent_span = next(s for s in span_capture.spans if s.name == "invoke_agent quiet")
    assert (agent_span.attributes or {})["spanflow.tags"] == ("old", "new", "agent")


async def test_a_written_value_of_any_shape_never_fails_a_traced_step(
    span_capture: SpanCapture,
) -> None:
    async def write(ctx: StepContext[Any]) -> Any:
        await ctx.writer.write({"type": ["not", "hashable"]})
        return 1

    workflow = create_workflow(id="writes").then(create_step(id="w", execute=write)).commit()

    result = await (await workflow.create_run()).start({})

    assert result.status == "success"
    [step_span] = [s for s in span_capture.spans if s.name == "workflow_step w"]
    assert [e.name for e in step_span.events].count("workflow-step-output") == 1


async def test_a_sampled_out_agent_passes_its_decision_and_its_hiding_on_to_its_tools() -> None:
    own = SpanCapture()
    inner = Agent(
        id="inner",
        model=ScriptedModel(lambda request: ScriptedReply(ANSWER)),
        instrumentation=TracingConfig(tracer_provider=own.provider),
    )

    @tool
    async def ask_inner(question: str) -> str:
        """Ask the inner agent."""
        return (await inner.generate(question)).text

    def reply(request: ModelRequest) -> ScriptedReply:
        if last_tool_results(request):
            return ScriptedReply("done")
        return ScriptedReply(tool_calls=[ScriptedToolCall("ask_inner", {"question": PROMPT})])

    outer = Agent(
        id="outer",
        model=ScriptedModel(reply),
        tools=[ask_inner],
        instrumentation=TracingConfig(tracer_provider=TracerProvider(sampler=ALWAYS_OFF)),
    )

    result = await outer.generate(PROMPT, tracing_options=HIDDEN)

    assert result.status == "success"
    inner_span = next(s for s in own.spans if s.name == "invoke_agent inner")
    assert inner_span.parent is not None  # a child of the sampled-out tool span's trace
    assert recorded_payload_keys(own) == {}
    own.shutdown()
