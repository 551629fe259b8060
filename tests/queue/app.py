"""The registry the queue tests' worker subprocesses serve: ``spanflow worker tests.queue.app:app``.

Its workflows keep runs in the throwaway PostgreSQL whose URL is in ``SPANFLOW_TEST_QUEUE_URL``
and take their jobs from its procrastinate queue. Every step says which process ran it twice
over: in its output (``os.getpid()``, so a result tells which worker executed it) and in the
step log table (`STEP_LOG`: one ``started`` and one ``ended`` row per execution of a step), so
a test can count how often a step ran, also when the worker running it was killed mid-step.

- ``chain``: ``one -> two -> three``, each appending its pid to ``pids`` and sleeping
  ``pause`` seconds (from the input, default `CHAIN_PAUSE`).
- ``slow``: the same chain with steps of `SLOW_PAUSE` seconds: long enough to kill or cancel
  the worker in the middle of one.
- ``approval``: ``ask -> after``; ``ask`` suspends with the pid that asked and, resumed,
  returns the resume data with the pid that resumed it.
- ``ghost`` (`ghost_workflow`): registered only by the test process, never by a worker, so its
  jobs reach workers that do not know it.

The leases are short (`LEASE_SECONDS`) and recovery frequent (`RECOVER_EVERY`), so a killed
worker's run is taken over within about two seconds.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable
from typing import Any

import psycopg

from spanflow import Spanflow, StepContext, Workflow, create_step, create_workflow
from spanflow.queue import QueueExecutor
from spanflow.storage import PostgresStorage
from spanflow.tracing import TracingConfig

__all__ = [
    "CHAIN_PAUSE",
    "LEASE_SECONDS",
    "RECOVER_EVERY",
    "SLOW_PAUSE",
    "STEP_LOG",
    "URL_ENV",
    "build_app",
    "ghost_workflow",
]

URL_ENV = "SPANFLOW_TEST_QUEUE_URL"
"""The PostgreSQL URL every process of the queue tests shares (store and queue)."""

LEASE_SECONDS = 1.0
RECOVER_EVERY = 0.5
SHUTDOWN_GRACE = 3.0
ORPHANED_AFTER = 1.0
CHAIN_PAUSE = 0.05
SLOW_PAUSE = 0.8
CHAIN_STEPS = ("one", "two", "three")

STEP_LOG = "queue_test_steps"
STEP_LOG_DDL = f"""
CREATE TABLE IF NOT EXISTS {STEP_LOG} (
    seq bigserial PRIMARY KEY,
    run_id text NOT NULL,
    step text NOT NULL,
    pid integer NOT NULL,
    phase text NOT NULL,
    at timestamptz NOT NULL DEFAULT clock_timestamp()
)
"""


async def record(url: str, ctx: StepContext[Any], step_id: str, phase: str) -> None:
    """One row of the step log: step `step_id` of this run, in this process, at `phase`."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as connection:
        await connection.execute(
            f"INSERT INTO {STEP_LOG} (run_id, step, pid, phase) VALUES (%s, %s, %s, %s)",
            (ctx.run_id, step_id, os.getpid(), phase),
        )


def chain_workflow(workflow_id: str, url: str, pause: float) -> Workflow:
    """``one -> two -> three``: each step appends its pid to ``pids``."""

    workflow = create_workflow(id=workflow_id, lease_seconds=LEASE_SECONDS)
    for step_id in CHAIN_STEPS:
        workflow.then(create_step(id=step_id, execute=_link(url, step_id, pause)))
    return workflow.commit()


def _link(url: str, step_id: str, pause: float) -> Any:
    async def link(ctx: StepContext[Any]) -> dict[str, Any]:
        await record(url, ctx, step_id, "started")
        init = ctx.get_init_data() or {}
        await asyncio.sleep(float(init.get("pause", pause)))
        before = ctx.input_data.get("pids", []) if isinstance(ctx.input_data, dict) else []
        await record(url, ctx, step_id, "ended")
        return {"pids": [*before, os.getpid()]}

    return link


def approval_workflow(url: str) -> Workflow:
    """``ask`` suspends with the pid that asked; resumed, ``ask`` and ``after`` add theirs."""

    async def ask(ctx: StepContext[Any]) -> dict[str, Any]:
        await record(url, ctx, "ask", "started")
        if ctx.resume_data is None:
            await record(url, ctx, "ask", "suspended")
            ctx.suspend({"asked_by": os.getpid()})
        await record(url, ctx, "ask", "ended")
        return {"answer": ctx.resume_data, "resumed_by": os.getpid()}

    async def after(ctx: StepContext[Any]) -> dict[str, Any]:
        await record(url, ctx, "after", "started")
        await record(url, ctx, "after", "ended")
        return {**ctx.input_data, "after_by": os.getpid()}

    workflow = create_workflow(id="approval", lease_seconds=LEASE_SECONDS)
    workflow.then(create_step(id="ask", execute=ask))
    workflow.then(create_step(id="after", execute=after))
    return workflow.commit()


def ghost_workflow(url: str) -> Workflow:
    """A workflow no worker registers: its jobs meet workers that do not know its id."""
    return chain_workflow("ghost", url, CHAIN_PAUSE)


def build_app(
    url: str, *, tracing: TracingConfig | None = None, extra: Iterable[Workflow] = ()
) -> Spanflow:
    """The registry of the workers (and, with `tracing` and `extra`, of the test process)."""
    return Spanflow(
        workflows=[
            chain_workflow("chain", url, CHAIN_PAUSE),
            chain_workflow("slow", url, SLOW_PAUSE),
            approval_workflow(url),
            *extra,
        ],
        storage=PostgresStorage(url),
        executor=QueueExecutor(
            url,
            recover_every=RECOVER_EVERY,
            orphaned_after=ORPHANED_AFTER,
            shutdown_grace=SHUTDOWN_GRACE,
        ),
        tracing=tracing,
    )


def __getattr__(name: str) -> Spanflow:
    """``app``, built on first access from ``SPANFLOW_TEST_QUEUE_URL``: the workers' registry.

    Lazy so that the test process can import this module (for `build_app`) before, or without,
    that variable.
    """
    if name != "app":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    url = os.environ.get(URL_ENV)
    if not url:
        raise RuntimeError(f"tests.queue.app:app needs {URL_ENV}: the queue tests set it")
    app = globals()["app"] = build_app(url)
    return app
