"""The JSON the server answers with for definitions and stored runs, in Mastra's shapes.

- `workflow_info`: ``GET /workflows/:id`` (and each value of ``GET /workflows``): name,
  description, ``steps`` (direct steps by id), ``allSteps`` (nested workflows' steps too,
  keyed ``outer.inner``), ``stepGraph`` (one ``{type, ...}`` per entry, Mastra's entry types)
  and the JSON schemas of input, output and state, each as JSON *text*, as Mastra sends them
  (``@mastra/client-js``'s ``getSchema()`` parses the text).
- `agent_info`: ``GET /agents/:id``: name, description, static instructions, tools with their
  parameter schemas, provider and model id.
- `run_listing`: one item of ``GET /workflows/:id/runs``: the stored columns and the snapshot
  as stored (spanflow's own format; its ``status`` key is the run's status, as in Mastra's).
- `run_state`: ``GET /workflows/:id/runs/:runId``: the run read back from its snapshot, with
  ISO dates.

Both add, for a traced run only (so an untraced run's keys are exactly Mastra's), what the run
browser shows beside each run: ``traceId`` and ``spanId`` of the run span (the Jaeger link and
the ``traceparent``), and the ``tags`` (a list) and ``metadata`` (flattened, ``{"user.id":
"u-42"}``) given in ``tracingOptions``, read from the trace context stored with the run.

Dates are ISO 8601 in UTC with milliseconds and ``Z``, as ``Date.toJSON`` writes them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from spanflow._schema import schema_of
from spanflow.server.errors import ApiError
from spanflow.storage.base import StoredRun
from spanflow.tracing.attributes import METADATA_PREFIX, TAGS_ATTRIBUTE
from spanflow.tracing.context import StoredTraceContext
from spanflow.workflows import read_run_snapshot
from spanflow.workflows.step import Step
from spanflow.workflows.workflow import (
    BranchEntry,
    Entry,
    ForeachEntry,
    LoopEntry,
    ParallelEntry,
    SleepEntry,
    StepEntry,
    Workflow,
)

__all__ = [
    "RUN_STATE_FIELDS",
    "agent_info",
    "iso_date",
    "parse_fields",
    "run_listing",
    "run_state",
    "trace_facts",
    "workflow_info",
]

RUN_STATE_FIELDS = (
    "status",
    "payload",
    "steps",
    "result",
    "error",
    "tripwire",
    "activeStepsPath",
    "suspendedPaths",
    "serializedStepGraph",
)
"""What ``?fields=`` may pick; the run's ids and dates (Mastra's ``metadata``) and its
``status`` are always included, as Mastra's client documents."""
_ALL_FIELDS = RUN_STATE_FIELDS


def iso_date(epoch_seconds: float) -> str:
    """``2026-01-31T12:00:00.123Z``."""
    moment = datetime.fromtimestamp(epoch_seconds, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _json_schema(type_: Any) -> str | None:
    """The JSON schema of `type_` as JSON text (``None`` without a schema)."""
    schema = schema_of(type_)
    return None if schema is None else json.dumps(schema.json_schema())


def _step_info(step: Step[Any, Any] | Workflow) -> dict[str, Any]:
    out: dict[str, Any] = {"id": step.id, "description": step.description}
    out["inputSchema"] = _json_schema(step.input_schema)
    out["outputSchema"] = _json_schema(step.output_schema)
    if isinstance(step, Step):
        out["resumeSchema"] = _json_schema(step.resume_schema)
        out["suspendSchema"] = _json_schema(step.suspend_schema)
    else:
        out["isWorkflow"] = True
    return out


def _all_steps(workflow: Workflow, prefix: str = "") -> Iterable[tuple[str, dict[str, Any]]]:
    for step in workflow.iter_steps():
        key = f"{prefix}{step.id}"
        yield key, _step_info(step)
        if isinstance(step, Workflow):
            yield from _all_steps(step, f"{key}.")


def _graph_entry(entry: Entry) -> dict[str, Any]:
    """One entry of ``stepGraph``, with Mastra's ``type`` names."""
    if isinstance(entry, StepEntry):
        return {"type": "step", "step": {"id": entry.step.id}}
    if isinstance(entry, ParallelEntry):
        steps = [{"type": "step", "step": {"id": s.id}} for s in entry.steps]
        return {"type": "parallel", "id": entry.id, "steps": steps}
    if isinstance(entry, BranchEntry):
        steps = [{"type": "step", "step": {"id": s.id}} for _, s in entry.branches]
        return {"type": "conditional", "id": entry.id, "steps": steps}
    if isinstance(entry, ForeachEntry):
        return {
            "type": "foreach",
            "step": {"id": entry.step.id},
            "opts": {"concurrency": entry.concurrency},
        }
    if isinstance(entry, LoopEntry):
        return {"type": "loop", "step": {"id": entry.step.id}, "loopType": entry.kind}
    assert isinstance(entry, SleepEntry)
    return {"type": "sleepUntil" if entry.until is not None else "sleep", "id": entry.id}


def workflow_info(workflow: Workflow) -> dict[str, Any]:
    """A workflow's description (see the module docstring)."""
    return {
        "name": workflow.id,
        "description": workflow.description,
        "steps": {step.id: _step_info(step) for step in workflow.iter_steps()},
        "allSteps": dict(_all_steps(workflow)),
        "stepGraph": [_graph_entry(entry) for entry in workflow.entries],
        "inputSchema": _json_schema(workflow.input_schema),
        "outputSchema": _json_schema(workflow.output_schema),
        "stateSchema": _json_schema(workflow.state_schema),
    }


def agent_info(agent: Any) -> dict[str, Any]:
    """An agent's description (see the module docstring); duck-typed like the registry."""
    instructions = getattr(agent, "instructions", None)
    model = getattr(agent, "model", None)
    tools = {
        tool.name: {
            "id": tool.name,
            "description": tool.description,
            "inputSchema": tool.parameters,
        }
        for tool in getattr(agent, "tool_definitions", ())
    }
    return {
        "id": agent.id,
        "name": getattr(agent, "name", agent.id),
        "description": getattr(agent, "description", None),
        "instructions": instructions if isinstance(instructions, str) else None,
        "tools": tools,
        "provider": getattr(model, "provider", None),
        "modelId": getattr(model, "model_id", None),
        "maxSteps": getattr(agent, "max_steps", None),
    }


def run_listing(stored: StoredRun) -> dict[str, Any]:
    """One run of ``GET /workflows/:id/runs``."""
    out: dict[str, Any] = {
        "workflowName": stored.workflow_id,
        "runId": stored.run_id,
        "snapshot": stored.snapshot,
        "createdAt": iso_date(stored.created_at),
        "updatedAt": iso_date(stored.updated_at),
    }
    if stored.resource_id is not None:
        out["resourceId"] = stored.resource_id
    raw = stored.snapshot.get("trace") if isinstance(stored.snapshot, dict) else None
    out.update(trace_facts(StoredTraceContext.from_dict(raw)))
    return out


def trace_facts(trace: StoredTraceContext | None) -> dict[str, Any]:
    """``traceId``, ``spanId``, ``tags`` and ``metadata`` of a traced run (see the module
    docstring); nothing for an untraced one."""
    if trace is None:
        return {}
    attributes = trace.attributes
    tags = attributes.get(TAGS_ATTRIBUTE, ())
    prefix = METADATA_PREFIX + "."
    return {
        "traceId": trace.trace_id,
        "spanId": trace.span_id,
        "tags": [str(tag) for tag in tags] if isinstance(tags, list | tuple) else [],
        "metadata": {
            key[len(prefix) :]: value for key, value in attributes.items() if key.startswith(prefix)
        },
    }


def parse_fields(text: str | None) -> tuple[str, ...]:
    """The ``fields`` query parameter (comma-separated); all fields when absent.

    Raises:
        ApiError: 400 naming a field the run state does not have.
    """
    if not text:
        return _ALL_FIELDS
    fields = tuple(part.strip() for part in text.split(",") if part.strip() != "metadata")
    fields = tuple(dict.fromkeys(("status", *(name for name in fields if name))))
    unknown = [name for name in fields if name not in _ALL_FIELDS]
    if unknown:
        raise ApiError(
            400,
            f"invalid query parameter 'fields': unknown field {unknown[0]!r} (available: "
            f"{', '.join(_ALL_FIELDS)})",
        )
    return fields


def run_state(
    stored: StoredRun, workflow: Workflow, fields: tuple[str, ...] = _ALL_FIELDS
) -> dict[str, Any]:
    """A stored run's state (``GET /workflows/:id/runs/:runId``), limited to `fields`.

    ``activeStepsPath`` and ``suspendedPaths`` map a step id to the index of the top-level
    entry it runs (or is suspended) in, as Mastra's do: ``{"approve": [7]}``.

    Raises:
        StorageError: The snapshot cannot be read (a newer spanflow stored it, or it is
            damaged).
    """
    snapshot = read_run_snapshot(stored)
    frame = snapshot.frame
    position = [frame.position]
    values: dict[str, Any] = {
        "status": stored.status,
        "payload": frame.input,
        "steps": frame.steps,
        "result": snapshot.result if stored.status == "success" else None,
        "error": snapshot.error,
        "tripwire": snapshot.tripwire.to_dict() if snapshot.tripwire is not None else None,
        "activeStepsPath": {
            step_id: position
            for step_id, step in frame.steps.items()
            if step.get("status") in ("running", "waiting")
        }
        if stored.status in ("running", "waiting")
        else {},
        "suspendedPaths": {path[-1]: position for path in snapshot.suspended},
        "serializedStepGraph": [_graph_entry(entry) for entry in workflow.entries],
    }
    out: dict[str, Any] = {
        "runId": stored.run_id,
        "workflowName": stored.workflow_id,
        "createdAt": iso_date(stored.created_at),
        "updatedAt": iso_date(stored.updated_at),
    }
    if stored.resource_id is not None:  # left out, not null, as Mastra does
        out["resourceId"] = stored.resource_id
    for name in fields:
        value = values[name]
        if value is not None or name not in ("result", "error", "tripwire"):
            out[name] = value
    out.update(trace_facts(snapshot.trace))
    return out
