"""Our stream and results against Mastra's own, captured from `ref-wf` and `fail-wf`.

Ids and timestamps differ by nature and are ignored; everything else must match: the sequence
of event types, the step each event is about, the payload keys of each event, and the values.
Two documented differences: steps running in parallel may interleave differently (compared as
a multiset within the block, each step's own events still in order), and a failed
``workflow-finish`` also carries the ``error`` (an improvement over Mastra).
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from spanflow import Run, WorkflowResult

from .reference_workflow import (
    REFERENCE_DIR,
    RESUME_DATA,
    build_fail_workflow,
    build_reference_workflow,
    load_capture,
)
from .support import collect

VOLATILE = {"stepCallId", "startedAt", "endedAt", "suspendedAt", "resumedAt", "runId"}
"""Payload keys whose values are ids or times: present on both sides, values not compared."""

PARALLEL_SIBLINGS = {"par-a", "par-b"}

Shape = tuple[str, str, str | None, tuple[str, ...]]


def shape(event: dict[str, Any]) -> Shape:
    """What must be the same for an event: type, source, step, and the payload's keys."""
    payload = event["payload"]
    return (event["type"], event["from"], payload.get("id"), tuple(sorted(payload)))


def values(event: dict[str, Any]) -> dict[str, Any]:
    """The payload without ids, times and the error's details (Python and JS differ there)."""
    payload = {k: v for k, v in event["payload"].items() if k not in VOLATILE}
    if "error" in payload:
        payload["error"] = payload["error"]["message"]
    return payload


def grouped(events: list[dict[str, Any]]) -> list[Any]:
    """The events in order, except a parallel block, which becomes one multiset."""
    out: list[Any] = []
    block: list[dict[str, Any]] = []
    for event in events:
        if event["payload"].get("id") in PARALLEL_SIBLINGS:
            block.append(event)
            continue
        if block:
            out.append(Counter(json.dumps([shape(e), values(e)], sort_keys=True) for e in block))
            block = []
        out.append([shape(event), values(event)])
    return out


def per_step_order(events: list[dict[str, Any]], step_id: str) -> list[str]:
    return [e["type"] for e in events if e["payload"].get("id") == step_id]


def assert_same_stream(ours: list[dict[str, Any]], reference: list[dict[str, Any]]) -> None:
    assert [e["type"] for e in ours if e["payload"].get("id") not in PARALLEL_SIBLINGS] == [
        e["type"] for e in reference if e["payload"].get("id") not in PARALLEL_SIBLINGS
    ]
    assert grouped(ours) == grouped(reference)
    for sibling in PARALLEL_SIBLINGS:
        assert per_step_order(ours, sibling) == per_step_order(reference, sibling)


async def run_reference() -> tuple[Run, list[dict[str, Any]], WorkflowResult]:
    workflow = build_reference_workflow()
    run = await workflow.create_run(run_id="run-success-1")
    out = run.stream({"value": 5})
    events = [event.to_dict() for event in await collect(out)]
    return run, events, await out.result


async def test_first_stream_matches_the_capture_event_by_event() -> None:
    _, events, _ = await run_reference()

    assert_same_stream(events, load_capture("events-run1-stream.jsonl"))


async def test_resume_stream_matches_the_capture_event_by_event() -> None:
    run, _, _ = await run_reference()

    out = run.resume_stream(RESUME_DATA)
    events = [event.to_dict() for event in await collect(out)]

    assert_same_stream(events, load_capture("events-run1-resumeStream.jsonl"))


async def test_resumed_step_keeps_its_start_time_and_gets_a_new_call_id() -> None:
    run, first, _ = await run_reference()
    suspended = next(e for e in first if e["type"] == "workflow-step-suspended")

    resumed = [e.to_dict() for e in await collect(run.resume_stream(RESUME_DATA))]
    start = next(e for e in resumed if e["type"] == "workflow-step-start")

    assert start["payload"]["id"] == "approve"
    assert start["payload"]["startedAt"] == suspended["payload"]["startedAt"]
    assert start["payload"]["stepCallId"] != suspended["payload"]["stepCallId"]
    assert start["payload"]["resumedAt"] >= start["payload"]["startedAt"]


async def test_failing_step_stream_matches_the_capture_plus_the_error_on_finish() -> None:
    workflow = build_fail_workflow()
    run = await workflow.create_run(run_id="run-throw-5")
    events = [event.to_dict() for event in await collect(run.stream({"value": 1}))]
    reference = load_capture("events-run5-throw-stream.jsonl")

    finish = events[-1]["payload"]
    assert finish["error"]["message"] == "boom: thrown directly"
    assert finish["error"]["name"] == "RuntimeError"
    del finish["error"]  # our one intended addition; the rest must match Mastra
    assert_same_stream(events, reference)


def reference_results() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((REFERENCE_DIR / "results-run1.json").read_text())
    return data


TIMES = {"startedAt", "endedAt", "suspendedAt", "resumedAt"}


def assert_same_result(ours: dict[str, Any], reference: dict[str, Any]) -> None:
    # Without tracing there is no run span; with it, traceId/spanId are filled (tracing tests).
    assert set(reference) - set(ours) == {"traceId", "spanId"}
    assert set(ours) - set(reference) == {"state"}  # we also report the run state
    for key in ("status", "input", "stepExecutionPath", "suspended", "suspendPayload", "result"):
        assert ours.get(key) == reference.get(key), key
    assert ours["steps"].keys() == reference["steps"].keys()
    for step_id, theirs in reference["steps"].items():
        mine = ours["steps"][step_id]
        if step_id == "input":
            assert mine == theirs
            continue
        # Mastra leaves `payload` out of some step results; we always keep it (a resume needs
        # it), so it is the one key we may add.
        assert set(mine) - set(theirs) <= {"payload"}, step_id
        assert set(theirs) <= set(mine), step_id
        assert {k: v for k, v in mine.items() if k not in TIMES and k in theirs} == {
            k: v for k, v in theirs.items() if k not in TIMES
        }, step_id
        assert all(isinstance(mine[k], int) for k in TIMES & set(mine)), step_id


async def test_suspended_result_has_the_shape_and_values_of_mastras() -> None:
    _, _, result = await run_reference()

    assert_same_result(result.to_dict(), reference_results()["initialStream"]["result"])


async def test_resumed_result_has_the_shape_and_values_of_mastras() -> None:
    run, _, _ = await run_reference()

    out = run.resume_stream(RESUME_DATA)
    result = await out.result

    assert_same_result(result.to_dict(), reference_results()["resumeStream"]["result"])
    assert (await out.usage).to_dict() == reference_results()["resumeStream"]["usage"]


async def test_stream_chunk_counts_match_mastras() -> None:
    run, events, _ = await run_reference()
    resumed = await collect(run.resume_stream(RESUME_DATA))

    reference = reference_results()
    assert len(events) == reference["initialStream"]["chunkCount"]
    assert len(resumed) == reference["resumeStream"]["chunkCount"]


async def test_the_input_can_make_the_last_step_fail() -> None:
    workflow = build_reference_workflow()
    run = await workflow.create_run()
    await run.start({"value": 5, "fail": True})

    result = await run.resume(RESUME_DATA)

    assert result.status == "failed"
    assert str(result.error) == "maybe-fail: the input asked for it"
    assert result.steps["maybe-fail"].status == "failed"


async def test_merge_receives_the_parallel_models_as_the_plain_dicts_it_declares() -> None:
    _, _, result = await run_reference()

    merge = result.steps["merge"]
    assert merge.payload == {"par-a": {"a": 22}, "par-b": {"b": 32}}
    assert [type(v) for v in merge.payload.values()] == [dict, dict]
    assert merge.output.value == 54
