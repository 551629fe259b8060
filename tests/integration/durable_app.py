"""A small workflow for the durability tests, importable by the test and by worker processes.

prepare -> slow -> approve (suspends for a human) -> finish. Every step appends its name to the
file named by ``SPANFLOW_TEST_LOG`` when it runs, so a test can tell which steps ran, in which
process, and how often. ``slow`` blocks while the file named by ``SPANFLOW_TEST_HANG`` exists
(so a test can kill the process in the middle of it).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from pydantic import BaseModel

from spanflow import StepContext, Workflow, create_step, create_workflow

__all__ = ["Order", "build_workflow"]


class Order(BaseModel):
    order_id: str
    amount: int


class Approval(BaseModel):
    approved_by: str


def _log(name: str) -> None:
    path = os.environ.get("SPANFLOW_TEST_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as log:
            log.write(f"{name} {os.getpid()}\n")


async def prepare(ctx: StepContext[Order]) -> Order:
    _log("prepare")
    return ctx.input_data


async def slow(ctx: StepContext[Order]) -> Order:
    _log("slow")
    hang = os.environ.get("SPANFLOW_TEST_HANG")
    # Another process removes the file: polling is the only way to see it.
    # Another process removes the file: polling is the only way to see it.
    while hang and Path(hang).exists():  # noqa: ASYNC110, ASYNC240
        await asyncio.sleep(0.02)
    return ctx.input_data


async def approve(ctx: StepContext[Order]) -> dict[str, object]:
    _log("approve")
    if ctx.resume_data is None:
        ctx.suspend({"reason": "amount needs approval", "amount": ctx.input_data.amount})
    return {"order_id": ctx.input_data.order_id, "approved_by": ctx.resume_data.approved_by}


async def finish(ctx: StepContext[dict[str, object]]) -> dict[str, object]:
    _log("finish")
    return {**ctx.input_data, "done": True}


LEASE_SECONDS = 3.0
"""Short, so a test can wait for the lease of a killed worker to run out."""


def build_workflow() -> Workflow:
    """The workflow, freshly built (each process builds its own, as a real app would)."""
    return (
        create_workflow(id="durable-order", input_schema=Order, lease_seconds=LEASE_SECONDS)
        .then(create_step(id="prepare", input_schema=Order, output_schema=Order, execute=prepare))
        .then(create_step(id="slow", input_schema=Order, output_schema=Order, execute=slow))
        .then(
            create_step(id="approve", input_schema=Order, resume_schema=Approval, execute=approve)
        )
        .then(create_step(id="finish", execute=finish))
        .commit()
    )
