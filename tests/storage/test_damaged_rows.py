"""One damaged snapshot row never breaks a listing: the other runs are listed, and the damaged
one is reported with its id and what is wrong (issue 13)."""

from __future__ import annotations

import sqlite3

import psycopg
import pytest

from spanflow.cli.stored import print_runs
from spanflow.storage import DamagedRun, Storage, StoredRun
from tests.support.stores import StoreSpec


async def _damage(spec: StoreSpec, run_id: str) -> None:
    if spec.kind == "sqlite":
        assert spec.path is not None
        with sqlite3.connect(spec.path) as connection:
            connection.execute(
                "UPDATE spanflow_runs SET snapshot = '{\"cut off' WHERE run_id = ?", (run_id,)
            )
        return
    assert spec.dsn is not None
    async with await psycopg.AsyncConnection.connect(spec.dsn, autocommit=True) as connection:
        # PostgreSQL's json type holds only valid JSON: damage it into a list, not an object.
        await connection.execute(
            f'UPDATE "{spec.schema}".spanflow_runs SET snapshot = %s::json WHERE run_id = %s',
            ("[1, 2]", run_id),
        )


async def test_a_damaged_row_is_reported_and_the_others_are_listed(
    shared_store: Storage, shared_store_spec: StoreSpec
) -> None:
    for n in range(3):
        await shared_store.save_run(StoredRun(f"run-{n}", "onboarding", "success", {"n": n}))
    await _damage(shared_store_spec, "run-1")

    page = await shared_store.list_runs()

    assert [run.run_id for run in page.runs] == ["run-2", "run-0"]
    assert page.total == 3
    (damaged,) = page.damaged
    assert (damaged.run_id, damaged.workflow_id, damaged.status) == (
        "run-1",
        "onboarding",
        "success",
    )
    assert "run-1" in damaged.problem
    assert isinstance(damaged, DamagedRun)


async def test_runs_list_prints_the_damaged_row_and_the_others(
    sqlite_spec: StoreSpec, capsys: pytest.CaptureFixture[str]
) -> None:
    store = sqlite_spec.open()
    await store.save_run(StoredRun("good", "onboarding", "success", {}))
    await store.save_run(StoredRun("bad", "onboarding", "failed", {}))
    await _damage(sqlite_spec, "bad")
    page = await store.list_runs()
    await store.close()

    print_runs(page, "runs.db")

    out = capsys.readouterr().out
    assert "cannot read run bad (onboarding, failed): " in out
    assert "good" in out
