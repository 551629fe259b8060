"""The workflow routes (``server.md`` §2), on the engine's public API.

Every execution is started with the engine's streaming call (`Run.stream`, `Run.resume_stream`)
whatever the route, because that call checks the input, state, request context and tracing
options *before* it returns (a bad body is a 400 and the run stays as it was) and runs the
execution in its own asyncio task: a client that disconnects, or a request handler that is
cancelled, never cancels the run. The routes differ in what they wait for:

- ``stream``, ``resume-stream``: the first event (``workflow-start``: the run was claimed and
  its span opened, so the ``traceparent`` response header can name it; a lost claim is still a
  409 here), then the records as they come;
- ``start``, ``resume``: the first event, then ``{"message"}``;
- ``start-async``, ``resume-async``: the result (awaited through `asyncio.shield`).

Runs executing here are kept in `LiveRuns` so that ``cancel`` reaches the task that executes
the run (a fresh `Run` object would only mark the stored row) and a resume waits for the
execution that is still storing its suspension.

Streaming a run that was started already is a 409 naming what to do instead (``resume-stream``
for a suspended run, ``observe`` to read what a run did); Mastra would run a suspended run again
from the start under the same id.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from spanflow.errors import StorageError
from spanflow.registry import Spanflow
from spanflow.server.bodies import (
    CreateRunBody,
    RestartBody,
    ResumeBody,
    StreamBody,
    query_date,
    query_int,
    query_status,
    read_body,
    tracing_options,
)
from spanflow.server.descriptions import (
    parse_fields,
    run_listing,
    run_state,
    workflow_info,
)
from spanflow.server.errors import LOGGER, ApiError
from spanflow.server.live import LiveRuns
from spanflow.server.streaming import EventStreamResponse, StreamSlots, workflow_records
from spanflow.storage.base import ENDED_STATUSES, EXECUTING_STATUSES, StoredRun
from spanflow.tracing.http import traceparent_header
from spanflow.workflows import read_run_snapshot
from spanflow.workflows.events import WorkflowEvent
from spanflow.workflows.results import WorkflowResult
from spanflow.workflows.run import Run
from spanflow.workflows.stream import WorkflowStream
from spanflow.workflows.workflow import Workflow

__all__ = ["ALL_RUNS", "DEFAULT_PAGE_SIZE", "WorkflowRoutes"]

DEFAULT_PAGE_SIZE: Final = 100
"""Runs per page of ``GET /workflows/:id/runs`` when neither ``perPage`` nor ``limit`` is given."""

ALL_RUNS: Final = 1000
"""The page size of ``limit=false``: the largest page every store lists."""

_RECORDS: Final = "text/plain"


@dataclass(slots=True)
class WorkflowRoutes:
    """The handlers of the workflow routes, sharing the registry and server settings."""

    spanflow: Spanflow
    max_body_bytes: int
    slots: StreamSlots
    live: LiveRuns = field(default_factory=LiveRuns)

    # -- definitions --------------------------------------------------------------------------

    async def list_workflows(self, request: Request) -> Response:
        """``GET /workflows``: ``{id: info}``."""
        workflows = self.spanflow.workflows
        return JSONResponse({wid: workflow_info(wf) for wid, wf in workflows.items()})

    async def get_workflow(self, request: Request) -> Response:
        """``GET /workflows/:workflowId``."""
        return JSONResponse(workflow_info(self._workflow(request)))

    # -- starting -----------------------------------------------------------------------------

    async def create_run(self, request: Request) -> Response:
        """``POST /workflows/:workflowId/create-run?runId=``: a pending run, ``{runId}``."""
        workflow = self._workflow(request)
        body = await read_body(request, CreateRunBody, self.max_body_bytes)
        run = await workflow.create_run(_query_run_id(request), body.resourceId)
        return JSONResponse({"runId": run.run_id})

    async def stream(self, request: Request) -> Response:
        """``POST /workflows/:workflowId/stream?runId=``: start the run, stream its events."""
        self._check_slots()
        stream = await self._start(request, _required_run_id(request), streaming=True)
        return await self._records(stream)

    async def start(self, request: Request) -> Response:
        """``POST /workflows/:workflowId/start?runId=``: start a created run, do not wait."""
        workflow = self._workflow(request)
        run_id = _required_run_id(request)
        if await workflow.get_run(run_id) is None:
            raise _no_run(workflow, run_id)
        stream = await self._start(request, run_id, streaming=False)
        await _first_event(stream)
        headers = _trace_headers(stream.trace_id, stream.span_id)
        return JSONResponse({"message": "Workflow run started"}, headers=headers)

    async def start_async(self, request: Request) -> Response:
        """``POST /workflows/:workflowId/start-async[?runId=]``: start, answer the result."""
        stream = await self._start(request, _query_run_id(request), streaming=False)
        return await _result_response(stream)

    async def _start(
        self, request: Request, run_id: str | None, *, streaming: bool
    ) -> WorkflowStream:
        workflow = self._workflow(request)
        body = await read_body(request, StreamBody, self.max_body_bytes)
        options = tracing_options(body.tracingOptions)
        existed = run_id is not None and await workflow.get_run(run_id) is not None
        run = await workflow.create_run(run_id, body.resourceId)
        _check_startable(run, request.url.path.rsplit("/", 1)[0])
        try:
            stream = run.stream(
                body.inputData,
                initial_state=body.initialState,
                request_context=body.requestContext,
                tracing_options=options,
                close_on_suspend=body.closeOnSuspend if streaming else True,
            )
        except BaseException:
            if not existed:
                await run.discard()  # a bad request leaves no run behind
            raise
        held = stream if streaming and not body.closeOnSuspend else None
        self.live.add(run, stream.result, held)
        return stream

    # -- resuming -----------------------------------------------------------------------------

    async def resume_stream(self, request: Request) -> Response:
        """``POST /workflows/:workflowId/resume-stream?runId=``: resume, stream its events."""
        self._check_slots()
        workflow, run_id, body = await self._resume_request(request)
        if self.live.held(run_id) is not None:
            raise ApiError(
                409,
                f"run {run_id!r} is followed by a stream opened with closeOnSuspend: false, which "
                "gets the resumed events: resume it with POST .../resume or .../resume-async",
            )
        return await self._records(await self._resume_fresh(workflow, run_id, body))

    async def resume(self, request: Request) -> Response:
        """``POST /workflows/:workflowId/resume?runId=``: resume, do not wait."""
        workflow, run_id, body = await self._resume_request(request)
        held = self.live.held(run_id)
        if held is not None:
            await _resume_held(*held, body, until_end=False)
            return JSONResponse({"message": "Workflow run resumed"})
        stream = await self._resume_fresh(workflow, run_id, body)
        await _first_event(stream)
        headers = _trace_headers(stream.trace_id, stream.span_id)
        return JSONResponse({"message": "Workflow run resumed"}, headers=headers)

    async def resume_async(self, request: Request) -> Response:
        """``POST /workflows/:workflowId/resume-async?runId=``: resume, answer the result."""
        workflow, run_id, body = await self._resume_request(request)
        held = self.live.held(run_id)
        if held is not None:
            result = await _resume_held(*held, body, until_end=True)
            assert result is not None
            return _json_result(result)
        return await _result_response(await self._resume_fresh(workflow, run_id, body))

    async def _resume_request(self, request: Request) -> tuple[Workflow, str, ResumeBody]:
        workflow = self._workflow(request)
        run_id = _required_run_id(request)
        body = await read_body(request, ResumeBody, self.max_body_bytes)
        tracing_options(body.tracingOptions)  # checked before anything changes
        if await workflow.get_run(run_id) is None:
            raise _no_run(workflow, run_id)
        return workflow, run_id, body

    async def _resume_fresh(
        self, workflow: Workflow, run_id: str, body: ResumeBody
    ) -> WorkflowStream:
        await self.live.wait(run_id)  # still storing its suspension: wait for it
        run = await workflow.create_run(run_id)
        stream = run.resume_stream(
            body.resumeData,
            step=_step_ref(body),
            label=body.label,
            foreach_index=body.forEachIndex,
            request_context=body.requestContext,
            tracing_options=tracing_options(body.tracingOptions),
        )
        self.live.add(run, stream.result)
        return stream

    # -- observing ----------------------------------------------------------------------------

    async def observe(self, request: Request) -> Response:
        """``POST /workflows/:workflowId/observe?runId=&offset=``: the run's stored events from
        ``offset``, then live ones until it ends or suspends (from any process sharing the
        store)."""
        workflow = self._workflow(request)
        run_id = _required_run_id(request)
        offset = query_int(request.query_params, "offset", minimum=0) or 0
        stored = await workflow.get_run(run_id)
        if stored is None:
            raise _no_run(workflow, run_id)
        if not workflow.storage.event_log:
            raise ApiError(
                501,
                f"the run store keeps no event log (event_log=False): {run_id!r} "
                "cannot be observed",
            )
        self._check_slots()
        stream = workflow.observe(run_id, offset=offset)

        async def records() -> AsyncIterator[bytes]:
            try:
                async for record in workflow_records(None, aiter(stream)):
                    yield record
            finally:
                await stream.aclose()  # a client that left stops the reading, not the run

        # Headers at once, naming the run's span as stored: the next event may be an hour away.
        return EventStreamResponse(
            records(),
            media_type=_RECORDS,
            headers=_stored_trace(stored),
            slots=self.slots,
        )

    # -- run admin ----------------------------------------------------------------------------

    async def cancel(self, request: Request) -> Response:
        """``POST /workflows/:workflowId/runs/:runId/cancel``."""
        workflow = self._workflow(request)
        run_id = request.path_params["runId"]
        stored = await workflow.get_run(run_id)
        if stored is None:
            raise _no_run(workflow, run_id)
        if stored.status in ENDED_STATUSES:
            raise ApiError(409, f"run {run_id!r} is {stored.status}: nothing to cancel")
        run = self.live.get(run_id) or await workflow.create_run(run_id)
        await run.cancel()
        return JSONResponse({"message": "Workflow run canceled"})

    async def restart(self, request: Request) -> Response:
        """``POST /workflows/:workflowId/restart?runId=``: re-drive a run a dead process left
        running, do not wait."""
        await self._restart(request)
        return JSONResponse({"message": "Workflow run restarted"})

    async def restart_async(self, request: Request) -> Response:
        """``POST /workflows/:workflowId/restart-async?runId=``: re-drive it, answer the
        result."""
        return _json_result(await asyncio.shield(await self._restart(request)))

    async def _restart(self, request: Request) -> asyncio.Future[WorkflowResult]:
        workflow = self._workflow(request)
        run_id = _required_run_id(request)
        body = await read_body(request, RestartBody, self.max_body_bytes)
        options = tracing_options(body.tracingOptions)
        stored = await workflow.get_run(run_id)
        if stored is None:
            raise _no_run(workflow, run_id)
        if self.live.get(run_id) is not None and workflow.executor.in_process:
            # With a queued executor a live entry only follows the run's log; whether its
            # worker is alive is for the claim to decide (a live lease is a 409 there).
            raise ApiError(409, f"run {run_id!r} is executing in this server; nothing to restart")
        if stored.status not in EXECUTING_STATUSES:
            raise ApiError(
                409,
                f"run {run_id!r} is {stored.status}: only a run left running by a process that "
                "died can be restarted"
                + (
                    " (resume a suspended run with resume-stream)"
                    if stored.status == "suspended"
                    else ""
                ),
            )
        run = await workflow.create_run(run_id)
        # Claimed before answering: a run another live process executes is a 409 here.
        task = await run.begin_restart(request_context=body.requestContext, tracing_options=options)
        task.add_done_callback(_log_failure)
        self.live.add(run, task)
        return task

    async def list_runs(self, request: Request) -> Response:
        """``GET /workflows/:workflowId/runs``: ``{runs, total}``, newest first."""
        workflow = self._workflow(request)
        query = request.query_params
        per_page = _page_size(query, "perPage")
        if per_page is None:
            per_page = _page_size(query, "limit")
        limit = per_page or DEFAULT_PAGE_SIZE
        page = query_int(query, "page", minimum=0)
        offset = page * limit if page is not None else query_int(query, "offset", minimum=0) or 0
        try:
            listed = await workflow.list_runs(
                status=query_status(query),
                resource_id=query.get("resourceId") or None,
                from_date=query_date(query, "fromDate"),
                to_date=query_date(query, "toDate"),
                limit=limit,
                offset=offset,
            )
        except (ValueError, TypeError) as exc:  # the store's argument checks
            raise ApiError(400, f"invalid query: {exc}") from None
        return JSONResponse(
            {"runs": [run_listing(run) for run in listed.runs], "total": listed.total}
        )

    async def get_run(self, request: Request) -> Response:
        """``GET /workflows/:workflowId/runs/:runId[?fields=]``: the run's state."""
        workflow = self._workflow(request)
        run_id = request.path_params["runId"]
        fields = parse_fields(request.query_params.get("fields"))
        stored = await workflow.get_run(run_id)
        if stored is None:
            raise _no_run(workflow, run_id)
        return JSONResponse(run_state(stored, workflow, fields), headers=_stored_trace(stored))

    async def delete_run(self, request: Request) -> Response:
        """``DELETE /workflows/:workflowId/runs/:runId``."""
        workflow = self._workflow(request)
        run_id = request.path_params["runId"]
        if not await self.spanflow.delete_run(run_id, workflow_id=workflow.id):
            raise _no_run(workflow, run_id)
        return JSONResponse({"message": "Workflow run deleted"})

    # -- helpers ------------------------------------------------------------------------------

    def _workflow(self, request: Request) -> Workflow:
        return self.spanflow.get_workflow(request.path_params["workflowId"])

    def _check_slots(self) -> None:
        if self.slots.full:
            raise ApiError(503, f"too many open streams (the limit is {self.slots.limit})")

    async def _records(self, stream: WorkflowStream) -> Response:
        """The stream as records, once its first event shows the run started (or, for a run
        handed to a queued executor, once its job is queued)."""
        events = aiter(stream)
        first = await _first_event(stream, events)
        headers = _trace_headers(stream.trace_id, stream.span_id)
        return EventStreamResponse(
            workflow_records(first, events), media_type=_RECORDS, headers=headers, slots=self.slots
        )


def _page_size(query: Mapping[str, str], name: str) -> int | None:
    """``perPage`` / ``limit``: a positive int, or ``false`` (Mastra's "no limit": the most a
    store lists at once, `ALL_RUNS`)."""
    if query.get(name) == "false":
        return ALL_RUNS
    return query_int(query, name, minimum=1)


def _step_ref(body: ResumeBody) -> str | None:
    """The step to resume: an id or dotted path (a list is joined), ``None`` for "the one"."""
    step = ".".join(body.step) if isinstance(body.step, list) else body.step
    return step or None


async def _resume_held(
    run: Run, held: WorkflowStream, body: ResumeBody, *, until_end: bool
) -> WorkflowResult | None:
    """Resume `run` through the object whose stream `held` is kept open, so that the resumed
    events continue in that stream (`Run.resume` waits for the execution that is storing the
    suspension first). Returns the result when `until_end`, else once the resumed execution
    emitted its first event; a refused resume (bad data, wrong step) raises either way."""
    seen = len(held.events)
    task = asyncio.ensure_future(
        run.resume(
            body.resumeData,
            step=_step_ref(body),
            label=body.label,
            foreach_index=body.forEachIndex,
            request_context=body.requestContext,
            tracing_options=tracing_options(body.tracingOptions),
        )
    )
    task.add_done_callback(_log_failure)
    if until_end:
        return await asyncio.shield(task)
    events = aiter(held)
    for _ in range(seen):  # the events before this resume: replayed at once
        await anext(events, None)
    following = asyncio.ensure_future(_next_or_none(events))
    await asyncio.wait([task, following], return_when=asyncio.FIRST_COMPLETED)
    following.cancel()
    error = task.exception() if task.done() else None
    if error is not None:
        raise error
    return None


def _query_run_id(request: Request) -> str | None:
    run_id = request.query_params.get("runId")
    return run_id or None


def _required_run_id(request: Request) -> str:
    run_id = _query_run_id(request)
    if run_id is None:
        raise ApiError(400, "query parameter 'runId' is required")
    return run_id


def _no_run(workflow: Workflow, run_id: str) -> ApiError:
    return ApiError(404, f"workflow {workflow.id!r} has no run {run_id!r}")


def _check_startable(run: Run, base: str) -> None:
    """409 for a run that was started already, saying which route (under `base`, the
    workflow's path) to use instead."""
    status = run.status
    if status == "pending":
        return
    if status == "suspended":
        message = (
            f"run {run.run_id!r} is suspended: continue it with POST {base}/resume-stream?runId="
            f"{run.run_id}, or read its events with POST {base}/observe?runId={run.run_id}"
        )
    elif status in (*EXECUTING_STATUSES, "queued"):
        doing = (
            "a worker will execute it" if status == "queued" else "another caller is executing it"
        )
        message = (
            f"run {run.run_id!r} is {status}: {doing}; follow it with "
            f"POST {base}/observe?runId={run.run_id}"
        )
    else:
        message = (
            f"run {run.run_id!r} has ended ({status}): read its events with POST {base}/observe"
            f"?runId={run.run_id}, or create a new run"
        )
    raise ApiError(409, message)


async def _first_event(
    stream: WorkflowStream, events: AsyncIterator[WorkflowEvent] | None = None
) -> WorkflowEvent | None:
    """The stream's first event; the error that ended it first is raised (a lost claim). A
    run handed to a queued executor has started as far as this server can tell once its job
    is queued (a worker may take it much later): ``None`` then, nothing read yet."""
    if stream.handed_over is not None:
        await stream.handed_over
        return None
    first = await _next_or_none(events if events is not None else aiter(stream))
    if first is None:  # pragma: no cover - every execution emits workflow-start first
        raise ApiError(500, "the run ended without an event")
    return first


async def _next_or_none(events: AsyncIterator[WorkflowEvent]) -> WorkflowEvent | None:
    try:
        return await anext(events)
    except StopAsyncIteration:
        return None


async def _result_response(stream: WorkflowStream) -> Response:
    return _json_result(await asyncio.shield(stream.result))


def _json_result(result: WorkflowResult) -> Response:
    return JSONResponse(result.to_dict(), headers=_trace_headers(result.trace_id, result.span_id))


def _trace_headers(trace_id: str | None, span_id: str | None) -> dict[str, str]:
    value = traceparent_header(trace_id, span_id)
    return {"traceparent": value} if value is not None else {}


def _stored_trace(stored: StoredRun) -> dict[str, str]:
    """The ``traceparent`` header of a stored run's span (none if untraced or unreadable)."""
    try:
        trace = read_run_snapshot(stored).trace
    except StorageError:
        return {}
    return {} if trace is None else _trace_headers(trace.trace_id, trace.span_id)


def _log_failure(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        LOGGER.error("a restarted run failed to execute", exc_info=task.exception())
