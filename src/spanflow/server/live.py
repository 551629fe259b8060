"""`LiveRuns`: the runs this server process is executing, so that a request reaches them.

A fresh `Run` object read from the store can resume or cancel a run, but only the object that
executes it can interrupt its task (``cancel``) or feed a stream opened with ``closeOnSuspend:
false`` (a resume must go through that same object for its events to continue in that stream).
The routes register every execution they start here, and the entry goes away when the
execution (or the kept-open stream) ends. Nothing here is shared between processes: the store
is, and a run executing elsewhere is reached through it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from spanflow.workflows.run import Run
from spanflow.workflows.stream import WorkflowStream

__all__ = ["LiveRuns"]


@dataclass(slots=True)
class _Live:
    run: Run
    done: asyncio.Future[Any]
    held: WorkflowStream | None
    """A stream opened with ``closeOnSuspend: false``: it stays open through suspensions, and
    a resume through this object's run continues in it."""


class LiveRuns:
    """The runs this server process is executing, by id, until their execution ends."""

    def __init__(self) -> None:
        self._runs: dict[str, _Live] = {}

    def add(self, run: Run, done: asyncio.Future[Any], held: WorkflowStream | None = None) -> None:
        """Track `run` until `done` (its stream's result, or its task) resolves."""
        entry = _Live(run, done, held)
        self._runs[run.run_id] = entry

        def forget(_: asyncio.Future[Any]) -> None:
            if self._runs.get(run.run_id) is entry:
                del self._runs[run.run_id]

        done.add_done_callback(forget)

    def get(self, run_id: str) -> Run | None:
        """The run object executing `run_id` here, or ``None``."""
        entry = self._runs.get(run_id)
        return entry.run if entry is not None else None

    def held(self, run_id: str) -> tuple[Run, WorkflowStream] | None:
        """The run object and its stream, when a stream kept open is following `run_id`."""
        entry = self._runs.get(run_id)
        if entry is None or entry.held is None:
            return None
        return entry.run, entry.held

    async def wait(self, run_id: str) -> None:
        """Wait for the execution of `run_id` here to end (at once if there is none, or if a
        stream kept open follows it: that one ends only with the run)."""
        entry = self._runs.get(run_id)
        if entry is not None and entry.held is None:
            await asyncio.wait([entry.done])
