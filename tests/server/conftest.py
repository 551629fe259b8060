"""Fixtures of the server tests: a registry on a fresh store, the app, an httpx client on it.

`store` runs a test once on the memory store and once on SQLite (``store_spec``'s PostgreSQL
run only where a test asks for it, as those need the throwaway cluster). `client` talks to the
ASGI app in process (httpx's ASGI transport: whole responses, fine for statuses and bytes);
`live_server` runs the app on uvicorn on a free loopback port, for what needs a real socket
(reading a stream while the run is held, disconnecting).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from spanflow import Spanflow
from spanflow.server import create_app
from spanflow.storage import MemoryStorage, SqliteStorage
from spanflow.storage.base import Storage
from tests.server.apps import Gates, build_registry
from tests.support.stores import FakeClock


@pytest.fixture
def gates() -> Gates:
    return Gates()


@pytest.fixture(params=["memory", "sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Storage]:
    """A fresh store: in memory, then SQLite."""
    storage: Storage = (
        MemoryStorage() if request.param == "memory" else SqliteStorage(tmp_path / "runs.db")
    )
    yield storage
    await storage.close()


@pytest.fixture
def registry(store: Storage, gates: Gates) -> Spanflow:
    return build_registry(store, gates)


@pytest.fixture
def app(registry: Spanflow) -> Any:
    return create_app(registry)


def asgi_client(app: Any, **headers: str) -> httpx.AsyncClient:
    """An httpx client calling `app` in process."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test", headers=headers
    )


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(app) as client:
        yield client


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@dataclass
class LiveServer:
    """The app on uvicorn, on this test's event loop."""

    url: str
    server: uvicorn.Server


async def serve(app: Any) -> tuple[LiveServer, asyncio.Task[None]]:
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=None))
    while not server.started:  # noqa: ASYNC110 - uvicorn has no event for it
        await asyncio.sleep(0.005)
    port = server.servers[0].sockets[0].getsockname()[1]
    return LiveServer(f"http://127.0.0.1:{port}", server), task


@pytest.fixture
async def live_server(app: Any) -> AsyncIterator[LiveServer]:
    live, task = await serve(app)
    yield live
    live.server.should_exit = True
    await task
