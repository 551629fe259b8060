"""`WorkflowStream`: what `Run.stream()` and `Run.resume_stream()` return.

An async iterator of `WorkflowEvent`s plus the run's `result`, `status` and `usage`. The run
executes in its own task whether or not anyone iterates: every event is buffered, so a consumer
that starts late (even after the run ended) still receives all of them, and awaiting
``result`` without iterating never deadlocks. Several consumers may iterate; each sees every
event from the start.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Protocol

from spanflow._buffer import ReplayBuffer
from spanflow.usage import Usage
from spanflow.workflows.events import WorkflowEvent
from spanflow.workflows.results import WorkflowResult

__all__ = ["WorkflowStream"]


class _Watched(Protocol):
    """What a stream reads its live ``status`` from: the `Run`, or an observer's view of it."""

    @property
    def status(self) -> str: ...


class WorkflowStream:
    """Live events of a run, and its outcome."""

    def __init__(self, run: _Watched) -> None:
        loop = asyncio.get_running_loop()
        self._run = run
        self._buffer: ReplayBuffer[WorkflowEvent] = ReplayBuffer()
        self._loop = loop
        self._result: asyncio.Future[WorkflowResult] = loop.create_future()
        self._usage: asyncio.Future[Usage] | None = None
        """Made when first asked for (few callers ask; see `usage`)."""
        self._final_usage: Usage | None = None
        """The usage the stream ended with, once it has."""
        self.trace_id: str | None = None
        """The run span's trace id (32 hex), once the run has started; ``None`` if untraced."""
        self.span_id: str | None = None
        """The run span's id (16 hex), once the run has started; ``None`` if untraced."""
        self.producer: asyncio.Task[None] | None = None
        """The task reading an observed run's event log (`Workflow.observe`); ``None`` for a
        stream its run feeds."""
        self.handed_over: asyncio.Future[None] | None = None
        """For a run handed to a queued executor: resolves once its job is queued (raises
        what refused it); ``None`` for a run executed in this process."""
        self.sink: Callable[[WorkflowEvent], None] = self._buffer.push
        """The run's event sink for this stream (`push` without the hop through it: a run
        emits two events per step, each handed to every sink)."""

    # -- what consumers use ---------------------------------------------------------------

    def __aiter__(self) -> AsyncIterator[WorkflowEvent]:
        return self._buffer.iterate()

    @property
    def full_stream(self) -> AsyncIterator[WorkflowEvent]:
        """The events (Mastra's ``fullStream``); same as iterating the stream itself."""
        return self._buffer.iterate()

    @property
    def result(self) -> asyncio.Future[WorkflowResult]:
        """Awaitable final `WorkflowResult` (``await out.result``)."""
        return self._result

    @property
    def usage(self) -> asyncio.Future[Usage]:
        """Awaitable token usage summed over the run's agent steps."""
        future = self._usage
        if future is None:
            future = self._usage = self._loop.create_future()
            if self._final_usage is not None:
                future.set_result(self._final_usage)
        return future

    @property
    def status(self) -> str:
        """The run's live status (``running``, ``waiting``, ``suspended``, ``success``, ...)."""
        return self._run.status

    @property
    def events(self) -> list[WorkflowEvent]:
        """Every event received so far (a copy)."""
        return self._buffer.items

    async def aclose(self) -> None:
        """Stop following: an observed stream stops reading the run's log (and ends with
        `asyncio.CancelledError`); the run itself goes on either way. A stream its run feeds
        is left as it is: nobody reading it costs the run nothing."""
        producer = self.producer
        if producer is not None and not producer.done():
            producer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await producer

    # -- what the run uses ----------------------------------------------------------------

    def push(self, event: WorkflowEvent) -> None:
        """Append an event and wake consumers."""
        self._buffer.push(event)

    def finish(self, result: WorkflowResult) -> None:
        """Resolve `result` and `usage` and end iteration."""
        if not self._result.done():
            self._result.set_result(result)
        self._end_usage(result.usage)
        self._buffer.close()

    def fail(self, error: BaseException) -> None:
        """End the stream with an error (raised by iteration and by ``await result``)."""
        if not self._result.done():
            self._result.set_exception(error)
            self._result.exception()  # mark retrieved: iteration re-raises it anyway
        self._end_usage(Usage())
        self._buffer.close(error)

    def _end_usage(self, usage: Usage) -> None:
        """Resolve `usage` (now, or when first asked for); the first end wins."""
        if self._final_usage is not None:
            return
        self._final_usage = usage
        if self._usage is not None and not self._usage.done():
            self._usage.set_result(usage)
