"""Argument checks, refusal errors and answer shapes shared by every store, so all behave alike.

Each check raises `ValueError` (or `TypeError` for a wrong kind of value; `InvalidInputError`,
a `ValueError`, for the id and date filters of `list_runs` and `count_runs`) with a message that
names the offending argument; none touches storage, so a rejected call writes nothing. The
error builders give every store the same wording for a taken id, a refused claim or delete and an
unknown run.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any, cast, get_args

from spanflow.errors import (
    InvalidInputError,
    RunClaimError,
    RunNotFoundError,
    RunStateError,
    StorageError,
)
from spanflow.storage.base import KEEPS_CANCEL_REQUEST, DamagedRun, RunStatus, StoredRun

__all__ = [
    "MAX_PAGE_SIZE",
    "RUN_STATUSES",
    "CreatedBounds",
    "check_dates",
    "check_from_status",
    "check_id_filter",
    "check_if_status",
    "check_lease",
    "check_listing",
    "check_page",
    "check_run",
    "check_stalled",
    "check_status",
    "claim_refused",
    "counts_by_workflow",
    "delete_refused",
    "duplicate_run",
    "lease_lost",
    "lease_refused",
    "old_schema_cannot_cancel",
    "run_filter",
    "run_not_found",
    "saved_cancel_flag",
    "split_readable",
]

RUN_STATUSES: frozenset[str] = frozenset(get_args(RunStatus))
"""Every value `RunStatus` allows."""

_LIFECYCLE_ORDER = {status: index for index, status in enumerate(get_args(RunStatus))}
"""Each status's place in `RunStatus` (pending, running, ..., finished ones last)."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)

CreatedBounds = tuple[float | None, float | None]
"""``(lower, upper)`` from `check_dates`: a run matches when ``lower <= created_at < upper``
(``None``: no bound on that side)."""

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
    if not isinstance(run.cancel_requested, bool):
        raise TypeError(
            f"run.cancel_requested of run {run.run_id!r} must be a bool; "
            f"got {run.cancel_requested!r}"
        )


def saved_cancel_flag(run: StoredRun) -> bool:
    """The ``cancel_requested`` a `save_run` of `run` writes when no run is stored yet: its
    own, unless its status is one that clears the flag (see `KEEPS_CANCEL_REQUEST`)."""
    return run.cancel_requested and run.status in KEEPS_CANCEL_REQUEST


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


def check_listing(
    limit: Any,
    offset: Any,
    status: object,
    *,
    workflow_id: object = None,
    resource_id: object = None,
    from_date: object = None,
    to_date: object = None,
) -> CreatedBounds:
    """Check the arguments of `list_runs` and return its date filters as `CreatedBounds`."""
    check_page(limit, offset)
    if status is not None:
        check_status(status, argument="status")
    check_id_filter(workflow_id, argument="workflow_id")
    check_id_filter(resource_id, argument="resource_id")
    return check_dates(from_date, to_date)


def check_id_filter(value: object, *, argument: str) -> None:
    """Reject an id filter that is neither a string nor ``None`` (stores would disagree on it)."""
    if value is not None and not isinstance(value, str):
        raise InvalidInputError(f"{argument} must be a string or None; got {value!r}")


def check_dates(from_date: object, to_date: object) -> CreatedBounds:
    """Check the date filters of `list_runs` and return them as bounds on ``created_at``.

    A run matches when its ``created_at`` as a datetime,
    ``datetime.fromtimestamp(created_at, UTC)``, lies within ``[from_date, to_date]``; a
    naive datetime means UTC.
    """
    start = _as_utc(from_date, argument="from_date")
    end = _as_utc(to_date, argument="to_date")
    if start is not None and end is not None and start > end:
        raise InvalidInputError(
            f"from_date ({start.isoformat()}) is after to_date ({end.isoformat()}); "
            "no run can match: swap them, or leave one out"
        )
    # ``created_at`` is a float of epoch seconds, finer than a datetime's microseconds, and
    # `datetime.fromtimestamp` rounds it to the nearest microsecond. So the bounds lie half a
    # microsecond either side: a run whose created_at a caller read back as a datetime (the
    # server's createdAt) and passed as from_date or to_date is on the inclusive side, where
    # plain `timestamp()` bounds would drop it whenever the rounding went the other way.
    lower = None if start is None else _first_float_from(start, half_microseconds=-1)
    upper = None if end is None else _first_float_from(end, half_microseconds=+1)
    return lower, upper


def _as_utc(value: object, *, argument: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise InvalidInputError(
            f"{argument} must be a datetime (naive means UTC) or None; "
            f"got {type(value).__name__} {value!r}"
        )
    # Not `value.timestamp()`: for a naive datetime that assumes local time.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _first_float_from(moment: datetime, *, half_microseconds: int) -> float:
    """The smallest float at or after `moment` moved by that many half microseconds.

    Exact (a `Fraction`, then the float just above it): ``created_at >= bound`` holds exactly
    when ``created_at`` is at or after that instant.
    """
    microseconds = (moment - _EPOCH) // _MICROSECOND
    instant = Fraction(2 * microseconds + half_microseconds, 2_000_000)
    bound = float(instant)
    return bound if bound >= instant else math.nextafter(bound, math.inf)


def run_filter(
    workflow_id: str | None,
    status: str | None,
    resource_id: str | None,
    *,
    created: CreatedBounds = (None, None),
    placeholder: str,
    match_all: str,
) -> tuple[str, tuple[object, ...]]:
    """The SQL ``WHERE`` condition of `list_runs` (given filters joined by AND) and its values.

    `created` is what `check_dates` returned; `placeholder` the driver's parameter marker
    (``?``, ``%s``); `match_all` the condition used when no filter is given (``1``, ``true``).
    """
    lower, upper = created
    filters = {
        f"workflow_id = {placeholder}": workflow_id,
        f"status = {placeholder}": status,
        f"resource_id = {placeholder}": resource_id,
        f"created_at >= {placeholder}": lower,
        f"created_at < {placeholder}": upper,
    }
    given = {condition: value for condition, value in filters.items() if value is not None}
    return " AND ".join(given) or match_all, tuple(given.values())


def check_stalled(workflow_ids: Collection[str] | None, limit: Any) -> tuple[str, ...] | None:
    """Check the arguments of `stalled_runs` and return `workflow_ids` as a tuple."""
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise TypeError(f"limit must be an int; got {limit!r}")
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise ValueError(f"limit must be between 1 and {MAX_PAGE_SIZE}; got {limit}")
    if workflow_ids is None:
        return None
    if isinstance(workflow_ids, str):
        raise TypeError(
            f"workflow_ids must be a collection of workflow ids such as ({workflow_ids!r},), "
            "not a string"
        )
    ids = tuple(workflow_ids)
    for workflow_id in ids:
        if not isinstance(workflow_id, str):
            raise TypeError(f"workflow_ids must hold strings; got {workflow_id!r}")
    return ids


def check_if_status(if_status: Collection[RunStatus] | None) -> tuple[RunStatus, ...] | None:
    """Check the `if_status` argument of `delete_run` and return it as a tuple."""
    if if_status is None:
        return None
    if isinstance(if_status, str):
        raise TypeError(
            f"if_status must be a collection of statuses such as ({if_status!r},), not a string"
        )
    statuses = tuple(if_status)
    if not statuses:
        raise ValueError("if_status must name at least one status (or be None: any status)")
    for status in statuses:
        check_status(status, argument="if_status")
    return statuses


def counts_by_workflow(rows: Iterable[tuple[str, str, int]]) -> dict[str, dict[RunStatus, int]]:
    """The answer of `count_runs` from ``(workflow_id, status, count)`` rows.

    Workflows in id order, each one's statuses in `RunStatus` order; zero counts left out.
    """
    counts: dict[str, dict[RunStatus, int]] = {}
    last = len(_LIFECYCLE_ORDER)  # a status this spanflow does not know, if a store holds one
    ordered = sorted(rows, key=lambda row: (row[0], _LIFECYCLE_ORDER.get(row[1], last), row[1]))
    for workflow_id, status, count in ordered:
        if count:
            counts.setdefault(workflow_id, {})[cast(RunStatus, status)] = int(count)
    return counts


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


def check_lease(lease: Any) -> None:
    """Check the `lease` (seconds) of `claim_run` and `renew_lease`."""
    if isinstance(lease, bool) or not isinstance(lease, int | float) or not 0 <= lease < 1e9:
        raise ValueError(f"lease must be a number of seconds, 0 or more; got {lease!r}")


def lease_refused(run_id: str, status: str, owner: str | None, lease_until: float) -> RunClaimError:
    """The error for a claim of a run that another process executes under a live lease."""
    until = datetime.fromtimestamp(lease_until, UTC).isoformat(timespec="seconds")
    return RunClaimError(
        f"cannot claim run {run_id!r}: it is {status} and {owner or 'another process'} holds "
        f"its lease until {until}; a run left by a dead process can be restarted once its "
        "lease has run out"
    )


def old_schema_cannot_cancel(where: str, version: int) -> StorageError:
    """The error for `request_cancel` on tables a read-only store found too old to hold the
    flag (it may not upgrade them)."""
    return StorageError(
        f"{where} is at spanflow schema version {version}, which has no cancel_requested "
        "column, and this store was opened read-only so it cannot upgrade it: open it "
        "writable once (any spanflow process that writes upgrades it) to request cancels"
    )


def lease_lost(run_id: str, owner: str) -> RunClaimError:
    """The error for a write by an executor that no longer owns the run."""
    return RunClaimError(
        f"run {run_id!r} is no longer owned by {owner}: its lease ran out and another process "
        "claimed it; this execution's write was not stored"
    )


def delete_refused(run_id: str, found: str, allowed: Collection[str]) -> RunStateError:
    """The error for a delete that found the run in a status it may not be deleted in."""
    return RunStateError(
        f"cannot delete run {run_id!r}: its status is {found!r}, not "
        f"{' or '.join(repr(status) for status in allowed)}"
    )


def run_not_found(run_id: str) -> RunNotFoundError:
    """The error for an operation on a run id that no stored run has."""
    return RunNotFoundError(f"no stored run has id {run_id!r}")


def duplicate_run(run_id: str) -> RunClaimError:
    """The error for inserting a run whose id is taken."""
    return RunClaimError(f"cannot insert run {run_id!r}: a run with that id already exists")


def split_readable(
    rows: Sequence[Sequence[Any]], read: Callable[[Any], StoredRun]
) -> tuple[list[StoredRun], list[DamagedRun]]:
    """The runs of a page's rows (columns in `RUN_COLUMNS` order), and the rows that `read`
    cannot make a run of (a damaged snapshot) as `DamagedRun`s, so one damaged row never
    breaks a whole listing."""
    runs: list[StoredRun] = []
    damaged: list[DamagedRun] = []
    for row in rows:
        try:
            runs.append(read(row))
        except StorageError as error:
            damaged.append(DamagedRun(str(row[0]), str(row[1]), str(row[3]), str(error)))
    return runs, damaged
