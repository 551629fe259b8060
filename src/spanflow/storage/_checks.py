"""Argument checks and refusal errors shared by every store, so that all of them behave alike.

Each check raises `ValueError` (or `TypeError` for a wrong kind of value) with a message that
names the offending argument; none touches storage, so a rejected call writes nothing. The error
builders give every store the same wording for a taken id, a refused claim and an unknown run.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, get_args

from spanflow.errors import RunClaimError, RunNotFoundError
from spanflow.storage.base import RunStatus, StoredRun

__all__ = [
    "MAX_PAGE_SIZE",
    "RUN_STATUSES",
    "check_from_status",
    "check_listing",
    "check_page",
    "check_run",
    "check_status",
    "claim_refused",
    "duplicate_run",
    "run_filter",
    "run_not_found",
]

RUN_STATUSES: frozenset[str] = frozenset(get_args(RunStatus))
"""Every value `RunStatus` allows."""

MAX_PAGE_SIZE = 1000
"""The largest `limit` that `list_runs` accepts."""


def check_status(value: object, *, argument: str) -> None:
    """Reject anything that is not one of the `RunStatus` values."""
    if value not in RUN_STATUSES:
        raise ValueError(
            f"{argument} must be one of {', '.join(sorted(RUN_STATUSES))}; got {value!r}"
        )


def check_run(run: StoredRun) -> None:
    """Reject a run whose indexed fields a store could not write."""
    if not isinstance(run.run_id, str) or not run.run_id:
        raise ValueError(f"run.run_id must be a non-empty string; got {run.run_id!r}")
    if not isinstance(run.workflow_id, str) or not run.workflow_id:
        raise ValueError(
            f"run.workflow_id of run {run.run_id!r} must be a non-empty string; "
            f"got {run.workflow_id!r}"
        )
    if run.resource_id is not None and not isinstance(run.resource_id, str):
        raise ValueError(
            f"run.resource_id of run {run.run_id!r} must be a string or None; "
            f"got {run.resource_id!r}"
        )
    check_status(run.status, argument=f"run.status of run {run.run_id!r}")
    if not isinstance(run.snapshot, dict):
        raise TypeError(
            f"run.snapshot of run {run.run_id!r} must be a dict; got {type(run.snapshot).__name__}"
        )


def check_from_status(
    from_status: Collection[RunStatus], to_status: RunStatus
) -> tuple[RunStatus, ...]:
    """Check the arguments of `claim_run` and return `from_status` as a tuple."""
    if isinstance(from_status, str):
        # A bare string is a collection of characters: `from_status="suspended"` would
        # otherwise quietly never match anything.
        raise TypeError(
            f"from_status must be a collection of statuses such as ({from_status!r},), not a string"
        )
    statuses = tuple(from_status)
    if not statuses:
        raise ValueError("from_status must name at least one status")
    for status in statuses:
        check_status(status, argument="from_status")
    check_status(to_status, argument="to_status")
    return statuses


def check_listing(limit: Any, offset: Any, status: object) -> None:
    """Check the arguments of `list_runs` (paging, and the status filter when given)."""
    check_page(limit, offset)
    if status is not None:
        check_status(status, argument="status")


def run_filter(
    workflow_id: str | None,
    status: str | None,
    resource_id: str | None,
    *,
    placeholder: str,
    match_all: str,
) -> tuple[str, tuple[object, ...]]:
    """The SQL ``WHERE`` condition of `list_runs` (given filters joined by AND) and its values.

    `placeholder` is the driver's parameter marker (``?``, ``%s``); `match_all` the condition
    used when no filter is given (``1``, ``true``).
    """
    filters = {"workflow_id": workflow_id, "status": status, "resource_id": resource_id}
    given = {column: value for column, value in filters.items() if value is not None}
    where = " AND ".join(f"{column} = {placeholder}" for column in given) or match_all
    return where, tuple(given.values())


def check_page(limit: Any, offset: Any) -> None:
    """Check the paging arguments of `list_runs`."""
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise TypeError(f"limit must be an int; got {limit!r}")
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise ValueError(f"limit must be between 1 and {MAX_PAGE_SIZE}; got {limit}")
    if isinstance(offset, bool) or not isinstance(offset, int):
        raise TypeError(f"offset must be an int; got {offset!r}")
    if offset < 0:
        raise ValueError(f"offset must be 0 or more; got {offset}")


def claim_refused(run_id: str, found: str, expected: Collection[str]) -> RunClaimError:
    """The error for a claim that found the run in a status it may not be claimed from."""
    return RunClaimError(
        f"cannot claim run {run_id!r}: its status is {found!r}, not "
        f"{' or '.join(repr(status) for status in expected)} (another caller claimed it first "
        "or it already moved on)"
    )


def run_not_found(run_id: str) -> RunNotFoundError:
    """The error for an operation on a run id that no stored run has."""
    return RunNotFoundError(f"no stored run has id {run_id!r}")


def duplicate_run(run_id: str) -> RunClaimError:
    """The error for inserting a run whose id is taken."""
    return RunClaimError(f"cannot insert run {run_id!r}: a run with that id already exists")
