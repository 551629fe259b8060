"""`WorkflowResult` and `StepResult`: Python objects, and Mastra's shape from `to_dict()`.

The reference comparison itself (key for key against ``results-run1.json``) is in
``test_reference_capture.py``; these tests pin the rules behind that shape.
"""

from __future__ import annotations

import json
import time
from typing import Any

from pydantic import BaseModel

from spanflow import StepContext, StepResult, WorkflowResult, create_step, create_workflow
from spanflow.usage import Usage

from .reference_workflow import RESUME_DATA, build_reference_workflow
from .support import fn_step


class Point(BaseModel):
    x: int
    y: int


def test_a_step_result_leaves_out_keys_without_a_value() -> None:
    result = StepResult("running", payload={"a": 1}, started_at=1_700_000_000_000)

    assert result.to_dict() == {
        "status": "running",
        "payload": {"a": 1},
        "startedAt": 1700000000000,
    }


def test_a_successful_step_result_always_has_an_output_even_none() -> None:
    result = StepResult("success", payload=1, output=None, started_at=1, ended_at=2)

    assert result.to_dict() == {
        "status": "success",
        "payload": 1,
        "startedAt": 1,
        "output": None,
        "endedAt": 2,
    }


def test_models_become_their_json_and_errors_become_name_message_stack() -> None:
    try:
        raise KeyError("missing")
    except KeyError as exc:
        error = exc
    result = StepResult("failed", payload=Point(x=1, y=2), error=error, started_at=1, ended_at=2)

    wire = result.to_dict()

    assert wire["payload"] == {"x": 1, "y": 2}
    assert set(wire["error"]) == {"name", "message", "stack"}
    assert wire["error"]["name"] == "KeyError"
    assert wire["error"]["message"] == "'missing'"
    json.dumps(wire)  # plain JSON all the way down


async def test_timestamps_are_epoch_milliseconds() -> None:
    workflow = create_workflow(id="times").then(fn_step("s", lambda v: v)).commit()
    before = int(time.time() * 1000)

    result = await (await workflow.create_run()).start(1)

    after = int(time.time() * 1000)
    step = result.steps["s"]
    assert step.started_at is not None
    assert step.ended_at is not None
    assert before <= step.started_at <= step.ended_at <= after


async def test_a_success_result_in_python_and_on_the_wire() -> None:
    workflow = (
        create_workflow(id="points", output_schema=Point)
        .then(fn_step("make", lambda v: {"x": v, "y": v * 2}))
        .commit()
    )
    run = await workflow.create_run()

    result = await run.start(3)

    assert isinstance(result, WorkflowResult)
    assert result.result == Point(x=3, y=6)
    assert result.run_id == run.run_id
    assert result.input == 3
    assert result.usage == Usage()
    assert (result.trace_id, result.span_id) == (None, None)  # tracing is off here
    wire = result.to_dict()
    assert wire == {
        "status": "success",
        "steps": {
            "input": 3,
            "make": {
                "status": "success",
                "payload": 3,
                "startedAt": wire["steps"]["make"]["startedAt"],
                "output": {"x": 3, "y": 6},
                "endedAt": wire["steps"]["make"]["endedAt"],
            },
        },
        "input": 3,
        "stepExecutionPath": ["make"],
        "result": {"x": 3, "y": 6},
        "state": {},
        "runId": run.run_id,
    }


async def test_a_failed_result_carries_the_error_on_the_wire() -> None:
    async def boom(ctx: StepContext[Any]) -> None:
        raise PermissionError("no access")

    workflow = create_workflow(id="denied").then(create_step(id="boom", execute=boom)).commit()

    wire = (await (await workflow.create_run()).start(None)).to_dict()

    assert wire["status"] == "failed"
    assert "result" not in wire
    assert wire["error"]["name"] == "PermissionError"
    assert wire["error"]["message"] == "no access"
    assert wire["steps"]["boom"]["error"] == wire["error"]


async def test_the_stored_snapshot_holds_the_same_step_results_as_the_result() -> None:
    workflow = build_reference_workflow()
    run = await workflow.create_run()
    await run.start({"value": 5})

    result = await run.resume(RESUME_DATA)

    stored = await workflow.storage.get_run(run.run_id)
    assert stored is not None
    wire = result.to_dict()
    assert stored.snapshot["frame"]["steps"] == {
        k: v for k, v in wire["steps"].items() if k != "input"
    }
    assert stored.snapshot["result"] == wire["result"] == {"final": 9077}


async def test_the_stored_run_keeps_the_error_name_and_message() -> None:
    async def boom(ctx: StepContext[Any]) -> None:
        raise TimeoutError("too slow")

    workflow = create_workflow(id="stored-error").then(create_step(id="boom", execute=boom))
    run = await workflow.commit().create_run()

    await run.start(None)

    stored = await workflow.storage.get_run(run.run_id)
    assert stored is not None
    assert stored.status == "failed"
    assert stored.snapshot["frame"]["steps"]["boom"]["error"]["name"] == "TimeoutError"
    assert stored.snapshot["error"]["message"] == "too slow"
