"""The registry the real ``@mastra/client-js`` drives in ``test_client_js.py``.

Three workflows and one agent, each there for a scenario of ``js/drive.mjs``:

- ``approval``: ``check -> approve -> record``; ``approve`` suspends until a manager's name is
  resumed into it, so a run goes ``pending -> suspended -> success``.
- ``gated``: ``begin -> wait-for-gate -> end``; ``wait-for-gate`` blocks until the ``open-gate``
  workflow is run with the same gate name. The client opens the gate itself, over HTTP, so a
  scenario can hold a run in the middle of a step (to disconnect from it, or cancel it) and
  let it go, with no sleeps and no timing: every step is ordered by the client's own calls.
- ``open-gate``: one step that opens the named gate.
- ``weather``: an agent on a `ScriptedModel` that calls ``get_weather`` for the city the user
  names, then answers from the tool's result.

``approval`` and ``weather`` are the server tests' own (`tests.server.apps`); the gates here
are opened over HTTP rather than by the test. `build_registry` gives each test a fresh
registry, on its own in-memory store unless given one. ``app`` is the registry ``spanflow
serve tests.server.client_app:app`` serves: on the store ``SPANFLOW_STORAGE_URL`` names (the
cross-process test points it at the SQLite file of the in-test server), else in memory.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from spanflow import Spanflow, StepContext, Workflow, create_step, create_workflow
from spanflow.storage import STORAGE_URL_ENV, MemoryStorage, Storage, storage_from_url
from tests.server.apps import CELSIUS, Gate, approval_workflow, weather_agent

__all__ = ["CELSIUS", "app", "build_registry"]

# Gates by name. Both workflows run on the server's one event loop, and every scenario uses a
# gate name of its own (its run id), so one dict of events is all the coordination needed.
_gates: dict[str, asyncio.Event] = {}


def _gate(name: str) -> asyncio.Event:
    return _gates.setdefault(name, asyncio.Event())


async def _begin(ctx: StepContext[Gate]) -> Gate:
    return ctx.input_data


async def _wait_for_gate(ctx: StepContext[Gate]) -> Gate:
    await _gate(ctx.input_data.gate).wait()
    return ctx.input_data


async def _end(ctx: StepContext[Gate]) -> dict[str, Any]:
    return {"gate": ctx.input_data.gate, "passed": True}


async def _open(ctx: StepContext[Gate]) -> dict[str, Any]:
    _gate(ctx.input_data.gate).set()
    return {"opened": ctx.input_data.gate}


def _gated_workflow() -> Workflow:
    return (
        create_workflow(id="gated", description="Waits at a gate.", input_schema=Gate)
        .then(create_step(id="begin", input_schema=Gate, output_schema=Gate, execute=_begin))
        .then(
            create_step(
                id="wait-for-gate", input_schema=Gate, output_schema=Gate, execute=_wait_for_gate
            )
        )
        .then(create_step(id="end", input_schema=Gate, execute=_end))
        .commit()
    )


def _open_gate_workflow() -> Workflow:
    return (
        create_workflow(id="open-gate", description="Opens a gate.", input_schema=Gate)
        .then(create_step(id="open", input_schema=Gate, execute=_open))
        .commit()
    )


def build_registry(storage: Storage | None = None) -> Spanflow:
    """A fresh registry of the client test's workflows and agent (default: in memory)."""
    return Spanflow(
        workflows=[approval_workflow(), _gated_workflow(), _open_gate_workflow()],
        agents=[weather_agent()],
        storage=storage or MemoryStorage(),
    )


app = build_registry(storage_from_url(os.environ.get(STORAGE_URL_ENV) or "memory://"))
"""For ``spanflow serve tests.server.client_app:app`` (stores open on first use)."""
