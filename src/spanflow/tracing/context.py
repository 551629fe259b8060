"""The one tracing context: the facts of the run or agent call whose span is current.

Workflow runs and agent calls put their tracing facts (ids, tags, metadata and request-context
attributes, hide flags, the settings they trace with) in one context variable while their
spans are current. A run or agent
started inside reads them from there, never back from the enclosing span's attributes: it is
*nested* (``tracing.md`` §3), inherits the tags and metadata, and hides what the enclosing call
hides, whatever SDK or provider records the spans.

`StoredTraceContext` is what of it outlives a process: the run span's context and the facts a
resumed run keeps, stored in the run's snapshot.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from typing import Any

from spanflow.tracing.config import TracingConfig
from spanflow.tracing.options import ResolvedTracing

__all__ = [
    "StoredTraceContext",
    "TracingContext",
    "current_tracing_context",
    "reset_tracing_context",
    "set_tracing_context",
]

logger = logging.getLogger("spanflow.tracing")


@dataclass(frozen=True, slots=True, kw_only=True)
class TracingContext:
    """The tracing facts of one run or agent call, shared with everything started inside it."""

    run_id: str | None = None
    """``spanflow.run.id`` of the enclosing run (an agent call outside a run has its own)."""
    workflow_id: str | None = None
    """``spanflow.workflow.id`` of the enclosing run; ``None`` for an agent outside a run."""
    tags: tuple[str, ...] = ()
    """The tags, each once, in order."""
    attributes: Mapping[str, Any] = field(default_factory=dict)
    """Tag, metadata and request-context attributes (``spanflow.tag.*``,
    ``spanflow.metadata.*``, ``spanflow.tags``), as on the run or agent span."""
    hide_input: bool = False
    """Inputs are not recorded: inherited fail-closed by everything started inside."""
    hide_output: bool = False
    """Outputs are not recorded: inherited fail-closed by everything started inside."""
    config: TracingConfig = field(default_factory=TracingConfig)
    """The settings the enclosing call is traced with: an agent without tracing of its own,
    called inside, traces with them (same provider, limits and redaction)."""

    def inherited(self) -> ResolvedTracing:
        """What a run or agent call started inside inherits, before its own options."""
        return ResolvedTracing(
            tags=self.tags,
            attributes=dict(self.attributes),
            hide_input=self.hide_input,
            hide_output=self.hide_output,
        )

    def within(
        self, *, run_id: str | None = None, workflow_id: str | None = None
    ) -> TracingContext:
        """The same facts for a span that belongs to another run (a nested workflow)."""
        return dataclasses.replace(
            self,
            run_id=run_id if run_id is not None else self.run_id,
            workflow_id=workflow_id if workflow_id is not None else self.workflow_id,
        )


_CURRENT: ContextVar[TracingContext | None] = ContextVar("spanflow_tracing", default=None)


def current_tracing_context() -> TracingContext | None:
    """The facts of the run or agent call whose span is current, or ``None`` outside one."""
    return _CURRENT.get()


def set_tracing_context(context: TracingContext) -> Token[TracingContext | None]:
    """Make `context` current (a scope being entered); `reset_tracing_context` undoes it."""
    return _CURRENT.set(context)


def reset_tracing_context(token: Token[TracingContext | None]) -> None:
    """Undo `set_tracing_context` (a scope being exited)."""
    _CURRENT.reset(token)


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredTraceContext:
    """The run span's context and the facts a resumed run keeps, as stored with the run.

    Its JSON form (`to_dict`) uses camelCase keys: ``traceId``, ``spanId``, ``traceFlags``,
    ``attributes``, ``hideInput``, ``hideOutput``.
    """

    trace_id: str
    """32 lowercase hex digits."""
    span_id: str
    """16 lowercase hex digits: the run span a resume becomes a child of."""
    trace_flags: int = 1
    attributes: Mapping[str, Any] = field(default_factory=dict)
    """The run's tag and metadata attributes (lists for tuple values, as JSON has them)."""
    hide_input: bool = False
    hide_output: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The JSON form stored in the run's snapshot."""
        return {
            "traceId": self.trace_id,
            "spanId": self.span_id,
            "traceFlags": self.trace_flags,
            "attributes": {
                k: list(v) if isinstance(v, tuple) else v for k, v in self.attributes.items()
            },
            "hideInput": self.hide_input,
            "hideOutput": self.hide_output,
        }

    @classmethod
    def from_dict(cls, data: object) -> StoredTraceContext | None:
        """Read `to_dict` output back; ``None`` (logged) for anything unreadable.

        An unreadable trace context never makes a run unresumable: the resumed run then
        starts a new trace instead of continuing the stored one.
        """
        if not data:
            return None
        try:
            if not isinstance(data, Mapping):
                raise TypeError(f"a {type(data).__name__}, not an object")
            trace_id = _hex(data["traceId"], 32)
            span_id = _hex(data["spanId"], 16)
            flags = int(data.get("traceFlags", 1))
        except (KeyError, TypeError, ValueError) as error:
            logger.warning("spanflow: ignoring an unreadable stored trace context (%s)", error)
            return None
        return cls(
            trace_id=trace_id,
            span_id=span_id,
            trace_flags=flags,
            attributes=_attributes(data.get("attributes")),
            hide_input=data.get("hideInput") is True,
            hide_output=data.get("hideOutput") is True,
        )


def _hex(value: object, digits: int) -> str:
    number = int(str(value), 16)
    if not 0 < number < 16**digits:
        raise ValueError(f"{value!r} is not a valid {digits}-digit hex id")
    return f"{number:0{digits}x}"


def _attributes(raw: object) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        return {}
    return {
        str(k): tuple(v) if isinstance(v, list) else v
        for k, v in raw.items()
        if isinstance(v, str | bool | int | float | list)
    }
