"""`QueueExecutor`: runs executed by workers on other machines, through procrastinate.

Why procrastinate: it is an async-native job queue on psycopg 3 that keeps its jobs in the
PostgreSQL durable runs already need (no second piece of infrastructure), its jobs outlive the
process that deferred them, and ``LISTEN/NOTIFY`` wakes an idle worker as a job arrives. It was
chosen after Celery (Redis, RabbitMQ), DBOS, taskiq and others were tried here
(``distributed.md`` §3).

What a job is: one execution of a run (`RunJob`: ``start``, ``resume`` or ``restart``, the
run id, the workflow id and the W3C context of the PRODUCER span), deferred as the
procrastinate task ``spanflow.execute_run`` with kwargs `RunJob.to_dict`. Input and resume
data live in the stored run, so a job is small and may be delivered twice: the second delivery
loses the claim ``queued -> running`` and does nothing.

Who owns a run: the claim, not the job. A worker renews the run's lease while it executes; if
the worker is killed (``kill -9``, a lost machine), the lease expires and the recovery loop of
any worker requeues the run as a ``restart`` (at most the step that was running runs again).
The dead worker's procrastinate job stays ``doing`` in ``procrastinate_jobs``; that is
harmless (nothing reads it, and a new restart job is what executes the run), and
procrastinate's own stalled-job tools may clear it. Successful jobs are deleted as they end;
failed ones stay for inspection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from typing import TYPE_CHECKING, Any, Final

from spanflow.errors import InvalidInputError, StorageError
from spanflow.queue._app import (
    TASK_NAME,
    build_app,
    deferring_pool_size,
    worker_pool_size,
)
from spanflow.queue._migrate import apply_queue_schema, describe_url
from spanflow.queue._worker import ORPHANED_AFTER, JobHandler, recover_forever, stop_on_signals
from spanflow.workflows.executor import RunJob, WorkerApp

if TYPE_CHECKING:
    from spanflow.storage import Storage

__all__ = ["DEFAULT_QUEUE", "QueueExecutor"]

DEFAULT_QUEUE: Final = "spanflow"
"""The procrastinate queue spanflow's jobs go to unless told otherwise."""

_log = logging.getLogger("spanflow.queue")


class QueueExecutor:
    """Store each execution of a run as a job on a procrastinate queue in PostgreSQL; workers
    (``spanflow worker module:app``, or `run_worker`) take and execute them.

    Give it to the registry: ``Spanflow(workflows=[...], storage=PostgresStorage(url),
    executor=QueueExecutor(url))``; the registry's store must be one every worker can read
    (PostgreSQL; usually the same database as the queue). A worker's runs checkpoint
    through that store's own pool: give it about half the worker's concurrency in
    connections (``PostgresStorage(url, max_size=...)``, default 10) when runs are short.

    The connections are opened lazily, in the event loop of the first `submit` (a pool belongs
    to its loop), and released by `close`.
    """

    in_process = False
    messaging_system = "procrastinate"
    """``messaging.system`` of the publish spans of its jobs."""

    def __init__(
        self,
        postgres_url: str,
        *,
        queue: str = DEFAULT_QUEUE,
        recover_every: float = 5.0,
        orphaned_after: float = ORPHANED_AFTER,
        shutdown_grace: float = 30.0,
        handle_signals: bool = True,
    ) -> None:
        """Create the executor; nothing connects yet.

        Args:
            postgres_url: The PostgreSQL holding the queue (``postgresql://user@host/db``).
            queue: The procrastinate queue of this registry's jobs; registries with different
                workflows need different queues (a worker only takes its own queue's jobs).
            recover_every: Seconds between two looks for stalled runs in each worker.
            orphaned_after: Seconds a run may stay ``queued`` with no live job in the queue
                before a worker's recovery hands its job over again (its caller died between
                storing it and deferring the job, or the worker that took the job died before
                claiming the run).
            shutdown_grace: On SIGTERM, seconds running jobs may take to finish before they
                are canceled (their runs are then restarted by a worker's recovery once their
                leases expire).
            handle_signals: Stop `run_worker` gracefully on SIGTERM and SIGINT (in the main
                thread). ``False`` when the worker is embedded in a program that handles
                signals itself (a web server, say): that program stops the worker by
                canceling the `run_worker` task, which stops it just as gracefully.
        """
        if not isinstance(postgres_url, str) or not postgres_url.strip():
            raise InvalidInputError(
                "QueueExecutor needs a PostgreSQL URL, e.g. postgresql://user@host:5432/db"
            )
        if not queue or not isinstance(queue, str):
            raise InvalidInputError(f"queue must be a non-empty string; got {queue!r}")
        if not 0 < recover_every <= 3600:
            raise InvalidInputError(
                f"recover_every must be between 0 and 3600 seconds; got {recover_every!r}"
            )
        if not 0 <= shutdown_grace <= 86_400:
            raise InvalidInputError(
                f"shutdown_grace must be between 0 and 86400 seconds; got {shutdown_grace!r}"
            )
        self.postgres_url = postgres_url
        self.queue = queue
        if not 0 < orphaned_after <= 86_400:
            raise InvalidInputError(
                f"orphaned_after must be between 0 and 86400 seconds; got {orphaned_after!r}"
            )
        self.recover_every = recover_every
        self.orphaned_after = orphaned_after
        self.shutdown_grace = shutdown_grace
        self.handle_signals = handle_signals
        self._where = describe_url(postgres_url)
        self._deferring: Any = None
        self._deferring_loop: asyncio.AbstractEventLoop | None = None
        self._opening: asyncio.Lock | None = None
        self._opening_loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        return f"QueueExecutor({self._where!r}, queue={self.queue!r})"

    async def submit(self, job: RunJob) -> None:
        """Defer `job` (task ``spanflow.execute_run``, kwargs `RunJob.to_dict`) on this queue;
        return once it is committed.

        Raises:
            StorageError: PostgreSQL cannot be reached, or holds no procrastinate schema yet
                (the message says to run ``spanflow db migrate``).
        """
        app = await self._deferring_app()
        try:
            await app.configure_task(TASK_NAME, queue=self.queue).defer_async(**job.to_dict())
        except Exception as err:
            raise self._queue_error(f"deferring the {job.op} of run {job.run_id!r}", err) from err

    async def run_worker(self, app: WorkerApp, *, concurrency: int = 20) -> None:
        """Take this queue's jobs and execute them for `app`'s workflows, up to `concurrency`
        at once, until SIGTERM or SIGINT (then: no new jobs, running ones get
        `shutdown_grace` seconds, the rest are canceled) or until the task is canceled
        (the same graceful stop, then `asyncio.CancelledError`).

        First applies the migrations (as `migrate` does); besides the jobs, every `recover_every`
        seconds it requeues stalled runs of `app`'s workflows (a restart each).

        Raises:
            InvalidInputError: `concurrency` is below 1, or `app`'s store is not one other
                processes can read.
            StorageError: PostgreSQL cannot be reached or its tables are unusable.
        """
        if not isinstance(concurrency, int) or concurrency < 1:
            raise InvalidInputError(f"concurrency must be a whole number >= 1; got {concurrency!r}")
        storage = _storage_of(app)
        await self._migrate(storage)
        worker_app = build_app(
            self.postgres_url,
            queue=self.queue,
            max_size=worker_pool_size(concurrency),
            handler=JobHandler(app, storage),
        )
        try:
            await worker_app.open_async()
        except Exception as err:
            raise self._queue_error("opening the worker's connections", err) from err
        try:
            await self._work(worker_app, app, storage, concurrency)
        finally:
            await worker_app.close_async()

    async def _migrate(self, storage: Storage) -> None:
        """What `migrate` does, for this registry: its store creates or upgrades its own
        tables (in whichever database and schema it was given), and the queue's database
        gets procrastinate's schema if it has none."""
        open_store = getattr(storage, "open", None)
        if open_store is not None:
            await open_store()
        _log.info("spanflow tables: ready in %r", storage)
        applied = await apply_queue_schema(self.postgres_url)
        state = "applied" if applied else "present, left as it is"
        _log.info("procrastinate schema at %s: %s", self._where, state)

    async def _work(
        self, worker_app: Any, app: WorkerApp, storage: Storage, concurrency: int
    ) -> None:
        worker = asyncio.create_task(
            worker_app.run_worker_async(
                queues=[self.queue],
                concurrency=concurrency,
                name=f"spanflow@{socket.gethostname()}:{os.getpid()}",
                install_signal_handlers=False,
                shutdown_graceful_timeout=self.shutdown_grace,
                delete_jobs="successful",
            ),
            name="spanflow-queue-worker",
        )
        stopping = asyncio.Event()

        async def has_live_job(run_id: str) -> bool:
            return await _has_live_job(worker_app, self.queue, run_id)

        recovery = asyncio.create_task(
            recover_forever(
                app,
                storage,
                every=self.recover_every,
                stopping=stopping,
                orphans=(has_live_job, self.orphaned_after),
            ),
            name="spanflow-queue-recovery",
        )
        stopped = False

        def stop() -> None:
            nonlocal stopped
            stopped = True
            stopping.set()
            worker.cancel()  # procrastinate's worker stops gracefully when canceled

        try:
            with stop_on_signals(stop) if self.handle_signals else contextlib.nullcontext():
                await worker
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if not stopped or (current is not None and current.cancelling()):
                raise
        finally:
            stopping.set()
            await _finish(recovery, within=max(self.shutdown_grace, 5.0))
            await self._close_deferring_here()
        _log.info("worker stopped")

    async def close(self) -> None:
        """Close the connections `submit` opened (a later `submit` opens new ones)."""
        await self._close_deferring_here()

    async def _deferring_app(self) -> Any:
        loop = asyncio.get_running_loop()
        if self._deferring is not None and self._deferring_loop is loop:
            return self._deferring
        if self._opening is None or self._opening_loop is not loop:
            self._opening, self._opening_loop = asyncio.Lock(), loop
        async with self._opening:
            if self._deferring is not None and self._deferring_loop is loop:
                return self._deferring
            # A pool opened in another (finished) loop cannot be used or closed from this one.
            app = build_app(self.postgres_url, queue=self.queue, max_size=deferring_pool_size())
            try:
                await app.open_async()
            except Exception as err:
                raise self._queue_error("connecting", err) from err
            self._deferring, self._deferring_loop = app, loop
            return app

    async def _close_deferring_here(self) -> None:
        app, loop = self._deferring, self._deferring_loop
        self._deferring = self._deferring_loop = None
        if app is not None and loop is asyncio.get_running_loop():
            await app.close_async()

    def _queue_error(self, doing: str, err: BaseException) -> StorageError:
        cause = err.__cause__ or err
        text = " ".join(str(cause).split()) or type(cause).__name__
        hint = ""
        if type(cause).__name__ in ("UndefinedTable", "UndefinedFunction", "UndefinedObject"):
            hint = (
                "; the database has no procrastinate schema yet: run 'spanflow db migrate "
                "--storage URL' (or start a worker, which applies it)"
            )
        return StorageError(f"job queue at {self._where}: {doing} failed: {text}{hint}")


_LIVE_JOB: Final = """
    SELECT EXISTS (
        SELECT 1 FROM procrastinate_jobs AS job
        LEFT JOIN procrastinate_workers AS worker ON worker.id = job.worker_id
        WHERE job.queue_name = %(queue)s AND job.task_name = %(task)s
          AND job.args ->> 'run_id' = %(run_id)s
          AND (job.status = 'todo' OR (job.status = 'doing'
               AND worker.last_heartbeat > now() - make_interval(secs => %(stale)s)))
    ) AS live
"""
_STALE_WORKER: Final = 30.0
"""Seconds after its last heartbeat a procrastinate worker counts as gone (its default)."""


async def _has_live_job(worker_app: Any, queue: str, run_id: str) -> bool:
    """Whether `queue` holds a job for `run_id` that is waiting, or taken by a live worker."""
    row = await worker_app.connector.execute_query_one_async(
        _LIVE_JOB, queue=queue, task=TASK_NAME, run_id=run_id, stale=_STALE_WORKER
    )
    return bool(row["live"])


async def _finish(task: asyncio.Task[None], *, within: float) -> None:
    """Wait for `task` to end by itself, at most `within` seconds; then cancel it."""
    done, _ = await asyncio.wait({task}, timeout=within)
    if not done:
        task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def _storage_of(app: WorkerApp) -> Storage:
    """The registry's store, which must be readable from other processes."""
    storage = app.storage
    if not storage.durable:
        raise InvalidInputError(
            f"a worker executes runs stored by other processes, but the registry's store "
            f"{storage!r} lives in one process only: give the registry a PostgresStorage "
            "(storage=PostgresStorage(url))"
        )
    return storage
