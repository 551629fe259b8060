"""``.sleep`` / ``.sleep_until``: pause the run (status ``waiting``); the input passes through."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from spanflow import ConditionContext, StepWaitingPayload, create_workflow

from .support import collect, event_types, fn_step


async def test_sleep_pauses_and_passes_the_input_through() -> None:
    workflow = (
        create_workflow(id="nap")
        .then(fn_step("before", lambda v: v + 1))
        .sleep(0.03)
        .then(fn_step("after", lambda v: v * 10))
        .commit()
    )
    run = await workflow.create_run()

    started = time.monotonic()
    result = await run.start(1)

    assert time.monotonic() - started >= 0.025
    assert result.result == 20
    assert result.steps["sleep_1"].status == "success"
    assert result.steps["sleep_1"].output == 2


async def test_the_run_is_waiting_while_it_sleeps() -> None:
    workflow = create_workflow(id="observe-wait").sleep(0.03, id="nap").commit()
    run = await workflow.create_run()
    out = run.stream("carried")

    seen = []
    async for event in out:
        if event.type == "workflow-step-waiting":
            stored = await workflow.storage.get_run(run.run_id)
            assert stored is not None
            seen.append((out.status, run.status, stored.status, stored.snapshot["status"]))
    result = await out.result

    assert seen == [("waiting", "waiting", "waiting", "waiting")]
    assert out.status == "success"
    assert result.result == "carried"


async def test_a_sleep_emits_a_waiting_event_then_a_result() -> None:
    workflow = create_workflow(id="nap-events").sleep(0.01, id="nap").commit()
    run = await workflow.create_run()

    events = await collect(run.stream({"x": 1}))

    assert event_types(events) == [
        "workflow-start",
        "workflow-step-waiting",
        "workflow-step-result",
        "workflow-finish",
    ]
    waiting = events[1]
    assert isinstance(waiting.payload, StepWaitingPayload)
    wire = waiting.to_dict()["payload"]
    assert set(wire) == {"id", "stepName", "payload", "startedAt", "status"}
    assert (wire["id"], wire["stepName"], wire["status"], wire["payload"]) == (
        "nap",
        "nap",
        "waiting",
        {"x": 1},
    )
    assert events[2].to_dict()["payload"]["output"] == {"x": 1}


async def test_a_callable_computes_the_duration_from_the_input() -> None:
    seen: list[int] = []

    def duration(ctx: ConditionContext) -> float:
        seen.append(ctx.input_data)
        return 0.001 * float(ctx.input_data)

    workflow = create_workflow(id="computed-nap").sleep(duration).commit()

    result = await (await workflow.create_run()).start(5)

    assert seen == [5]
    assert result.result == 5


async def test_sleep_until_waits_for_a_moment_in_the_future() -> None:
    when = datetime.now(UTC) + timedelta(milliseconds=30)
    workflow = create_workflow(id="until").sleep_until(when).commit()

    result = await (await workflow.create_run()).start("v")

    assert datetime.now(UTC) >= when - timedelta(milliseconds=5)  # timer granularity
    assert result.status == "success"
    assert result.result == "v"


async def test_sleep_until_a_naive_datetime_means_utc_and_the_past_means_no_wait() -> None:
    past = datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=1)
    workflow = create_workflow(id="until-past").sleep_until(past).commit()

    started = time.monotonic()
    result = await (await workflow.create_run()).start(1)

    assert result.status == "success"
    assert time.monotonic() - started < 1


async def test_a_sleep_callable_returning_nonsense_fails_the_run() -> None:
    workflow = create_workflow(id="bad-nap").sleep(lambda ctx: -5).commit()

    result = await (await workflow.create_run()).start(1)

    assert result.status == "failed"
    assert "expected seconds >= 0, got -5" in str(result.error)


async def test_canceling_a_sleeping_run_stops_it() -> None:
    workflow = (
        create_workflow(id="cancel-nap")
        .sleep(30, id="long-nap")
        .then(fn_step("after", lambda v: v))
        .commit()
    )
    run = await workflow.create_run()
    out = run.stream(None)

    async for event in out:
        if event.type == "workflow-step-waiting":
            await run.cancel()
    result = await out.result

    assert result.status == "canceled"
    assert result.steps["long-nap"].status == "canceled"
    assert "after" not in result.steps
    assert event_types(out.events)[-2:] == ["workflow-canceled", "workflow-finish"]
