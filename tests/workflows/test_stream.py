"""`WorkflowStream`: typed events in Python, Mastra's wire shape from `to_dict()`, and a
stream that never loses events or deadlocks, whoever reads it and whenever."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from spanflow import (
    StepContext,
    StepOutputPayload,
    StepProgressPayload,
    StepResultPayload,
    StepStartPayload,
    StepSuspendedPayload,
    StepWaitingPayload,
    StorageError,
    Usage,
    WorkflowCanceledPayload,
    WorkflowEvent,
    WorkflowFinishPayload,
    WorkflowStartPayload,
    create_step,
    create_workflow,
)
from spanflow.storage import MemoryStorage, StoredRun

from .support import collect, event_types, fn_step

USAGE_KEYS = {
    "inputTokens",
    "outputTokens",
    "totalTokens",
    "reasoningTokens",
    "cachedInputTokens",
    "cacheCreationInputTokens",
}


async def everything_events() -> list[WorkflowEvent]:
    """One run that emits every kind of step event, then a resume that finishes it."""

    async def talk(ctx: StepContext[Any]) -> list[int]:
        await ctx.writer.write({"note": "hello"})
        return [1, 2]

    async def ask(ctx: StepContext[Any]) -> str:
        if ctx.resume_data is None:
            ctx.suspend({"q": "go?"})
        return str(ctx.resume_data)

    workflow = (
        create_workflow(id="everything")
        .then(create_step(id="talk", execute=talk))
        .foreach(fn_step("each", lambda n: n * 10))
        .sleep(0.001, id="nap")
        .then(create_step(id="ask", execute=ask))
        .commit()
    )
    run = await workflow.create_run()
    first = await collect(run.stream("in"))
    second = await collect(run.resume_stream("yes"))
    return first + second


EXPECTED_PAYLOADS: dict[str, tuple[type[Any], set[str]]] = {
    "workflow-start": (WorkflowStartPayload, {"workflowId"}),
    "workflow-step-start": (
        StepStartPayload,
        {"id", "stepName", "stepCallId", "status", "payload", "startedAt"},
    ),
    "workflow-step-output": (StepOutputPayload, {"stepName", "output", "runId"}),
    "workflow-step-progress": (
        StepProgressPayload,
        {
            "id",
            "stepName",
            "completedCount",
            "totalCount",
            "currentIndex",
            "iterationStatus",
            "iterationOutput",
        },
    ),
    "workflow-step-result": (
        StepResultPayload,
        {"id", "stepName", "stepCallId", "status", "payload", "output", "startedAt", "endedAt"},
    ),
    "workflow-step-suspended": (
        StepSuspendedPayload,
        {
            "id",
            "stepName",
            "stepCallId",
            "status",
            "payload",
            "suspendPayload",
            "startedAt",
            "suspendedAt",
        },
    ),
    "workflow-step-waiting": (
        StepWaitingPayload,
        {"id", "stepName", "payload", "startedAt", "status"},
    ),
    "workflow-finish": (WorkflowFinishPayload, {"workflowStatus", "metadata", "output"}),
}


@pytest.mark.parametrize("event_type", sorted(EXPECTED_PAYLOADS))
async def test_each_event_type_has_a_typed_payload_and_mastras_wire_shape(
    event_type: str,
) -> None:
    events = [e for e in await everything_events() if e.type == event_type]
    payload_type, min_keys = EXPECTED_PAYLOADS[event_type]

    assert events, f"no {event_type} event"
    for event in events:
        assert isinstance(event.payload, payload_type)
        wire = event.to_dict()
        assert set(wire) == {"type", "runId", "from", "payload"}
        assert wire["type"] == event_type
        assert wire["runId"] == event.run_id
        assert wire["from"] == ("USER" if event_type == "workflow-step-output" else "WORKFLOW")
        # Step events about a plain step carry all these keys; foreach and sleep events
        # leave out the call id (Mastra does too); resume adds resumePayload/resumedAt.
        keys = set(wire["payload"])
        optional = {"stepCallId", "startedAt", "payload"}
        extra = {"resumePayload", "resumedAt", "finalWorkflowResult", "error"}
        assert min_keys - optional <= keys <= min_keys | extra


async def test_the_canceled_event_has_an_empty_payload() -> None:
    started = asyncio.Event()

    async def block(ctx: StepContext[Any]) -> None:
        started.set()
        await asyncio.sleep(30)

    workflow = create_workflow(id="c").then(create_step(id="block", execute=block)).commit()
    run = await workflow.create_run()
    out = run.stream(None)
    await started.wait()
    await run.cancel()

    [canceled] = [e for e in await collect(out) if e.type == "workflow-canceled"]

    assert isinstance(canceled.payload, WorkflowCanceledPayload)
    assert canceled.to_dict() == {
        "type": "workflow-canceled",
        "runId": run.run_id,
        "from": "WORKFLOW",
        "payload": {},
    }


async def test_a_successful_finish_carries_the_result_and_zero_usage() -> None:
    workflow = create_workflow(id="ok").then(fn_step("s", lambda v: {"v": v})).commit()
    run = await workflow.create_run()
    out = run.stream(1)

    finish = (await collect(out))[-1]

    assert isinstance(finish.payload, WorkflowFinishPayload)
    assert finish.payload.workflow_status == "success"
    assert finish.payload.final_workflow_result == {"v": 1}
    wire = finish.to_dict()["payload"]
    assert wire == {
        "workflowStatus": "success",
        "metadata": {},
        "output": {"usage": dict.fromkeys(USAGE_KEYS, 0)},
        "finalWorkflowResult": {"v": 1},
    }
    assert await out.usage == Usage()


async def test_a_failed_finish_carries_the_error() -> None:
    async def boom(ctx: StepContext[Any]) -> None:
        raise OSError("disk full")

    workflow = create_workflow(id="bad").then(create_step(id="boom", execute=boom)).commit()
    out = (await workflow.create_run()).stream(None)

    finish = (await collect(out))[-1]

    assert isinstance(finish.payload, WorkflowFinishPayload)
    assert isinstance(finish.payload.error, OSError)
    wire = finish.to_dict()["payload"]
    assert wire["workflowStatus"] == "failed"
    assert "finalWorkflowResult" not in wire
    assert wire["error"]["name"] == "OSError"
    assert wire["error"]["message"] == "disk full"
    assert "Traceback" in wire["error"]["stack"]
    assert (await out.result).status == "failed"  # step errors fail the run, never raise


async def test_a_consumer_that_starts_after_the_run_ended_gets_every_event() -> None:
    workflow = create_workflow(id="late").then(fn_step("a", str)).then(fn_step("b", len))
    out = (await workflow.commit().create_run()).stream(123)
    result = await out.result  # the run is over before anyone iterates

    events = await collect(out)

    assert result.status == "success"
    assert event_types(events) == [
        "workflow-start",
        "workflow-step-start",
        "workflow-step-result",
        "workflow-step-start",
        "workflow-step-result",
        "workflow-finish",
    ]


async def test_awaiting_the_result_without_iterating_never_deadlocks() -> None:
    async def chatty(ctx: StepContext[Any]) -> int:
        for i in range(500):  # far more events than any bounded buffer would hold
            await ctx.writer.write(i)
        return 0

    workflow = create_workflow(id="chatty").then(create_step(id="chatty", execute=chatty))
    out = (await workflow.commit().create_run()).stream(None)

    result = await asyncio.wait_for(out.result, timeout=5)

    assert result.status == "success"
    assert len(out.events) == 500 + 4


async def test_several_consumers_each_see_every_event() -> None:
    workflow = create_workflow(id="fan").then(fn_step("a", str)).commit()
    out = (await workflow.create_run()).stream(1)

    first, second, third = await asyncio.gather(
        collect(out), collect(out), collect_full_stream(out)
    )

    assert event_types(first) == event_types(second) == event_types(third)
    assert len(first) == 4


async def collect_full_stream(out: Any) -> list[WorkflowEvent]:
    return [event async for event in out.full_stream]


async def test_status_is_live_while_the_run_executes() -> None:
    seen: list[str] = []
    release = asyncio.Event()
    started = asyncio.Event()

    async def slow(ctx: StepContext[Any]) -> None:
        started.set()
        await release.wait()

    workflow = create_workflow(id="live").then(create_step(id="slow", execute=slow)).commit()
    run = await workflow.create_run()
    seen.append(run.status)
    out = run.stream(None)
    await started.wait()
    seen.append(out.status)
    release.set()
    await out.result
    seen.append(out.status)

    assert seen == ["pending", "running", "success"]


async def test_close_on_suspend_ends_the_stream_with_a_suspended_finish() -> None:
    async def ask(ctx: StepContext[Any]) -> str:
        if ctx.resume_data is None:
            ctx.suspend({"q": 1})
        return "done"

    workflow = create_workflow(id="close").then(create_step(id="ask", execute=ask)).commit()
    out = (await workflow.create_run()).stream(None)

    events = await collect(out)

    assert event_types(events)[-2:] == ["workflow-step-suspended", "workflow-finish"]
    assert events[-1].to_dict()["payload"]["workflowStatus"] == "suspended"
    assert (await out.result).status == "suspended"


async def test_without_close_on_suspend_the_stream_stays_open_until_the_resume_ends() -> None:
    async def ask(ctx: StepContext[Any]) -> str:
        if ctx.resume_data is None:
            ctx.suspend({"q": 1})
        return f"resumed with {ctx.resume_data}"

    workflow = (
        create_workflow(id="open")
        .then(create_step(id="ask", execute=ask))
        .then(fn_step("after", str.upper))
        .commit()
    )
    run = await workflow.create_run()
    out = run.stream(None, close_on_suspend=False)
    reader = asyncio.create_task(collect(out))

    async for event in out:  # a second reader, to know when the step has suspended
        if event.type == "workflow-step-suspended":
            break
    await asyncio.sleep(0.01)
    assert run.status == "suspended"
    assert not reader.done()  # suspended, yet the stream is still open
    assert not out.result.done()
    assert event_types(out.events)[-1] == "workflow-step-suspended"

    await run.resume("ok")
    events = await asyncio.wait_for(reader, timeout=5)

    assert event_types(events) == [
        "workflow-start",
        "workflow-step-start",
        "workflow-step-suspended",
        "workflow-start",
        "workflow-step-start",
        "workflow-step-result",
        "workflow-step-start",
        "workflow-step-result",
        "workflow-finish",
    ]
    assert events[-1].to_dict()["payload"]["finalWorkflowResult"] == "RESUMED WITH OK"
    assert (await out.result).result == "RESUMED WITH OK"


class BrokenStorage(MemoryStorage):
    """A store that accepts the new run, then fails every later write."""

    async def save_run(
        self, run: StoredRun, *, events: Sequence[Any] = (), if_owner: str | None = None
    ) -> None:
        raise StorageError("the disk went away")


async def test_a_run_that_crashes_ends_the_stream_with_its_error() -> None:
    workflow = create_workflow(id="crash", storage=BrokenStorage())
    workflow.then(fn_step("a", str)).then(fn_step("b", str)).commit()
    out = (await workflow.create_run()).stream(None)

    with pytest.raises(StorageError, match="the disk went away"):
        await collect(out)
    with pytest.raises(StorageError):
        await out.result
    assert await out.usage == Usage()


def two_stage_workflow() -> Any:
    async def sign(ctx: StepContext[Any]) -> str:
        if ctx.resume_data is None:
            ctx.suspend({"stage": 1})
        if ctx.resume_data == "legal ok":
            ctx.suspend({"stage": 2})
        return f"signed after {ctx.resume_data}"

    return create_workflow(id="two-stage").then(create_step(id="sign", execute=sign)).commit()


async def until_suspended(out: Any) -> None:
    async for event in out:
        if event.type == "workflow-step-suspended":
            return


async def test_a_resume_stream_closes_at_a_new_suspension_while_an_open_stream_waits() -> None:
    run = await two_stage_workflow().create_run()
    whole = run.stream(None, close_on_suspend=False)
    await until_suspended(whole)

    second = await asyncio.wait_for(collect(run.resume_stream("legal ok")), timeout=5)
    third = await asyncio.wait_for(collect(run.resume_stream("finance ok")), timeout=5)
    everything = await asyncio.wait_for(collect(whole), timeout=5)

    assert event_types(second)[-2:] == ["workflow-step-suspended", "workflow-finish"]
    assert second[-1].to_dict()["payload"]["workflowStatus"] == "suspended"
    assert event_types(third)[-1] == "workflow-finish"
    assert event_types(everything).count("workflow-start") == 3
    assert event_types(everything).count("workflow-finish") == 1  # only when the run ended
    assert (await whole.result).result == "signed after finance ok"


async def test_every_stream_opened_without_close_on_suspend_stays_open_to_the_end() -> None:
    run = await two_stage_workflow().create_run()
    first = run.stream(None, close_on_suspend=False)
    await until_suspended(first)
    second = run.resume_stream("legal ok", close_on_suspend=False)
    await until_suspended(second)
    await asyncio.sleep(0.01)

    assert run.status == "suspended"
    assert not first.result.done()
    assert not second.result.done()

    await run.resume("finance ok")

    for out in (first, second):
        events = await asyncio.wait_for(collect(out), timeout=5)
        assert event_types(events)[-1] == "workflow-finish"
        assert (await out.result).result == "signed after finance ok"
