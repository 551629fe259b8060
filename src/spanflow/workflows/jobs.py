"""A worker's side of queued executions (``executor.py``): execute a job, fail one that cannot
be executed, and queue the restart of a run whose executor died.

These are what a queue backend (`spanflow.queue`) calls; none of them knows which queue it is
on. A job names its run; everything else (input, resume data, tracing options) is read from
the stored run, so a job delivered twice, or for a run canceled or deleted meanwhile, does
nothing but say so in the log (logger ``spanflow.jobs``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from spanflow.errors import (
    InvalidInputError,
    JobError,
    RunClaimError,
    RunStateError,
    StepNotFoundError,
    StorageError,
)
from spanflow.storage.base import ENDED_STATUSES, Storage, StoredRun
from spanflow.tracing.instrumentation import carried_context
from spanflow.workflows._execution import new_owner
from spanflow.workflows._queued import QUEUED, resubmit
from spanflow.workflows._snapshot import dump_run_snapshot, read_run_snapshot
from spanflow.workflows.executor import RunJob
from spanflow.workflows.results import WorkflowResult, error_wire
from spanflow.workflows.run import Run

if TYPE_CHECKING:
    from spanflow.workflows.workflow import Workflow

__all__ = ["execute_job", "fail_job", "requeue_orphaned", "requeue_stalled"]

logger = logging.getLogger("spanflow.jobs")


async def execute_job(workflow: Workflow, job: RunJob) -> WorkflowResult | None:
    """Execute one job: claim its run ``queued -> running`` (owner and lease), execute it as
    the job's op says, and return how it ended (or suspended).

    Returns ``None``, having executed nothing, when the run is not stored (deleted), is not
    queued (a duplicate delivery, a run canceled while it waited), or another worker claimed
    it first. A run whose stored execution cannot be carried out (its input no longer fits
    the workflow's schema, say) is stored ``failed`` saying why (`fail_job`). A step's failure
    fails the run, not the job; only the store failing raises.
    """
    storage = workflow.storage
    stored = await storage.get_run(job.run_id)
    if stored is None:
        logger.warning("spanflow: job %s: run %s is not stored (deleted?)", job.op, job.run_id)
        return None
    if stored.workflow_id != workflow.id or stored.status != "queued":
        logger.info(
            "spanflow: job %s for run %s: the run is %s (workflow %s), not queued for %s: "
            "nothing to do",
            job.op,
            job.run_id,
            stored.status,
            stored.workflow_id,
            workflow.id,
        )
        return None
    try:
        snapshot = read_run_snapshot(stored)  # damaged, or written by a newer spanflow
        with carried_context(job.carrier):
            task = await Run(workflow, stored)._launch_queued(snapshot)
    except RunClaimError:
        return None
    except _UNEXECUTABLE as error:
        if isinstance(error, StorageError) and not _unreadable(stored):
            raise  # the store failed, not the run: the job fails and the run stays queued
        await fail_job(storage, job.run_id, f"the queued {job.op} cannot be executed: {error}")
        return None
    try:
        return await task
    except RunClaimError:
        return None  # another worker claimed it first
    except _UNEXECUTABLE as error:
        # Failed once claimed: a snapshot that no longer fits the workflow is stored failed
        # (and is not tried again); anything else is the store's failure, for the queue.
        again = await storage.get_run(job.run_id)
        if again is None or again.status not in ENDED_STATUSES:
            raise
        logger.error("spanflow: the %s of run %s failed: %s", job.op, job.run_id, error)
        return None


_UNEXECUTABLE = (StorageError, InvalidInputError, RunStateError, StepNotFoundError, ValueError)
"""What a job's execution may raise when the run's stored execution cannot be carried out (its
input or snapshot no longer fits the workflow, its tracing options are unknown): never retried.
A `StorageError` of the store itself is told apart by reading the run again."""


def _unreadable(stored: StoredRun) -> bool:
    try:
        read_run_snapshot(stored)
    except StorageError:
        return True
    return False


async def fail_job(storage: Storage, run_id: str, error: str) -> bool:
    """Store a queued run ``failed`` with `error` (a `JobError`): for a job no worker can
    execute (an unknown workflow id, a payload that does not decode). Observers of the run
    end with it. ``False`` if no such run is queued (nothing changes then).

    The run is taken under an owner token of this call while it stays ``queued``, then stored
    ``failed`` with its error in one write: an observer never reads it failed without its error,
    and a worker that claims it in between (a duplicate delivery) wins, untouched.
    """
    token = new_owner()
    try:
        claimed = await storage.claim_run(
            run_id, from_status=QUEUED, to_status="queued", owner=token
        )
    except (RunClaimError, LookupError):
        return False
    wire = error_wire(JobError(error))
    try:
        snapshot = read_run_snapshot(claimed)
    except StorageError:  # unreadable: keep what is stored, and say why the run failed
        claimed.snapshot = {**claimed.snapshot, "status": "failed", "error": wire}
    else:
        snapshot.status = "failed"
        snapshot.error = wire
        snapshot.queued = None
        claimed.snapshot = dump_run_snapshot(snapshot)
    claimed.status = "failed"
    try:
        await storage.save_run(claimed, if_owner=token)
    except RunClaimError:
        return False
    logger.error("spanflow: run %s failed: %s", run_id, error)
    return True


async def requeue_stalled(workflow: Workflow, stored: StoredRun) -> bool:
    """Queue a restart of a run left running or waiting by an executor that died (its lease
    ran out): ``True`` if this caller queued it, ``False`` if another did first or its lease
    is live again. The restart re-runs at most the step that was running; its publish span
    is a child of the run's own span, so the run keeps one trace."""
    try:
        snapshot = read_run_snapshot(stored)
    except StorageError as error:
        logger.error("spanflow: stalled run %s cannot be restarted: %s", stored.run_id, error)
        return False
    # A start that died before its first checkpoint has no run span yet: publish under its
    # first job's publish span instead, so the run still keeps one trace.
    queued = snapshot.queued
    carrier = queued.carrier if queued is not None and snapshot.trace is None else {}
    try:
        with carried_context(carrier):
            await Run(workflow, stored)._queue_restart(parent=snapshot.trace)
    except (RunClaimError, RunStateError):
        return False
    return True


async def requeue_orphaned(workflow: Workflow, stored: StoredRun) -> bool:
    """Hand a queued run's job to the queue again, for a run the queue has no live job of
    (the process that queued it died before deferring the job, or the worker that took the
    job died before claiming the run). ``True`` if a job was handed over; ``False`` if the
    run is not queued (any more) or its snapshot cannot be read (logged)."""
    try:
        return await resubmit(workflow, stored)
    except StorageError as error:
        logger.error("spanflow: queued run %s cannot be requeued: %s", stored.run_id, error)
        return False
