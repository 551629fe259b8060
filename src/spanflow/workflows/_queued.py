"""Handing a run's execution to a queued executor (``executor.py``), the caller's half.

`Submission.submit` claims the stored run ``queued`` from the status the execution needs
(``pending`` for a start, ``suspended`` for a resume, ``running``/``waiting`` under a lapsed
lease for a restart: of concurrent callers exactly one wins), writes what the worker will need
into its snapshot (`QueuedExecution`; the request context as stored: without credentials),
opens the PRODUCER span, and hands the job to the executor. If the executor refuses the job,
the run is put back as it was, unless a worker claimed it meanwhile (the job did reach the
queue). `queued_stream` follows the run's log from where it stood before the job was queued.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from spanflow.context import RequestContext
from spanflow.errors import RunClaimError
from spanflow.storage.base import RunStatus, StoredRun
from spanflow.tracing.context import StoredTraceContext
from spanflow.tracing.instrumentation import JobPublish
from spanflow.tracing.options import TracingOptions, options_from_dict
from spanflow.tracing.redaction import strip_credentials
from spanflow.workflows._observe import observe
from spanflow.workflows._snapshot import QueuedExecution, dump_run_snapshot, read_run_snapshot
from spanflow.workflows.executor import RunJob, RunOp
from spanflow.workflows.stream import WorkflowStream

if TYPE_CHECKING:
    from spanflow.workflows.workflow import Workflow

__all__ = ["QUEUED", "Submission", "queued_stream", "resubmit", "submit_job"]

QUEUED: tuple[RunStatus, ...] = ("queued",)
"""The status of a run whose execution waits for a worker."""

QUEUE_DESTINATION = "spanflow.runs"
"""``messaging.destination.name`` of every publish span."""


@dataclass(slots=True)
class Submission:
    """One execution to hand to the workflow's queued executor."""

    workflow: Workflow
    run_id: str
    queued: QueuedExecution
    from_status: tuple[RunStatus, ...]
    request_context: RequestContext | None
    """The execution's request context; ``None`` keeps the stored one."""
    options: TracingOptions | None
    on_claimed: Callable[[StoredRun], None]
    """Told the run as stored once it is queued (the `Run` keeps it)."""
    parent: StoredTraceContext | None = None
    """The span to publish under when none is current (a lease recovery's restart)."""

    async def submit(self) -> int:
        """Queue the execution; the number of the run's next logged event."""
        storage = self.workflow.storage
        claimed = await storage.claim_run(
            self.run_id, from_status=self.from_status, to_status="queued"
        )
        before = claimed.snapshot
        offset = len(await storage.read_events(self.run_id)) if storage.event_log else 0
        snapshot = read_run_snapshot(claimed)
        snapshot.status = "queued"
        if self.queued.op == "restart" and snapshot.queued is not None:
            # The execution that died never stored a checkpoint: it is done again, resume data
            # and all, rather than continued from a snapshot that does not know of it.
            self.queued = replace(snapshot.queued, previous_status=self.queued.previous_status)
        snapshot.queued = self.queued
        if self.request_context is not None:
            snapshot.request_context = strip_credentials(self.request_context.to_dict())
        claimed.snapshot = dump_run_snapshot(snapshot)
        await storage.save_run(claimed)
        self.on_claimed(claimed)
        await self._hand_over(snapshot.trace, snapshot.request_context, claimed, before)
        return offset

    async def _hand_over(
        self,
        stored_trace: StoredTraceContext | None,
        context: dict[str, object],
        claimed: StoredRun,
        before: dict[str, object],
    ) -> None:
        try:
            await submit_job(
                self.workflow,
                self.run_id,
                self.queued.op,
                self.options,
                RequestContext.coerce(context),
                stored_trace,
                self.parent,
            )
        except BaseException:
            await self._put_back(claimed, before)
            raise

    async def _put_back(self, claimed: StoredRun, before: dict[str, object]) -> None:
        """The executor refused the job: the run as it was before it was queued."""
        storage = self.workflow.storage
        previous = self.queued.previous_status
        try:
            back = await storage.claim_run(self.run_id, from_status=QUEUED, to_status=previous)
        except RunClaimError:
            return  # a worker took it: the job was queued after all
        await storage.save_run(replace(back, snapshot=dict(before)))
        self.on_claimed(replace(claimed, status=previous, snapshot=dict(before)))


async def submit_job(
    workflow: Workflow,
    run_id: str,
    op: RunOp,
    options: TracingOptions | None,
    context: RequestContext,
    stored_trace: StoredTraceContext | None,
    parent: StoredTraceContext | None,
) -> None:
    """Hand one job to the workflow's executor inside its publish span (PRODUCER), whose W3C
    context the job carries."""
    executor = workflow.executor
    publication = workflow.instrumentation.publish_job(
        JobPublish(
            workflow.id,
            run_id,
            op,
            options,
            context,
            stored_trace=stored_trace,
            system=getattr(executor, "messaging_system", "spanflow"),
            destination=QUEUE_DESTINATION,
            parent=parent,
        )
    )
    try:
        await executor.submit(RunJob(op, workflow.id, run_id, publication.carrier))
    except BaseException as error:
        publication.end(error)
        raise
    publication.end()


async def resubmit(workflow: Workflow, stored: StoredRun) -> bool:
    """Hand a queued run's job to the executor again (its first job was lost: the process
    that queued it died before handing it over, or the worker that took it died before
    claiming the run). ``False`` if the run is not queued with an execution. A duplicate job
    is harmless: of two deliveries one claims the run, the other does nothing."""
    snapshot = read_run_snapshot(stored)
    queued = snapshot.queued
    if stored.status != "queued" or queued is None:
        return False
    options = None if queued.tracing is None else options_from_dict(queued.tracing)
    context = RequestContext.coerce(snapshot.request_context)
    trace = snapshot.trace
    await submit_job(workflow, stored.run_id, queued.op, options, context, trace, trace)
    return True


def queued_stream(
    submission: Submission, *, until_end: bool, on_stored: Callable[[StoredRun], None]
) -> WorkflowStream:
    """Submit in the stream's own task, then follow the run's log from where it stood."""
    return observe(
        submission.workflow,
        submission.run_id,
        prepare=submission.submit,
        until_end=until_end,
        on_stored=on_stored,
    )
