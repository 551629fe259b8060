"""The executor's side of the tracing seam: every scope it opens, it ends exactly once.

A recording `Instrumentation` stands in for OpenTelemetry (whose spans ``tests/tracing``
checks). What matters here is the executor's bookkeeping, above all when ``run.cancel()``
unwinds a run from deep inside parallel blocks, foreach loops, nested workflows, loops, sleeps
and retry delays: a scope left open there would be a span that never ends.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from opentelemetry import trace

from spanflow import (
    RetryConfig,
    StepContext,
    Workflow,
    create_step,
    create_workflow,
)
from spanflow.tracing.context import StoredTraceContext
from spanflow.tracing.instrumentation import (
    JobPublish,
    Publication,
    QuietPublication,
    RecordableEvent,
    RunStart,
    Scope,
    StepTracing,
)

from .support import fn_step


class RecordingScope:
    """A scope that remembers its children and how (and how often) it was ended."""

    def __init__(self, name: str, log: list[RecordingScope]) -> None:
        self.name = name
        self.ends: list[str] = []
        self.entered = 0
        self._log = log
        log.append(self)

    @property
    def recording(self) -> bool:
        return True

    @property
    def trace_id(self) -> str | None:
        return None

    @property
    def span_id(self) -> str | None:
        return None

    def step(
        self, step_id: str, *, input: Any, attempt: int, foreach_index: int | None = None
    ) -> Scope:
        suffix = f"[{foreach_index}]" if foreach_index is not None else ""
        return RecordingScope(f"step {step_id}{suffix} #{attempt}", self._log)

    def block(self, kind: str, name: str, attributes: Mapping[str, Any]) -> Scope:
        return RecordingScope(name, self._log)

    def nested_run(self, workflow_id: str, run_id: str, input: Any) -> Scope:
        return RecordingScope(f"run {workflow_id}", self._log)

    def record(self, event: RecordableEvent) -> None:
        pass

    def set_attribute(self, key: str, value: Any) -> None:
        pass

    def enter(self) -> object:
        self.entered += 1
        return self

    def exit(self, token: object) -> None:
        assert token is self
        self.entered -= 1

    @contextlib.contextmanager
    def current(self) -> Iterator[None]:
        token = self.enter()
        try:
            yield
        finally:
            self.exit(token)

    def end(self, status: str, *, output: Any = None, error: BaseException | None = None) -> None:
        self.ends.append(status)

    def record_exception(self, error: BaseException, attributes: Mapping[str, Any]) -> None:
        pass

    def persisted_context(self) -> StoredTraceContext | None:
        return None

    def user_tracing(self) -> StepTracing:
        return StepTracing(trace.INVALID_SPAN, trace.NoOpTracer())


class RecordingInstrumentation:
    def __init__(self) -> None:
        self.scopes: list[RecordingScope] = []

    def start_run(self, start: RunStart) -> Scope:
        return RecordingScope(f"run {start.workflow_id}", self.scopes)

    def publish_job(self, publish: JobPublish) -> Publication:
        return QuietPublication()

    def unbalanced(self) -> list[tuple[str, list[str]]]:
        """Scopes not ended exactly once, or left entered."""
        return [(s.name, s.ends) for s in self.scopes if len(s.ends) != 1 or s.entered]

    def ends(self) -> dict[str, str]:
        return {s.name: s.ends[0] for s in self.scopes if s.ends}


def traced(workflow: Workflow) -> RecordingInstrumentation:
    instrumentation = RecordingInstrumentation()
    workflow.instrumentation = instrumentation
    return instrumentation


def blocking(step_id: str, started: asyncio.Event) -> Any:
    async def execute(ctx: StepContext[Any]) -> Any:
        started.set()
        await asyncio.Event().wait()

    return create_step(id=step_id, execute=execute)


async def cancel_when(run: Any, started: asyncio.Event, value: Any) -> None:
    out = run.stream(value)
    await started.wait()
    await run.cancel()
    assert (await out.result).status == "canceled"


async def test_a_run_through_every_construct_ends_every_scope_once() -> None:
    async def ask(ctx: StepContext[Any]) -> Any:
        if ctx.resume_data is None:
            ctx.suspend(None)
        return ctx.input_data

    inner = create_workflow(id="inner").then(fn_step("work", lambda v: v)).commit()
    workflow = (
        create_workflow(id="all")
        .parallel([fn_step("a", lambda v: v), fn_step("b", lambda v: v)])
        .map(lambda ctx: [1, 2, 3])
        .foreach(fn_step("each", lambda v: v), concurrency=2)
        .branch(
            [(lambda c: True, fn_step("yes", lambda v: v)), (lambda c: False, fn_step("no", str))]
        )
        .dountil(fn_step("loop", lambda v: v), lambda c: c.iteration_count >= 2)
        .sleep(0.001)
        .then(inner)
        .then(create_step(id="ask", execute=ask))
        .commit()
    )
    instrumentation = traced(workflow)
    run = await workflow.create_run()

    assert (await run.start(None)).status == "suspended"
    assert (await run.resume("go")).status == "success"

    assert instrumentation.unbalanced() == []
    assert {"condition 0", "condition 1", "loop foreach", "run inner"} <= set(
        instrumentation.ends()
    )


@pytest.mark.parametrize("where", ["parallel", "foreach", "nested", "loop", "branch"])
async def test_cancel_deep_inside_a_block_ends_every_open_scope(where: str) -> None:
    started = asyncio.Event()
    hold = blocking("hold", started)
    builder = create_workflow(id=f"cancel-{where}")
    if where == "parallel":
        builder.parallel([fn_step("quick", lambda v: v), hold])
    elif where == "foreach":
        builder.map(lambda ctx: [1, 2]).foreach(hold, concurrency=2)
    elif where == "nested":
        builder.then(create_workflow(id="inner").then(hold).commit())
    elif where == "loop":
        builder.dowhile(hold, lambda c: True)
    else:
        builder.branch([(lambda c: True, hold)])
    workflow = builder.commit()
    instrumentation = traced(workflow)

    await cancel_when(await workflow.create_run(), started, None)

    assert instrumentation.unbalanced() == []
    assert "canceled" in instrumentation.ends().values()


async def test_cancel_during_a_sleep_ends_its_scope() -> None:
    workflow = create_workflow(id="cancel-sleep").sleep(30).commit()
    instrumentation = traced(workflow)
    run = await workflow.create_run()
    out = run.stream(None)

    async for event in out:
        if event.type == "workflow-step-waiting":
            await run.cancel()

    assert instrumentation.unbalanced() == []
    assert instrumentation.ends()["sleep 30s"] == "canceled"


async def test_cancel_between_retry_attempts_ends_every_scope() -> None:
    failed_once = asyncio.Event()

    async def flaky(ctx: StepContext[Any]) -> None:
        failed_once.set()
        raise ConnectionError("down")

    workflow = (
        create_workflow(id="cancel-retry", retry_config=RetryConfig(attempts=3, delay=30))
        .then(create_step(id="flaky", execute=flaky))
        .commit()
    )
    instrumentation = traced(workflow)
    run = await workflow.create_run()
    out = run.stream(None)
    await failed_once.wait()
    await asyncio.sleep(0)  # into the delay between attempts

    await run.cancel()
    result = await out.result

    assert result.status == "canceled"
    assert result.steps["flaky"].status == "canceled"
    assert instrumentation.unbalanced() == []
    assert instrumentation.ends() == {
        "run cancel-retry": "canceled",
        "step flaky #1": "failed",
        "step flaky #2": "canceled",
    }
