"""Id generators that honour the trace id a run asked for.

OpenTelemetry's API cannot start a root span in a chosen trace. The engine puts the requested
trace id in `spanflow.tracing._requested.REQUESTED_TRACE_ID` around ``start_span`` of a run
span that has no parent; the SDK asks the provider's id generator for a trace id exactly then
(and only for spans without a valid parent), so returning the requested value makes that span a
root of the requested trace. `RequestedTraceIdGenerator` does this with random ids otherwise;
`SequentialIdGenerator` does it with ids 1, 2, 3... for tests.
"""

from __future__ import annotations

import itertools
import threading

from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator

from spanflow.tracing._requested import REQUESTED_TRACE_ID

__all__ = ["RequestedTraceIdGenerator", "SequentialIdGenerator", "requested_trace_id"]

_MAX_TRACE_ID = (1 << 128) - 1


def requested_trace_id() -> int | None:
    """The trace id the engine asked for in this context, if it is a valid one."""
    requested = REQUESTED_TRACE_ID.get()
    if requested is None or not 0 < requested <= _MAX_TRACE_ID:
        return None
    return requested


class RequestedTraceIdGenerator(RandomIdGenerator):
    """Random ids, except the trace id of a root span the engine requested one for."""

    def generate_trace_id(self) -> int:
        return requested_trace_id() or super().generate_trace_id()

    def is_trace_id_random(self) -> bool:
        # Asked by the SDK right after generate_trace_id() for the same root span: a requested
        # id came from elsewhere (maybe a short, zero-padded one), so it must not be flagged
        # as random in W3C trace flags.
        return requested_trace_id() is None


class SequentialIdGenerator(IdGenerator):
    """Trace ids 1, 2, 3... and span ids 1, 2, 3..., except a requested trace id."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._trace_ids = itertools.count(1)
        self._span_ids = itertools.count(1)

    def generate_trace_id(self) -> int:
        if (requested := requested_trace_id()) is not None:
            return requested
        with self._lock:
            return next(self._trace_ids)

    def generate_span_id(self) -> int:
        with self._lock:
            return next(self._span_ids)

    def reset(self) -> None:
        """Start again from 1."""
        with self._lock:
            self._trace_ids = itertools.count(1)
            self._span_ids = itertools.count(1)
