"""The `Storage` protocol: where runs and their snapshots live between (and across) processes.

Storage sees plain data only. A run is a `StoredRun`: a few indexed columns (ids, status,
timestamps) plus `snapshot`, a JSON-able dict that the engine alone interprets. Every store
(memory, SQLite, PostgreSQL) passes the same contract tests in ``tests/storage``.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

__all__ = ["RunPage", "RunStatus", "Storage", "StoredRun"]

RunStatus = Literal[
    "pending", "running", "waiting", "suspended", "success", "failed", "canceled", "tripwire"
]
"""Every status a stored run can have. ``pending``: created, not started yet."""


@dataclass(slots=True)
class StoredRun:
    """One run as a store keeps it."""

    run_id: str
    workflow_id: str
    status: RunStatus
    snapshot: dict[str, Any]
    """Everything needed to continue the run; JSON-able, opaque to the store."""
    resource_id: str | None = None
    created_at: float = 0.0
    """Epoch seconds (UTC). Stores fill it on insert when it is 0."""
    updated_at: float = 0.0
    """Epoch seconds (UTC). Stores set it on every write."""


@dataclass(slots=True)
class RunPage:
    """A page of `list_runs`, newest first, with the total number of matching runs."""

    runs: list[StoredRun]
    total: int
    limit: int
    offset: int
    extra: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Storage(Protocol):
    """Where runs live. Implementations: `MemoryStorage`, `SqliteStorage`, `PostgresStorage`."""

    durable: bool
    """Whether runs outlive the process. The engine saves a snapshot after every top-level
    entry only to durable stores (so a crash loses at most the running step); a store that
    dies with the process gets the snapshots that matter in it: created, waiting, suspended,
    finished."""

    async def insert_run(self, run: StoredRun) -> None:
        """Store a new run; raise `RunClaimError` if a run with that id already exists."""
        ...

    async def save_run(self, run: StoredRun) -> None:
        """Write the run's current status and snapshot (insert or replace)."""
        ...

    async def get_run(self, run_id: str) -> StoredRun | None:
        """The stored run, or ``None``."""
        ...

    async def claim_run(
        self, run_id: str, *, from_status: Collection[RunStatus], to_status: RunStatus
    ) -> StoredRun:
        """Atomically move a run from one of `from_status` to `to_status` and return it.

        Exactly one of several concurrent claimers wins; the others get `RunClaimError`
        naming the status they found. An unknown id raises `RunNotFoundError`.
        """
        ...

    async def list_runs(
        self,
        *,
        workflow_id: str | None = None,
        status: RunStatus | None = None,
        resource_id: str | None = None,
        limit: int = 20,
        offset: int = 0,
    ) -> RunPage:
        """Runs matching every given filter, newest first (by `created_at`, then `run_id`)."""
        ...

    async def delete_run(self, run_id: str) -> bool:
        """Remove a run; ``True`` if it existed."""
        ...

    async def close(self) -> None:
        """Release connections and files. Safe to call twice."""
        ...
