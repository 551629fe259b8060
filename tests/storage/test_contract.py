"""The storage contract: every store (memory, SQLite, PostgreSQL) behaves exactly alike."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from spanflow.errors import RunClaimError, RunNotFoundError, StorageError
from spanflow.storage import RunStatus, Storage, StoredRun

from .conftest import FakeClock, StoreSpec

__all__: list[str] = []

T0 = 1_700_000_000.0
"""The fake clock's start."""

AWKWARD_SNAPSHOT: dict[str, Any] = {
    "zeta": "keys keep their order",
    "alpha": None,
    "steps": {
        "fetch": {"status": "success", "output": {"items": [1, 2.5, -0.125, None, True]}},
        "greet": {"status": "suspended", "payload": {"ask": "¿Nombre? 名前は? 👋🏽"}},
    },
    "text": {
        "combining": "e\u0301",
        "rtl": "שלום",
        "nul": "a\u0000b",
        "lone surrogate": "\ud800",
        "quotes and escapes": "\"'\\\n\t",
    },
    "numbers": [0, -1, 2**63 + 1, 0.1, 1e300, 1.5e-300, 1_700_000_000.123456],
    "empty": {"dict": {}, "list": [], "string": ""},
    "deep": [[[[{"level": 5}]]]],
}


def make_run(run_id: str = "run-1", **fields: Any) -> StoredRun:
    """A run with sensible defaults; `fields` override them."""
    values: dict[str, Any] = {
        "workflow_id": "onboarding",
        "status": "pending",
        "snapshot": {"steps": {}},
    }
    values.update(fields)
    return StoredRun(run_id=run_id, **values)


async def test_an_inserted_run_comes_back_with_every_field_and_its_json_intact(
    storage: Storage,
) -> None:
    run = make_run(
        resource_id="user-7", status="suspended", snapshot=AWKWARD_SNAPSHOT, created_at=123.5
    )
    await storage.insert_run(run)

    stored = await storage.get_run("run-1")

    assert stored == StoredRun(
        run_id="run-1",
        workflow_id="onboarding",
        status="suspended",
        snapshot=AWKWARD_SNAPSHOT,
        resource_id="user-7",
        created_at=123.5,
        updated_at=T0,
    )
    assert stored is not None
    assert list(stored.snapshot) == list(AWKWARD_SNAPSHOT)
    assert [type(n) for n in stored.snapshot["numbers"]] == [
        type(n) for n in AWKWARD_SNAPSHOT["numbers"]
    ]


async def test_insert_stamps_the_run_with_the_clock_when_created_at_is_zero(
    storage: Storage,
) -> None:
    run = make_run()

    await storage.insert_run(run)

    assert (run.created_at, run.updated_at) == (T0, T0)
    stored = await storage.get_run("run-1")
    assert stored is not None
    assert (stored.created_at, stored.updated_at) == (T0, T0)


async def test_an_unknown_id_gets_none(storage: Storage) -> None:
    assert await storage.get_run("nope") is None


async def test_inserting_a_taken_id_raises_and_keeps_the_first_run(storage: Storage) -> None:
    await storage.insert_run(make_run(status="running"))

    with pytest.raises(RunClaimError, match=r"'run-1'.*already exists"):
        await storage.insert_run(make_run(status="pending", snapshot={"other": True}))

    stored = await storage.get_run("run-1")
    assert stored is not None
    assert (stored.status, stored.snapshot) == ("running", {"steps": {}})


async def test_save_run_inserts_a_run_it_has_not_seen(storage: Storage) -> None:
    await storage.save_run(make_run(status="running"))

    stored = await storage.get_run("run-1")
    assert stored is not None
    assert (stored.status, stored.created_at, stored.updated_at) == ("running", T0, T0)


async def test_save_run_replaces_status_and_snapshot_and_bumps_updated_at(
    storage: Storage, clock: FakeClock
) -> None:
    run = make_run()
    await storage.insert_run(run)
    later = clock.advance(5)

    await storage.save_run(
        make_run(status="success", resource_id="user-7", snapshot={"result": [1, 2]})
    )

    assert await storage.get_run("run-1") == make_run(
        status="success",
        resource_id="user-7",
        snapshot={"result": [1, 2]},
        created_at=T0,
        updated_at=later,
    )


async def test_save_run_tells_the_caller_the_stored_created_at(
    storage: Storage, clock: FakeClock
) -> None:
    await storage.insert_run(make_run())
    clock.advance(5)
    run = make_run(status="running")  # created_at 0: a fresh object for a known run

    await storage.save_run(run)

    assert (run.created_at, run.updated_at) == (T0, T0 + 5)


async def test_save_run_never_moves_created_at(storage: Storage, clock: FakeClock) -> None:
    await storage.insert_run(make_run())
    clock.advance(5)
    run = make_run(status="running", created_at=99.0)

    await storage.save_run(run)

    assert run.created_at == T0
    stored = await storage.get_run("run-1")
    assert stored is not None
    assert stored.created_at == T0


async def test_changing_a_snapshot_dict_after_saving_it_does_not_change_the_store(
    storage: Storage,
) -> None:
    snapshot: dict[str, Any] = {"status": "running"}
    await storage.save_run(make_run(snapshot=snapshot))

    snapshot["status"] = "tampered"  # the engine never does this; the store still copes

    stored = await storage.get_run("run-1")
    assert stored is not None
    assert stored.snapshot == {"status": "running"}


async def test_changing_a_loaded_snapshot_does_not_change_the_store(storage: Storage) -> None:
    await storage.save_run(make_run(snapshot={"steps": {"a": {"status": "running"}}}))
    loaded = await storage.get_run("run-1")
    assert loaded is not None

    loaded.snapshot["steps"]["a"]["status"] = "tampered"

    again = await storage.get_run("run-1")
    assert again is not None
    assert again.snapshot == {"steps": {"a": {"status": "running"}}}


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("run_id", "", "run.run_id must be a non-empty string"),
        ("workflow_id", "", "run.workflow_id of run 'run-1' must be a non-empty string"),
        ("status", "done", "run.status of run 'run-1' must be one of"),
    ],
)
async def test_a_run_with_a_bad_field_is_refused_before_anything_is_written(
    storage: Storage, field: str, value: str, message: str
) -> None:
    run = make_run()
    setattr(run, field, value)

    with pytest.raises(ValueError, match=message):
        await storage.save_run(run)

    assert (await storage.list_runs()).total == 0


async def test_claim_moves_the_status_and_returns_the_claimed_run(
    storage: Storage, clock: FakeClock
) -> None:
    await storage.insert_run(make_run(status="suspended", snapshot={"step": "ask"}))
    clock.advance(1)

    claimed = await storage.claim_run(
        "run-1", from_status=("suspended", "waiting"), to_status="running"
    )

    expected = make_run(
        status="running", snapshot={"step": "ask"}, created_at=T0, updated_at=T0 + 1
    )
    assert claimed == expected
    assert await storage.get_run("run-1") == expected


async def test_claim_from_another_status_raises_naming_the_status_found(
    storage: Storage,
) -> None:
    await storage.insert_run(make_run(status="success"))

    with pytest.raises(
        RunClaimError, match="cannot claim run 'run-1': its status is 'success', not 'suspended'"
    ):
        await storage.claim_run("run-1", from_status=["suspended"], to_status="running")

    stored = await storage.get_run("run-1")
    assert stored is not None
    assert stored.status == "success"


async def test_claim_of_an_unknown_id_raises_run_not_found(storage: Storage) -> None:
    with pytest.raises(RunNotFoundError, match="no stored run has id 'ghost'"):
        await storage.claim_run("ghost", from_status=["suspended"], to_status="running")


async def test_claim_refuses_a_bare_string_as_from_status(storage: Storage) -> None:
    await storage.insert_run(make_run(status="suspended"))
    from_status: Any = "suspended"

    with pytest.raises(TypeError, match=r"such as \('suspended',\), not a string"):
        await storage.claim_run("run-1", from_status=from_status, to_status="running")


async def test_of_twenty_concurrent_claimers_exactly_one_wins(storage: Storage) -> None:
    await storage.insert_run(make_run(status="suspended"))

    outcomes = await asyncio.gather(
        *(
            storage.claim_run("run-1", from_status=["suspended"], to_status="running")
            for _ in range(20)
        ),
        return_exceptions=True,
    )

    winners = [outcome for outcome in outcomes if isinstance(outcome, StoredRun)]
    losers = [outcome for outcome in outcomes if isinstance(outcome, RunClaimError)]
    assert len(winners) == 1
    assert winners[0].status == "running"
    assert len(losers) == 19
    assert all("its status is 'running'" in str(loser) for loser in losers)


async def _insert_listing_fixture(storage: Storage) -> None:
    runs: list[tuple[str, str, RunStatus, str | None, float]] = [
        ("a", "onboarding", "success", "user-1", 10.0),
        ("b", "onboarding", "failed", "user-2", 20.0),
        ("c", "billing", "success", "user-1", 30.0),
        ("d", "onboarding", "success", "user-1", 40.0),
        ("e", "onboarding", "success", None, 40.0),  # same time as d: run_id breaks the tie
    ]
    for run_id, workflow_id, status, resource_id, created_at in runs:
        await storage.insert_run(
            StoredRun(run_id, workflow_id, status, {}, resource_id, created_at=created_at)
        )


async def test_list_runs_gives_the_newest_first_and_run_id_breaks_ties(storage: Storage) -> None:
    await _insert_listing_fixture(storage)

    page = await storage.list_runs()

    assert [run.run_id for run in page.runs] == ["e", "d", "c", "b", "a"]
    assert (page.total, page.limit, page.offset) == (5, 20, 0)


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"workflow_id": "onboarding"}, ["e", "d", "b", "a"]),
        ({"status": "success"}, ["e", "d", "c", "a"]),
        ({"resource_id": "user-1"}, ["d", "c", "a"]),
        ({"workflow_id": "onboarding", "status": "success", "resource_id": "user-1"}, ["d", "a"]),
        ({"workflow_id": "nothing-like-it"}, []),
    ],
)
async def test_list_runs_filters_combine_with_and(
    storage: Storage, filters: dict[str, Any], expected: list[str]
) -> None:
    await _insert_listing_fixture(storage)

    page = await storage.list_runs(**filters)

    assert [run.run_id for run in page.runs] == expected
    assert page.total == len(expected)


async def test_list_runs_pages_through_matches_and_counts_them_all(storage: Storage) -> None:
    await _insert_listing_fixture(storage)

    pages = [await storage.list_runs(limit=2, offset=offset) for offset in (0, 2, 4, 6)]

    assert [[run.run_id for run in page.runs] for page in pages] == [
        ["e", "d"],
        ["c", "b"],
        ["a"],
        [],
    ]
    assert {page.total for page in pages} == {5}
    assert (pages[1].limit, pages[1].offset) == (2, 2)


async def test_listed_runs_are_complete(storage: Storage) -> None:
    await storage.insert_run(make_run(resource_id="user-7", snapshot=AWKWARD_SNAPSHOT))

    page = await storage.list_runs()

    assert page.runs == [await storage.get_run("run-1")]


@pytest.mark.parametrize(
    ("paging", "error", "message"),
    [
        ({"limit": 0}, ValueError, "limit must be between 1 and 1000; got 0"),
        ({"limit": 1001}, ValueError, "limit must be between 1 and 1000; got 1001"),
        ({"offset": -1}, ValueError, "offset must be 0 or more; got -1"),
        ({"limit": "10"}, TypeError, "limit must be an int; got '10'"),
        ({"status": "done"}, ValueError, "status must be one of"),
    ],
)
async def test_list_runs_refuses_bad_arguments_with_a_clear_message(
    storage: Storage, paging: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        await storage.list_runs(**paging)


async def test_delete_run_removes_the_run_and_says_whether_it_existed(storage: Storage) -> None:
    await storage.insert_run(make_run())

    assert await storage.delete_run("run-1") is True
    assert await storage.get_run("run-1") is None
    assert await storage.delete_run("run-1") is False


async def test_close_is_safe_twice_and_a_closed_store_refuses_work(storage: Storage) -> None:
    await storage.insert_run(make_run())

    await storage.close()
    await storage.close()

    with pytest.raises(StorageError, match="is closed"):
        await storage.get_run("run-1")


async def test_runs_outlive_the_store_object_in_the_persistent_stores(
    shared_store: Storage, shared_store_spec: StoreSpec
) -> None:
    await shared_store.insert_run(make_run(snapshot=AWKWARD_SNAPSHOT))
    await shared_store.close()

    reopened = shared_store_spec.open()
    try:
        stored = await reopened.get_run("run-1")
    finally:
        await reopened.close()

    assert stored is not None
    assert stored.snapshot == AWKWARD_SNAPSHOT


async def test_a_snapshot_that_is_not_json_is_refused_naming_the_run(
    shared_store: Storage,
) -> None:
    for snapshot in ({"when": object()}, {"score": float("nan")}):
        with pytest.raises(
            StorageError, match="cannot store run 'run-1': its snapshot is not JSON"
        ):
            await shared_store.save_run(make_run(snapshot=snapshot))

    assert await shared_store.get_run("run-1") is None
