"""The server with a registry whose executor is queued: the fire-and-forget routes answer once
the job is queued (a worker may take it much later), every run response names the job's
publish span in ``traceparent``, and the stream routes stream what the worker does."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from pydantic import BaseModel
from spanflow_otel.testing import SpanCapture

from spanflow import Spanflow, StepContext, create_step, create_workflow
from spanflow.server import create_app
from spanflow.storage import MemoryStorage
from tests.server.conftest import asgi_client
from tests.support.queues import HeldQueue


class Count(BaseModel):
    n: int


def queued_app(storage: MemoryStorage | None = None) -> tuple[Any, HeldQueue]:
    async def ask(ctx: StepContext[Count]) -> Any:
        if ctx.resume_data is None:
            return await ctx.suspend({"ask": "ok?"})
        return Count(n=ctx.input_data.n + 1)

    workflow = (
        create_workflow(id="asking", input_schema=Count, output_schema=Count)
        .then(create_step(id="ask", input_schema=Count, output_schema=Count, execute=ask))
        .commit()
    )
    queue = HeldQueue()
    queue.workflows[workflow.id] = workflow
    return create_app(
        Spanflow(workflows=[workflow], storage=storage or MemoryStorage(), executor=queue)
    ), queue


def publish_span(capture: SpanCapture) -> str:
    (span,) = [s for s in capture.spans if s.name == "publish spanflow.runs"][-1:]
    assert span.context is not None
    return f"{span.context.trace_id:032x}-{span.context.span_id:016x}"


async def test_start_answers_once_the_job_is_queued_naming_its_publish_span(
    span_capture: SpanCapture,
) -> None:
    app, queue = queued_app()
    async with asgi_client(app) as client:
        await client.post("/api/workflows/asking/create-run?runId=r-1")
        response = await asyncio.wait_for(
            client.post("/api/workflows/asking/start?runId=r-1", json={"inputData": {"n": 1}}),
            timeout=5,  # no worker took it: the answer must not wait for one
        )
        assert response.status_code == 200
        assert response.json() == {"message": "Workflow run started"}
        assert response.headers["traceparent"] == f"00-{publish_span(span_capture)}-01"
        run = (await client.get("/api/workflows/asking/runs/r-1")).json()
        assert run["status"] == "queued"

        await queue.deliver()
        resumed = await client.post(
            "/api/workflows/asking/resume?runId=r-1", json={"step": "ask", "resumeData": {}}
        )
        assert resumed.status_code == 200
        assert resumed.headers["traceparent"] == f"00-{publish_span(span_capture)}-01"
        await queue.deliver()
        run = (await client.get("/api/workflows/asking/runs/r-1")).json()
        assert run["status"] == "success"


async def test_a_queued_stream_streams_what_the_worker_does() -> None:
    app, queue = queued_app()
    async with asgi_client(app) as client:
        await client.post("/api/workflows/asking/create-run?runId=r-2")

        async def deliver_when_queued() -> None:
            await queue.wait_for(1)
            await queue.deliver()

        delivering = asyncio.create_task(deliver_when_queued())
        response = await client.post(
            "/api/workflows/asking/stream?runId=r-2", json={"inputData": {"n": 1}}
        )
        await delivering
    assert response.status_code == 200
    records = [r for r in response.content.split(b"\x1e") if r]
    types = [httpx.Response(200, content=r).json()["type"] for r in records]
    assert types[0] == "workflow-start"
    assert "workflow-step-suspended" in types
    assert types[-1] == "workflow-finish"


async def test_a_run_whose_worker_died_is_restarted_though_this_server_follows_it() -> None:
    storage = MemoryStorage()
    app, queue = queued_app(storage)
    async with asgi_client(app) as client:
        await client.post("/api/workflows/asking/create-run?runId=r-3")
        await client.post("/api/workflows/asking/start?runId=r-3", json={"inputData": {"n": 1}})
        # A worker took the job and died mid-run: the run is left running, its lease lapsed.
        # This server still follows the run's log, which is not executing it.
        await storage.claim_run("r-3", from_status=["queued"], to_status="running", owner="gone")

        restarted = await client.post("/api/workflows/asking/restart?runId=r-3", json={})

        assert restarted.status_code == 200, restarted.text
        assert restarted.json() == {"message": "Workflow run restarted"}
        # It died before its first checkpoint, so the start is done again, input and all.
        assert [job.op for job in queue.jobs] == ["start", "start"]
        await queue.deliver()
        run = (await client.get("/api/workflows/asking/runs/r-3")).json()
        assert run["status"] == "suspended"


async def test_a_run_a_live_worker_executes_is_not_restarted() -> None:
    storage = MemoryStorage()
    app, queue = queued_app(storage)
    async with asgi_client(app) as client:
        await client.post("/api/workflows/asking/create-run?runId=r-4")
        await client.post("/api/workflows/asking/start?runId=r-4", json={"inputData": {"n": 1}})
        await storage.claim_run(
            "r-4", from_status=["queued"], to_status="running", owner="alive", lease=60.0
        )

        refused = await client.post("/api/workflows/asking/restart?runId=r-4", json={})

        assert refused.status_code == 409
        assert "lease" in refused.json()["error"]
        assert [job.op for job in queue.jobs] == ["start"]
