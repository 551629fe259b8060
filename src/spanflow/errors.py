"""Errors raised by spanflow, and the control-flow signals that are deliberately not errors.

Errors form one small hierarchy rooted in `SpanflowError`; each message says what went wrong
and, where it can, what to do about it. Suspending and bailing out of a run are *signals*:
they derive from `BaseException` through `ControlFlowSignal`, so a user's ``except Exception``
around ``ctx.suspend(...)`` cannot swallow them, and nothing records them as failures.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "BailSignal",
    "ControlFlowSignal",
    "InvalidInputError",
    "JobError",
    "NonRetryableError",
    "RunClaimError",
    "RunNotFoundError",
    "RunStateError",
    "SpanflowError",
    "StepNotFoundError",
    "StorageError",
    "StoredError",
    "SuspendSignal",
    "SyncInLoopError",
    "WorkflowDefinitionError",
]


class SpanflowError(Exception):
    """Base class of every error spanflow raises on purpose."""


class WorkflowDefinitionError(SpanflowError):
    """A workflow or step was built wrongly (duplicate ids, not committed, empty, ...)."""


class InvalidInputError(SpanflowError, ValueError):
    """Input, state, resume data or request context did not match its schema.

    The message names the offending field; `errors` holds pydantic's structured details.
    """

    def __init__(self, message: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.errors: list[dict[str, Any]] = errors or []


class RunStateError(SpanflowError):
    """The run is not in a state that allows the requested operation (e.g. resume a success)."""


class RunNotFoundError(SpanflowError, LookupError):
    """No stored run has the given id."""


class RunClaimError(RunStateError):
    """Another process claimed the run first (two concurrent resumers: only one wins)."""


class JobError(SpanflowError):
    """A queued execution that no worker could carry out (its workflow is not registered
    there, its job does not decode, its stored input no longer fits): the run fails with it."""


class StepNotFoundError(SpanflowError, LookupError):
    """A step id or path does not name a step of the workflow (or a suspended one)."""


class StorageError(SpanflowError):
    """The run store failed or holds data spanflow cannot read (corrupt, foreign, newer)."""


class SyncInLoopError(SpanflowError, RuntimeError):
    """A ``*_sync`` convenience was called from inside a running event loop."""


class NonRetryableError(SpanflowError):
    """Raise from a step to fail it at once, skipping any remaining retry attempts."""


class ControlFlowSignal(BaseException):
    """Base of the signals a step raises to steer its run; never recorded as a failure."""


class SuspendSignal(ControlFlowSignal):
    """Raised by ``ctx.suspend(...)``: the step stops here and the run suspends."""

    def __init__(self, payload: Any, resume_label: str | None = None) -> None:
        super().__init__("step suspended")
        self.payload = payload
        self.resume_label = resume_label


class BailSignal(ControlFlowSignal):
    """Raised by ``ctx.bail(value)``: the whole run ends now with status ``success``."""

    def __init__(self, value: Any) -> None:
        super().__init__("run bailed")
        self.value = value


class StoredError(Exception):
    """An error restored from a snapshot: the original type's name, message and stack."""

    def __init__(self, name: str, message: str, stack: str | None = None) -> None:
        super().__init__(message)
        self.name = name
        self.stack = stack

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""

    @classmethod
    def from_wire(cls, data: object) -> StoredError | None:
        """The error of a wire dict ``{name, message, stack?}`` (a snapshot's, an event's);
        ``None`` when `data` is not one."""
        if not isinstance(data, Mapping):
            return None
        return cls(str(data.get("name", "Error")), str(data.get("message", "")), data.get("stack"))
