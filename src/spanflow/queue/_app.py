"""The procrastinate `App` objects a `QueueExecutor` opens: one to defer jobs, one per worker.

They are separate because they need different connection pools: deferring a job is one short
``INSERT`` (a web service needs a handful of connections however many requests it serves),
while a worker's pool is sized for its ``concurrency`` (each job it takes costs a fetch and a
finish; its ``LISTEN`` connection is a standalone one, outside the pool). The worker's runs
themselves talk to PostgreSQL through the registry's `PostgresStorage` and its own pool.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Final

from spanflow.errors import SpanflowError, StorageError

__all__ = [
    "TASK_NAME",
    "UnexecutableJobError",
    "build_app",
    "deferring_pool_size",
    "worker_pool_size",
]

TASK_NAME: Final = "spanflow.execute_run"
"""The procrastinate task every spanflow job is deferred as (its kwargs: `RunJob.to_dict`)."""

_RETRIES: Final = 5
"""How often a job whose store failed is tried again (2, 4, 8, 16, 32 s apart)."""


class UnexecutableJobError(SpanflowError):
    """No worker can execute this job (a payload that does not decode, an unknown workflow):
    its run is stored ``failed`` where possible and the job ends ``failed``, never retried."""


def worker_pool_size(concurrency: int) -> int:
    """Connections a worker's procrastinate pool opens at most.

    Jobs hold no queue connection while they execute (a fetch, then a finish, each a short
    query), so a quarter of `concurrency` plus two (the heartbeat and the abort poll) is
    enough for bursts of jobs ending together; at most 12, so that many workers on one
    PostgreSQL stay well under its ``max_connections``.
    """
    return min(12, 2 + (concurrency + 3) // 4)


def deferring_pool_size() -> int:
    """Connections the pool that defers jobs opens at most (each defer is one ``INSERT``)."""
    return 4


def build_app(
    postgres_url: str,
    *,
    queue: str,
    max_size: int,
    handler: Callable[[dict[str, Any]], Awaitable[str]] | None = None,
) -> Any:
    """A procrastinate App on `postgres_url`, not opened yet.

    With `handler`, the app's task `TASK_NAME` (on `queue`) calls it with the job's kwargs;
    a job whose store failed (`StorageError`) is retried a few times, any other failure (an
    `UnexecutableJobError`) ends the job ``failed``. Without one the app only defers.
    """
    import procrastinate

    connector = procrastinate.PsycopgConnector(
        conninfo=postgres_url, min_size=1, max_size=max_size, name=f"spanflow-queue-{queue}"
    )
    app = procrastinate.App(connector=connector)
    if handler is not None:
        retry = procrastinate.RetryStrategy(
            max_attempts=_RETRIES, exponential_wait=2, retry_exceptions={StorageError}
        )

        async def execute_run(**payload: Any) -> str:
            return await handler(payload)

        app.task(name=TASK_NAME, queue=queue, retry=retry)(execute_run)
    return app
