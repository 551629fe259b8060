"""What a worker does besides procrastinate's job loop: decode and execute each job, recover
stalled runs, and stop gracefully on SIGTERM or SIGINT.

A job's outcome is the run's business, not the queue's: a run that fails is stored ``failed``
by `execute_job` and its job still ends ``succeeded`` (it was executed). A job no worker can
execute (its payload does not decode, its workflow is not registered here) fails its run with
the reason when the run id is readable (`fail_job`), and ends ``failed`` without a retry, so a
bad job never loops. Only a store failure (`StorageError`) is retried by the queue; a retried
job that finds its run claimed already does nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import signal
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any

from spanflow.errors import InvalidInputError
from spanflow.queue._app import UnexecutableJobError
from spanflow.tracing.ids import short_repr
from spanflow.workflows.executor import RunJob, WorkerApp
from spanflow.workflows.jobs import execute_job, fail_job, requeue_orphaned, requeue_stalled

if TYPE_CHECKING:
    from spanflow.storage import Storage

__all__ = [
    "ORPHANED_AFTER",
    "JobHandler",
    "recover_forever",
    "recover_once",
    "requeue_orphans",
    "stop_on_signals",
]

_log = logging.getLogger("spanflow.queue")

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class JobHandler:
    """Executes one procrastinate job of task ``spanflow.execute_run`` for `app`."""

    def __init__(self, app: WorkerApp, storage: Storage) -> None:
        self._app = app
        self._storage = storage

    async def __call__(self, payload: dict[str, Any]) -> str:
        """Execute the job whose kwargs are `payload`; a one-line outcome for the queue's log.

        Raises:
            UnexecutableJobError: The payload does not decode or names a workflow this worker
                does not serve (the run is stored ``failed`` first, when it can be found).
            StorageError: The store failed (the queue retries the job).
        """
        try:
            job = RunJob.from_dict(payload)
        except InvalidInputError as err:
            run_id = payload.get("run_id")
            readable = run_id if isinstance(run_id, str) and run_id else None
            await self._fail(readable, f"a worker could not decode the run's job: {err}")
            raise UnexecutableJobError(f"undecodable job {short_repr(payload)}: {err}") from None
        try:
            workflow = self._app.get_workflow(job.workflow_id)
        except LookupError as err:
            message = f"no worker on this queue executes workflow {job.workflow_id!r}: {err}"
            await self._fail(job.run_id, message)
            raise UnexecutableJobError(f"run {job.run_id!r}: {message}") from None
        result = await execute_job(workflow, job)
        if result is None:
            return f"{job.op} of run {job.run_id}: nothing to do (claimed elsewhere or gone)"
        return f"{job.op} of run {job.run_id}: {result.status}"

    async def _fail(self, run_id: str | None, message: str) -> None:
        if run_id is None:
            _log.error("dropping a job with no readable run id: %s", message)
            return
        if not await fail_job(self._storage, run_id, message):
            _log.warning("run %r is not queued (gone, or ended already): %s", run_id, message)


async def recover_once(
    app: WorkerApp, storage: Storage, *, stopping: asyncio.Event | None = None
) -> int:
    """Requeue every stalled run of `app`'s workflows (lease expired) as a restart.

    Each restart job goes to the workflow's executor (the registry's: this queue). Returns how
    many this call requeued; another worker's concurrent recovery of the same run
    loses nothing (exactly one wins the claim). Errors are logged, never raised: recovery is
    tried again on the next round. Once `stopping` is set, no further run is requeued (the one
    being requeued is finished: a run claimed ``queued`` must get its job).
    """
    try:
        stalled = await storage.stalled_runs(workflow_ids=list(app.workflows))
    except Exception:
        _log.exception("looking for stalled runs failed; trying again later")
        return 0
    requeued = 0
    for run in stalled:
        if stopping is not None and stopping.is_set():
            break
        try:
            if await requeue_stalled(app.get_workflow(run.workflow_id), run):
                requeued += 1
                _log.info("requeued stalled run %s of workflow %r", run.run_id, run.workflow_id)
        except Exception:
            _log.exception("requeueing stalled run %s failed; trying again later", run.run_id)
    return requeued


ORPHANED_AFTER = 30.0
"""Seconds a run may stay ``queued`` without a live job before recovery hands its job over
again (a live job: one waiting in the queue, or taken by a worker whose heartbeat is fresh)."""

LiveJob = Callable[[str], Awaitable[bool]]
"""Whether the queue holds a live job for a run id."""


async def requeue_orphans(
    app: WorkerApp,
    storage: Storage,
    has_live_job: LiveJob,
    *,
    older_than: float = ORPHANED_AFTER,
    stopping: asyncio.Event | None = None,
) -> int:
    """Hand the job of every orphaned queued run of `app`'s workflows to the queue again: a
    run ``queued`` for over `older_than` seconds that the queue holds no live job of (its
    caller died between storing it and deferring its job, or the worker that took the job
    died before claiming it). A duplicate job is harmless (one claim wins). Returns how many
    were handed over; errors are logged, never raised."""
    now = time.time()
    requeued = 0
    try:
        page = await storage.list_runs(status="queued", limit=_ORPHAN_PAGE)
    except Exception:
        _log.exception("looking for orphaned queued runs failed; trying again later")
        return 0
    for run in page.runs:
        if stopping is not None and stopping.is_set():
            break
        if run.workflow_id not in app.workflows or run.updated_at > now - older_than:
            continue
        try:
            if not await has_live_job(run.run_id) and await requeue_orphaned(
                app.get_workflow(run.workflow_id), run
            ):
                requeued += 1
                _log.info("requeued orphaned run %s of workflow %r", run.run_id, run.workflow_id)
        except Exception:
            _log.exception("requeueing orphaned run %s failed; trying again later", run.run_id)
    return requeued


_ORPHAN_PAGE = 200
"""Queued runs looked at per round (newest first: the oldest wait for a later round)."""


async def recover_forever(
    app: WorkerApp,
    storage: Storage,
    *,
    every: float,
    stopping: asyncio.Event,
    orphans: tuple[LiveJob, float] | None = None,
) -> None:
    """`recover_once` now (a worker starting after the others died recovers their runs at
    once), then every `every` seconds (±10 %, so that many workers do not look in step),
    until `stopping` is set.

    Stopped by the event, not by canceling the task: a cancel between claiming a stalled run
    ``queued`` and deferring its restart job would leave the run queued with no job.
    """
    while not stopping.is_set():
        await recover_once(app, storage, stopping=stopping)
        if orphans is not None:
            has_live_job, older_than = orphans
            await requeue_orphans(
                app, storage, has_live_job, older_than=older_than, stopping=stopping
            )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), every * random.uniform(0.9, 1.1))


@contextlib.contextmanager
def stop_on_signals(stop: Callable[[], None]) -> Iterator[None]:
    """Call `stop` on the first SIGTERM or SIGINT while inside; a second one gets the handlers
    that were there before (by default: the process ends at once).

    Only the main thread of a process can handle signals; elsewhere (a worker started in a
    thread of a bigger program) nothing is installed and the caller stops the worker by
    canceling its task.
    """
    if os.name == "nt" or threading.current_thread() is not threading.main_thread():
        yield
        return
    loop = asyncio.get_running_loop()
    previous = {sig: signal.getsignal(sig) for sig in _SIGNALS}
    installed = True

    def restore() -> None:
        nonlocal installed
        if not installed:
            return
        installed = False
        for sig, handler in previous.items():
            loop.remove_signal_handler(sig)
            signal.signal(sig, handler)

    def on_signal(sig: signal.Signals) -> None:
        _log.info("%s: no more jobs are taken; running ones may finish", sig.name)
        restore()
        stop()

    for sig in _SIGNALS:
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        yield
    finally:
        restore()
