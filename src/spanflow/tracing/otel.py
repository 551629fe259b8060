"""The OpenTelemetry implementation of the instrumentation seam (through the API only).

`OtelInstrumentation.start_run` opens a live run span (parent chosen by `TracingOptions`, then
the ambient span, then a new trace; a run started inside another run's span is nested in it)
and returns an `OtelScope`; the executor opens every other span through it. Spans are real and
current while user code runs, so auto-instrumented libraries nest under the step, and the run's
`TracingContext` is current with them, so a run or agent started inside is nested in this one.
Nothing here may fail a run: every method runs under the one guard (`_guard.internal_errors`).
When the provider hands out
non-recording spans (no SDK configured), runs get the no-op scope and tracing costs next to
nothing.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry._logs import LogRecord, SeverityNumber, get_logger_provider
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
)

from spanflow.tracing._current import as_current, make_current, restore
from spanflow.tracing._guard import internal_errors
from spanflow.tracing._nesting import (
    IgnoredRootWarning,
    explicit_parent,
    resolve_nested,
    start_top_span,
)
from spanflow.tracing._render_memo import RenderMemo
from spanflow.tracing.attributes import (
    DROPPED_ATTRIBUTE,
    MAX_USER_ATTRIBUTES,
    TAGS_ATTRIBUTE,
    cap_user_attributes,
    error_type,
    flatten_value,
    limit_attribute_lengths,
)
from spanflow.tracing.config import TracingConfig
from spanflow.tracing.context import StoredTraceContext, TracingContext, current_tracing_context
from spanflow.tracing.ids import format_span_id, format_trace_id
from spanflow.tracing.instrumentation import (
    NOOP_SCOPE,
    BlockKind,
    EndStatus,
    JobPublish,
    Publication,
    QuietPublication,
    QuietScope,
    RecordableEvent,
    RunStart,
    Scope,
    StepTracing,
)
from spanflow.tracing.options import ResolvedTracing, capped

__all__ = ["WORKFLOW_METADATA_PREFIX", "OtelInstrumentation", "OtelScope"]

logger = logging.getLogger("spanflow.tracing")
_SCOPE_NAME = "spanflow"
_EVENT_SCALARS = frozenset(
    {
        "id",
        "stepName",
        "stepCallId",
        "status",
        "workflowId",
        "workflowStatus",
        "completedCount",
        "totalCount",
        "currentIndex",
        "iterationStatus",
        "startedAt",
        "endedAt",
        "suspendedAt",
        "resumedAt",
    }
)


# Where a failure is recorded as an `exception` event (with its stack): where it happened (a
# step, a branch condition) and on the run span. Blocks it passes through only get the status.
_RECORDS_EXCEPTIONS = frozenset(
    {"spanflow.step.status", "spanflow.run.status", "spanflow.condition.status"}
)


# An agent step forwards every chunk of its stream as `workflow-step-output`. Deltas arrive by
# the hundred per answer: recorded one by one they would crowd out the step's real events (the
# SDK keeps 128 per span). The model span has the final text and the time to first token.
_HIGH_RATE_CHUNKS = frozenset({"text-delta", "reasoning-delta", "tool-call-delta"})


def _is_high_rate_chunk(event: RecordableEvent) -> bool:
    """Whether a ``workflow-step-output`` event is an agent's text or tool-call delta."""
    output = getattr(event.payload, "output", None)
    if not isinstance(output, Mapping):
        return False
    kind = output.get("type")
    return isinstance(kind, str) and kind in _HIGH_RATE_CHUNKS


_NO_SDK = (trace.ProxyTracerProvider, trace.NoOpTracerProvider)
"""What `trace.get_tracer_provider()` returns while no SDK provider is set."""


def _snake(key: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in key)


_EVENT_KEYS = {k: "spanflow.event." + _snake(k) for k in _EVENT_SCALARS}
_EVENT_SCALAR_TYPES = (str, int, float, bool)
"""What a payload field must be to become its own event attribute (a tuple: the fastest
`isinstance` check)."""

# The guards of the hot paths, one each (see `internal_errors`).
_READING_TRACE_ID = internal_errors("could not read the trace id of a span")
_READING_SPAN_ID = internal_errors("could not read the id of a span")
_OPENING = internal_errors("could not open a span")
_RECORDING = internal_errors("could not record an event")
_SETTING = internal_errors("could not set a span attribute")
_FINISHING = internal_errors("could not finish a span")
_STORING = internal_errors("could not read the span context to store")


@dataclass(slots=True, eq=False, kw_only=True)
class _RunTrace:
    """What every scope of one run shares."""

    tracer: trace.Tracer
    context: TracingContext
    """The run's tracing facts (its settings, tags, metadata and hide flags, kept across a
    resume), current while any of its scopes is (read by nested calls)."""
    common: dict[str, Any]
    """Attributes on every span of the run (run/workflow ids, tags and metadata)."""
    failures: dict[int, tuple[BaseException, int]] = field(default_factory=dict)
    """When each exception was first recorded (by ``id``), so that every span it fails
    stamps its ``exception`` event with the moment it happened, not the moment it ended."""
    # Derived once from the context, read on every span and event:
    config: TracingConfig = field(init=False)
    capture_input: bool = field(init=False)
    capture_output: bool = field(init=False)
    event_payloads: bool = field(init=False)
    """Whether events carry ``spanflow.event.payload``: payloads hold inputs and outputs, so
    hiding either hides them too."""
    logger_provider: Any = field(init=False)
    """Where events go as log records (``events="logs"``); ``None`` for span events."""
    memo: RenderMemo = field(init=False)
    """What the redactor found in the texts this run rendered lately: a step's output is
    rendered for its result event, its span and the next step's input, and read once."""

    def __post_init__(self) -> None:
        context = self.context
        config = self.config = context.config
        self.capture_input = config.capture_input and not context.hide_input
        self.capture_output = config.capture_output and not context.hide_output
        self.event_payloads = config.event_payloads and self.capture_input and self.capture_output
        self.logger_provider = (
            (config.logger_provider or get_logger_provider()) if config.events == "logs" else None
        )
        self.memo = config.render_memo()


class OtelInstrumentation:
    """Opens run spans with the configured (or global) tracer provider."""

    def __init__(self, config: TracingConfig | None = None) -> None:
        self.config = config or TracingConfig()
        self._ignored_root = IgnoredRootWarning("runs")
        self._tracer: tuple[trace.TracerProvider, trace.Tracer] | None = None
        """The last provider asked for a tracer, and its tracer: `get_tracer` builds a new
        tracer (and new scope objects) on every call, while one provider's are all alike."""

    def _tracer_of(self, provider: trace.TracerProvider) -> trace.Tracer:
        cached = self._tracer
        if cached is not None and cached[0] is provider:
            return cached[1]
        tracer = provider.get_tracer(_SCOPE_NAME)
        self._tracer = (provider, tracer)
        return tracer

    def start_run(self, start: RunStart) -> Scope:
        if not self.config.enabled:
            return _quiet_scope(start, self.config)
        with internal_errors("could not open the run span; tracing this run is off"):
            return self._start_run(start)
        return NOOP_SCOPE

    def _start_run(self, start: RunStart) -> Scope:
        config = self.config
        provider = config.tracer_provider or trace.get_tracer_provider()
        if isinstance(provider, _NO_SDK):
            # No SDK configured: every span would be non-recording, so skip resolving options
            # and rendering the input for a span nobody sees (most of a short run's cost).
            return _quiet_scope(start, config)
        tracer = self._tracer_of(provider)
        # A resume (or restart, or time travel) is never nested: it continues its own trace.
        resolved, _ = resolve_nested(
            start.options,
            request_context=start.request_context,
            config=config,
            may_nest=not start.continues,
        )
        context = _run_context(start, resolved, config)
        common: dict[str, Any] = {
            "spanflow.workflow.id": start.workflow_id,
            "spanflow.run.id": start.run_id,
        }
        if config.metadata_on_every_span:
            common.update(context.attributes)
        run = _RunTrace(tracer=tracer, context=context, common=common)
        attributes = self._run_attributes(start, run, resolved)
        parent, links, requested = self._parent(start, resolved)
        name = f"invoke_workflow {start.workflow_id}"
        span = start_top_span(
            tracer, name, parent, requested, attributes, links, on_ignored=self._ignored_root
        )
        if not span.is_recording():  # sampled out
            span.end()
            return QuietScope(context, span)
        return OtelScope(run, span, "spanflow.run.status")

    def publish_job(self, publish: JobPublish) -> Publication:
        """The PRODUCER span of handing a run's execution to a job queue, current context's
        child (or the explicit parent's, or `publish.parent`'s when no span is current)."""
        if self.config.enabled:
            with internal_errors("could not open the publish span; the job goes untraced"):
                provider = self.config.tracer_provider or trace.get_tracer_provider()
                if not isinstance(provider, _NO_SDK):
                    return self._publish_job(self._tracer_of(provider), publish)
        return QuietPublication()

    def _publish_job(self, tracer: trace.Tracer, publish: JobPublish) -> Publication:
        start = RunStart(
            publish.workflow_id,
            publish.run_id,
            None,
            None,
            publish.request_context,
            publish.options,
            stored_trace=publish.stored_trace,
        )
        resolved, _ = resolve_nested(
            publish.options, request_context=publish.request_context, config=self.config
        )
        context = _run_context(start, resolved, self.config)
        attributes: dict[str, Any] = {
            "messaging.system": publish.system,
            "messaging.operation.name": "publish",
            "messaging.operation.type": "send",
            "messaging.destination.name": publish.destination,
            "spanflow.workflow.id": publish.workflow_id,
            "spanflow.run.id": publish.run_id,
            "spanflow.job.op": publish.op,
            **context.attributes,
        }
        parent, requested = explicit_parent(resolved)
        fallback = _span_context(publish.parent)
        ambient = trace.get_current_span().get_span_context()
        if parent is None and fallback is not None and not ambient.is_valid:
            parent = trace.set_span_in_context(NonRecordingSpan(fallback))
        span = start_top_span(
            tracer,
            f"publish {publish.destination}",
            parent,
            requested,
            attributes,
            on_ignored=self._ignored_root,
            kind=SpanKind.PRODUCER,
        )
        return _OtelPublication(span, trace.set_span_in_context(span, parent))

    def _run_attributes(
        self, start: RunStart, run: _RunTrace, resolved: ResolvedTracing
    ) -> dict[str, Any]:
        """The run span's attributes at its start."""
        attributes = dict(run.common)
        attributes.update(run.context.attributes)
        attributes.update(resolved.rejected_attribute())
        if start.resource_id is not None:
            attributes["spanflow.resource.id"] = start.resource_id
        if start.resumed:
            attributes["spanflow.run.resumed"] = True
        if start.time_travel is not None:
            attributes["spanflow.run.time_travel"] = start.time_travel
        if start.workflow_metadata:
            attributes.update(_workflow_metadata(start.workflow_metadata, run.config))
        if run.capture_input and start.input is not None:
            key = "spanflow.resume_data" if start.resumed else "spanflow.input"
            attributes[key] = run.config.attribute_json(start.input, run.memo)
        return attributes

    def _parent(
        self, start: RunStart, resolved: ResolvedTracing
    ) -> tuple[otel_context.Context | None, list[Link], int | None]:
        """The parent context, span links and requested root trace id of a run span.

        Explicit ids (tracing options) win over the ambient span, which becomes a link
        (``spanflow.link=request``); a resume links to the stored run span
        (``resumed_from``) and, without explicit ids, continues its trace."""
        stored = _span_context(start.stored_trace)
        links = [Link(stored, {"spanflow.link": "resumed_from"})] if stored else []
        # The span current where the run began (an HTTP request's, say): the parent, unless
        # explicit ids or the stored run span win; then a link, so its trace leads to the run.
        ambient = trace.get_current_span().get_span_context()
        request = [Link(ambient, {"spanflow.link": "request"})] if ambient.is_valid else []
        if resolved.trace_id is not None:
            parent, requested = explicit_parent(resolved)
            return parent, links + request, requested
        if stored is not None:
            # A resume without explicit options continues the original trace, as a child of
            # the original run span (which may have ended in another process long ago).
            ctx = trace.set_span_in_context(NonRecordingSpan(stored), otel_context.Context())
            return ctx, request, None
        return None, [], None  # the ambient span, if any, or a new trace


WORKFLOW_METADATA_DROPPED = "spanflow.workflow.metadata_dropped"
"""How many workflow metadata attributes were left out of the run span (see
`cap_user_attributes`)."""

WORKFLOW_METADATA_PREFIX = "spanflow.workflow.metadata"
"""Prefix of the run-span attributes made from ``create_workflow(metadata=...)``: one per leaf,
flattened, redacted and length-limited like run metadata (``spanflow.metadata.*``), under a
prefix of its own so that the workflow's facts and a run's never overwrite each other."""


def _workflow_metadata(metadata: Mapping[str, Any], config: TracingConfig) -> dict[str, Any]:
    """The workflow's metadata as run-span attributes (none if it cannot be rendered)."""
    with internal_errors("could not record the workflow's metadata on the run span"):
        flat = flatten_value(config.redactor.redact(metadata), WORKFLOW_METADATA_PREFIX)
        limited = limit_attribute_lengths(flat, config.max_attribute_length)
        # Half the tag-and-metadata room: the run span carries the run's own next to these.
        kept, cut = cap_user_attributes(limited, limit=MAX_USER_ATTRIBUTES // 2)
        if kept.pop(DROPPED_ATTRIBUTE, None) is not None:
            kept[WORKFLOW_METADATA_DROPPED] = cut
            logger.warning(
                "spanflow tracing: %d workflow metadata attributes left out of the run span "
                "(at most %d; the count is in %s)",
                cut,
                MAX_USER_ATTRIBUTES // 2,
                WORKFLOW_METADATA_DROPPED,
            )
        return kept
    return {}


def _run_context(
    start: RunStart, resolved: ResolvedTracing, config: TracingConfig
) -> TracingContext:
    """The run's tracing facts.

    A resumed run keeps the tags, metadata and hide flags of the run it continues (stored with
    the trace context), so a search by metadata finds both halves and what was hidden stays
    hidden; new options add to them.
    """
    stored = start.stored_trace
    carried = _carried_attributes(stored.attributes if stored else {}, resolved.attributes)
    tags = carried.get(TAGS_ATTRIBUTE)
    return TracingContext(
        run_id=start.run_id,
        workflow_id=start.workflow_id,
        tags=tags if isinstance(tags, tuple) else resolved.tags,
        attributes=carried,
        hide_input=resolved.hide_input or (stored is not None and stored.hide_input),
        hide_output=resolved.hide_output or (stored is not None and stored.hide_output),
        config=config,
    )


def _quiet_scope(start: RunStart, config: TracingConfig) -> Scope:
    """The scope of a run that records nothing (tracing off, or no SDK to record).

    `NOOP_SCOPE`, the cheapest, unless the run has something to pass on to what starts inside
    it: tracing off (an agent without tracing of its own must not trace either), or hide flags
    (an agent with tracing of its own must still hide). The options are not resolved for this:
    only the flags are read.
    """
    options, stored = start.options, start.stored_trace
    hide_input = (options is not None and bool(options.hide_input)) or (
        stored is not None and stored.hide_input
    )
    hide_output = (options is not None and bool(options.hide_output)) or (
        stored is not None and stored.hide_output
    )
    if config.enabled and not (hide_input or hide_output):
        return NOOP_SCOPE
    enclosing = None if start.continues else current_tracing_context()
    base = enclosing or TracingContext(run_id=start.run_id, workflow_id=start.workflow_id)
    return QuietScope(
        dataclasses.replace(
            base,
            hide_input=base.hide_input or hide_input,
            hide_output=base.hide_output or hide_output,
            config=config,
        )
    )


def _carried_attributes(stored: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """The stored tags and metadata of a resumed run with this resume's added over them,
    capped again (`capped`): together they may be more than either."""
    if not stored:
        return dict(new)
    carried = {**stored, **new}
    old_tags, new_tags = stored.get(TAGS_ATTRIBUTE), new.get(TAGS_ATTRIBUTE)
    if isinstance(old_tags, tuple) and isinstance(new_tags, tuple):
        carried[TAGS_ATTRIBUTE] = tuple(dict.fromkeys((*old_tags, *new_tags)))
    counts = (stored.get(DROPPED_ATTRIBUTE), new.get(DROPPED_ATTRIBUTE))
    carried.pop(DROPPED_ATTRIBUTE, None)
    return capped(carried, already_dropped=sum(c for c in counts if isinstance(c, int)))


def _span_context(stored: StoredTraceContext | None) -> SpanContext | None:
    if stored is None:
        return None
    return SpanContext(
        int(stored.trace_id, 16),
        int(stored.span_id, 16),
        is_remote=True,
        trace_flags=TraceFlags(stored.trace_flags),
    )


class _OtelPublication(QuietPublication):
    """A live publish span; the carrier holds its context."""

    __slots__ = ("_span",)

    def __init__(self, span: trace.Span, context: otel_context.Context) -> None:
        super().__init__(context)
        self._span = span

    def end(self, error: BaseException | None = None) -> None:
        with internal_errors("could not end the publish span"):
            if error is not None:
                self._span.record_exception(error)
                self._span.set_status(Status(StatusCode.ERROR, type(error).__name__))
                self._span.set_attribute("error.type", error_type(error))
            self._span.end()


class OtelScope:
    """One live span of a run, driven by the executor through the `Scope` protocol."""

    __slots__ = ("_run", "_span", "_status_key")
    recording = True

    def __init__(self, run: _RunTrace, span: trace.Span, status_key: str) -> None:
        self._run = run
        self._span = span
        self._status_key = status_key

    @property
    def trace_id(self) -> str | None:
        with _READING_TRACE_ID:
            return format_trace_id(self._span.get_span_context().trace_id)
        return None

    @property
    def span_id(self) -> str | None:
        with _READING_SPAN_ID:
            return format_span_id(self._span.get_span_context().span_id)
        return None

    def _child(
        self,
        name: str,
        attributes: dict[str, Any],
        status_key: str,
        run: _RunTrace | None = None,
    ) -> Scope:
        run = run or self._run
        with _OPENING:
            ctx = trace.set_span_in_context(self._span)
            span = run.tracer.start_span(name, ctx, SpanKind.INTERNAL, attributes)
            return OtelScope(run, span, status_key)
        return NOOP_SCOPE

    def step(
        self, step_id: str, *, input: Any, attempt: int, foreach_index: int | None = None
    ) -> Scope:
        run = self._run
        attributes = dict(run.common)
        attributes["spanflow.step.id"] = step_id
        attributes["spanflow.step.attempt"] = attempt
        if foreach_index is not None:
            attributes["spanflow.foreach.index"] = foreach_index
        if run.capture_input and input is not None:
            attributes["spanflow.input"] = self._json(input)
        return self._child(f"workflow_step {step_id}", attributes, "spanflow.step.status")

    def block(self, kind: BlockKind, name: str, attributes: Mapping[str, Any]) -> Scope:
        merged = dict(self._run.common)
        merged.update(attributes)
        return self._child(name, merged, f"spanflow.{kind}.status")

    def nested_run(self, workflow_id: str, run_id: str, input: Any) -> Scope:
        # The inner workflow's spans say which workflow they belong to, like its run span.
        common = {
            **self._run.common,
            "spanflow.workflow.id": workflow_id,
            "spanflow.run.id": run_id,
        }
        run = dataclasses.replace(
            self._run,
            common=common,
            context=self._run.context.within(run_id=run_id, workflow_id=workflow_id),
        )
        attributes = dict(common)
        attributes["spanflow.workflow.nested"] = True
        if run.capture_input and input is not None:
            attributes["spanflow.input"] = self._json(input)
        return self._child(f"invoke_workflow {workflow_id}", attributes, "spanflow.run.status", run)

    def record(self, event: RecordableEvent) -> None:
        run = self._run
        if run.config.events == "none":
            return
        with _RECORDING:
            name = event.type
            if name == "workflow-step-output" and _is_high_rate_chunk(event):
                return
            wire = event.payload.to_dict()
            attributes: dict[str, Any] = {}
            event_key = _EVENT_KEYS.get
            for key, value in wire.items():
                attr = event_key(key)
                if attr is not None and isinstance(value, _EVENT_SCALAR_TYPES):
                    attributes[attr] = value
            if run.event_payloads:
                attributes["spanflow.event.payload"] = run.config.payload_json(wire, run.memo)
            if run.logger_provider is not None:
                self._log(name, attributes)
            else:
                self._span.add_event(name, attributes)

    def _log(self, name: str, attributes: dict[str, Any]) -> None:
        provider = self._run.logger_provider
        otel_logger = provider.get_logger(_SCOPE_NAME)
        ctx = trace.set_span_in_context(self._span)
        otel_logger.emit(
            LogRecord(
                timestamp=time.time_ns(),
                context=ctx,
                severity_number=SeverityNumber.INFO,
                body=name,
                attributes=attributes,
                event_name=name,
            )
        )

    def set_attribute(self, key: str, value: Any) -> None:
        with _SETTING:
            self._span.set_attribute(key, value)

    def enter(self) -> object:
        return make_current(self._span, self._run.context)

    def exit(self, token: object) -> None:
        restore(token)

    def current(self) -> AbstractContextManager[None]:
        return as_current(self._span, self._run.context)

    def end(
        self, status: EndStatus, *, output: Any = None, error: BaseException | None = None
    ) -> None:
        with _FINISHING:
            try:
                self._record_end(status, output, error)
            finally:  # the span ends even when recording how failed
                self._span.end()

    def _record_end(self, status: EndStatus, output: Any, error: BaseException | None) -> None:
        span = self._span
        shown = "success" if status == "bailed" else status
        # Set in one call, in the order they always had: the SDK takes its locks and cleans
        # the values once per call, not once per attribute.
        attributes: dict[str, Any] = {self._status_key: shown}
        if status == "bailed":
            attributes["spanflow.run.bailed"] = True
        failed = status == "failed"
        if failed:
            span.set_status(Status(StatusCode.ERROR, self._run.config.error_message(error)))
            if error is not None:
                attributes["error.type"] = error_type(error)
        elif shown == "success" and output is not None and self._run.capture_output:
            attributes["spanflow.output"] = self._json(output)
        span.set_attributes(attributes)
        if failed and error is not None and self._status_key in _RECORDS_EXCEPTIONS:
            self._record_exception(error)

    def record_exception(self, error: BaseException, attributes: Mapping[str, Any]) -> None:
        with _RECORDING:
            event = self._run.config.exception_attributes(error)
            event.update(attributes)
            self._span.add_event("exception", event)

    def _record_exception(self, error: BaseException) -> None:
        failures = self._run.failures
        first = failures.get(id(error))
        if first is not None and first[0] is error:
            timestamp = first[1]
        else:
            timestamp = time.time_ns()
            failures[id(error)] = (error, timestamp)  # keeps `error` alive: ids stay unique
        # Never the SDK's record_exception: it would put the raw message and stack on the span.
        attributes = self._run.config.exception_attributes(error)
        self._span.add_event("exception", attributes, timestamp)

    def persisted_context(self) -> StoredTraceContext | None:
        run = self._run
        with _STORING:
            ctx = self._span.get_span_context()
            return StoredTraceContext(
                trace_id=format_trace_id(ctx.trace_id),
                span_id=format_span_id(ctx.span_id),
                trace_flags=int(ctx.trace_flags),
                attributes=dict(run.context.attributes),
                hide_input=run.context.hide_input,
                hide_output=run.context.hide_output,
            )
        return None

    def user_tracing(self) -> StepTracing:
        return StepTracing(self._span, self._run.tracer, self._run.common, self._run.config)

    def _json(self, value: Any) -> str:
        run = self._run
        return run.config.attribute_json(value, run.memo)
