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

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from spanflow.context import RequestContext
from spanflow.errors import RunClaimError
from spanflow.storage.base import RunStatus, StoredRun
from spanflow.tracing.context import StoredTraceContext
from spanflow.tracing.ids import parse_traceparent
from spanflow.tracing.instrumentation import JobPublish, Publication, carried_context
from spanflow.tracing.options import TracingOptions, options_from_dict
from spanflow.tracing.redaction import strip_credentials
from spanflow.workflows._execution import new_owner
from spanflow.workflows._observe import observe
from spanflow.workflows._snapshot import QueuedExecution, dump_run_snapshot, read_run_snapshot
from spanflow.workflows.executor import RunJob, RunOp
from spanflow.workflows.stream import WorkflowStream

if TYPE_CHECKING:
    from spanflow.workflows.workflow import Workflow

__all__ = ["QUEUED", "Submission", "hand_over", "publish", "queued_stream", "resubmit"]

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
    on_published: Callable[[dict[str, str]], None] | None = None
    """Told the job's carrier (its publish span's context) once the job is handed over."""

    async def submit(self) -> int:
        """Queue the execution; the number of the run's next logged event.

        The run is claimed ``queued`` under an owner token of this submission, and every
        later write of it is conditional on that token: a cancel (or a worker) that takes
        the run in between is never overwritten. A run canceled before its job was handed
        over stays canceled, and no job is handed over.
        """
        storage = self.workflow.storage
        token = new_owner()
        claimed = await storage.claim_run(
            self.run_id, from_status=self.from_status, to_status="queued", owner=token
        )
        before = dict(claimed.snapshot)
        offset = await storage.count_events(self.run_id)
        snapshot = read_run_snapshot(claimed)
        snapshot.status = "queued"
        if self.queued.op == "restart" and snapshot.queued is not None:
            # The execution that died never stored a checkpoint: it is done again, resume data
            # and all, rather than continued from a snapshot that does not know of it.
            self.queued = replace(snapshot.queued, previous_status=self.queued.previous_status)
        if self.request_context is not None:
            snapshot.request_context = strip_credentials(self.request_context.to_dict())
        context = RequestContext.coerce(snapshot.request_context)
        publication = publish(
            self.workflow,
            self.run_id,
            self.queued.op,
            self.options,
            context,
            snapshot.trace,
            self.parent,
        )
        self.queued.carrier = dict(publication.carrier)
        snapshot.queued = self.queued
        claimed.snapshot = dump_run_snapshot(snapshot)
        try:
            await storage.save_run(claimed, if_owner=token)
        except RunClaimError:  # canceled (or taken) since the claim: leave it as it is now
            publication.end()
            return offset
        self.on_claimed(claimed)
        try:
            await hand_over(self.workflow, self.run_id, self.queued.op, publication)
        except BaseException:
            await self._put_back(claimed, before, token)
            raise
        if self.on_published is not None:
            self.on_published(self.queued.carrier)
        return offset

    async def _put_back(self, claimed: StoredRun, before: dict[str, object], token: str) -> None:
        """The executor refused the job: the run as it was before it was queued, unless it was
        canceled or taken since (the job did reach the queue after all)."""
        previous = self.queued.previous_status
        back = replace(claimed, status=previous, snapshot=before, owner=None, lease_until=0.0)
        try:
            await self.workflow.storage.save_run(back, if_owner=token)
        except RunClaimError:
            return
        self.on_claimed(back)


def publish(
    workflow: Workflow,
    run_id: str,
    op: RunOp,
    options: TracingOptions | None,
    context: RequestContext,
    stored_trace: StoredTraceContext | None,
    parent: StoredTraceContext | None,
) -> Publication:
    """Open the publish span (PRODUCER) of one job; its W3C context is what the job carries."""
    return workflow.instrumentation.publish_job(
        JobPublish(
            workflow.id,
            run_id,
            op,
            options,
            context,
            stored_trace=stored_trace,
            system=workflow.executor.messaging_system,
            destination=QUEUE_DESTINATION,
            parent=parent,
        )
    )


async def hand_over(workflow: Workflow, run_id: str, op: RunOp, publication: Publication) -> None:
    """Submit the job to the workflow's executor, then end its publish span."""
    try:
        await workflow.executor.submit(RunJob(op, workflow.id, run_id, publication.carrier))
    except BaseException as error:
        publication.end(error)
        raise
    publication.end()


async def resubmit(workflow: Workflow, stored: StoredRun) -> bool:
    """Hand a queued run's job to the executor again (its first job was lost: the process
    that queued it died before handing it over, or the worker that took it died before
    claiming the run). ``False`` if the run is not queued with an execution. A duplicate job
    is harmless: of two deliveries one claims the run, the other does nothing. The new
    publish span is a child of the first job's, so the run keeps one trace."""
    snapshot = read_run_snapshot(stored)
    queued = snapshot.queued
    if stored.status != "queued" or queued is None:
        return False
    options = None if queued.tracing is None else options_from_dict(queued.tracing)
    context = RequestContext.coerce(snapshot.request_context)
    with carried_context(queued.carrier):
        publication = publish(
            workflow, stored.run_id, queued.op, options, context, snapshot.trace, snapshot.trace
        )
    await hand_over(workflow, stored.run_id, queued.op, publication)
    return True


def queued_stream(
    submission: Submission, *, until_end: bool, on_stored: Callable[[StoredRun], None]
) -> WorkflowStream:
    """Submit in the stream's own task, then follow the run's log from where it stood.

    The stream's ``handed_over`` resolves once the job is queued (or fails as the submission
    did), and its ``trace_id``/``span_id`` then name the job's publish span: the run span a
    worker opens is its child (a start) or links to it (a resume, a restart)."""
    streams: list[WorkflowStream] = []

    def published(carrier: dict[str, str]) -> None:
        with contextlib.suppress(ValueError, KeyError):
            parent = parse_traceparent(carrier["traceparent"])
            streams[0].trace_id, streams[0].span_id = parent.trace_id, parent.span_id

    submission.on_published = published
    out = observe(
        submission.workflow,
        submission.run_id,
        prepare=submission.submit,
        until_end=until_end,
        on_stored=on_stored,
    )
    streams.append(out)
    return out
