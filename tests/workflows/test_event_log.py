"""Every event a run emits lands in its stored event log, and `observe` follows it from any
store object: a replay from an offset, then live events, until the run suspends or ends."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from spanflow import StepContext, WorkflowEvent, create_step, create_workflow
from spanflow.errors import RunNotFoundError, StorageError
from spanflow.storage import MemoryStorage, Storage, StoredRun
from tests.workflows.reference_workflow import RESUME_DATA, build_reference_workflow
from tests.workflows.support import collect, event_types, held_workflow


def wire(events: list[WorkflowEvent]) -> list[dict[str, Any]]:
    return [event.to_dict() for event in events]


async def logged(storage: Storage, run_id: str) -> list[dict[str, Any]]:
    return [entry.event for entry in await storage.read_events(run_id)]


async def test_the_log_holds_exactly_what_the_streams_yielded_across_a_resume(
    stores: tuple[Storage, Storage],
) -> None:
    storage, _ = stores
    workflow = build_reference_workflow()
    workflow.storage = storage
    run = await workflow.create_run(run_id="run-log")

    first = wire(await collect(run.stream({"value": 5})))
    second = wire(await collect(run.resume_stream(RESUME_DATA)))

    assert await logged(storage, "run-log") == first + second
    assert [entry.seq for entry in await storage.read_events("run-log")] == list(
        range(len(first) + len(second))
    )
    assert first[-1]["payload"]["workflowStatus"] == "suspended"


async def test_a_run_started_without_a_stream_is_logged_too(
    stores: tuple[Storage, Storage],
) -> None:
    storage, _ = stores
    workflow = build_reference_workflow()
    workflow.storage = storage
    run = await workflow.create_run()

    result = await run.start({"value": 5})

    events = await logged(storage, run.run_id)
    assert result.status == "suspended"
    assert events[0]["type"] == "workflow-start"
    assert [e["type"] for e in events[-2:]] == ["workflow-step-suspended", "workflow-finish"]


async def test_the_stored_end_and_its_last_events_are_written_together(
    stores: tuple[Storage, Storage],
) -> None:
    storage, other = stores
    workflow = build_reference_workflow()
    workflow.storage = storage
    run = await workflow.create_run()
    out = run.stream({"value": 5})

    async for event in out:
        if event.type == "workflow-step-suspended":
            break
    await out.result
    stored = await other.get_run(run.run_id)

    assert stored is not None
    assert stored.status == "suspended"
    assert (await logged(other, run.run_id))[-1]["type"] == "workflow-finish"


async def test_observe_replays_from_an_offset_then_follows_live_until_the_run_ends(
    stores: tuple[Storage, Storage],
) -> None:
    storage, other = stores
    held = held_workflow(storage)
    watcher = held_workflow(other)  # the same workflow, seen through another store object
    run = await held.workflow.create_run()
    out = run.stream(None)
    await held.started.wait()
    await asyncio.sleep(0.05)  # the flusher writes the events so far

    observed = watcher.workflow.observe(run.run_id, offset=1)
    await asyncio.sleep(0.05)
    held.release.set()
    streamed = wire(await collect(out))
    seen = wire(await asyncio.wait_for(collect(observed), 5.0))

    assert seen == streamed[1:]
    assert event_types(await collect(observed))[-1] == "workflow-finish"
    result = await observed.result
    assert (result.status, result.result) == ("success", "done")
    assert observed.status == "success"


async def test_observe_ends_at_a_suspension_with_the_suspended_result(
    stores: tuple[Storage, Storage],
) -> None:
    storage, other = stores
    workflow, watcher = build_reference_workflow(), build_reference_workflow()
    workflow.storage, watcher.storage = storage, other
    run = await workflow.create_run()
    streamed = wire(await collect(run.stream({"value": 5})))

    observed = watcher.observe(run.run_id)
    seen = wire(await asyncio.wait_for(collect(observed), 5.0))

    assert seen == streamed
    result = await observed.result
    assert result.status == "suspended"
    assert result.suspended == [["approve"]]
    assert result.steps["add-one"].output.value == 6  # validated again by the step's schema


async def test_an_observer_waiting_for_a_run_not_started_yet_sees_all_of_it() -> None:
    workflow = build_reference_workflow()
    run = await workflow.create_run()
    observed = run.observe()
    await asyncio.sleep(0.02)
    assert observed.status == "pending"

    streamed = wire(await collect(run.stream({"value": 5})))

    assert wire(await asyncio.wait_for(collect(observed), 5.0)) == streamed


async def test_observing_an_unknown_run_ends_the_stream_with_not_found() -> None:
    workflow = build_reference_workflow()

    observed = workflow.observe("no-such-run")

    with pytest.raises(RunNotFoundError, match="no-such-run"):
        await collect(observed)


def test_a_store_without_an_event_log_cannot_be_observed() -> None:
    workflow = build_reference_workflow()
    workflow.storage = MemoryStorage(event_log=False)

    async def observe() -> None:
        workflow.observe("run-1")

    with pytest.raises(StorageError, match="event_log=False"):
        asyncio.run(observe())


@pytest.mark.parametrize("offset", [-1, "2", True])
async def test_a_bad_offset_is_refused_at_once(offset: Any) -> None:
    workflow = build_reference_workflow()

    with pytest.raises((TypeError, ValueError), match="offset"):
        workflow.observe("run-1", offset=offset)


async def test_events_come_back_typed_from_their_wire_form() -> None:
    workflow = build_reference_workflow()
    run = await workflow.create_run()
    events = await collect(run.stream({"value": 5}))
    events += await collect(run.resume_stream(RESUME_DATA))

    again = [WorkflowEvent.from_dict(event.to_dict()) for event in events]

    assert [type(event.payload) for event in again] == [type(e.payload) for e in events]
    assert wire(again) == wire(events)


async def test_a_failed_step_error_survives_the_wire_as_a_stored_error() -> None:
    async def explode(ctx: StepContext[Any]) -> None:
        raise RuntimeError("boom")

    workflow = create_workflow(id="fails").then(create_step(id="explode", execute=explode))
    workflow.commit()
    run = await workflow.create_run()
    await run.start(None)

    observed = await collect(workflow.observe(run.run_id))

    result = next(e for e in observed if e.type == "workflow-step-result")
    assert result.payload.error is not None  # type: ignore[union-attr]
    assert (type(result.payload.error).__name__, str(result.payload.error)) == (  # type: ignore[union-attr]
        "StoredError",
        "boom",
    )


async def test_the_log_goes_with_its_run(stores: tuple[Storage, Storage]) -> None:
    storage, _ = stores
    workflow = build_reference_workflow()
    workflow.storage = storage
    run = await workflow.create_run()
    await run.start({"value": 5})

    await workflow.delete_run(run.run_id)

    assert await storage.read_events(run.run_id) == []


def test_from_dict_names_what_is_wrong() -> None:
    with pytest.raises(ValueError, match="no string 'type'"):
        WorkflowEvent.from_dict({"payload": {}})
    with pytest.raises(ValueError, match="workflow-step-result event: payload has no 'id'"):
        WorkflowEvent.from_dict({"type": "workflow-step-result", "payload": {"status": "x"}})
    custom = WorkflowEvent.from_dict({"type": "data-progress", "data": {"pct": 50}})
    assert custom.to_dict() == {"type": "data-progress", "data": {"pct": 50}}


class EndWriteFailsOnce(MemoryStorage):
    """A store whose first write of a run's successful end fails (the disk filled up, say)."""

    def __init__(self) -> None:
        super().__init__()
        self.failed = False

    async def save_run(
        self, run: StoredRun, *, events: Sequence[Any] = (), if_owner: str | None = None
    ) -> None:
        if run.status == "success" and not self.failed:
            self.failed = True
            raise StorageError("no space left on device")
        await super().save_run(run, events=events, if_owner=if_owner)


async def test_an_end_that_could_not_be_stored_is_logged_as_the_failure_it_became() -> None:
    storage = EndWriteFailsOnce()
    workflow = create_workflow(id="full-disk", storage=storage)
    workflow.then(create_step(id="only", execute=lambda ctx: "done")).commit()
    run = await workflow.create_run()

    with pytest.raises(StorageError, match="no space left"):
        await run.start(None)

    finishes = [e for e in await logged(storage, run.run_id) if e["type"] == "workflow-finish"]
    assert [e["payload"]["workflowStatus"] for e in finishes] == ["failed"]
    assert (await storage.get_run(run.run_id)).status == "failed"  # type: ignore[union-attr]


async def test_an_observer_that_stops_reading_stops_its_reader_and_not_the_run() -> None:
    held = held_workflow(MemoryStorage())
    run = await held.workflow.create_run()
    out = run.stream(None)
    await held.started.wait()
    observed = held.workflow.observe(run.run_id)
    await asyncio.sleep(0.01)

    await observed.aclose()

    assert observed.producer is not None
    assert observed.producer.done()
    held.release.set()
    assert (await out.result).status == "success"
