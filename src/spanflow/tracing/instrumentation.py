"""The instrumentation seam: the only place the engine's execution meets tracing.

The executor calls a `Scope` at run, entry and step boundaries: it opens child scopes, records
events on them, makes them current while user code runs, and ends them with a status. A scope
is a span in the OpenTelemetry implementation (`spanflow.tracing.otel`); with tracing off it is
`NOOP_SCOPE`, whose methods do nothing, so the executor never branches on "is tracing on".
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace

from spanflow.errors import ControlFlowSignal
from spanflow.tracing._current import as_current, make_current, restore
from spanflow.tracing._guard import internal_errors
from spanflow.tracing.config import TracingConfig
from spanflow.tracing.context import TracingContext

if TYPE_CHECKING:
    from spanflow.context import RequestContext
    from spanflow.tracing.context import StoredTraceContext
    from spanflow.tracing.options import TracingOptions

__all__ = [
    "NOOP_SCOPE",
    "BlockKind",
    "EndStatus",
    "Instrumentation",
    "JobPublish",
    "NoopInstrumentation",
    "Publication",
    "QuietPublication",
    "QuietScope",
    "RecordableEvent",
    "RunStart",
    "Scope",
    "StepTracing",
    "carried_context",
    "default_instrumentation",
]


BlockKind = Literal["parallel", "conditional", "condition", "loop", "sleep"]
EndStatus = Literal["success", "failed", "suspended", "canceled", "waiting", "skipped", "bailed"]


class _EventPayload(Protocol):
    def to_dict(self) -> dict[str, Any]: ...


class RecordableEvent(Protocol):
    """What the seam needs of a stream event to record it (the engine's `WorkflowEvent`)."""

    @property
    def type(self) -> str:
        """The event type (``workflow-step-start``, ...), the span event's name."""
        ...

    @property
    def payload(self) -> _EventPayload:
        """The payload, whose wire form (`to_dict`) gives the event's attributes: JSON data
        only (dicts, lists, strings, numbers, booleans, ``None``: what ``to_wire`` gives),
        which `spliced_json` relies on."""
        ...


@dataclass(slots=True)
class RunStart:
    """Everything the seam needs to open a run span (one input object: fields can grow)."""

    workflow_id: str
    run_id: str
    resource_id: str | None
    input: Any
    request_context: RequestContext
    options: TracingOptions | None
    resumed: bool = False
    stored_trace: StoredTraceContext | None = None
    """The original run span's context and kept facts when resuming (or time travelling)."""
    time_travel: str | None = None
    """The step a time travel re-executes the run from (``"charge"``); ``None`` otherwise. A
    time travel continues the run's trace like a resume, but is not one."""
    workflow_metadata: Mapping[str, Any] = field(default_factory=dict)
    """``create_workflow(metadata=...)``: recorded on the run span as
    ``spanflow.workflow.metadata.<key>``."""

    @property
    def continues(self) -> bool:
        """Whether this execution goes on with a stored run (a resume, a restart or a time
        travel): it continues the run's own trace and never nests in an ambient one."""
        return self.resumed or self.time_travel is not None


class Scope(Protocol):
    """A span-shaped handle the executor drives. Never raises: tracing never fails a run."""

    @property
    def recording(self) -> bool:
        """Whether events recorded here go anywhere (skip building them if not)."""
        ...

    @property
    def trace_id(self) -> str | None: ...

    @property
    def span_id(self) -> str | None: ...

    def step(
        self, step_id: str, *, input: Any, attempt: int, foreach_index: int | None = None
    ) -> Scope:
        """A child scope for one execution (attempt) of a step."""
        ...

    def block(self, kind: BlockKind, name: str, attributes: Mapping[str, Any]) -> Scope:
        """A child scope for a control-flow block (parallel, conditional, loop, sleep, ...)."""
        ...

    def nested_run(self, workflow_id: str, run_id: str, input: Any) -> Scope:
        """The run scope of a nested workflow, child of this (step) scope."""
        ...

    def record(self, event: RecordableEvent) -> None:
        """Record a stream event on this scope (as a span event or log record)."""
        ...

    def set_attribute(self, key: str, value: Any) -> None: ...

    def enter(self) -> object:
        """Make this scope current (user code and libraries nest under it); returns a token."""
        ...

    def exit(self, token: object) -> None:
        """Undo `enter`."""
        ...

    def current(self) -> AbstractContextManager[None]:
        """``with scope.current():`` makes this scope current inside the block."""
        ...

    def end(
        self, status: EndStatus, *, output: Any = None, error: BaseException | None = None
    ) -> None:
        """Finish the scope. ``failed`` with `error` records the exception."""
        ...

    def record_exception(self, error: BaseException, attributes: Mapping[str, Any]) -> None:
        """Record `error` on this scope without failing it (a run hook that raised)."""
        ...

    def persisted_context(self) -> StoredTraceContext | None:
        """The span context to store in a snapshot, so a resume continues this trace."""
        ...

    def user_tracing(self) -> StepTracing:
        """The ``ctx.tracing`` object for a step running in this scope."""
        ...


class StepTracing:
    """``ctx.tracing``: the step's span, and a way to open child spans under it."""

    __slots__ = ("_attributes", "_config", "_span", "_tracer")

    def __init__(
        self,
        span: trace.Span,
        tracer: trace.Tracer,
        attributes: Mapping[str, Any] | None = None,
        config: TracingConfig | None = None,
    ) -> None:
        self._span = span
        self._tracer = tracer
        self._attributes: Mapping[str, Any] = attributes or {}
        """What every span of the run carries (run and workflow ids, tags, metadata). Kept as
        given, not copied (one is built per step, and most never open a span): the run's
        attributes are fixed once the run starts, and `span` copies them into each span."""
        self._config = config or _DEFAULT_CONFIG
        """The run's settings: how an error leaving a user span is redacted and cut."""

    @property
    def current_span(self) -> trace.Span:
        """The step's span (a non-recording span when tracing is off)."""
        return self._span

    @contextmanager
    def span(
        self, name: str, *, attributes: Mapping[str, Any] | None = None
    ) -> Iterator[trace.Span]:
        """Open a child span of the step span with your own name; it is current inside.

        The span carries the run's ids, tags and metadata like every span of the run; your
        `attributes` are added to them (and win on a clash). An exception leaving the block is
        recorded on the span as an error, except suspend, bail and cancellation (not errors).
        Tracing never fails your step: if the span cannot be opened or ended, that is logged
        and the block runs all the same.
        """
        merged = {**self._attributes, **(attributes or {})}
        opened = _open_span(self._tracer, name, self._span, merged)
        if opened is None:
            yield trace.INVALID_SPAN  # outside the except block: user errors stay unchained
            return
        span, token = opened
        try:
            yield span
        except BaseException as error:
            if not isinstance(error, _NOT_ERRORS):
                _mark_failed(span, error, self._config)
            raise
        finally:
            with internal_errors("could not restore the context after span %r", name):
                otel_context.detach(token)  # type: ignore[arg-type]
            with internal_errors("could not end span %r", name):
                span.end()


_DEFAULT_CONFIG = TracingConfig()

_NOT_ERRORS = (ControlFlowSignal, asyncio.CancelledError, GeneratorExit)
"""What may leave a user span without making it an error: suspend, bail, cancellation."""


def _open_span(
    tracer: trace.Tracer, name: str, parent: trace.Span, attributes: dict[str, Any]
) -> tuple[trace.Span, object] | None:
    """Start a child span of `parent` and make it current, or log why it could not be."""
    with internal_errors("could not open span %r", name):
        span = tracer.start_span(
            name, context=trace.set_span_in_context(parent), attributes=attributes
        )
        try:
            return span, otel_context.attach(trace.set_span_in_context(span))
        except Exception:
            with contextlib.suppress(Exception):
                span.end()
            raise
    return None


def _mark_failed(span: trace.Span, error: BaseException, config: TracingConfig) -> None:
    with internal_errors("could not record an error on a span"):
        span.add_event("exception", config.exception_attributes(error))
        message = f"{type(error).__name__}: {config.error_message(error)}"
        span.set_status(trace.Status(trace.StatusCode.ERROR, message))


class _NoopScope:
    """The scope used when tracing is off: every method is a cheap no-op."""

    __slots__ = ()
    recording = False
    trace_id = None
    span_id = None

    def step(
        self, step_id: str, *, input: Any, attempt: int, foreach_index: int | None = None
    ) -> Scope:
        return self

    def block(self, kind: BlockKind, name: str, attributes: Mapping[str, Any]) -> Scope:
        return self

    def nested_run(self, workflow_id: str, run_id: str, input: Any) -> Scope:
        return self

    def record(self, event: RecordableEvent) -> None:
        pass

    def set_attribute(self, key: str, value: Any) -> None:
        pass

    def enter(self) -> object:
        return None

    def exit(self, token: object) -> None:
        pass

    def current(self) -> AbstractContextManager[None]:
        return _NOTHING

    def end(
        self, status: EndStatus, *, output: Any = None, error: BaseException | None = None
    ) -> None:
        pass

    def record_exception(self, error: BaseException, attributes: Mapping[str, Any]) -> None:
        pass

    def persisted_context(self) -> StoredTraceContext | None:
        return None

    def user_tracing(self) -> StepTracing:
        return _NOOP_STEP_TRACING


_NOTHING: AbstractContextManager[None] = contextlib.nullcontext()
NOOP_SCOPE: Scope = _NoopScope()


class QuietScope(_NoopScope):
    """A run that records nothing, but passes on what it decided to what starts inside it.

    Its `TracingContext` is current while its scopes are, so an agent without tracing of its
    own traces like the run (not at all, when tracing is off) and every agent or run started
    inside hides what it hides. A sampled-out run also makes its non-recording span current, so
    what starts inside joins its trace unsampled instead of starting traces of its own.
    """

    __slots__ = ("_context", "_span")

    def __init__(self, context: TracingContext, span: trace.Span | None = None) -> None:
        self._context = context
        self._span = span

    def enter(self) -> object:
        return make_current(self._span, self._context)

    def exit(self, token: object) -> None:
        restore(token)

    def current(self) -> AbstractContextManager[None]:
        return as_current(self._span, self._context)


_TRACING_OFF = TracingContext(config=TracingConfig(enabled=False))
_NOOP_STEP_TRACING = StepTracing(trace.INVALID_SPAN, trace.NoOpTracer())


@dataclass(frozen=True, slots=True)
class JobPublish:
    """A run's execution handed to a job queue (``distributed.md`` §4): what its PRODUCER span
    (``publish <destination>``) says."""

    workflow_id: str
    run_id: str
    op: str
    """``start``, ``resume`` or ``restart``."""
    options: TracingOptions | None
    """The execution's tracing options: explicit ids parent the publish span, and its tags
    and metadata are on it, so a search by metadata finds the caller's half too."""
    request_context: RequestContext
    stored_trace: StoredTraceContext | None = None
    """The run span a resume or restart continues (its tags and metadata are carried)."""
    system: str = "spanflow"
    """``messaging.system``: the queue (``procrastinate``)."""
    destination: str = "spanflow.runs"
    """``messaging.destination.name``."""
    parent: StoredTraceContext | None = None
    """The span to publish under when no caller span is current (a worker's lease recovery
    publishes a restart under the run's own span, so the run keeps one trace)."""


class Publication(Protocol):
    """An open publish span: its W3C context goes into the job; end it once the job is queued."""

    @property
    def carrier(self) -> dict[str, str]:
        """``traceparent`` (and ``tracestate``, ``baggage``) of the publish span; the caller's
        context when nothing records."""
        ...

    def end(self, error: BaseException | None = None) -> None: ...


class Instrumentation(Protocol):
    """Opens the run scope of each run; everything else hangs off that scope."""

    def start_run(self, start: RunStart) -> Scope: ...

    def publish_job(self, publish: JobPublish) -> Publication: ...


class QuietPublication:
    """A publication that records nothing: the carrier passes on the current context only."""

    __slots__ = ("carrier",)

    def __init__(self, context: otel_context.Context | None = None) -> None:
        self.carrier: dict[str, str] = {}
        with internal_errors("could not write the trace context into a job"):
            propagate.inject(self.carrier, context=context)

    def end(self, error: BaseException | None = None) -> None:
        return None


@contextmanager
def carried_context(carrier: Mapping[str, str]) -> Iterator[None]:
    """Make the context a job carries (its publish span, its baggage) current: a worker's run
    span is then the publish span's child (a start) or links to it (a resume, a restart)."""
    token: object | None = None
    with internal_errors("could not read the trace context of a job"):
        token = otel_context.attach(propagate.extract(dict(carrier)))
    try:
        yield
    finally:
        if token is not None:
            otel_context.detach(token)  # type: ignore[arg-type]


class NoopInstrumentation:
    """Tracing off: every run records nothing, nor do agents without tracing of their own in it."""

    def start_run(self, start: RunStart) -> Scope:
        return QuietScope(_TRACING_OFF)

    def publish_job(self, publish: JobPublish) -> Publication:
        return QuietPublication()


def default_instrumentation() -> Instrumentation:
    """What a workflow uses without a registry: OpenTelemetry's global tracer provider.

    With no SDK configured, the global provider hands out non-recording spans and every run
    gets the no-op scope.
    """
    from spanflow.tracing.otel import OtelInstrumentation

    return OtelInstrumentation()
