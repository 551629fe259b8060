"""Queued executions (issue 16), with a queue that holds jobs until the test delivers them:
what the caller's side stores and streams, what a worker's `execute_job` does with a job, a
duplicate delivery, a refused submission, cancels (queued, and of a run another process
executes), lease recovery and the publish span. Real workers on procrastinate: tests/queue."""

from __future__ import annotations

import asyncio
from typing import Any, NamedTuple

import pytest
from pydantic import BaseModel
from spanflow_otel.testing.capture import SpanCapture

from spanflow import (
    Run,
    Spanflow,
    StepContext,
    TracingOptions,
    Workflow,
    WorkflowStream,
    create_step,
    create_workflow,
)
from spanflow.errors import InvalidInputError
from spanflow.storage import Storage
from spanflow.workflows.executor import LocalExecutor, RunJob
from spanflow.workflows.jobs import fail_job, requeue_stalled
from tests.support.queues import HeldQueue
from tests.support.stores import StoreSpec
from tests.workflows.support import collect, event_types, step_events


class Count(BaseModel):
    n: int


def counting_workflow(
    ran: list[str], *, pause: float = 0.0, added: asyncio.Event | None = None
) -> Workflow:
    """``add -> approve -> double``: approve suspends until resumed with ``{"x": n}``."""

    async def add(ctx: StepContext[Count]) -> Count:
        ran.append("add")
        if added is not None:
            added.set()
        await asyncio.sleep(pause)
        return Count(n=ctx.input_data.n + 1)

    async def approve(ctx: StepContext[Count]) -> Any:
        if ctx.resume_data is None:
            return await ctx.suspend({"ask": "ok?"})
        ran.append("approve")
        return Count(n=ctx.input_data.n + ctx.resume_data["x"])

    async def double(ctx: StepContext[Count]) -> Count:
        ran.append("double")
        return Count(n=ctx.input_data.n * 2)

    return (
        create_workflow(id="counting", input_schema=Count, output_schema=Count)
        .then(create_step(id="add", input_schema=Count, output_schema=Count, execute=add))
        .then(create_step(id="approve", input_schema=Count, output_schema=Count, execute=approve))
        .then(create_step(id="double", input_schema=Count, output_schema=Count, execute=double))
        .commit()
    )


def queued(storage: Storage, ran: list[str], **kwargs: Any) -> tuple[Workflow, HeldQueue]:
    queue = HeldQueue(**kwargs)
    workflow = counting_workflow(ran)
    Spanflow(workflows=[workflow], storage=storage, executor=queue)
    queue.workflows[workflow.id] = workflow
    return workflow, queue


class Started(NamedTuple):
    """A counting run started through a held queue, its job waiting to be delivered."""

    workflow: Workflow
    queue: HeldQueue
    run: Run
    out: WorkflowStream


async def started(storage: Storage, ran: list[str] | None = None, **options: Any) -> Started:
    """Start a counting run with ``{"n": 1}`` on a held queue and wait for its job."""
    workflow, queue = queued(storage, [] if ran is None else ran)
    run = await workflow.create_run()
    out = run.stream({"n": 1}, **options)
    await wait_for_job(queue)
    return Started(workflow, queue, run, out)


async def wait_for_job(queue: HeldQueue, count: int = 1) -> None:
    for _ in range(200):
        if len(queue.jobs) >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"no job {count} was queued")


async def test_a_started_run_is_stored_queued_with_its_input_until_a_worker_executes_it(
    stores: tuple[Storage, Storage],
) -> None:
    storage, _ = stores
    ran: list[str] = []
    _workflow, queue, run, out = await started(storage, ran)

    stored = await storage.get_run(run.run_id)
    assert stored is not None
    assert stored.status == "queued"
    assert stored.snapshot["queued"]["op"] == "start"
    assert stored.snapshot["queued"]["input"] == {"n": 1}
    assert queue.jobs[0].op == "start"
    assert queue.jobs[0].run_id == run.run_id
    assert ran == []  # nothing executed in the caller's process

    await queue.deliver()
    events = await collect(out)
    result = await out.result
    assert result.status == "suspended"
    assert result.suspended == [["approve"]]
    assert event_types(events)[0] == "workflow-start"
    assert step_events(events) == [
        ("workflow-step-start", "add"),
        ("workflow-step-result", "add"),
        ("workflow-step-start", "approve"),
        ("workflow-step-suspended", "approve"),
    ]
    assert run.status == "suspended"


async def test_a_resume_is_queued_and_its_stream_shows_only_the_new_execution(
    stores: tuple[Storage, Storage],
) -> None:
    storage, _ = stores
    ran: list[str] = []
    workflow, queue = queued(storage, ran)
    run = await workflow.create_run()
    started = asyncio.ensure_future(run.start({"n": 1}))
    await wait_for_job(queue)
    await queue.deliver()
    assert (await started).status == "suspended"

    out = run.resume_stream({"x": 10})
    await wait_for_job(queue, 2)
    assert queue.jobs[1].op == "resume"
    await queue.deliver()
    events = await collect(out)
    result = await out.result
    assert result.status == "success"
    assert result.result == Count(n=24)
    assert step_events(events) == [
        ("workflow-step-start", "approve"),
        ("workflow-step-result", "approve"),
        ("workflow-step-start", "double"),
        ("workflow-step-result", "double"),
    ]
    assert ran == ["add", "approve", "double"]


async def test_a_second_delivery_of_the_same_job_does_nothing(
    stores: tuple[Storage, Storage],
) -> None:
    storage, _ = stores
    ran: list[str] = []
    _workflow, queue, _run, out = await started(storage, ran)
    first, second = await asyncio.gather(queue.deliver(), queue.deliver())
    assert sorted([first is None, second is None]) == [False, True]
    await out.result
    assert ran == ["add"]  # the step ran once


async def test_a_refused_submission_leaves_the_run_pending_to_be_started_again(
    stores: tuple[Storage, Storage],
) -> None:
    storage, _ = stores
    workflow, queue = queued(storage, [], refuse=True)
    run = await workflow.create_run()
    with pytest.raises(ConnectionError, match="the queue is down"):
        await run.start({"n": 1})
    stored = await storage.get_run(run.run_id)
    assert stored is not None
    assert stored.status == "pending"
    assert "queued" not in stored.snapshot

    queue.refuse = False
    out = run.stream({"n": 1})
    await wait_for_job(queue)
    await queue.deliver()
    assert (await out.result).status == "suspended"


async def test_a_queued_run_canceled_before_a_worker_takes_it_stays_canceled(
    stores: tuple[Storage, Storage],
) -> None:
    storage, _ = stores
    ran: list[str] = []
    workflow, queue, run, out = await started(storage, ran)
    await (await workflow.create_run(run_id=run.run_id)).cancel()

    assert await queue.deliver() is None
    assert (await out.result).status == "canceled"
    assert ran == []


async def test_a_job_no_worker_can_execute_fails_its_run_with_a_clear_error(
    stores: tuple[Storage, Storage],
) -> None:
    storage, _ = stores
    _workflow, queue, run, out = await started(storage)

    assert await fail_job(storage, run.run_id, "no workflow 'counting' is registered here")
    result = await out.result
    assert result.status == "failed"
    assert result.error is not None
    assert "no workflow 'counting' is registered here" in str(result.error)
    assert await queue.deliver() is None  # the run is no longer queued
    assert not await fail_job(storage, run.run_id, "again")  # only a queued run is failed


async def test_a_job_whose_stored_input_no_longer_fits_fails_the_run(
    stores: tuple[Storage, Storage],
) -> None:
    storage, _ = stores
    _workflow, queue, run, out = await started(storage)
    stored = await storage.get_run(run.run_id)
    assert stored is not None
    stored.snapshot["queued"]["input"] = {"n": "not a number"}
    await storage.save_run(stored)

    assert await queue.deliver() is None
    result = await out.result
    assert result.status == "failed"
    assert "input of workflow 'counting'" in str(result.error)


async def test_a_cancel_from_another_process_stops_the_run_at_its_next_entry(
    shared_store_spec: StoreSpec,
) -> None:
    storage, other = shared_store_spec.open(), shared_store_spec.open()
    ran: list[str] = []
    added = asyncio.Event()
    queue = HeldQueue()
    slow = counting_workflow(ran, pause=0.3, added=added)
    Spanflow(workflows=[slow], storage=storage, executor=queue)
    queue.workflows[slow.id] = slow
    run = await slow.create_run()
    out = run.stream({"n": 1})
    await wait_for_job(queue)
    worker = asyncio.ensure_future(queue.deliver())
    await added.wait()

    # Another process's view of the run: it is executed under a live lease elsewhere.
    elsewhere = counting_workflow([])
    Spanflow(workflows=[elsewhere], storage=other)
    await (await elsewhere.create_run(run_id=run.run_id)).cancel()  # returns once stopped
    seen = await other.get_run(run.run_id)
    assert seen is not None
    assert seen.status == "canceled"

    result = await worker
    assert result is not None
    assert result.status == "canceled"
    assert (await out.result).status == "canceled"
    assert ran == ["add"]  # approve never ran
    stored = await storage.get_run(run.run_id)
    assert stored is not None
    assert stored.status == "canceled"
    assert not stored.cancel_requested
    await storage.close()
    await other.close()


async def test_a_stalled_run_is_requeued_as_a_restart_by_exactly_one_recoverer(
    stores: tuple[Storage, Storage],
) -> None:
    storage, _ = stores
    ran: list[str] = []
    workflow, queue, run, out = await started(storage, ran)
    await queue.deliver()
    await out.result
    resumed = run.resume_stream({"x": 10})
    await wait_for_job(queue, 2)
    # The worker that took the resume died at once: the run is left running, lease lapsed.
    stored = await storage.get_run(run.run_id)
    assert stored is not None
    await storage.claim_run(
        run.run_id, from_status=["queued"], to_status="running", owner="dead:1:0", lease=0
    )
    stalled = await storage.stalled_runs(workflow_ids=[workflow.id])
    assert [s.run_id for s in stalled] == [run.run_id]

    wins = await asyncio.gather(*(requeue_stalled(workflow, s) for s in stalled * 2))
    assert sorted(wins) == [False, True]
    # The dead worker stored no checkpoint of the resume: the resume is done again, data and all.
    assert queue.jobs[-1].op == "resume"
    result = await queue.deliver()
    assert result is not None
    assert result.status == "success"
    assert result.result == Count(n=24)
    assert (await resumed.result).status == "success"
    assert ran == ["add", "approve", "double"]


async def test_the_publish_span_is_a_producer_span_and_the_run_span_its_child(
    stores: tuple[Storage, Storage], span_capture: SpanCapture
) -> None:
    storage, _ = stores
    workflow, queue = queued(storage, [])
    tracer = span_capture.tracer()
    run = await workflow.create_run()
    with tracer.start_as_current_span("caller"):
        out = run.stream({"n": 1})
        await wait_for_job(queue)
    await queue.deliver()
    await out.result

    spans = {span.name: span for span in span_capture.spans}
    caller, publish = spans["caller"], spans["publish spanflow.runs"]
    invoke = spans["invoke_workflow counting"]
    assert publish.kind.name == "PRODUCER"
    assert publish.parent is not None
    assert publish.parent.span_id == caller.context.span_id
    assert invoke.parent is not None
    assert invoke.parent.span_id == publish.context.span_id
    assert invoke.context.trace_id == caller.context.trace_id
    attributes = dict(publish.attributes or {})
    assert attributes["messaging.system"] == "held"
    assert attributes["messaging.destination.name"] == "spanflow.runs"
    assert attributes["spanflow.run.id"] == run.run_id
    assert attributes["spanflow.job.op"] == "start"


async def test_a_local_executor_executes_a_queued_job_in_this_process(
    stores: tuple[Storage, Storage],
) -> None:
    storage, _ = stores
    ran: list[str] = []
    workflow, queue, run, out = await started(storage, ran)

    local = LocalExecutor()
    local.serve(workflow)
    await local.submit(queue.jobs[0])
    assert (await out.result).status == "suspended"
    assert ran == ["add"]
    with pytest.raises(InvalidInputError, match="executes no workflow 'other'"):
        await local.submit(RunJob("start", "other", run.run_id))


@pytest.mark.parametrize(
    ("wire", "problem"),
    [
        ("not a job", "must be a JSON object"),
        ({"op": "fly", "workflow_id": "w", "run_id": "r"}, "op must be one of"),
        ({"op": "start", "workflow_id": "", "run_id": "r"}, "workflow_id must be a non-empty"),
        ({"op": "start", "workflow_id": "w"}, "run_id must be a non-empty"),
        ({"op": "start", "workflow_id": "w", "run_id": "r", "carrier": [1]}, "carrier must map"),
    ],
)
def test_a_job_that_does_not_decode_says_which_field_is_wrong(wire: Any, problem: str) -> None:
    with pytest.raises(InvalidInputError, match=problem):
        RunJob.from_dict(wire)


def test_a_job_survives_its_wire_form() -> None:
    job = RunJob("resume", "w", "r", {"traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01"})
    assert RunJob.from_dict(job.to_dict()) == job


async def test_a_queued_resume_continues_the_runs_trace_and_links_to_the_publish_span(
    stores: tuple[Storage, Storage], span_capture: SpanCapture
) -> None:
    storage, _ = stores
    _workflow, queue, run, out = await started(
        storage, tracing_options=TracingOptions(tags=["vip"])
    )
    await queue.deliver()
    await out.result
    first = span_capture.spans[-1]  # the first execution's run span ends last
    assert first.name == "invoke_workflow counting"

    with span_capture.tracer().start_as_current_span("approver"):
        resumed = run.resume_stream({"x": 1})
        await wait_for_job(queue, 2)
    await queue.deliver()
    assert (await resumed.result).status == "success"

    runs = [span for span in span_capture.spans if span.name == "invoke_workflow counting"]
    second = runs[-1]
    publish = [span for span in span_capture.spans if span.name == "publish spanflow.runs"][-1]
    assert second.parent is not None
    assert second.parent.span_id == first.context.span_id  # the run's own trace goes on
    links = {link.attributes["spanflow.link"]: link.context for link in second.links}  # type: ignore[index]
    assert links["request"].span_id == publish.context.span_id
    assert dict(second.attributes or {})["spanflow.tag.vip"] is True  # carried with the run


async def test_explicit_tracing_options_parent_the_publish_span_and_travel_with_the_run(
    stores: tuple[Storage, Storage], span_capture: SpanCapture
) -> None:
    storage, _ = stores
    workflow, queue = queued(storage, [])
    trace_id, parent_id = "a" * 32, "b" * 16
    options = TracingOptions(
        trace_id=trace_id, parent_span_id=parent_id, tags=["batch"], metadata={"order": "o-1"}
    )
    run = await workflow.create_run()
    out = run.stream({"n": 1}, tracing_options=options)
    await wait_for_job(queue)
    stored = await storage.get_run(run.run_id)
    assert stored is not None
    assert stored.snapshot["queued"]["tracing"] == {"tags": ["batch"], "metadata": {"order": "o-1"}}
    await queue.deliver()
    await out.result

    spans = {span.name: span for span in span_capture.spans}
    publish, invoke = spans["publish spanflow.runs"], spans["invoke_workflow counting"]
    assert f"{publish.context.trace_id:032x}" == trace_id
    assert publish.parent is not None
    assert f"{publish.parent.span_id:016x}" == parent_id
    assert invoke.parent is not None
    assert invoke.parent.span_id == publish.context.span_id
    for span in (publish, invoke):
        attributes = dict(span.attributes or {})
        assert attributes["spanflow.metadata.order"] == "o-1"
        assert attributes["spanflow.tag.batch"] is True


async def test_a_queued_stream_kept_open_through_a_suspension_follows_the_run_to_its_end(
    stores: tuple[Storage, Storage],
) -> None:
    storage, _ = stores
    workflow, queue, run, out = await started(storage, close_on_suspend=False)
    await queue.deliver()
    approver = await workflow.create_run(run_id=run.run_id)
    resumed = approver.resume_stream({"x": 2})
    await wait_for_job(queue, 2)
    await queue.deliver()
    assert (await resumed.result).status == "success"

    result = await out.result
    assert result.status == "success"
    assert result.result == Count(n=8)
    types = event_types(await collect(out))
    assert types.count("workflow-start") == 2  # both executions, in one stream
    assert types[-1] == "workflow-finish"


async def test_a_cancel_asked_while_the_run_suspends_elsewhere_still_cancels_it(
    shared_store_spec: StoreSpec,
) -> None:
    storage, other = shared_store_spec.open(), shared_store_spec.open()
    asking = asyncio.Event()

    async def ask(ctx: StepContext[Count]) -> Any:
        asking.set()
        await asyncio.sleep(0.3)  # the cancel is asked now; no entry boundary comes before
        return await ctx.suspend({"ask": "ok?"})

    def build() -> Workflow:
        return (
            create_workflow(id="asking", input_schema=Count)
            .then(create_step(id="ask", input_schema=Count, execute=ask))
            .commit()
        )

    queue = HeldQueue()
    workflow = build()
    Spanflow(workflows=[workflow], storage=storage, executor=queue)
    queue.workflows[workflow.id] = workflow
    run = await workflow.create_run()
    out = run.stream({"n": 1})
    await wait_for_job(queue)
    worker = asyncio.ensure_future(queue.deliver())
    await asking.wait()

    elsewhere = build()
    Spanflow(workflows=[elsewhere], storage=other)
    await (await elsewhere.create_run(run_id=run.run_id)).cancel()

    result = await worker
    assert result is not None
    assert result.status == "suspended"  # its executor never saw the mark
    stored = await other.get_run(run.run_id)
    assert stored is not None
    assert stored.status == "canceled"  # but the run did not stay suspended
    assert (await out.result).status in ("suspended", "canceled")
    await storage.close()
    await other.close()


async def test_a_resume_whose_snapshot_no_longer_fits_the_workflow_fails_the_run_once(
    stores: tuple[Storage, Storage],
) -> None:
    storage, other = stores
    workflow, queue = queued(storage, [])
    run = await workflow.create_run()
    started = asyncio.ensure_future(run.start({"n": 1}))
    await wait_for_job(queue)
    await queue.deliver()
    assert (await started).status == "suspended"  # at approve, the second of three entries

    out = run.resume_stream({"x": 1})
    await wait_for_job(queue, 2)
    # What the worker finds no longer fits the workflow (as after a deploy that removed steps).
    stored = await other.get_run(run.run_id)
    assert stored is not None
    stored.snapshot["frame"]["position"] = 7
    await other.save_run(stored)

    assert await queue.deliver() is None  # not raised: a job for the queue to drop
    result = await out.result
    assert result.status == "failed"
    assert "entries" in str(result.error)
    stored = await storage.get_run(run.run_id)
    assert stored is not None
    assert stored.status == "failed"
    assert stored.owner is None
    assert await storage.stalled_runs(workflow_ids=["counting"]) == []  # nothing to restart


async def test_a_job_whose_stored_tracing_options_are_unknown_fails_the_run(
    stores: tuple[Storage, Storage],
) -> None:
    storage, _ = stores
    _workflow, queue, run, out = await started(storage, tracing_options=TracingOptions(tags=["a"]))
    stored = await storage.get_run(run.run_id)
    assert stored is not None
    stored.snapshot["queued"]["tracing"] = {"sample_ratio": 0.5}  # from a newer spanflow
    await storage.save_run(stored)

    assert await queue.deliver() is None
    result = await out.result
    assert result.status == "failed"
    assert "sample_ratio" in str(result.error)
