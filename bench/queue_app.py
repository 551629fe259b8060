"""The registry scenario 12's worker subprocesses serve: ``spanflow worker bench.queue_app:app``.

One 3-step workflow of trivial steps (``{v} -> {v+1}``, as scenario 3's), each step also
stamping its output with the wall-clock time it ended (``at``, `time.time`), so the caller,
on the same machine and clock, can tell how long a worker's ``workflow-step-result`` took to
reach its ``run.stream()``.

Each worker set of the scenario has a queue of its own (``SPANFLOW_BENCH_QUEUE``: a worker
takes only its queue's jobs, so the 1-, 2- and 4-worker sets and their traced twins stay
apart while all are running) and a workflow id named after it (so one set's stalled-run
recovery never looks at another's runs). Store and queue are the scenario's throwaway
PostgreSQL, ``SPANFLOW_BENCH_QUEUE_URL``. The caller builds the same registry with
`build_app` (plus its own tracing), and the in-process variants with `local_app`.
"""

from __future__ import annotations

import os
import time

from pydantic import BaseModel

from spanflow import Spanflow, StepContext, Workflow, create_step, create_workflow
from spanflow.queue import QueueExecutor
from spanflow.storage import PostgresStorage, Storage
from spanflow.tracing import TracingConfig

__all__ = ["QUEUE_ENV", "STEPS", "URL_ENV", "Stamped", "build_app", "local_app", "workflow_id"]

URL_ENV = "SPANFLOW_BENCH_QUEUE_URL"
"""The PostgreSQL URL of the store and the queue, shared by the caller and every worker."""
QUEUE_ENV = "SPANFLOW_BENCH_QUEUE"
"""The procrastinate queue of this worker set."""
STEPS = ("a", "b", "c")


class Stamped(BaseModel):
    v: int
    at: float = 0.0
    """`time.time` when the step that produced this value ended (0 for the run's input)."""


async def _increment(ctx: StepContext[Stamped]) -> Stamped:
    return Stamped(v=ctx.input_data.v + 1, at=time.time())


def workflow_id(queue: str) -> str:
    """The workflow's id on `queue` (``local`` for the in-process variants)."""
    return f"bench-queue3-{queue}"


def _workflow(queue: str) -> Workflow:
    workflow = create_workflow(id=workflow_id(queue), input_schema=Stamped, output_schema=Stamped)
    for step_id in STEPS:
        workflow.then(
            create_step(id=step_id, input_schema=Stamped, output_schema=Stamped, execute=_increment)
        )
    return workflow.commit()


def build_app(
    url: str, queue: str, *, storage: Storage | None = None, tracing: TracingConfig | None = None
) -> Spanflow:
    """The registry of `queue`'s workers and of the caller that starts runs on it."""
    return Spanflow(
        workflows=[_workflow(queue)],
        storage=storage if storage is not None else PostgresStorage(url),
        executor=QueueExecutor(url, queue=queue),
        tracing=tracing,
    )


def local_app(storage: Storage, *, tracing: TracingConfig | None = None) -> Spanflow:
    """The same workflow executed in the calling process (`LocalExecutor`), on `storage`."""
    return Spanflow(workflows=[_workflow("local")], storage=storage, tracing=tracing)


def __getattr__(name: str) -> Spanflow:
    """``app``, built on first access from the environment (the worker's registry).

    Lazy, so the scenario process can import this module for `build_app` without the
    variables.
    """
    if name != "app":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    url, queue = os.environ.get(URL_ENV), os.environ.get(QUEUE_ENV)
    if not url or not queue:
        raise RuntimeError(f"bench.queue_app:app needs {URL_ENV} and {QUEUE_ENV} (scenario 12)")
    app = globals()["app"] = build_app(url, queue)
    return app
