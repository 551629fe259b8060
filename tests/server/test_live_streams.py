"""Streams over a real socket (uvicorn on a free loopback port): events arrive as they happen,
a client that disconnects does not cancel the run, and ``observe`` picks the run up again, in
this server or in another one sharing the store.

The ``gated`` workflow holds its run at a gate the test opens, so "while the run is held" is a
fact the test controls, not a timing.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx

from spanflow import Spanflow
from spanflow.server import create_app
from tests.server.apps import Gates, build_registry
from tests.server.conftest import LiveServer, serve
from tests.support.stores import StoreSpec


async def read_records(chunks: AsyncIterator[bytes], count: int, buffer: bytearray) -> list[Any]:
    """Read from the body until `count` whole records arrived (leftover bytes stay in
    `buffer`)."""
    while buffer.count(b"\x1e") < count:
        buffer.extend(await anext(chunks))
    parts = bytes(buffer).split(b"\x1e")
    del buffer[: sum(len(p) + 1 for p in parts[:count])]
    return [json.loads(part) for part in parts[:count]]


def types(events: list[Any]) -> list[str]:
    return [f"{e['type']}:{e['payload'].get('id', '')}".rstrip(":") for e in events]


HELD = [
    "workflow-start",
    "workflow-step-start:begin",
    "workflow-step-result:begin",
    "workflow-step-start:wait",
]


async def test_events_arrive_while_the_run_is_still_going(
    live_server: LiveServer, gates: Gates
) -> None:
    async with httpx.AsyncClient(base_url=live_server.url) as client:
        await client.post("/api/workflows/gated/create-run?runId=g-1")
        async with client.stream(
            "POST", "/api/workflows/gated/stream?runId=g-1", json={"inputData": {"gate": "g-1"}}
        ) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/plain")
            chunks = response.aiter_raw()
            buffer = bytearray()
            # The run is held at the gate: these four were written before it could end.
            assert types(await read_records(chunks, 4, buffer)) == HELD
            gates.open("g-1")
            rest = bytearray(buffer)
            async for chunk in chunks:
                rest.extend(chunk)
    events = [json.loads(part) for part in bytes(rest).split(b"\x1e")[:-1]]
    assert types(events) == [
        "workflow-step-result:wait",
        "workflow-step-start:end",
        "workflow-step-result:end",
        "workflow-finish",
    ]
    assert bytes(rest).endswith(b"\x1e")


async def test_a_client_that_disconnects_leaves_the_run_running_and_observable(
    live_server: LiveServer, gates: Gates
) -> None:
    async with httpx.AsyncClient(base_url=live_server.url) as client:
        await client.post("/api/workflows/gated/create-run?runId=g-2")
        async with client.stream(
            "POST", "/api/workflows/gated/stream?runId=g-2", json={"inputData": {"gate": "g-2"}}
        ) as response:
            assert types(await read_records(response.aiter_raw(), 4, bytearray())) == HELD
        # The connection is closed; the run is still at the gate.
        state = (await client.get("/api/workflows/gated/runs/g-2")).json()
        assert state["status"] == "running"
        gates.open("g-2")
        observed = await client.post("/api/workflows/gated/observe?runId=g-2&offset=3")
        assert observed.status_code == 200
        events = [json.loads(p) for p in observed.content.split(b"\x1e")[:-1]]
    assert types(events) == [
        "workflow-step-start:wait",
        "workflow-step-result:wait",
        "workflow-step-start:end",
        "workflow-step-result:end",
        "workflow-finish",
    ]
    assert events[-1]["payload"]["workflowStatus"] == "success"


async def test_another_server_sharing_the_store_observes_a_run(
    shared_store_spec: StoreSpec, gates: Gates
) -> None:
    """On SQLite and PostgreSQL: two store objects on the same data, one per server."""
    first_store = shared_store_spec.open()
    second_store = shared_store_spec.open()
    first, first_task = await serve(create_app(build_registry(first_store, gates)))
    second, second_task = await serve(create_app(build_registry(second_store, Gates())))
    try:
        async with httpx.AsyncClient() as client:
            started = await client.post(
                f"{first.url}/api/workflows/gated/start?runId=g-3",
                json={"inputData": {"gate": "g-3"}},
            )
            assert started.status_code == 404  # start needs a created run
            await client.post(f"{first.url}/api/workflows/gated/create-run?runId=g-3")
            await client.post(
                f"{first.url}/api/workflows/gated/start?runId=g-3",
                json={"inputData": {"gate": "g-3"}},
            )
            await gates.arrived("g-3").wait()
            async with client.stream(
                "POST", f"{second.url}/api/workflows/gated/observe?runId=g-3&offset=1"
            ) as observed:
                chunks = observed.aiter_raw()
                buffer = bytearray()
                assert types(await read_records(chunks, 3, buffer)) == HELD[1:]
                gates.open("g-3")
                async for chunk in chunks:
                    buffer.extend(chunk)
        rest = [json.loads(p) for p in bytes(buffer).split(b"\x1e")[:-1]]
        assert types(rest)[-1] == "workflow-finish"
        assert rest[-1]["payload"]["workflowStatus"] == "success"
    finally:
        for live, task in ((first, first_task), (second, second_task)):
            live.server.should_exit = True
            await task
        await first_store.close()
        await second_store.close()


async def test_observing_an_unknown_run_is_a_404(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/workflows/gated/observe?runId=nope")
    assert response.status_code == 404
    bad = await client.post("/api/workflows/gated/observe?runId=nope&offset=-1")
    assert bad.status_code == 400


async def test_a_stream_idle_for_too_long_ends_and_the_run_goes_on(
    registry: Spanflow, gates: Gates
) -> None:
    live, task = await serve(create_app(registry, idle_stream_timeout=0.3))
    try:
        async with httpx.AsyncClient(base_url=live.url) as client:
            await client.post("/api/workflows/gated/create-run?runId=g-idle")
            async with client.stream(
                "POST",
                "/api/workflows/gated/stream?runId=g-idle",
                json={"inputData": {"gate": "g-idle"}},
            ) as response:
                body = await asyncio.wait_for(response.aread(), 5)  # ends, though the run waits
            state = (await client.get("/api/workflows/gated/runs/g-idle")).json()
            gates.open("g-idle")
            observed = await client.post("/api/workflows/gated/observe?runId=g-idle&offset=4")
    finally:
        live.server.should_exit = True
        await task

    assert types([json.loads(p) for p in body.split(b"\x1e")[:-1]]) == HELD
    assert state["status"] == "running"
    rest = [json.loads(p) for p in observed.content.split(b"\x1e")[:-1]]
    assert rest[-1]["payload"]["workflowStatus"] == "success"
