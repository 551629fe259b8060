"""The storage contract for distributed execution: the ``queued`` status, cancel requests that
reach a run's executor in another process, and the runs a dead process left executing.

Every test runs against each store (memory, SQLite, PostgreSQL). Leases are set and read on
PostgreSQL's own clock there, so these tests never move the fake clock past a lease: a lease
that is not live is one of 0 seconds (claimed without one, or renewed with ``lease=0``), a live
one is a minute long.
"""

from __future__ import annotations

from typing import Any, get_args

import pytest

from spanflow.errors import RunClaimError, RunStateError
from spanflow.storage import Lease, RunStatus, Storage, StoredRun
from spanflow.storage.base import ENDED_STATUSES, EXECUTING_STATUSES, IDLE_STATUSES

from .conftest import FakeClock

__all__: list[str] = []

T0 = 1_700_000_000.0
"""The fake clock's start."""

LIVE = 60.0
"""A lease (seconds) that outlasts any test."""


def make_run(run_id: str = "run-1", **fields: Any) -> StoredRun:
    """A run with sensible defaults; `fields` override them."""
    values: dict[str, Any] = {
        "workflow_id": "onboarding",
        "status": "pending",
        "snapshot": {"steps": {}},
    }
    values.update(fields)
    return StoredRun(run_id=run_id, **values)


async def _executing(
    storage: Storage,
    run_id: str = "run-1",
    *,
    owner: str = "host:1:a",
    lease: float = LIVE,
    **fields: Any,
) -> StoredRun:
    """Store a pending run and claim it ``pending -> running`` for `owner`."""
    await storage.insert_run(make_run(run_id, **fields))
    return await storage.claim_run(
        run_id, from_status=["pending"], to_status="running", owner=owner, lease=lease
    )


async def _flag(storage: Storage, run_id: str = "run-1") -> bool:
    stored = await storage.get_run(run_id)
    assert stored is not None
    return stored.cancel_requested


# --- queued ------------------------------------------------------------------------------


def test_queued_comes_right_after_pending_and_is_neither_idle_nor_executing() -> None:
    statuses = get_args(RunStatus)

    assert statuses[:3] == ("pending", "queued", "running")
    assert "queued" not in IDLE_STATUSES
    assert "queued" not in EXECUTING_STATUSES
    assert ("pending", "suspended", *ENDED_STATUSES) == IDLE_STATUSES
    assert sorted((*IDLE_STATUSES, *EXECUTING_STATUSES, "queued")) == sorted(statuses)


async def test_a_queued_run_is_stored_claimed_listed_and_counted_like_any_other(
    storage: Storage,
) -> None:
    await storage.insert_run(make_run("inserted", status="queued"))
    await storage.insert_run(make_run("created"))
    await storage.insert_run(make_run("other"))

    queued = await storage.claim_run("created", from_status=["pending"], to_status="queued")
    page = await storage.list_runs(status="queued")
    counts = await storage.count_runs()
    started = await storage.claim_run(
        "inserted", from_status=["queued"], to_status="running", owner="host:1:a", lease=LIVE
    )

    assert queued.status == "queued"
    assert sorted(run.run_id for run in page.runs) == ["created", "inserted"]
    assert page.total == 2
    assert list(counts["onboarding"].items()) == [("pending", 1), ("queued", 2)]
    assert (started.status, started.owner) == ("running", "host:1:a")
    assert await storage.count_runs() == {"onboarding": {"pending": 1, "queued": 1, "running": 1}}


async def test_a_queued_run_is_not_deleted_as_idle(storage: Storage) -> None:
    await storage.insert_run(make_run(status="queued"))

    with pytest.raises(RunStateError, match="its status is 'queued'"):
        await storage.delete_run("run-1", if_status=IDLE_STATUSES)

    assert await storage.get_run("run-1") is not None


# --- cancel_requested --------------------------------------------------------------------


async def test_a_new_run_has_no_cancel_request(storage: Storage) -> None:
    await storage.insert_run(make_run())

    assert await _flag(storage) is False


async def test_insert_run_stores_the_flag_as_given(storage: Storage) -> None:
    await storage.insert_run(make_run(status="queued", cancel_requested=True))

    assert await _flag(storage) is True


async def test_request_cancel_flags_a_running_run_and_returns_it_as_stored(
    storage: Storage, clock: FakeClock
) -> None:
    await _executing(storage)
    later = clock.advance(3)

    requested = await storage.request_cancel("run-1")
    stored = await storage.get_run("run-1")

    assert requested is not None
    assert (requested.status, requested.owner, requested.cancel_requested) == (
        "running",
        "host:1:a",
        True,
    )
    assert requested.updated_at == later
    assert stored == requested


async def test_request_cancel_flags_a_waiting_run_and_asking_twice_is_harmless(
    storage: Storage,
) -> None:
    await storage.insert_run(make_run(status="waiting"))

    first = await storage.request_cancel("run-1")
    second = await storage.request_cancel("run-1")

    assert first is not None
    assert first.cancel_requested
    assert second is not None
    assert second.cancel_requested
    assert await _flag(storage) is True


@pytest.mark.parametrize("status", ["pending", "queued", "suspended", "success", "canceled"])
async def test_request_cancel_of_a_run_that_is_not_executing_is_none_and_changes_nothing(
    storage: Storage, clock: FakeClock, status: RunStatus
) -> None:
    await storage.insert_run(make_run(status=status))
    before = await storage.get_run("run-1")
    clock.advance(3)

    assert await storage.request_cancel("run-1") is None
    assert await storage.get_run("run-1") == before


async def test_request_cancel_of_an_unknown_run_is_none(storage: Storage) -> None:
    assert await storage.request_cancel("ghost") is None
    assert await storage.get_run("ghost") is None


@pytest.mark.parametrize("status", ["running", "waiting", "queued"])
async def test_the_owners_save_keeps_a_flag_requested_meanwhile_and_tells_it(
    storage: Storage, status: RunStatus
) -> None:
    claimed = await _executing(storage)
    await storage.request_cancel("run-1")

    claimed.status = status
    claimed.snapshot = {"steps": {"a": 1}}
    read_before = claimed.cancel_requested  # what the owner read before the request
    await storage.save_run(claimed, if_owner="host:1:a")

    assert (read_before, claimed.cancel_requested) == (False, True)
    stored = await storage.get_run("run-1")
    assert stored is not None
    assert (stored.status, stored.snapshot, stored.cancel_requested) == (
        status,
        {"steps": {"a": 1}},
        True,
    )


async def test_a_save_without_if_owner_keeps_the_flag_too(storage: Storage) -> None:
    claimed = await _executing(storage)
    await storage.request_cancel("run-1")

    await storage.save_run(claimed)

    assert claimed.cancel_requested is True
    assert await _flag(storage) is True


@pytest.mark.parametrize("status", ["canceled", "success", "failed", "suspended", "pending"])
async def test_a_save_of_any_other_status_clears_the_flag(
    storage: Storage, status: RunStatus
) -> None:
    claimed = await _executing(storage)
    await storage.request_cancel("run-1")

    claimed.status = status
    claimed.owner, claimed.lease_until = None, 0.0
    await storage.save_run(claimed, if_owner="host:1:a")

    assert claimed.cancel_requested is False
    assert await _flag(storage) is False


async def test_a_save_cannot_set_the_flag_of_a_stored_run(storage: Storage) -> None:
    claimed = await _executing(storage)

    claimed.cancel_requested = True
    await storage.save_run(claimed, if_owner="host:1:a")

    assert claimed.cancel_requested is False
    assert await _flag(storage) is False


@pytest.mark.parametrize(("status", "kept"), [("running", True), ("success", False)])
async def test_a_run_saved_for_the_first_time_keeps_its_flag_only_while_executing(
    storage: Storage, status: RunStatus, kept: bool
) -> None:
    run = make_run(status=status, cancel_requested=True)

    await storage.save_run(run)

    assert run.cancel_requested is kept
    assert await _flag(storage) is kept


async def test_a_lost_owners_save_writes_nothing_and_leaves_the_flag(storage: Storage) -> None:
    claimed = await _executing(storage)
    await storage.request_cancel("run-1")

    claimed.status = "success"
    with pytest.raises(RunClaimError, match="no longer owned by host:9:z"):
        await storage.save_run(claimed, if_owner="host:9:z")

    assert await _flag(storage) is True


async def test_claims_and_listings_read_the_flag(storage: Storage) -> None:
    await _executing(storage)
    await storage.request_cancel("run-1")
    await storage.renew_lease("run-1", owner="host:1:a", lease=0)  # its process died

    requeued = await storage.claim_run("run-1", from_status=["running"], to_status="queued")
    restarted = await storage.claim_run(
        "run-1", from_status=["queued"], to_status="running", owner="host:2:b", lease=LIVE
    )
    page = await storage.list_runs()

    assert requeued.cancel_requested is True  # the worker taking it over cancels it
    assert restarted.cancel_requested is True
    assert [run.cancel_requested for run in page.runs] == [True]


async def test_a_claim_to_a_status_that_ends_the_execution_clears_the_flag(
    storage: Storage,
) -> None:
    await _executing(storage)
    await storage.request_cancel("run-1")

    failed = await storage.claim_run(
        "run-1", from_status=EXECUTING_STATUSES, to_status="failed", owner="host:1:a"
    )

    assert failed.cancel_requested is False
    assert await _flag(storage) is False


async def test_a_flag_that_is_not_a_bool_is_refused_before_anything_is_written(
    storage: Storage,
) -> None:
    with pytest.raises(TypeError, match=r"run\.cancel_requested of run 'run-1' must be a bool"):
        await storage.save_run(make_run(cancel_requested="yes"))

    assert await storage.get_run("run-1") is None


# --- renew_lease -------------------------------------------------------------------------


async def test_renew_lease_gives_the_new_lease_and_whether_to_cancel(storage: Storage) -> None:
    await _executing(storage)

    renewed = await storage.renew_lease("run-1", owner="host:1:a", lease=LIVE)
    await storage.request_cancel("run-1")
    told = await storage.renew_lease("run-1", owner="host:1:a", lease=LIVE)
    stored = await storage.get_run("run-1")

    assert isinstance(renewed, Lease)
    assert renewed.cancel_requested is False
    assert told is not None
    assert told.cancel_requested is True
    assert stored is not None
    assert told.until == stored.lease_until
    assert told.until >= renewed.until > 0


async def test_renew_lease_is_none_for_another_owner_an_idle_run_or_an_unknown_one(
    storage: Storage,
) -> None:
    await _executing(storage)
    await storage.insert_run(make_run("idle", status="suspended", owner="host:1:a"))

    assert await storage.renew_lease("run-1", owner="host:9:z", lease=LIVE) is None
    assert await storage.renew_lease("idle", owner="host:1:a", lease=LIVE) is None
    assert await storage.renew_lease("ghost", owner="host:1:a", lease=LIVE) is None


# --- stalled_runs ------------------------------------------------------------------------


async def test_stalled_runs_are_the_executing_runs_whose_lease_is_not_live(
    storage: Storage,
) -> None:
    await _executing(storage, "live")
    await _executing(storage, "released")
    await storage.renew_lease("released", owner="host:1:a", lease=0)  # let it run out now
    await _executing(storage, "no-lease", lease=0)
    await storage.insert_run(make_run("waiting", status="waiting"))
    for status in ("pending", "queued", "suspended", "success"):
        await storage.insert_run(make_run(status, status=status))

    stalled = await storage.stalled_runs()

    assert sorted(run.run_id for run in stalled) == ["no-lease", "released", "waiting"]


async def test_stalled_runs_come_oldest_update_first_then_by_id(
    storage: Storage, clock: FakeClock
) -> None:
    for run_id in ("c", "a", "b"):
        await storage.insert_run(make_run(run_id, status="running"))
    clock.advance(5)
    await storage.save_run(make_run("c", status="running"))  # updated last
    clock.advance(5)
    await storage.insert_run(make_run("d", status="waiting"))

    stalled = await storage.stalled_runs()

    assert [run.run_id for run in stalled] == ["a", "b", "c", "d"]


async def test_stalled_runs_keeps_to_the_given_workflows_and_limit(storage: Storage) -> None:
    await storage.insert_run(make_run("a1", workflow_id="a", status="running"))
    await storage.insert_run(make_run("a2", workflow_id="a", status="running"))
    await storage.insert_run(make_run("b1", workflow_id="b", status="running"))
    await storage.insert_run(make_run("c1", workflow_id="c", status="running"))

    only_ab = await storage.stalled_runs(workflow_ids={"a", "b"})
    one = await storage.stalled_runs(workflow_ids=["a"], limit=1)
    none = await storage.stalled_runs(workflow_ids=())
    unknown = await storage.stalled_runs(workflow_ids=["z"])

    assert sorted(run.run_id for run in only_ab) == ["a1", "a2", "b1"]
    assert [run.run_id for run in one] == ["a1"]
    assert none == unknown == []


async def test_stalled_runs_are_complete(storage: Storage) -> None:
    await _executing(storage, lease=0, resource_id="user-7", snapshot={"steps": {"a": [1]}})
    await storage.request_cancel("run-1")

    [stalled] = await storage.stalled_runs()

    assert stalled == await storage.get_run("run-1")
    assert (stalled.resource_id, stalled.snapshot, stalled.owner) == (
        "user-7",
        {"steps": {"a": [1]}},
        "host:1:a",
    )
    assert stalled.cancel_requested is True


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"workflow_ids": "onboarding"}, TypeError, r"such as \('onboarding',\), not a string"),
        ({"workflow_ids": ["a", 7]}, TypeError, "workflow_ids must hold strings; got 7"),
        ({"limit": 0}, ValueError, "limit must be between 1 and 1000; got 0"),
        ({"limit": "5"}, TypeError, "limit must be an int; got '5'"),
    ],
)
async def test_stalled_runs_refuses_bad_arguments_naming_them(
    storage: Storage, arguments: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        await storage.stalled_runs(**arguments)
