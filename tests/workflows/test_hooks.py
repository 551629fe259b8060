"""Run hooks: ``create_workflow(on_start=, on_finish=, on_error=)``.

``on_start`` is called when an execution begins (a start, a resume, a restart, a time travel),
``on_finish`` when it ends in any status (suspended too), then ``on_error`` when it ended
failed. Each gets one `RunHookEvent`. Hooks may be sync or async; they run before the caller
gets the result. A hook that raises is logged and recorded on the run span, and changes nothing
about the run.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.trace import StatusCode
from spanflow_otel.testing import SpanCapture

from spanflow import (
    RunHookEvent,
    StepContext,
    Usage,
    Workflow,
    WorkflowDefinitionError,
    create_step,
    create_workflow,
)
from spanflow.storage import MemoryStorage
from tests.tracing.span_helpers import span_named


class Log:
    """Hooks and steps that write what happened, in order, to one list."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.events: list[tuple[str, RunHookEvent]] = []

    def hook(self, name: str) -> Any:
        def record(event: RunHookEvent) -> None:
            self.events.append((name, event))
            self.lines.append(f"{name} {event.trigger} {event.status}")

        return record

    def step(self, step_id: str, fail: bool = False, ask: bool = False) -> Any:
        async def execute(ctx: StepContext[Any]) -> Any:
            self.lines.append(f"step {step_id}")
            if ask and ctx.resume_data is None:
                ctx.suspend({"question": "ok?"})
            if fail:
                raise ValueError("card declined")
            ctx.record_usage(Usage(input_tokens=3, output_tokens=4, total_tokens=7))
            return f"{step_id} done"

        return create_step(id=step_id, execute=execute)

    def workflow(self, *steps: Any, storage: Any = None) -> Workflow:
        workflow = create_workflow(
            id="payments",
            storage=storage,
            on_start=self.hook("on_start"),
            on_finish=self.hook("on_finish"),
            on_error=self.hook("on_error"),
        )
        for s in steps:
            workflow.then(s)
        return workflow.commit()


async def test_a_successful_run_calls_on_start_then_on_finish_around_its_steps() -> None:
    log = Log()
    workflow = log.workflow(log.step("charge"), log.step("receipt"))
    run = await workflow.create_run(run_id="p-1", resource_id="alice")

    result = await run.start("order")

    assert log.lines == [
        "on_start start running",
        "step charge",
        "step receipt",
        "on_finish start success",
    ]
    (_, started), (_, finished) = log.events
    assert (started.run_id, started.workflow_id, started.resource_id) == (
        "p-1",
        "payments",
        "alice",
    )
    assert (started.result, started.error, started.workflow_result) == (None, None, None)
    assert (finished.status, finished.result, finished.error) == ("success", "receipt done", None)
    assert finished.usage == Usage(input_tokens=6, output_tokens=8, total_tokens=14)
    assert finished.workflow_result is result


async def test_a_failed_run_calls_on_finish_then_on_error_with_the_steps_error() -> None:
    log = Log()
    workflow = log.workflow(log.step("charge", fail=True), log.step("receipt"))

    result = await (await workflow.create_run()).start("order")

    assert log.lines == [
        "on_start start running",
        "step charge",
        "on_finish start failed",
        "on_error start failed",
    ]
    (_, finished), (_, errored) = log.events[1:]
    assert finished is errored  # one event for both
    assert errored.error is result.error
    assert isinstance(errored.error, ValueError)
    assert errored.result is None


async def test_a_suspension_ends_an_execution_and_the_resume_begins_another() -> None:
    log = Log()
    workflow = log.workflow(log.step("approve", ask=True))
    run = await workflow.create_run()

    await run.start("order")
    await run.resume("yes")

    assert log.lines == [
        "on_start start running",
        "step approve",
        "on_finish start suspended",
        "on_start resume running",
        "step approve",
        "on_finish resume success",
    ]


async def test_a_canceled_run_calls_on_finish_but_not_on_error() -> None:
    log = Log()
    started = asyncio.Event()

    async def wait(ctx: StepContext[Any]) -> None:
        started.set()
        await asyncio.Event().wait()

    workflow = log.workflow(create_step(id="wait", execute=wait))
    run = await workflow.create_run()
    out = run.stream(None)
    await started.wait()

    await run.cancel()

    assert (await out.result).status == "canceled"
    assert log.lines == ["on_start start running", "on_finish start canceled"]


async def test_hooks_run_before_the_caller_gets_the_result_and_may_be_async() -> None:
    seen: list[str] = []

    async def on_finish(event: RunHookEvent) -> None:
        await asyncio.sleep(0)
        seen.append(f"hook saw {event.status}")

    workflow = (
        create_workflow(id="async-hooks", on_finish=on_finish)
        .then(create_step(id="s", execute=lambda ctx: "ok"))
        .commit()
    )
    out = (await workflow.create_run()).stream(None)

    result = await out.result
    seen.append(f"caller saw {result.status}")

    assert seen == ["hook saw success", "caller saw success"]
    assert [e.type for e in out.events][-1] == "workflow-finish"


async def test_a_restart_after_a_crash_begins_an_execution_with_its_trigger() -> None:
    class Durable(MemoryStorage):
        durable = True

    log = Log()
    hanging = asyncio.Event()

    async def hang(ctx: StepContext[Any]) -> str:
        if not hanging.is_set():
            hanging.set()
            await asyncio.Event().wait()  # the process "dies" here
        return "done"

    workflow = log.workflow(create_step(id="hang", execute=hang), storage=Durable())
    run = await workflow.create_run(run_id="p-1")
    starter = asyncio.create_task(run.start(None))
    await hanging.wait()
    starter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await starter

    await (await workflow.create_run(run_id="p-1")).restart()

    # The dying execution calls no hook: its process is gone.
    assert log.lines == [
        "on_start start running",
        "on_start restart running",
        "on_finish restart success",
    ]


async def test_a_hook_that_raises_is_logged_and_traced_and_changes_nothing(
    span_capture: SpanCapture, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(event: RunHookEvent) -> None:
        raise RuntimeError(f"pager is down ({event.status})")

    workflow = (
        create_workflow(id="payments", on_start=broken, on_finish=broken, on_error=broken)
        .then(create_step(id="charge", execute=lambda ctx: "charged"))
        .commit()
    )

    with caplog.at_level(logging.ERROR, logger="spanflow.hooks"):
        result = await (await workflow.create_run(run_id="p-1")).start(None)

    assert (result.status, result.result) == ("success", "charged")
    assert [r.getMessage() for r in caplog.records] == [
        f"spanflow: the {name} hook of workflow 'payments' raised for run p-1; the run goes on "
        f"as if it had not"
        for name in ("on_start", "on_finish")
    ]
    run_span = span_named(span_capture, "invoke_workflow payments")
    assert [
        (
            e.name,
            (e.attributes or {}).get("spanflow.hook"),
            (e.attributes or {})["exception.message"],
        )
        for e in run_span.events
        if e.name == "exception"
    ] == [
        ("exception", "on_start", "pager is down (running)"),
        ("exception", "on_finish", "pager is down (success)"),
    ]
    assert run_span.status.status_code == StatusCode.UNSET  # not failed by its hooks
    assert (run_span.attributes or {})["spanflow.run.status"] == "success"


async def test_spans_a_hook_opens_nest_under_the_run_span(span_capture: SpanCapture) -> None:
    def notify(event: RunHookEvent) -> None:
        with trace.get_tracer("app").start_as_current_span("notify"):
            pass

    workflow = (
        create_workflow(id="payments", on_finish=notify)
        .then(create_step(id="charge", execute=lambda ctx: "charged"))
        .commit()
    )

    await (await workflow.create_run()).start(None)

    run_span = span_named(span_capture, "invoke_workflow payments")
    notified = span_named(span_capture, "notify")
    assert notified.parent is not None
    assert run_span.context is not None
    assert notified.parent.span_id == run_span.context.span_id


def test_a_hook_that_is_not_callable_is_refused_when_the_workflow_is_built() -> None:
    with pytest.raises(WorkflowDefinitionError, match="on_finish must be a function"):
        create_workflow(id="payments", on_finish="notify")  # type: ignore[arg-type]
