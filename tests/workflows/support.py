"""Small helpers shared by the engine tests: collecting streams and naming events."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from spanflow import (
    Step,
    StepContext,
    Workflow,
    WorkflowEvent,
    WorkflowStream,
    create_step,
    create_workflow,
)
from spanflow.storage import Storage

__all__ = [
    "Held",
    "InFlight",
    "collect",
    "const",
    "event_ids",
    "event_types",
    "fn_step",
    "held_workflow",
    "step_events",
]


async def collect(out: WorkflowStream) -> list[WorkflowEvent]:
    """Iterate the stream to its end and return its events."""
    return [event async for event in out]


def event_types(events: list[WorkflowEvent]) -> list[str]:
    """The `type` of each event, in order."""
    return [event.type for event in events]


def event_ids(events: list[WorkflowEvent]) -> list[str]:
    """The wire ``payload.id`` of each step event (events without one are left out)."""
    ids = []
    for event in events:
        step_id = event.to_dict()["payload"].get("id")
        if isinstance(step_id, str):
            ids.append(step_id)
    return ids


def step_events(events: list[WorkflowEvent]) -> list[tuple[str, str]]:
    """``(type, payload.id)`` of each event that carries a step id."""
    out = []
    for event in events:
        payload = event.to_dict().get("payload") or {}
        step_id = payload.get("id")
        if isinstance(step_id, str):
            out.append((event.type, step_id))
    return out


def fn_step(step_id: str, fn: Callable[[Any], Any], **kwargs: Any) -> Step[Any, Any]:
    """A step whose execute applies `fn` to the input (for tests about plumbing, not logic)."""

    async def execute(ctx: StepContext[Any]) -> Any:
        return fn(ctx.input_data)

    return create_step(id=step_id, execute=execute, **kwargs)


def const(step_id: str, value: Any) -> Step[Any, Any]:
    """A step that always returns `value`."""
    return fn_step(step_id, lambda _: value)


class InFlight:
    """Measures concurrency: how many calls are inside `track` at once, and the maximum."""

    def __init__(self) -> None:
        self.current = 0
        self.max = 0
        self.entered = 0

    async def track(self, work: Awaitable[Any]) -> Any:
        self.current += 1
        self.entered += 1
        self.max = max(self.max, self.current)
        try:
            return await work
        finally:
            self.current -= 1

    async def pause(self, seconds: float = 0.01) -> None:
        """Stay in flight for a short while (long enough for siblings to start)."""
        await self.track(asyncio.sleep(seconds))


@dataclass(frozen=True)
class Held:
    """A committed workflow whose one step (``slow``) waits for `release` once `started`: a
    run of it stays executing for as long as a test looks at it."""

    workflow: Workflow
    started: asyncio.Event
    release: asyncio.Event


def held_workflow(storage: Storage, workflow_id: str = "busy") -> Held:
    """A `Held` workflow keeping its runs in `storage`."""
    started, release = asyncio.Event(), asyncio.Event()

    async def slow(ctx: StepContext[Any]) -> str:
        started.set()
        await release.wait()
        return "done"

    workflow = create_workflow(id=workflow_id, storage=storage)
    workflow.then(create_step(id="slow", execute=slow)).commit()
    return Held(workflow, started, release)
