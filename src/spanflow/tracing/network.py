"""The spans of an agent network, under its ``invoke_agent`` span (``network.md`` §4).

A network is one agent call of the network agent (`GenAITracing.start_agent` opens its
``invoke_agent`` span); inside it, each routing decision and each completion check is a
*phase* span, ``route N`` / ``check N``, under which the routing model's ``chat`` span goes.
A phase scope is an agent scope in everything but its end (so the agent loop can make its
model call under it), and it shares the network's `AgentTrace`: the same tags, metadata and
hide flags on every span. Sub-agents, workflow runs and tool calls nest under the network span
by themselves (the network span is current while they run).

Network chunks are also span events (`record_event`), on the span they belong to. Like every
tracing entry point these never raise: tracing never fails a network.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.trace import SpanKind

from spanflow.tracing._genai_scopes import OtelAgentScope, genai_messages, usage_attributes
from spanflow.tracing._guard import internal_errors
from spanflow.tracing.genai import AgentEnd, AgentScope
from spanflow.tracing.semconv import GenAIMessage

__all__ = [
    "close_phase",
    "open_phase",
    "record_event",
    "set_input_messages",
    "set_span_attributes",
]

_SCALARS = (str, bool, int, float)


class _PhaseScope(OtelAgentScope):
    """``route N`` or ``check N``: a child of the network span. The model call's end records
    its usage and status; the span itself ends at `close_phase`, once the network has added
    the decision and its chunks."""

    __slots__ = ()

    def end(self, end: AgentEnd) -> None:
        span = self.span
        with internal_errors("could not finish the network phase span"):
            for key, value in usage_attributes("spanflow.usage", end.usage).items():
                span.set_attribute(key, value)
            self._finish("spanflow.network.phase.status", end.status, end.error)

    def close(self) -> None:
        with internal_errors("could not end the network phase span"):
            self.span.end()


def close_phase(phase: AgentScope) -> None:
    """End a phase span opened by `open_phase` (nothing for a scope that records nothing)."""
    if isinstance(phase, _PhaseScope):
        phase.close()


def open_phase(network: AgentScope, name: str, attributes: Mapping[str, Any]) -> AgentScope:
    """A phase span under the network span (not yet current: `enter` it). A network that is
    not recorded (tracing off, sampled out) gives its own scope back, whose chat and end do
    nothing, so the model call still joins its (unsampled) trace."""
    if not isinstance(network, OtelAgentScope):
        return network
    with internal_errors("could not open the network phase span"):
        run = network.agent_trace
        merged = dict(run.common)
        merged.update(attributes)
        span = run.child(name, SpanKind.INTERNAL, merged, network.span)
        return _PhaseScope(run, span)
    return network


def record_event(scope: AgentScope, name: str, attributes: Mapping[str, Any]) -> None:
    """Add the network chunk `name` as a span event (scalar attributes only), unless the
    deployment turned events off (``TracingConfig.events="none"``)."""
    if not isinstance(scope, OtelAgentScope):
        return
    with internal_errors("could not record a network event"):
        if scope.agent_trace.config.events == "none":
            return
        values = {k: v for k, v in attributes.items() if isinstance(v, _SCALARS)}
        scope.span.add_event(name, values)


def set_span_attributes(scope: AgentScope, attributes: Mapping[str, Any]) -> None:
    """Set attributes on the scope's span (the network's iteration count, a decision)."""
    if not isinstance(scope, OtelAgentScope):
        return
    with internal_errors("could not set network span attributes"):
        for key, value in attributes.items():
            if isinstance(value, _SCALARS):
                scope.span.set_attribute(key, value)


def set_input_messages(scope: AgentScope, messages: Sequence[GenAIMessage]) -> None:
    """Record the network's input (``gen_ai.input.messages``) once its router's input
    processors have rewritten it: the network span opens before they run (its ids are known
    at once), so it opens with no input and gets the processed one here, never the raw one.
    Nothing when the input is not captured (``capture_input`` off, ``hide_input``)."""
    if not isinstance(scope, OtelAgentScope):
        return
    with internal_errors("could not record the network's input messages"):
        run = scope.agent_trace
        if run.capture_input:
            scope.span.set_attribute("gen_ai.input.messages", run.json(genai_messages(messages)))
