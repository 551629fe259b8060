"""PostgresStorage when the server is away or its tables are not what this spanflow expects."""

from __future__ import annotations

import asyncio
import socket
import sys
import time
from collections.abc import Iterator

import psycopg
import pytest

from spanflow.errors import StorageError
from spanflow.storage import PostgresStorage, StoredRun

from .conftest import StoreSpec
from .schema_v1 import postgres_v1
from .schema_v3 import postgres_v3

__all__: list[str] = []


def _run() -> StoredRun:
    return StoredRun("run-1", "onboarding", "running", {"steps": {}})


async def _create(spec: StoreSpec) -> None:
    """Make the spec's schema hold spanflow's tables and run ``run-1``."""
    store = spec.open()
    try:
        await store.insert_run(_run())
    finally:
        await store.close()


async def _sql(spec: StoreSpec, *statements: str) -> None:
    """Run statements in the spec's schema behind the store's back."""
    assert spec.dsn is not None
    async with await psycopg.AsyncConnection.connect(spec.dsn, autocommit=True) as connection:
        await connection.execute(f'SET search_path TO "{spec.schema}"')
        for statement in statements:
            await connection.execute(statement)


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts TCP connections and then never says a word."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield listener.getsockname()[1]


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_a_server_that_refuses_connections_fails_fast_and_clearly() -> None:
    dsn = f"postgresql://spanflow@127.0.0.1:{_closed_port()}/runs"
    store = PostgresStorage(dsn, connect_timeout=1)
    started = time.monotonic()

    with pytest.raises(
        StorageError, match=r"cannot connect to PostgreSQL at 127\.0\.0\.1:\d+/runs"
    ):
        await store.get_run("run-1")

    assert time.monotonic() - started < 1
    await store.close()


async def test_a_server_that_never_answers_fails_after_connect_timeout(silent_port: int) -> None:
    store = PostgresStorage(
        f"postgresql://spanflow@127.0.0.1:{silent_port}/runs", connect_timeout=0.5
    )
    started = time.monotonic()

    with pytest.raises(StorageError, match=r"no answer within 0.5 s"):
        await store.get_run("run-1")

    assert 0.5 <= time.monotonic() - started < 1.5
    await store.close()


def test_the_password_of_a_dsn_stays_out_of_messages() -> None:
    store = PostgresStorage("postgresql://spanflow:s3cret@db.internal:6543/runs")

    assert repr(store) == "PostgresStorage('db.internal:6543/runs', schema='public')"


def test_a_schema_name_that_needs_quoting_is_refused() -> None:
    with pytest.raises(ValueError, match="schema must be a plain lower-case identifier"):
        PostgresStorage("postgresql://localhost/runs", schema='x"; DROP TABLE users; --')


def test_without_psycopg_the_store_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "psycopg_pool", None)

    with pytest.raises(StorageError, match=r"pip install 'spanflow\[postgres\]'"):
        PostgresStorage("postgresql://localhost/runs")


@pytest.mark.postgres
async def test_a_schema_from_a_newer_spanflow_asks_for_an_upgrade(
    postgres_spec: StoreSpec,
) -> None:
    await _create(postgres_spec)
    await _sql(postgres_spec, "UPDATE spanflow_meta SET value = '99'")

    store = postgres_spec.open()
    with pytest.raises(StorageError, match=r"uses spanflow schema version 99.*upgrade spanflow"):
        await store.get_run("run-1")
    await store.close()


async def _indexes(spec: StoreSpec) -> list[tuple[str, str]]:
    """The indexes of the spec's runs table, with their definitions minus the schema name."""
    assert spec.dsn is not None
    async with await psycopg.AsyncConnection.connect(spec.dsn, autocommit=True) as connection:
        cursor = await connection.execute(
            "SELECT indexname, replace(indexdef, %s, '') FROM pg_indexes "
            "WHERE schemaname = %s AND tablename = 'spanflow_runs' ORDER BY indexname",
            (f"{spec.schema}.", spec.schema),
        )
        return await cursor.fetchall()


@pytest.mark.postgres
async def test_a_version_1_schema_is_upgraded_in_place_keeping_its_runs(
    postgres_spec: StoreSpec, postgres_dsn: str
) -> None:
    assert postgres_spec.schema is not None
    await _sql(
        postgres_spec,
        *postgres_v1(postgres_spec.schema),
        "INSERT INTO spanflow_runs VALUES ('old-run', 'onboarding', 'user-7', 'suspended', "
        "'{\"steps\": {}}', 10.5, 11.5)",
    )
    fresh = StoreSpec("postgres", dsn=postgres_dsn, schema=f"{postgres_spec.schema}_new")

    store, other = postgres_spec.open(), fresh.open()
    try:
        stored = await store.get_run("old-run")
        counts = await store.count_runs()
        await other.open()
    finally:
        await store.close()
        await other.close()

    assert stored == StoredRun(
        "old-run", "onboarding", "suspended", {"steps": {}}, "user-7", 10.5, 11.5
    )
    assert counts == {"onboarding": {"suspended": 1}}
    upgraded, new = await _indexes(postgres_spec), await _indexes(fresh)
    assert upgraded == new
    assert "spanflow_runs_by_workflow_status" in {name for name, _ in upgraded}


@pytest.mark.postgres
async def test_a_missing_runs_table_is_reported_not_recreated(postgres_spec: StoreSpec) -> None:
    await _create(postgres_spec)
    await _sql(postgres_spec, "DROP TABLE spanflow_runs")

    store = postgres_spec.open()
    with pytest.raises(StorageError, match=r"missing table spanflow_runs.*damaged"):
        await store.get_run("run-1")
    await store.close()


@pytest.mark.postgres
async def test_stores_in_two_schemas_do_not_see_each_other(
    postgres_spec: StoreSpec, postgres_dsn: str
) -> None:
    await _create(postgres_spec)
    other = PostgresStorage(postgres_dsn, schema=f"{postgres_spec.schema}_other")
    try:
        assert await other.get_run("run-1") is None
        assert (await other.list_runs()).total == 0
    finally:
        await other.close()


@pytest.mark.postgres
async def test_stores_opening_together_create_the_tables_once(postgres_spec: StoreSpec) -> None:
    stores = [postgres_spec.open() for _ in range(5)]
    try:
        await asyncio.gather(*(store.open() for store in stores))
        await stores[0].insert_run(_run())

        assert [await store.get_run("run-1") is not None for store in stores] == [True] * 5
    finally:
        for store in stores:
            await store.close()


@pytest.mark.postgres
async def test_a_dropped_connection_is_replaced_before_it_is_used(
    postgres_spec: StoreSpec,
) -> None:
    name = f"{postgres_spec.schema}_victim"
    store = PostgresStorage(f"{postgres_spec.dsn}?application_name={name}", schema=name)
    try:
        await store.insert_run(_run())
        await _sql(
            postgres_spec,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE application_name = '{name}'",
        )

        assert await store.get_run("run-1") is not None  # the pool checks before handing out
    finally:
        await store.close()


@pytest.mark.postgres
async def test_a_read_only_store_reads_a_version_1_schema_without_upgrading_it(
    postgres_spec: StoreSpec,
) -> None:
    assert postgres_spec.schema is not None
    await _sql(
        postgres_spec,
        *postgres_v1(postgres_spec.schema),
        "INSERT INTO spanflow_runs VALUES ('old-run', 'onboarding', 'user-7', 'suspended', "
        "'{\"steps\": {}}', 10.5, 11.5)",
    )
    before = await _indexes(postgres_spec)

    store = postgres_spec.open(read_only=True)
    try:
        stored = await store.get_run("old-run")
        page = await store.list_runs(workflow_id="onboarding")
    finally:
        await store.close()

    assert stored is not None
    assert stored.status == "suspended"
    assert [run.run_id for run in page.runs] == ["old-run"]
    assert await _indexes(postgres_spec) == before
    assert "spanflow_runs_by_workflow_status" not in {name for name, _ in before}


@pytest.mark.postgres
async def test_a_read_only_store_refuses_every_write_and_changes_nothing(
    postgres_spec: StoreSpec,
) -> None:
    await _create(postgres_spec)

    store = postgres_spec.open(read_only=True)
    try:
        with pytest.raises(StorageError, match="read-only"):
            await store.save_run(StoredRun("run-1", "onboarding", "failed", {"steps": {}}))
        with pytest.raises(StorageError, match="read-only"):
            await store.delete_run("run-1")
        stored = await store.get_run("run-1")
    finally:
        await store.close()

    assert stored is not None
    assert (stored.status, stored.snapshot) == ("running", {"steps": {}})


@pytest.mark.postgres
async def test_a_read_only_store_on_a_schema_without_spanflow_tables_creates_none(
    postgres_spec: StoreSpec,
) -> None:
    store = postgres_spec.open(read_only=True)
    with pytest.raises(StorageError, match=r"holds no spanflow tables.*left unchanged"):
        await store.get_run("run-1")
    await store.close()

    assert await _indexes(postgres_spec) == []


async def _make_v3(spec: StoreSpec) -> None:
    """A schema at version 3 (event log and leases, no cancel flag), holding run ``old-run``
    executing under a lease that ran out, with one logged event."""
    assert spec.schema is not None
    await _sql(
        spec,
        *postgres_v3(spec.schema),
        "INSERT INTO spanflow_runs VALUES ('old-run', 'onboarding', 'user-7', 'running', "
        "'{\"steps\": {}}', 10.5, 11.5, 'host:1:a', 99.0)",
        "INSERT INTO spanflow_events VALUES ('old-run', 0, '{\"type\": \"start\"}', 10.5)",
    )


async def _columns(spec: StoreSpec) -> list[tuple[str, str, str | None]]:
    """The columns of the spec's runs table: name, type and default."""
    assert spec.dsn is not None
    async with await psycopg.AsyncConnection.connect(spec.dsn, autocommit=True) as connection:
        cursor = await connection.execute(
            "SELECT column_name, data_type, column_default FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = 'spanflow_runs' ORDER BY ordinal_position",
            (spec.schema,),
        )
        return await cursor.fetchall()


@pytest.mark.postgres
async def test_a_version_3_schema_is_upgraded_to_the_current_version_keeping_its_runs_and_logs(
    postgres_spec: StoreSpec, postgres_dsn: str
) -> None:
    await _make_v3(postgres_spec)
    fresh = StoreSpec("postgres", dsn=postgres_dsn, schema=f"{postgres_spec.schema}_new")

    store, other = postgres_spec.open(), fresh.open()
    try:
        stored = await store.get_run("old-run")
        events = await store.read_events("old-run")
        stalled = await store.stalled_runs()
        requested = await store.request_cancel("old-run")
        await other.open()
    finally:
        await store.close()
        await other.close()

    assert stored == StoredRun(
        "old-run",
        "onboarding",
        "running",
        {"steps": {}},
        "user-7",
        10.5,
        11.5,
        owner="host:1:a",
        lease_until=99.0,
        cancel_requested=False,
    )
    assert [event.event for event in events] == [{"type": "start"}]
    assert [run.run_id for run in stalled] == ["old-run"]
    assert requested is not None
    assert requested.cancel_requested
    assert await _columns(postgres_spec) == await _columns(fresh)
    assert ("cancel_requested", "boolean", "false") in await _columns(fresh)
    assert await _indexes(postgres_spec) == await _indexes(fresh)


@pytest.mark.postgres
async def test_a_read_only_store_reads_a_version_3_schema_without_a_cancel_flag(
    postgres_spec: StoreSpec,
) -> None:
    await _make_v3(postgres_spec)
    before = await _columns(postgres_spec)

    store = postgres_spec.open(read_only=True)
    try:
        stored = await store.get_run("old-run")
        page = await store.list_runs()
        stalled = await store.stalled_runs(workflow_ids=["onboarding"])
        with pytest.raises(
            StorageError,
            match=r"schema version 3, which has no cancel_requested column.*opened read-only",
        ):
            await store.request_cancel("old-run")
    finally:
        await store.close()

    assert stored is not None
    assert (stored.owner, stored.cancel_requested) == ("host:1:a", False)
    assert [run.cancel_requested for run in page.runs] == [False]
    assert [run.run_id for run in stalled] == ["old-run"]
    assert await _columns(postgres_spec) == before
