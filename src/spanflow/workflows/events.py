"""Stream events: what `run.stream()` yields, typed in Python, Mastra-shaped on the wire.

An event is a small `WorkflowEvent` whose `payload` is one of the payload dataclasses below, so
Python code can ``match`` on it. `to_dict()` builds Mastra's wire form
``{"type", "runId", "from", "payload"}`` with camelCase keys, only when asked: the hot path never
builds JSON that nobody reads. See ``engine.md`` §4 and ``reference/mastra/events-*.jsonl``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from spanflow._schema import to_wire
from spanflow.errors import InvalidInputError, StoredError
from spanflow.usage import Usage
from spanflow.workflows.results import TripwireInfo, error_wire

__all__ = [
    "CustomPayload",
    "EventSource",
    "EventType",
    "StepOutputPayload",
    "StepProgressPayload",
    "StepResultPayload",
    "StepStartPayload",
    "StepSuspendedPayload",
    "StepWaitingPayload",
    "WorkflowCanceledPayload",
    "WorkflowEvent",
    "WorkflowEventPayload",
    "WorkflowFinishPayload",
    "WorkflowStartPayload",
]

EventSource = Literal["WORKFLOW", "USER"]
EventType = str
"""``workflow-start``, ``workflow-step-start``, ... or a user's ``data-*`` chunk type."""


_PLAIN = frozenset({str, int, float, bool})
"""Types `to_wire` returns as they are: an exact type test spares it the call."""


def _put(out: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        out[key] = value if type(value) in _PLAIN else to_wire(value)


@dataclass(slots=True)
class WorkflowStartPayload:
    """``workflow-start``: the first event of `stream` and of every `resume_stream`."""

    workflow_id: str

    def to_dict(self) -> dict[str, Any]:
        return {"workflowId": self.workflow_id}


@dataclass(slots=True)
class StepStartPayload:
    """``workflow-step-start``: a step (or a whole foreach) is about to run."""

    id: str
    step_name: str
    step_call_id: str | None
    """``None`` for a foreach, which has one start event for all its iterations."""
    payload: Any
    started_at: int
    resume_payload: Any = None
    resumed_at: int | None = None
    status: Literal["running"] = "running"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"stepName": self.step_name, "id": self.id}
        _put(out, "stepCallId", self.step_call_id)
        out["payload"] = to_wire(self.payload)
        out["startedAt"] = self.started_at
        out["status"] = self.status
        _put(out, "resumePayload", self.resume_payload)
        _put(out, "resumedAt", self.resumed_at)
        return out


@dataclass(slots=True)
class StepOutputPayload:
    """``workflow-step-output`` (from ``USER``): a value a step wrote with ``ctx.writer``."""

    step_name: str
    output: Any
    run_id: str

    def to_dict(self) -> dict[str, Any]:
        return {"stepName": self.step_name, "output": to_wire(self.output), "runId": self.run_id}


@dataclass(slots=True)
class StepProgressPayload:
    """``workflow-step-progress``: one foreach iteration finished."""

    id: str
    step_name: str
    completed_count: int
    total_count: int
    current_index: int
    iteration_status: Literal["success", "failed", "suspended"]
    iteration_output: Any = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "stepName": self.step_name,
            "id": self.id,
            "completedCount": self.completed_count,
            "totalCount": self.total_count,
            "currentIndex": self.current_index,
            "iterationStatus": self.iteration_status,
        }
        _put(out, "iterationOutput", self.iteration_output)
        return out


@dataclass(slots=True)
class StepResultPayload:
    """``workflow-step-result``: a step finished (``success``, ``failed`` or ``canceled``)."""

    id: str
    step_name: str
    step_call_id: str | None
    status: str
    payload: Any
    started_at: int | None
    ended_at: int
    output: Any = None
    error: BaseException | None = None
    resume_payload: Any = None
    resumed_at: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"stepName": self.step_name, "id": self.id}
        _put(out, "stepCallId", self.step_call_id)
        _put(out, "payload", self.payload)
        _put(out, "startedAt", self.started_at)
        out["status"] = self.status
        _put(out, "resumePayload", self.resume_payload)
        _put(out, "resumedAt", self.resumed_at)
        if self.status == "success":
            out["output"] = to_wire(self.output)
        if self.error is not None:
            out["error"] = error_wire(self.error)
        out["endedAt"] = self.ended_at
        return out


@dataclass(slots=True)
class StepSuspendedPayload:
    """``workflow-step-suspended``: a step called ``ctx.suspend(...)``."""

    id: str
    step_name: str
    step_call_id: str | None
    payload: Any
    suspend_payload: Any
    started_at: int
    suspended_at: int
    status: Literal["suspended"] = "suspended"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"stepName": self.step_name, "id": self.id}
        _put(out, "stepCallId", self.step_call_id)
        out["payload"] = to_wire(self.payload)
        out["startedAt"] = self.started_at
        out["status"] = self.status
        out["suspendPayload"] = to_wire(self.suspend_payload)
        out["suspendedAt"] = self.suspended_at
        return out


@dataclass(slots=True)
class StepWaitingPayload:
    """``workflow-step-waiting``: a sleep began."""

    id: str
    step_name: str
    payload: Any
    started_at: int
    status: Literal["waiting"] = "waiting"

    def to_dict(self) -> dict[str, Any]:
        return {
            "stepName": self.step_name,
            "id": self.id,
            "payload": to_wire(self.payload),
            "startedAt": self.started_at,
            "status": self.status,
        }


@dataclass(slots=True)
class WorkflowCanceledPayload:
    """``workflow-canceled``: the run was canceled (empty payload)."""

    def to_dict(self) -> dict[str, Any]:
        return {}


@dataclass(slots=True)
class WorkflowFinishPayload:
    """``workflow-finish``: the last event. Unlike Mastra's, a failed finish carries the error."""

    workflow_status: str
    usage: Usage
    metadata: dict[str, Any] = field(default_factory=dict)
    final_workflow_result: Any = None
    error: BaseException | None = None
    tripwire: TripwireInfo | None = None
    """Status ``tripwire``: why an agent step's processor stopped the run."""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "workflowStatus": self.workflow_status,
            "metadata": to_wire(self.metadata),
            "output": {"usage": self.usage.to_dict()},
        }
        if self.workflow_status == "success":
            out["finalWorkflowResult"] = to_wire(self.final_workflow_result)
        if self.error is not None:
            out["error"] = error_wire(self.error)
        if self.tripwire is not None:
            out["tripwire"] = self.tripwire.to_dict()
        return out


@dataclass(slots=True)
class CustomPayload:
    """A user's ``data-*`` chunk forwarded by ``ctx.writer.custom(...)``, kept as given.

    Its event's `WorkflowEvent.to_dict` is the chunk itself, as in Mastra's stream.
    """

    data: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return dict(to_wire(self.data))


WorkflowEventPayload = (
    WorkflowStartPayload
    | StepStartPayload
    | StepOutputPayload
    | StepProgressPayload
    | StepResultPayload
    | StepSuspendedPayload
    | StepWaitingPayload
    | WorkflowCanceledPayload
    | WorkflowFinishPayload
    | CustomPayload
)


@dataclass(slots=True)
class WorkflowEvent:
    """One stream event."""

    type: EventType
    run_id: str
    payload: WorkflowEventPayload
    from_: EventSource = "WORKFLOW"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WorkflowEvent:
        """The typed event back from its wire form (`to_dict`, a stored event log, a stream
        read over HTTP).

        Values inside payloads (inputs, outputs, suspend payloads) stay in their JSON form, and
        errors come back as `StoredError` with the original name, message and stack. A
        ``data-*`` chunk (or any type this spanflow does not know) becomes a `CustomPayload`
        holding the dict as it is.

        Raises:
            InvalidInputError: `data` is not a dict with a string ``type``, or a known event
                lacks a field its payload needs (the message names it).
        """
        if not isinstance(data, Mapping) or not isinstance(data.get("type"), str):
            raise InvalidInputError(f"not a workflow event (no string 'type'): {data!r:.200}")
        kind = data["type"]
        reader = _PAYLOAD_READERS.get(kind)
        if reader is None:
            return cls(kind, str(data.get("runId", "")), CustomPayload(dict(data)), "USER")
        payload = data.get("payload")
        if not isinstance(payload, Mapping):
            raise InvalidInputError(f"{kind} event: 'payload' must be an object")
        try:
            typed = reader(payload)
        except KeyError as missing:
            raise InvalidInputError(f"{kind} event: payload has no {missing}") from None
        source = data.get("from", "WORKFLOW")
        return cls(
            kind, str(data.get("runId", "")), typed, "USER" if source == "USER" else "WORKFLOW"
        )

    def to_dict(self) -> dict[str, Any]:
        """Mastra's wire form: ``{"type", "runId", "from", "payload"}``.

        A user's ``data-*`` chunk is the exception: Mastra's ``writer.custom`` puts the chunk
        into the stream as it is, so its wire form is the chunk itself.
        """
        if isinstance(self.payload, CustomPayload):
            return self.payload.to_dict()
        return {
            "type": self.type,
            "runId": self.run_id,
            "from": self.from_,
            "payload": self.payload.to_dict(),
        }


def _step_start(p: Mapping[str, Any]) -> StepStartPayload:
    return StepStartPayload(
        p["id"],
        p.get("stepName", p["id"]),
        p.get("stepCallId"),
        p.get("payload"),
        p.get("startedAt", 0),
        p.get("resumePayload"),
        p.get("resumedAt"),
    )


def _step_result(p: Mapping[str, Any]) -> StepResultPayload:
    return StepResultPayload(
        p["id"],
        p.get("stepName", p["id"]),
        p.get("stepCallId"),
        p["status"],
        p.get("payload"),
        p.get("startedAt"),
        p.get("endedAt", 0),
        p.get("output"),
        StoredError.from_wire(p.get("error")),
        p.get("resumePayload"),
        p.get("resumedAt"),
    )


def _step_suspended(p: Mapping[str, Any]) -> StepSuspendedPayload:
    return StepSuspendedPayload(
        p["id"],
        p.get("stepName", p["id"]),
        p.get("stepCallId"),
        p.get("payload"),
        p.get("suspendPayload"),
        p.get("startedAt", 0),
        p.get("suspendedAt", 0),
    )


def _step_progress(p: Mapping[str, Any]) -> StepProgressPayload:
    return StepProgressPayload(
        p["id"],
        p.get("stepName", p["id"]),
        p["completedCount"],
        p["totalCount"],
        p["currentIndex"],
        p["iterationStatus"],
        p.get("iterationOutput"),
    )


def _finish(p: Mapping[str, Any]) -> WorkflowFinishPayload:
    output = p.get("output")
    usage = output.get("usage") if isinstance(output, Mapping) else None
    return WorkflowFinishPayload(
        p["workflowStatus"],
        Usage.from_dict(dict(usage)) if isinstance(usage, Mapping) else Usage(),
        dict(p.get("metadata") or {}),
        p.get("finalWorkflowResult"),
        StoredError.from_wire(p.get("error")),
        TripwireInfo.from_wire(p.get("tripwire")),
    )


_PAYLOAD_READERS: dict[str, Callable[[Mapping[str, Any]], WorkflowEventPayload]] = {
    "workflow-start": lambda p: WorkflowStartPayload(p["workflowId"]),
    "workflow-step-start": _step_start,
    "workflow-step-output": lambda p: StepOutputPayload(
        p["stepName"], p.get("output"), str(p.get("runId", ""))
    ),
    "workflow-step-progress": _step_progress,
    "workflow-step-result": _step_result,
    "workflow-step-suspended": _step_suspended,
    "workflow-step-waiting": lambda p: StepWaitingPayload(
        p["id"], p.get("stepName", p["id"]), p.get("payload"), p.get("startedAt", 0)
    ),
    "workflow-canceled": lambda p: WorkflowCanceledPayload(),
    "workflow-finish": _finish,
}
"""How each event type's payload is read back from its wire form."""
