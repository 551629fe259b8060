"""The run event log, the same on every store: numbered from 0, in order, written with the
snapshot when asked, woken across store objects, deleted with its run."""

from __future__ import annotations

import asyncio

import pytest

from spanflow.errors import StorageError
from spanflow.storage import Storage, StoredRun
from spanflow.storage.base import LoggedEvent
from tests.support.stores import StoreSpec


def _run(run_id: str = "run-1", status: str = "running") -> StoredRun:
    return StoredRun(run_id, "onboarding", status, {"step": 1})  # type: ignore[arg-type]


def _event(n: int) -> dict[str, object]:
    return {"type": "workflow-step-start", "runId": "run-1", "payload": {"n": n}}


async def test_events_are_numbered_from_zero_in_the_order_appended(storage: Storage) -> None:
    await storage.insert_run(_run())

    await storage.append_events("run-1", [_event(0), _event(1)])
    await storage.save_run(_run(status="suspended"), events=[_event(2)])
    await storage.append_events("run-1", [_event(3)])

    logged = await storage.read_events("run-1")
    assert logged == [LoggedEvent(n, _event(n)) for n in range(4)]
    assert await storage.read_events("run-1", offset=2, limit=1) == [LoggedEvent(2, _event(2))]
    assert await storage.read_events("run-1", offset=9) == []
    assert (await storage.get_run("run-1")).status == "suspended"  # type: ignore[union-attr]


async def test_counting_the_log_gives_the_number_of_the_next_event(storage: Storage) -> None:
    await storage.insert_run(_run())
    assert await storage.count_events("run-1") == 0

    await storage.append_events("run-1", [_event(0), _event(1)])
    await storage.save_run(_run(), events=[_event(2)])

    assert await storage.count_events("run-1") == 3
    assert await storage.count_events("ghost") == 0
    await storage.delete_run("run-1")
    assert await storage.count_events("run-1") == 0


async def test_a_run_that_is_not_stored_logs_nothing(storage: Storage) -> None:
    await storage.append_events("ghost", [_event(0)])

    assert await storage.read_events("ghost") == []


async def test_the_log_is_deleted_with_its_run(storage: Storage) -> None:
    await storage.save_run(_run(status="success"), events=[_event(0)])
    await storage.delete_run("run-1")
    await storage.save_run(_run(status="success"), events=[_event(7)])

    assert await storage.read_events("run-1") == [LoggedEvent(0, _event(7))]


async def test_a_waiter_wakes_when_the_log_grows(storage: Storage) -> None:
    await storage.insert_run(_run())
    waiting = asyncio.create_task(storage.wait_for_events("run-1", offset=0, max_wait=5.0))
    await asyncio.sleep(0.02)
    assert not waiting.done()

    await storage.append_events("run-1", [_event(0)])

    assert await asyncio.wait_for(waiting, 2.0) is True
    assert await storage.wait_for_events("run-1", offset=1, max_wait=0.05) is False


async def test_another_store_object_sees_the_writes(shared_store_spec: StoreSpec) -> None:
    writer, reader = shared_store_spec.open(), shared_store_spec.open()
    try:
        await writer.insert_run(_run())
        waiting = asyncio.create_task(reader.wait_for_events("run-1", offset=1, max_wait=5.0))
        await writer.append_events("run-1", [_event(0)])
        await asyncio.sleep(0.1)
        assert not waiting.done()  # event 0 is not what it waits for

        await writer.save_run(_run(status="success"), events=[_event(1)])

        assert await asyncio.wait_for(waiting, 3.0) is True
        assert [e.seq for e in await reader.read_events("run-1")] == [0, 1]
    finally:
        await writer.close()
        await reader.close()


async def test_an_event_that_is_not_json_is_refused_and_nothing_is_written(
    shared_store: Storage,
) -> None:
    await shared_store.insert_run(_run())

    with pytest.raises(StorageError, match=r"cannot log an event of run 'run-1'"):
        await shared_store.save_run(_run(status="success"), events=[{"bad": float("nan")}])

    assert await shared_store.read_events("run-1") == []
    assert (await shared_store.get_run("run-1")).status == "running"  # type: ignore[union-attr]


async def test_a_store_without_an_event_log_drops_events(store_spec: StoreSpec) -> None:
    store = store_spec.open(event_log=False)
    try:
        await store.save_run(_run(), events=[_event(0)])
        await store.append_events("run-1", [_event(1)])

        assert await store.read_events("run-1") == []
        assert await store.count_events("run-1") == 0
    finally:
        await store.close()


@pytest.mark.parametrize(("offset", "limit"), [(-1, None), (0, 0), ("1", None), (0, 1.5)])
async def test_bad_read_arguments_are_refused(
    storage: Storage, offset: object, limit: object
) -> None:
    with pytest.raises((TypeError, ValueError), match=r"offset|limit"):
        await storage.read_events("run-1", offset=offset, limit=limit)  # type: ignore[arg-type]
