"""The registry the browser tests serve (``spanflow serve tests.ui.app:app``).

Each workflow is there for one thing a person does in the run browser:

- ``approval``: ``check -> approve -> record``; ``approve`` suspends with a payload saying why,
  and its resume schema has two fields (``approved``, a boolean, and ``approver``, a string),
  so the page must generate a form with a checkbox and a text box and resume through it.
- ``slow``: five steps of `SLOW_STEP_SECONDS` each, so a test sees the timeline grow while the
  run is live.
- ``untrusted``: echoes its input into its output beside `UNTRUSTED_TEXT` (a script tag and an
  image whose ``onerror`` calls ``alert``): the page must show it as text.
- ``order-fulfilment``: the showcase workflow (parallel, branch, foreach, approval, an agent
  step), for the screenshots.
- the ``weather`` agent (a scripted model that calls a tool, then answers) for the chat.

Runs are traced by an SDK tracer provider of their own that exports nothing, so every run has a
real trace id (the Jaeger link) without a collector. The store is the one
``SPANFLOW_STORAGE_URL`` names (the tests give a SQLite file in a temporary directory).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any, Final

from opentelemetry.sdk.trace import TracerProvider
from pydantic import BaseModel

from examples.order_fulfilment import build_order_workflow, confirmation_writer
from spanflow import Spanflow, StepContext, TracingConfig, Workflow, create_step, create_workflow
from spanflow.storage import STORAGE_URL_ENV, storage_from_url
from tests.server.apps import weather_agent

__all__ = [
    "SLOW_STEPS",
    "SLOW_STEP_SECONDS",
    "UNTRUSTED_TEXT",
    "app",
    "build_registry",
]

SLOW_STEP_SECONDS: Final = 0.5
"""How long each step of ``slow`` takes: long enough to watch, short enough for a fast test."""
SLOW_STEPS: Final = ("fetch", "parse", "enrich", "score", "publish")

UNTRUSTED_TEXT: Final = "<script>alert(1)</script><img src=x onerror=alert(2)>"
"""Markup a run's output carries; shown as text, it runs nothing."""


class Order(BaseModel):
    order: str
    amount: int


class Decision(BaseModel):
    """What the manager answers: the resume schema the page turns into a form."""

    approved: bool
    approver: str


class Note(BaseModel):
    note: str


class Batch(BaseModel):
    batch: str


async def _check(ctx: StepContext[Order]) -> Order:
    return ctx.input_data


async def _approve(ctx: StepContext[Order]) -> dict[str, Any]:
    decision: Decision | None = ctx.resume_data
    if decision is None:
        ctx.suspend({"reason": "needs a manager", "amount": ctx.input_data.amount})
    return {"order": ctx.input_data.order, "approved": decision.approved, "by": decision.approver}


async def _record(ctx: StepContext[dict[str, Any]]) -> dict[str, Any]:
    return {**ctx.input_data, "recorded": True}


def approval_workflow() -> Workflow:
    return (
        create_workflow(id="approval", description="Orders wait for a manager.", input_schema=Order)
        .then(create_step(id="check", input_schema=Order, output_schema=Order, execute=_check))
        .then(
            create_step(id="approve", input_schema=Order, resume_schema=Decision, execute=_approve)
        )
        .then(create_step(id="record", execute=_record))
        .commit()
    )


async def _slow_step(ctx: StepContext[Batch]) -> Batch:
    await asyncio.sleep(SLOW_STEP_SECONDS)
    return ctx.input_data


def slow_workflow() -> Workflow:
    workflow = create_workflow(
        id="slow", description="Five steps of half a second each.", input_schema=Batch
    )
    for step_id in SLOW_STEPS:
        workflow = workflow.then(
            create_step(id=step_id, input_schema=Batch, output_schema=Batch, execute=_slow_step)
        )
    return workflow.commit()


async def _echo(ctx: StepContext[Note]) -> dict[str, Any]:
    return {"echo": ctx.input_data.note, "comment": UNTRUSTED_TEXT}


def untrusted_workflow() -> Workflow:
    return (
        create_workflow(id="untrusted", description="Echoes markup.", input_schema=Note)
        .then(create_step(id="echo", input_schema=Note, execute=_echo))
        .commit()
    )


def build_registry(storage_url: str) -> Spanflow:
    """The browser tests' workflows and agents on the store `storage_url` names."""
    writer = confirmation_writer()
    return Spanflow(
        workflows=[
            approval_workflow(),
            slow_workflow(),
            untrusted_workflow(),
            build_order_workflow(writer),
        ],
        agents=[weather_agent(), writer],
        storage=storage_from_url(storage_url),
        tracing=TracingConfig(tracer_provider=TracerProvider()),
    )


app = build_registry(os.environ.get(STORAGE_URL_ENV) or "memory://")
"""For ``spanflow serve tests.ui.app:app`` (the store opens on first use)."""
