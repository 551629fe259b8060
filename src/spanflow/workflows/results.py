"""`StepResult` and `WorkflowResult`: what a run produced, with Mastra's wire shape.

In Python, outputs are the validated objects the steps returned; `to_dict()` gives the JSON form
of ``../reference/mastra/results-run1.json`` (camelCase keys, epoch-millisecond timestamps).
"""

from __future__ import annotations

import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from spanflow._schema import to_wire
from spanflow.errors import StoredError
from spanflow.tracing.redaction import redact_error_message, redact_stack
from spanflow.usage import Usage

__all__ = [
    "StepResult",
    "StepStatus",
    "StoredError",
    "StoredTripwireError",
    "TripwireError",
    "TripwireInfo",
    "WorkflowResult",
    "WorkflowStatus",
    "error_to_dict",
]

WorkflowStatus = Literal["success", "failed", "suspended", "canceled", "tripwire"]
StepStatus = Literal["success", "failed", "suspended", "running", "waiting", "skipped", "canceled"]


@dataclass(frozen=True, slots=True)
class TripwireInfo:
    """Why a processor stopped an agent call on purpose (Mastra's ``StepTripwireData``).

    An agent call's ``result.tripwire``, and a workflow's when an agent step tripped.
    """

    reason: str
    processor: str | None = None
    """The id (name) of the processor that called ``abort``."""
    retry: bool = False
    metadata: Any = None
    """What the processor attached to the abort."""

    def to_dict(self) -> dict[str, Any]:
        """Mastra's wire shape: ``{reason, retry, metadata?, processorId?}``."""
        out: dict[str, Any] = {"reason": self.reason, "retry": self.retry}
        if self.metadata is not None:
            out["metadata"] = to_wire(self.metadata)
        if self.processor is not None:
            out["processorId"] = self.processor
        return out

    @classmethod
    def from_wire(cls, data: object) -> TripwireInfo | None:
        """The tripwire of its wire form (`to_dict`: a snapshot's, an event's); ``None`` when
        `data` is not one."""
        if not isinstance(data, Mapping) or not isinstance(data.get("reason"), str):
            return None
        processor = data.get("processorId")
        return cls(
            data["reason"],
            processor if isinstance(processor, str) else None,
            bool(data.get("retry", False)),
            data.get("metadata"),
        )


class TripwireError(Exception):
    """Raised by a step whose agent call tripped: the run ends ``tripwire``, not ``failed``.

    Defined here (not with the agents) so the engine recognises it without importing agents.
    """

    def __init__(self, message: str, tripwire: TripwireInfo) -> None:
        super().__init__(message)
        self.tripwire = tripwire


class StoredTripwireError(StoredError, TripwireError):
    """A tripped step's error restored from a snapshot: a `StoredError` (the original name,
    message and stack) that is still a `TripwireError`, so the step result read back carries
    its ``tripwire`` as the live one did, and a run ended by it still ends ``tripwire``."""

    def __init__(self, name: str, message: str, stack: str | None, tripwire: TripwireInfo) -> None:
        # Both bases take other arguments: set what each keeps directly.
        Exception.__init__(self, message)
        self.name = name
        self.stack = stack
        self.tripwire = tripwire


def error_to_dict(error: BaseException) -> dict[str, Any]:
    """``{name, message, stack}`` for an exception (the stack as Python formats it).

    Message and stack are redacted (``password=...``, ``Bearer ...``, secret-looking values)
    and cut with a marker, as on spans: this is what snapshots store and streams send.
    """
    stack = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    return {
        "name": type(error).__name__,
        "message": redact_error_message(str(error)),
        "stack": redact_stack(stack),
    }


@dataclass(slots=True)
class StepResult:
    """How one step (or foreach, or nested workflow) ended, or where it stands."""

    status: StepStatus
    payload: Any = None
    """The step's validated input."""
    output: Any = None
    error: BaseException | None = None
    suspend_payload: Any = None
    resume_payload: Any = None
    started_at: int | None = None
    """Epoch milliseconds."""
    ended_at: int | None = None
    suspended_at: int | None = None
    resumed_at: int | None = None
    resume_label: str | None = None
    """The label the step suspended with (``ctx.suspend(..., resume_label=...)``)."""

    def to_dict(self) -> dict[str, Any]:
        """Mastra's wire shape; keys with no value are left out."""
        out: dict[str, Any] = {"status": self.status}
        if self.payload is not None:
            out["payload"] = to_wire(self.payload)
        if self.started_at is not None:
            out["startedAt"] = self.started_at
        if self.status == "success":
            out["output"] = to_wire(self.output)
        if self.error is not None:
            out["error"] = error_wire(self.error)
            if isinstance(self.error, TripwireError):  # Mastra's step result carries it
                out["tripwire"] = self.error.tripwire.to_dict()
        if self.suspend_payload is not None:
            out["suspendPayload"] = to_wire(self.suspend_payload)
        if self.suspended_at is not None:
            out["suspendedAt"] = self.suspended_at
        if self.resume_payload is not None:
            out["resumePayload"] = to_wire(self.resume_payload)
        if self.resumed_at is not None:
            out["resumedAt"] = self.resumed_at
        if self.resume_label is not None and self.status == "suspended":
            out["resumeLabel"] = self.resume_label
        if self.ended_at is not None:
            out["endedAt"] = self.ended_at
        return out


def error_wire(error: BaseException) -> dict[str, Any]:
    """The wire form of an error, keeping a restored error's original name and stack.

    A restored error is redacted again (which changes nothing in what spanflow stored, and
    cleans what an older version stored).
    """
    if isinstance(error, StoredError):
        out: dict[str, Any] = {"name": error.name, "message": redact_error_message(str(error))}
        if error.stack:
            out["stack"] = redact_stack(error.stack)
        return out
    return error_to_dict(error)


@dataclass(slots=True)
class WorkflowResult:
    """The outcome of `Run.start`, `Run.resume` or a stream's ``result``."""

    status: WorkflowStatus
    run_id: str
    steps: dict[str, StepResult]
    input: Any = None
    result: Any = None
    """The workflow's output (status ``success``)."""
    error: BaseException | None = None
    """The exception that failed the run (status ``failed``)."""
    tripwire: TripwireInfo | None = None
    """Why an agent step's processor stopped the run (status ``tripwire``)."""
    suspended: list[list[str]] = field(default_factory=list)
    """Paths of suspended steps, e.g. ``[["approve"]]`` or ``[["inner", "approve"]]``."""
    suspend_payload: dict[str, Any] = field(default_factory=dict)
    state: Any = None
    usage: Usage = field(default_factory=Usage)
    step_execution_path: list[str] = field(default_factory=list)
    trace_id: str | None = None
    """The run span's trace id (32 hex), ``None`` when tracing is off."""
    span_id: str | None = None
    """The run span's id (16 hex), ``None`` when tracing is off."""

    def to_dict(self) -> dict[str, Any]:
        """Mastra's wire shape (see ``reference/mastra/results-run1.json``)."""
        steps: dict[str, Any] = {"input": to_wire(self.input)}
        for step_id, step_result in self.steps.items():
            steps[step_id] = step_result.to_dict()
        out: dict[str, Any] = {
            "status": self.status,
            "steps": steps,
            "input": to_wire(self.input),
            "stepExecutionPath": list(self.step_execution_path),
        }
        if self.status == "success":
            out["result"] = to_wire(self.result)
        if self.error is not None:
            out["error"] = error_wire(self.error)
        if self.tripwire is not None:
            out["tripwire"] = self.tripwire.to_dict()
        if self.status == "suspended":
            out["suspended"] = [list(p) for p in self.suspended]
            out["suspendPayload"] = {k: to_wire(v) for k, v in self.suspend_payload.items()}
        if self.state is not None:
            out["state"] = to_wire(self.state)
        out["runId"] = self.run_id
        if self.trace_id is not None:
            out["traceId"] = self.trace_id
            out["spanId"] = self.span_id
        return out
