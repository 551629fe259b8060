"""The snapshot codec: a run's execution state as JSON-able data, and back.

A snapshot holds everything needed to continue a run in another process: the frame (position
in the workflow, step results, state, the carried value, the resumable state of the entry in
progress, nested frames), plus the run-level facts the run module adds (status, request context
minus credentials, the run span's trace context, result or error). Values are stored in their
JSON form; loading re-validates step outputs with their schemas so steps see model instances
again. ``SNAPSHOT_VERSION`` is bumped on incompatible changes and checked on load.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from spanflow._schema import to_wire
from spanflow.errors import InvalidInputError, StorageError
from spanflow.storage.base import StoredRun
from spanflow.workflows.results import StepResult, StoredError

if TYPE_CHECKING:
    from spanflow.tracing.instrumentation import Scope
    from spanflow.workflows._frame import Frame, RunControl
    from spanflow.workflows.workflow import Workflow

__all__ = [
    "SNAPSHOT_VERSION",
    "dump_frame",
    "dump_step_result",
    "load_frame",
    "load_step_result",
    "read_run_snapshot",
]

SNAPSHOT_VERSION = 1


def dump_step_result(result: StepResult) -> dict[str, Any]:
    """A step result in its wire form (Mastra's shape, which is also what we store)."""
    return result.to_dict()


def load_step_result(data: dict[str, Any], output_schema: Any = None, many: bool = False) -> Any:
    """A `StepResult` from its wire form; outputs re-validated with `output_schema`."""
    error = data.get("error")
    output = data.get("output")
    if output is not None and output_schema is not None and data.get("status") == "success":
        try:
            if many and isinstance(output, list):
                output = [output_schema.validate(o, what="stored output") for o in output]
            else:
                output = output_schema.validate(output, what="stored output")
        except InvalidInputError:
            pass  # keep the stored JSON: a schema change must not make a run unreadable
    return StepResult(
        status=data["status"],
        payload=data.get("payload"),
        output=output,
        error=(
            StoredError(error.get("name", "Error"), error.get("message", ""), error.get("stack"))
            if isinstance(error, dict)
            else None
        ),
        suspend_payload=data.get("suspendPayload"),
        resume_payload=data.get("resumePayload"),
        started_at=data.get("startedAt"),
        ended_at=data.get("endedAt"),
        suspended_at=data.get("suspendedAt"),
        resumed_at=data.get("resumedAt"),
    )


def dump_frame(frame: Frame) -> dict[str, Any]:
    """The frame as JSON-able data. Finished step results are serialised once and cached."""
    cache = frame.wire_cache
    steps: dict[str, Any] = {}
    for step_id, result in frame.steps.items():
        cached = cache.get(step_id)
        if cached is None or cached[0] is not result:
            cached = (result, result.to_dict())
            if result.status in ("success", "failed", "canceled"):
                cache[step_id] = cached
        steps[step_id] = cached[1]
    return {
        "workflowId": frame.workflow.id,
        "input": to_wire(frame.input),
        "state": to_wire(frame.state),
        "steps": steps,
        "position": frame.position,
        "carry": to_wire(frame.carry),
        "path": list(frame.path),
        "entry": to_wire(frame.entry_state) if frame.entry_state is not None else None,
    }


def load_frame(
    workflow: Workflow, data: dict[str, Any], run: RunControl, scope: Scope, prefix: str = ""
) -> Frame:
    """Rebuild a `Frame` from `dump_frame` output, for `workflow` as it is defined now."""
    from spanflow.workflows._frame import Frame
    from spanflow.workflows.workflow import ForeachEntry

    if data.get("workflowId") != workflow.id:
        raise StorageError(
            f"snapshot belongs to workflow {data.get('workflowId')!r}, not {workflow.id!r}"
        )
    position = int(data.get("position", 0))
    if position > len(workflow._entries):
        raise StorageError(
            f"snapshot of workflow {workflow.id!r} is at entry {position}, but the workflow now "
            f"has {len(workflow._entries)} entries: it changed since the run was stored"
        )
    foreach_ids = {e.step.id for e in workflow._entries if isinstance(e, ForeachEntry)}
    steps: dict[str, StepResult] = {}
    for step_id, raw in (data.get("steps") or {}).items():
        step = workflow.find_step(step_id)
        schema = step._output if step is not None else None
        steps[step_id] = load_step_result(raw, schema, many=step_id in foreach_ids)
    input_value = data.get("input")
    if workflow._input is not None:
        with contextlib.suppress(InvalidInputError):
            input_value = workflow._input.validate(input_value, what="stored input")
    state = data.get("state")
    if workflow._state is not None:
        with contextlib.suppress(InvalidInputError):
            state = workflow._state.validate(state, what="stored state")
    entry = data.get("entry")
    if entry is not None and position < len(workflow._entries):
        current = workflow._entries[position]
        if isinstance(current, ForeachEntry):
            entry = _load_foreach_state(entry, current.step)
    return Frame(
        workflow=workflow,
        run=run,
        scope=scope,
        input=input_value,
        state=state,
        steps=steps,
        prefix=prefix,
        position=position,
        carry=data.get("carry"),
        path=list(data.get("path") or []),
        entry_state=entry,
    )


def _load_foreach_state(entry: dict[str, Any], step: Any) -> dict[str, Any]:
    # JSON turned the int keys of these maps into strings; outputs need their models back.
    schema = getattr(step, "_output", None)
    outputs = list(entry.get("outputs") or [])
    statuses = list(entry.get("statuses") or [])
    if schema is not None:
        for i, (status, out) in enumerate(zip(statuses, outputs, strict=False)):
            if status == "success":
                with contextlib.suppress(InvalidInputError):
                    outputs[i] = schema.validate(out, what="stored output")
    return {
        "items": list(entry.get("items") or []),
        "outputs": outputs,
        "statuses": statuses,
        "suspend": {int(k): v for k, v in (entry.get("suspend") or {}).items()},
        "slots": {int(k): v for k, v in (entry.get("slots") or {}).items()},
        "paths": {int(k): v for k, v in (entry.get("paths") or {}).items()},
        "startedAt": entry.get("startedAt"),
    }


def read_run_snapshot(stored: StoredRun) -> dict[str, Any]:
    """A stored run's snapshot, checked to be one this spanflow can continue."""
    snapshot = stored.snapshot
    version = snapshot.get("version")
    if not isinstance(version, int) or "frame" not in snapshot:
        raise StorageError(f"run {stored.run_id!r}: stored snapshot is not a spanflow snapshot")
    if version > SNAPSHOT_VERSION:
        raise StorageError(
            f"run {stored.run_id!r} was stored by a newer spanflow (snapshot version {version}, "
            f"this one reads up to {SNAPSHOT_VERSION}): upgrade spanflow to resume it"
        )
    return snapshot
