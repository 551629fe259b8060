"""The network both processes of the cross-process resume test build:
``python -m tests.agents.network_app RUN_ID RESUME_JSON`` resumes it.

Its one workflow, ``bookWf`` (`booking`), keeps its runs in the SQLite file named by
`DATABASE_ENV`, so the process that starts the network and the one that resumes it share
nothing but that file. `build_agent` makes the same router, workflow and store in each; only
the router's script differs, by `Phase`: a starting router routes to the workflow (which
suspends asking for approval), a resuming one answers the completion check that follows the
workflow's end.

Run as a module it is the resuming process: it resumes the suspended workflow run with the
given resume data and prints one JSON line, ``{"status", "result", "runId"}``.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from spanflow import StepContext, create_step, create_workflow
from spanflow.agents import Agent, ScriptedModel, ScriptedReply
from spanflow.agents.network import network_resume
from spanflow.storage import SqliteStorage
from spanflow.usage import Usage
from spanflow.workflows.workflow import Workflow

__all__ = [
    "BOOKED",
    "DATABASE_ENV",
    "FINAL_RESULT",
    "WORKFLOW_KEY",
    "Phase",
    "booking",
    "build_agent",
    "database_path",
    "main",
]

DATABASE_ENV = "SPANFLOW_TEST_NETWORK_DB"
"""The SQLite file every process of the test keeps the workflow's runs in."""

WORKFLOW_KEY = "bookWf"
FINAL_RESULT = "Booked a park visit in Tokyo."
BOOKED = {"plan": "Visit a park in Tokyo (booked: True)"}
"""The workflow's result once resumed with ``{"approved": true}``."""

Phase = Literal["start", "resume"]


class City(BaseModel):
    city: str


class Plan(BaseModel):
    plan: str


async def plan(ctx: StepContext[City]) -> Plan:
    return Plan(plan=f"Visit a park in {ctx.input_data.city}")


async def approve(ctx: StepContext[Plan]) -> Plan:
    """Suspends until resumed with ``{"approved": ...}``."""
    if ctx.resume_data is None:
        ctx.suspend({"question": f"book {ctx.input_data.plan}?"})
    return Plan(plan=f"{ctx.input_data.plan} (booked: {ctx.resume_data['approved']})")


def database_path() -> Path:
    """The shared SQLite file, from `DATABASE_ENV`; an unset variable is a broken test setup."""
    value = os.environ.get(DATABASE_ENV)
    if not value:
        raise RuntimeError(f"{DATABASE_ENV} must name the SQLite file the network's runs are in")
    return Path(value)


def booking(storage: SqliteStorage) -> Workflow:
    """``plan -> approve``: plans an activity, then suspends for approval."""
    return (
        create_workflow(
            id="book-wf",
            input_schema=City,
            output_schema=Plan,
            storage=storage,
            description="Books an activity after approval.",
        )
        .then(create_step(id="plan", execute=plan, input_schema=City, output_schema=Plan))
        .then(create_step(id="approve", execute=approve, input_schema=Plan, output_schema=Plan))
        .commit()
    )


def _router_script(phase: Phase) -> list[ScriptedReply]:
    if phase == "start":
        decision = {
            "primitiveId": WORKFLOW_KEY,
            "primitiveType": "workflow",
            "prompt": '{"city":"Tokyo"}',
            "selectionReason": "book it",
        }
        return [ScriptedReply(json.dumps(decision), usage=Usage(10, 5, 15))]
    verdict = {"isComplete": True, "completionReason": "booked", "finalResult": FINAL_RESULT}
    return [ScriptedReply(json.dumps(verdict), usage=Usage(4, 2, 6))]


def build_agent(phase: Phase) -> Agent:
    """The network agent of `phase`'s process, its workflow on a new store object over
    `database_path`: what a real deployment rebuilds in every process it runs."""
    return Agent(
        id="router",
        name="Router",
        instructions="Answer travel questions.",
        model=ScriptedModel(_router_script(phase), model_id="router-model"),
        workflows={WORKFLOW_KEY: booking(SqliteStorage(database_path()))},
    )


async def _resume(run_id: str, resume_data: Any) -> dict[str, Any]:
    resumed = await network_resume(build_agent("resume"), resume_data, workflow_run_id=run_id)
    done = await resumed.result
    return {"status": done.status, "result": done.result, "runId": resumed.run_id}


def main(argv: Sequence[str]) -> int:
    """``RUN_ID RESUME_JSON``: resume the suspended workflow run and print the outcome."""
    if len(argv) != 2:
        print("usage: python -m tests.agents.network_app RUN_ID RESUME_JSON", file=sys.stderr)
        return 2
    run_id, resume_json = argv
    print(json.dumps(asyncio.run(_resume(run_id, json.loads(resume_json)))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
