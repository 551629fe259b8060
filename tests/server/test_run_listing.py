"""``GET /workflows/:id/runs``: newest first, paged, filtered by status, resource and dates."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from spanflow.storage import MemoryStorage, SqliteStorage
from spanflow.storage.base import Storage
from tests.support.stores import FakeClock

ORDER = {"order": "o-1", "amount": 5}
START = 1_700_000_000.0  # 2023-11-14T22:13:20Z


@pytest.fixture(params=["memory", "sqlite"])
async def store(
    request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[Storage]:
    """The store on the test's fake clock (so creation times are known)."""
    storage: Storage = (
        MemoryStorage(clock=clock)
        if request.param == "memory"
        else SqliteStorage(tmp_path / "runs.db", clock=clock)
    )
    yield storage
    await storage.close()


async def make_runs(client: httpx.AsyncClient, clock: FakeClock) -> None:
    """r-0 .. r-4, one a minute from START; r-1 and r-3 suspended, the others pending."""
    clock.now = START
    for index in range(5):
        resource = "alice" if index % 2 else "bob"
        await client.post(
            f"/api/workflows/approval/create-run?runId=r-{index}", json={"resourceId": resource}
        )
        if index % 2:
            await client.post(
                f"/api/workflows/approval/start-async?runId=r-{index}", json={"inputData": ORDER}
            )
        clock.advance(60)


def ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [run["runId"] for run in response.json()["runs"]]


async def test_runs_are_listed_newest_first_with_the_total(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    await make_runs(client, clock)
    response = await client.get("/api/workflows/approval/runs")
    assert ids(response) == ["r-4", "r-3", "r-2", "r-1", "r-0"]
    body = response.json()
    assert body["total"] == 5
    first = body["runs"][0]
    assert set(first) == {
        "workflowName",
        "runId",
        "snapshot",
        "createdAt",
        "updatedAt",
        "resourceId",
    }
    assert first["workflowName"] == "approval"
    assert first["resourceId"] == "bob"
    assert first["createdAt"] == "2023-11-14T22:17:20.000Z"
    assert first["snapshot"]["status"] == "pending"


async def test_pages_by_page_and_per_page_or_by_limit_and_offset(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    await make_runs(client, clock)
    page = await client.get("/api/workflows/approval/runs?page=1&perPage=2")
    assert ids(page) == ["r-2", "r-1"]
    assert page.json()["total"] == 5
    assert ids(await client.get("/api/workflows/approval/runs?limit=2&offset=3")) == ["r-1", "r-0"]
    assert len(ids(await client.get("/api/workflows/approval/runs?limit=false"))) == 5


async def test_filters_by_status_and_resource(client: httpx.AsyncClient, clock: FakeClock) -> None:
    await make_runs(client, clock)
    suspended = await client.get("/api/workflows/approval/runs?status=suspended")
    assert ids(suspended) == ["r-3", "r-1"]
    assert suspended.json()["total"] == 2
    assert ids(await client.get("/api/workflows/approval/runs?resourceId=bob")) == [
        "r-4",
        "r-2",
        "r-0",
    ]


async def test_filters_by_creation_date_both_ends_included(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    await make_runs(client, clock)

    def iso(seconds: float) -> str:
        moment = datetime.fromtimestamp(START + seconds, UTC)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    response = await client.get(
        "/api/workflows/approval/runs", params={"fromDate": iso(60), "toDate": iso(180)}
    )
    assert ids(response) == ["r-3", "r-2", "r-1"]


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("status=finished", "invalid query parameter 'status'"),
        ("fromDate=yesterday", "invalid query parameter 'fromDate'"),
        ("perPage=0", "invalid query parameter 'perPage': must be 1 or more"),
        ("page=x&perPage=2", "invalid query parameter 'page'"),
        ("perPage=5000", "limit must be between 1 and 1000"),
        (
            "fromDate=2026-01-02T00:00:00Z&toDate=2026-01-01T00:00:00Z",
            "invalid query",
        ),
    ],
)
async def test_bad_query_parameters_are_400s(
    client: httpx.AsyncClient, query: str, fragment: str
) -> None:
    response = await client.get(f"/api/workflows/approval/runs?{query}")
    assert response.status_code == 400
    assert fragment in response.json()["error"]
