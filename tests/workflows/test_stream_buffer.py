"""`ReplayBuffer`, what every stream is built on: each consumer sees every item once, in order,
however the producer's pushes and the consumers' waits interleave, and a consumer that stops
(cancelled while it waits) stops no other; and what a `WorkflowStream` resolves on the way."""

from __future__ import annotations

import asyncio
import traceback
from typing import Any

import pytest

from spanflow import StepContext, Usage, create_step, create_workflow
from spanflow._buffer import ReplayBuffer


async def consume(buffer: ReplayBuffer[int]) -> list[int]:
    return [item async for item in buffer.iterate()]


async def produce_in_bursts(buffer: ReplayBuffer[int], bursts: int, size: int) -> None:
    """Push `bursts` bursts of `size` items, letting the loop run the consumers in between."""
    for burst in range(bursts):
        for offset in range(size):
            buffer.push(burst * size + offset)
        await asyncio.sleep(0)
        await asyncio.sleep(0)  # a woken consumer has run, caught up and waits again
    buffer.close()


async def test_a_consumer_of_pushes_in_bursts_sees_each_item_once_in_order() -> None:
    buffer: ReplayBuffer[int] = ReplayBuffer()
    consumer = asyncio.create_task(consume(buffer))
    await asyncio.sleep(0)  # the consumer waits for the first item
    await produce_in_bursts(buffer, bursts=20, size=7)
    assert await consumer == list(range(140))


async def test_consumers_waiting_at_once_are_all_woken_by_each_push() -> None:
    buffer: ReplayBuffer[int] = ReplayBuffer()
    consumers = [asyncio.create_task(consume(buffer)) for _ in range(3)]
    for item in range(5):
        await asyncio.sleep(0)  # every consumer has caught up and waits
        buffer.push(item)
    buffer.close()
    assert await asyncio.gather(*consumers) == [[0, 1, 2, 3, 4]] * 3


async def test_a_consumer_cancelled_while_it_waits_leaves_the_others_waiting() -> None:
    buffer: ReplayBuffer[int] = ReplayBuffer()
    buffer.push(0)
    stopping = asyncio.create_task(consume(buffer))
    staying = asyncio.create_task(consume(buffer))
    await asyncio.sleep(0)  # both took item 0 and wait
    stopping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopping
    buffer.push(1)
    buffer.close()
    assert await staying == [0, 1]


async def test_a_consumer_that_starts_after_the_close_replays_everything_then_the_error() -> None:
    buffer: ReplayBuffer[int] = ReplayBuffer()
    for item in range(3):
        buffer.push(item)
    buffer.close(RuntimeError("producer crashed"))
    buffer.push(99)  # ignored: the buffer is closed
    seen: list[int] = []

    async def replay() -> None:
        async for item in buffer.iterate():
            seen.append(item)

    with pytest.raises(RuntimeError, match="producer crashed"):
        await replay()
    assert seen == [0, 1, 2]
    assert buffer.items == [0, 1, 2]


async def test_a_run_whose_steps_yield_streams_each_event_once_in_order_to_every_consumer() -> None:
    async def nap(ctx: StepContext[Any]) -> int:
        await asyncio.sleep(0)  # the run yields inside every step: consumers run in between
        return int(ctx.input_data) + 1

    workflow = create_workflow(id="napping")
    for index in range(5):
        workflow.then(create_step(id=f"s{index}", execute=nap))
    workflow.commit()
    run = await workflow.create_run()
    out = run.stream(0)
    early = [event async for event in out]
    late = [event async for event in out.full_stream]
    result = await out.result

    assert result.status == "success"
    assert result.result == 5
    assert early == late == out.events
    assert [event.type for event in early] == [
        "workflow-start",
        *["workflow-step-start", "workflow-step-result"] * 5,
        "workflow-finish",
    ]
    assert len({id(event) for event in early}) == len(early)


async def test_usage_asked_for_while_the_run_executes_resolves_when_it_ends() -> None:
    release = asyncio.Event()

    async def wait_for_release(ctx: StepContext[Any]) -> str:
        await release.wait()
        return "done"

    workflow = create_workflow(id="held").then(create_step(id="hold", execute=wait_for_release))
    out = (await workflow.commit().create_run()).stream(None)
    usage = out.usage
    await asyncio.sleep(0)
    assert not usage.done()
    release.set()
    assert await usage == Usage()
    assert out.usage is usage


async def test_every_consumer_raises_the_error_with_the_traceback_it_ended_with() -> None:
    buffer: ReplayBuffer[int] = ReplayBuffer()
    error = RuntimeError("the run failed")
    buffer.close(error)

    depths = []
    for _ in range(5):
        with pytest.raises(RuntimeError) as raised:
            async for _item in buffer.iterate():
                pass
        depths.append(len(traceback.extract_tb(raised.value.__traceback__)))

    assert len(set(depths)) == 1  # not one consumer's frames more each time
