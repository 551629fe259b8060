"""The storage contract: every store (memory, SQLite, PostgreSQL) behaves exactly alike."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from spanflow.errors import (
    InvalidInputError,
    RunClaimError,
    RunNotFoundError,
    RunStateError,
    StorageError,
)
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


@pytest.mark.parametrize("waiting_as", ["suspended", "pending"])
async def test_of_twenty_concurrent_claimers_exactly_one_wins(
    storage: Storage, waiting_as: RunStatus
) -> None:
    await storage.insert_run(make_run(status=waiting_as))

    outcomes = await asyncio.gather(
        *(
            storage.claim_run("run-1", from_status=[waiting_as], to_status="running")
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


async def test_a_run_created_pending_is_listed_as_pending_until_claimed_to_running(
    storage: Storage, clock: FakeClock
) -> None:
    await storage.insert_run(make_run(status="pending", snapshot={"input": {"n": 1}}))
    pending = await storage.list_runs(status="pending")
    clock.advance(2)

    claimed = await storage.claim_run("run-1", from_status=["pending"], to_status="running")

    assert [run.run_id for run in pending.runs] == ["run-1"]
    assert claimed == make_run(
        status="running", snapshot={"input": {"n": 1}}, created_at=T0, updated_at=T0 + 2
    )
    assert (await storage.list_runs(status="pending")).total == 0
    assert [run.run_id for run in (await storage.list_runs(status="running")).runs] == ["run-1"]


async def test_a_pending_run_cannot_be_claimed_as_if_it_were_suspended(storage: Storage) -> None:
    await storage.insert_run(make_run(status="pending"))

    with pytest.raises(RunClaimError, match="its status is 'pending', not 'suspended'"):
        await storage.claim_run("run-1", from_status=["suspended"], to_status="running")

    stored = await storage.get_run("run-1")
    assert stored is not None
    assert stored.status == "pending"


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


def at(seconds: float) -> datetime:
    """The moment `seconds` after the epoch, as an aware UTC datetime."""
    return datetime.fromtimestamp(seconds, UTC)


@pytest.fixture
def local_time_is_new_york() -> Iterator[None]:
    """Make the process's local time zone UTC-5, so that treating a naive datetime as local
    time instead of UTC shows."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TZ", "America/New_York")
        time.tzset()
        yield
    time.tzset()


@pytest.mark.parametrize(
    ("dates", "expected"),
    [
        ({"from_date": at(20), "to_date": at(40)}, ["e", "d", "c", "b"]),
        ({"from_date": at(20)}, ["e", "d", "c", "b"]),
        ({"to_date": at(20)}, ["b", "a"]),
        ({"from_date": at(30), "to_date": at(30)}, ["c"]),
        ({"from_date": at(20.000001)}, ["e", "d", "c"]),
        ({"to_date": at(39.999999)}, ["c", "b", "a"]),
        ({"from_date": at(41)}, []),
    ],
)
async def test_list_runs_date_bounds_include_runs_created_exactly_at_either_bound(
    storage: Storage, dates: dict[str, Any], expected: list[str]
) -> None:
    await _insert_listing_fixture(storage)

    page = await storage.list_runs(**dates)

    assert [run.run_id for run in page.runs] == expected
    assert page.total == len(expected)


@pytest.mark.usefixtures("local_time_is_new_york")
async def test_a_naive_date_means_utc_not_local_time(storage: Storage) -> None:
    await _insert_listing_fixture(storage)
    new_york = timezone(timedelta(hours=-5))

    naive = await storage.list_runs(from_date=datetime(1970, 1, 1, 0, 0, 30))
    aware = await storage.list_runs(from_date=datetime(1969, 12, 31, 19, 0, 30, tzinfo=new_york))

    assert [run.run_id for run in naive.runs] == ["e", "d", "c"]
    assert [run.run_id for run in aware.runs] == ["e", "d", "c"]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"workflow_id": "onboarding", "from_date": at(20)}, ["e", "d", "b"]),
        ({"status": "success", "to_date": at(30)}, ["c", "a"]),
        ({"resource_id": "user-1", "from_date": at(15), "to_date": at(35)}, ["c"]),
        (
            {"workflow_id": "onboarding", "status": "success", "from_date": at(10)},
            ["e", "d", "a"],
        ),
        ({"workflow_id": "billing", "from_date": at(31)}, []),
    ],
)
async def test_date_bounds_combine_with_the_other_filters(
    storage: Storage, filters: dict[str, Any], expected: list[str]
) -> None:
    await _insert_listing_fixture(storage)

    page = await storage.list_runs(**filters)

    assert [run.run_id for run in page.runs] == expected
    assert page.total == len(expected)


async def test_a_page_within_date_bounds_counts_every_run_within_them(storage: Storage) -> None:
    await _insert_listing_fixture(storage)
    bounds: dict[str, Any] = {"from_date": at(20), "to_date": at(40)}

    pages = [await storage.list_runs(**bounds, limit=3, offset=offset) for offset in (0, 3)]

    assert [[run.run_id for run in page.runs] for page in pages] == [["e", "d", "c"], ["b"]]
    assert [page.total for page in pages] == [4, 4]


async def test_a_run_is_found_by_its_own_creation_time_read_back_as_a_datetime(
    storage: Storage,
) -> None:
    # Created 0.1 microseconds apart: several runs share each microsecond, and their times
    # round to a datetime up as often as down.
    times = {f"r{i:02}": T0 + 0.5 + i * 1e-7 for i in range(30)}
    for run_id, created_at in times.items():
        await storage.insert_run(make_run(run_id, created_at=created_at))

    for run_id, created_at in times.items():
        moment = datetime.fromtimestamp(created_at, UTC)
        page = await storage.list_runs(from_date=moment, to_date=moment, limit=100)

        same_microsecond = {
            other for other, t in times.items() if datetime.fromtimestamp(t, UTC) == moment
        }
        assert run_id in same_microsecond
        assert {run.run_id for run in page.runs} == same_microsecond


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        ({"from_date": "2024-01-01"}, "from_date must be a datetime .*; got str '2024-01-01'"),
        ({"to_date": date(2024, 1, 1)}, r"to_date must be a datetime .*; got date"),
        ({"from_date": 1_700_000_000}, "from_date must be a datetime"),
        (
            {"from_date": datetime(2024, 1, 2), "to_date": datetime(2024, 1, 1)},
            r"from_date \(2024-01-02T00:00:00\+00:00\) is after to_date "
            r"\(2024-01-01T00:00:00\+00:00\)",
        ),
        (
            {"from_date": datetime(2024, 1, 1, 1, tzinfo=UTC), "to_date": datetime(2024, 1, 1)},
            "from_date .* is after to_date",
        ),
        ({"workflow_id": 7}, "workflow_id must be a string or None; got 7"),
        ({"resource_id": ["user-1"]}, "resource_id must be a string or None"),
    ],
)
async def test_list_runs_refuses_bad_filters_naming_the_argument(
    storage: Storage, filters: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidInputError, match=message):
        await storage.list_runs(**filters)


async def test_count_runs_counts_each_workflows_runs_per_status(storage: Storage) -> None:
    await _insert_listing_fixture(storage)
    await storage.insert_run(make_run("f", status="pending"))

    counts = await storage.count_runs()

    assert counts == {
        "billing": {"success": 1},
        "onboarding": {"pending": 1, "success": 3, "failed": 1},
    }
    assert list(counts) == ["billing", "onboarding"]
    assert list(counts["onboarding"]) == ["pending", "success", "failed"]


async def test_count_runs_for_one_workflow_leaves_the_others_out(storage: Storage) -> None:
    await _insert_listing_fixture(storage)

    assert await storage.count_runs(workflow_id="billing") == {"billing": {"success": 1}}
    assert await storage.count_runs(workflow_id="nothing-like-it") == {}


async def test_count_runs_follows_claims_and_deletes(storage: Storage) -> None:
    await storage.insert_run(make_run("a", status="pending"))
    await storage.insert_run(make_run("b", status="pending"))

    await storage.claim_run("a", from_status=["pending"], to_status="running")
    after_claim = await storage.count_runs()
    await storage.delete_run("b")
    after_delete = await storage.count_runs()

    assert after_claim == {"onboarding": {"pending": 1, "running": 1}}
    assert after_delete == {"onboarding": {"running": 1}}


async def test_an_empty_store_counts_nothing(storage: Storage) -> None:
    assert await storage.count_runs() == {}


async def test_count_runs_refuses_a_workflow_id_that_is_not_a_string(storage: Storage) -> None:
    workflow_id: Any = 7

    with pytest.raises(InvalidInputError, match="workflow_id must be a string or None; got 7"):
        await storage.count_runs(workflow_id=workflow_id)


async def test_delete_run_removes_the_run_and_says_whether_it_existed(storage: Storage) -> None:
    await storage.insert_run(make_run())

    assert await storage.delete_run("run-1") is True
    assert await storage.get_run("run-1") is None
    assert await storage.delete_run("run-1") is False


async def test_delete_run_removes_exactly_that_run_and_the_listing_total_drops(
    storage: Storage,
) -> None:
    await _insert_listing_fixture(storage)
    before = {run.run_id: run for run in (await storage.list_runs()).runs}

    deleted = await storage.delete_run("c")

    page = await storage.list_runs()
    assert deleted is True
    assert page.total == 4
    assert page.runs == [before[run_id] for run_id in ("e", "d", "b", "a")]
    assert await storage.count_runs(workflow_id="billing") == {}


async def test_delete_run_of_an_unknown_id_is_false_and_deletes_nothing(storage: Storage) -> None:
    await _insert_listing_fixture(storage)

    assert await storage.delete_run("ghost") is False
    assert (await storage.list_runs()).total == 5


async def test_delete_run_if_status_deletes_a_run_in_one_of_those_statuses(
    storage: Storage,
) -> None:
    await storage.insert_run(make_run(status="suspended"))

    deleted = await storage.delete_run("run-1", if_status=["pending", "suspended"])

    assert deleted is True
    assert await storage.get_run("run-1") is None


async def test_delete_run_if_status_refuses_another_status_and_keeps_the_run(
    storage: Storage,
) -> None:
    await storage.insert_run(make_run(status="running"))

    with pytest.raises(
        RunStateError,
        match="cannot delete run 'run-1': its status is 'running', not 'pending' or 'success'",
    ):
        await storage.delete_run("run-1", if_status=["pending", "success"])

    stored = await storage.get_run("run-1")
    assert stored is not None
    assert stored.status == "running"


async def test_delete_run_if_status_of_an_unknown_id_is_false(storage: Storage) -> None:
    assert await storage.delete_run("ghost", if_status=["pending"]) is False


async def test_delete_run_refuses_a_bare_string_as_if_status(storage: Storage) -> None:
    await storage.insert_run(make_run())
    if_status: Any = "pending"

    with pytest.raises(TypeError, match=r"such as \('pending',\), not a string"):
        await storage.delete_run("run-1", if_status=if_status)

    assert await storage.get_run("run-1") is not None


async def test_a_pending_run_claimed_and_deleted_at_once_is_either_started_or_gone(
    storage: Storage,
) -> None:
    run_ids = [f"run-{i}" for i in range(10)]
    for run_id in run_ids:
        await storage.insert_run(make_run(run_id, status="pending"))

    outcomes = await asyncio.gather(
        *(
            asyncio.gather(
                storage.claim_run(run_id, from_status=["pending"], to_status="running"),
                storage.delete_run(run_id, if_status=["pending"]),
                return_exceptions=True,
            )
            for run_id in run_ids
        )
    )

    for run_id, (claimed, deleted) in zip(run_ids, outcomes, strict=True):
        stored = await storage.get_run(run_id)
        if isinstance(claimed, StoredRun):  # the claim came first: the delete was refused
            assert isinstance(deleted, RunStateError)
            assert stored is not None
            assert stored.status == "running"
        else:  # the delete came first: the claim found no run
            assert isinstance(claimed, RunNotFoundError)
            assert deleted is True
            assert stored is None


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
