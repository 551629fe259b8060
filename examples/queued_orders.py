"""The order workflow executed by workers on a job queue: the README's two-terminal example.

Every process (workers and callers, on any number of machines) loads the same registry, whose
runs live in PostgreSQL and whose executions go through its procrastinate queue
(``SPANFLOW_STORAGE_URL``, a ``postgresql://`` URL)::

    spanflow worker examples.queued_orders:app --concurrency 20     # terminal 1 (and more)
    python -m examples.queued_orders                                 # terminal 2

The second command starts an order through the queue and streams it as a worker executes it;
the order is over the approval limit, so the run suspends at ``manager-approval``, and the
command approves it (a resume, queued too: any worker may take it) and streams the rest.
"""

from __future__ import annotations

import asyncio
import os
import sys

from examples.order_fulfilment import (
    ManagerDecision,
    build_order_workflow,
    confirmation_writer,
    sample_order,
    sample_tracing,
)
from spanflow import Spanflow, WorkflowStream
from spanflow.queue import QueueExecutor
from spanflow.storage import PostgresStorage

__all__ = ["app", "build_queued_app", "main"]


def build_queued_app(url: str) -> Spanflow:
    """The order workflow and its writer agent, runs in PostgreSQL at `url`, executions on its
    procrastinate queue (in the same database)."""
    writer = confirmation_writer()
    return Spanflow(
        workflows=[build_order_workflow(writer)],
        agents=[writer],
        storage=PostgresStorage(url),
        executor=QueueExecutor(url),
    )


def _url() -> str:
    url = os.environ.get("SPANFLOW_STORAGE_URL", "")
    if not url.startswith(("postgresql://", "postgres://")):
        raise SystemExit(
            "examples.queued_orders needs SPANFLOW_STORAGE_URL=postgresql://... (workers and "
            f"callers share one PostgreSQL); got {url!r}"
        )
    return url


app = build_queued_app(_url())
"""``spanflow worker examples.queued_orders:app`` (nothing connects until it is used)."""


async def show(out: WorkflowStream) -> str:
    """Print the stream's step events as they arrive; the run's status at the end."""
    async for event in out:
        step = event.to_dict()["payload"].get("id")
        print(f"  {event.type:<28} {step or ''}")
    return (await out.result).status


async def main() -> int:
    """Start an order through the queue, approve it when it suspends; 0 if it succeeded."""
    registry = build_queued_app(_url())
    workflow = registry.get_workflow("order-fulfilment")
    try:
        run = await workflow.create_run()
        print(f"run {run.run_id}: queued for a worker")
        status = await show(run.stream(sample_order(), tracing_options=sample_tracing()))
        if status == "suspended":
            print("approving it (a resume, queued too)")
            decision = ManagerDecision(approved=True, approver="m.hamilton")
            status = await show(run.resume_stream(decision.model_dump()))
        print(f"run {run.run_id}: {status}")
        return 0 if status == "success" else 1
    finally:
        await registry.close()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
