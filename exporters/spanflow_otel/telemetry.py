"""`configure()`: builds the tracer provider from the option groups and returns a `Telemetry`.

One provider per call: resource (service name, version, environment, merged with
`OTEL_SERVICE_NAME` / `OTEL_RESOURCE_ATTRIBUTES`, explicit values winning), sampler
(parent-based always-on unless a ratio or `OTEL_TRACES_SAMPLER` says otherwise), the id
generator that honours a run's requested trace id, one batch processor per OTLP destination
that counts the spans it drops and the spans whose export fails (its exporter in a child
process by default, `BatchOptions.export_in`), the optional console tree, and exit hooks that
flush within a bounded time. The SDK's own unbounded atexit shutdown is turned off in favour of
ours.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from functools import partial
from types import TracebackType
from typing import Protocol

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.sampling import (
    ParentBased,
    Sampler,
    TraceIdRatioBased,
)
from opentelemetry.util.types import AttributeValue

from spanflow_otel.child_export import ChildProcessSpanProcessor
from spanflow_otel.config import (
    BatchOptions,
    ConsoleOptions,
    ExportOptions,
    SamplingOptions,
    ServiceOptions,
    ShutdownOptions,
)
from spanflow_otel.console import SpanTreeConsoleExporter
from spanflow_otel.ids import RequestedTraceIdGenerator
from spanflow_otel.otlp import ResolvedExport, build_exporter, resolve_export
from spanflow_otel.processors import DropCountingBatchSpanProcessor, ExportCounts
from spanflow_otel.shutdown import ExitHooks, run_bounded

__all__ = ["CountingProcessor", "Telemetry", "build_resource", "build_sampler", "configure"]

logger = logging.getLogger("spanflow.tracing")

_FROM_ENVIRONMENT = ExportOptions()
_DEFAULT_BATCH = BatchOptions()
_DEFAULT_SAMPLING = SamplingOptions()
_DEFAULT_SHUTDOWN = ShutdownOptions()


class CountingProcessor(Protocol):
    """What `Telemetry` needs of an export processor: its loss counts and a bounded shutdown.

    `DropCountingBatchSpanProcessor` (export in a thread) and `ChildProcessSpanProcessor`
    (export in a child process) both are one.
    """

    @property
    def dropped_spans(self) -> int: ...
    @property
    def failed_spans(self) -> int: ...
    @property
    def export_counts(self) -> ExportCounts: ...
    def shutdown(self, timeout_millis: float | None = None) -> None: ...


class Telemetry:
    """A configured tracer provider with bounded flush and shutdown, and loss counts.

    Spans lost on the way to the collector are counted two ways, beside each other:
    `dropped_spans` (evicted from a full export queue) and `failed_spans` (in batches the
    exporter gave up on: error statuses, refused connections, timeouts). Each flush and the
    shutdown log a warning for the losses of either kind not reported yet.
    """

    def __init__(
        self,
        provider: TracerProvider,
        batch_processors: Sequence[CountingProcessor],
        shutdown_options: ShutdownOptions,
    ) -> None:
        self.provider = provider
        """The SDK tracer provider (global too, unless configured otherwise)."""
        self.is_global = False
        """Whether `provider` was installed as OpenTelemetry's global tracer provider."""
        self._batch_processors = tuple(batch_processors)
        self._options = shutdown_options
        self._reported_drops = 0
        self._reported_failures = 0
        self._is_shut_down = False
        self._hooks = ExitHooks(
            self._shutdown_at_exit,
            self._flush_on_signal,
            use_atexit=shutdown_options.atexit,
            use_sigterm=shutdown_options.sigterm,
        )

    @property
    def dropped_spans(self) -> int:
        """Spans dropped so far because an export queue was full (all destinations)."""
        return sum(processor.dropped_spans for processor in self._batch_processors)

    @property
    def failed_spans(self) -> int:
        """Spans whose export failed so far, after the exporter's retries (all destinations).

        A batch counts as failed when the collector answered an error status (HTTP 500, 429
        once retries ran out, gRPC UNAVAILABLE...), could not be reached, or did not answer
        within `ExportOptions.timeout`; its spans are counted once, however many attempts
        the exporter made.
        """
        return sum(processor.failed_spans for processor in self._batch_processors)

    @property
    def export_counts(self) -> ExportCounts:
        """Spans exported, failed, dropped and not sent so far (all destinations summed)."""
        return sum((p.export_counts for p in self._batch_processors), ExportCounts())

    def force_flush(self, timeout: float | None = None) -> bool:
        """Export everything finished so far; False if that took longer than `timeout` s."""
        budget = self._options.flush_timeout if timeout is None else timeout
        millis = int(budget * 1000)
        flushed: list[bool] = []
        # Bounded twice: the SDK's batch processor ignores its timeout (run_bounded stops
        # waiting), the child-process one honours it and says False when the time ran out.
        done = run_bounded([lambda: flushed.append(self.provider.force_flush(millis))], budget)
        done = done and flushed == [True]
        if not done:
            logger.warning("Flushing spans did not finish within %.1fs.", budget)
        self._report_losses()
        return done

    def shutdown(self, timeout: float | None = None) -> bool:
        """Export what is queued and stop, within `timeout` s; later spans are not exported.

        True when everything queued was delivered in time. An export the budget cut short
        counts as not done even when the exporter gave up early (gRPC cancels its call when its
        channel closes at the deadline, so the shutdown itself returns in time).
        """
        if self._is_shut_down:
            return True
        self._is_shut_down = True
        self._hooks.uninstall()
        failed_before = self.export_counts.failed
        budget = self._options.flush_timeout if timeout is None else timeout
        deadline = time.monotonic() + budget
        millis = budget * 1000
        done = run_bounded(
            [partial(p.shutdown, timeout_millis=millis) for p in self._batch_processors], budget
        )
        # Processors other than ours (console, user-supplied) and the provider's bookkeeping;
        # ours are already shut down, so their second shutdown returns at once.
        done = run_bounded([self.provider.shutdown], max(deadline - time.monotonic(), 0)) and done
        counts = self.export_counts
        done = done and counts.unsent == 0 and counts.failed == failed_before
        if not done:
            logger.warning(
                "Span export did not finish within %.1fs; spans still queued were not sent.",
                budget,
            )
        self._report_losses()
        return done

    def tracer(self, name: str) -> trace.Tracer:
        """A tracer of this provider (the engine uses the global one unless given one)."""
        return self.provider.get_tracer(name)

    def __enter__(self) -> Telemetry:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.shutdown()

    def _shutdown_at_exit(self) -> None:
        self.shutdown()

    def _flush_on_signal(self) -> None:
        self.force_flush()

    def _report_losses(self) -> None:
        self._report_drops()
        self._report_failures()

    def _report_drops(self) -> None:
        dropped = self.dropped_spans
        if dropped > self._reported_drops:
            logger.warning(
                "%d spans were dropped because the export queue was full (%d since the last "
                "report); raise BatchOptions.max_queue_size or check the collector.",
                dropped,
                dropped - self._reported_drops,
            )
            self._reported_drops = dropped

    def _report_failures(self) -> None:
        # Worded to match none of the cause patterns of the CLI's export report
        # (`spanflow.cli.export_report.failure_reason`), which reads the exporter's own
        # messages, kept beside this one, for why a batch failed.
        failed = self.failed_spans
        if failed > self._reported_failures:
            logger.warning(
                "%d spans failed to export: the collector answered an error, could not be "
                "reached or did not answer in time (%d since the last report); see the "
                "exporter's messages for the cause.",
                failed,
                failed - self._reported_failures,
            )
            self._reported_failures = failed


def configure(
    service: ServiceOptions | str | None = None,
    *,
    export: ExportOptions | Sequence[ExportOptions] | None = _FROM_ENVIRONMENT,
    console: ConsoleOptions | bool = False,
    batch: BatchOptions = _DEFAULT_BATCH,
    sampling: SamplingOptions = _DEFAULT_SAMPLING,
    shutdown: ShutdownOptions = _DEFAULT_SHUTDOWN,
    span_processors: Sequence[SpanProcessor] = (),
    set_global: bool = True,
) -> Telemetry:
    """Build the tracer provider spanflow's spans go to, and (by default) make it global.

    Args:
        service: Resource options, or just the service name.
        export: OTLP destination(s); the default follows `OTEL_EXPORTER_OTLP_*` (else
            ``localhost:4318``); ``None`` exports nothing over OTLP.
        console: Print each finished run's span tree (True: to stderr).
        batch: Export queue sizes and delay, and where the exporter runs.
        sampling: Sampling ratio (default: `OTEL_TRACES_SAMPLER` or keep everything).
        shutdown: Flush timeout and the atexit/SIGTERM hooks.
        span_processors: Extra processors, added after the console and before the exporters.
        set_global: Install the provider as OpenTelemetry's global tracer provider.
    """
    if isinstance(service, str):
        service = ServiceOptions(name=service)
    provider = TracerProvider(
        sampler=build_sampler(sampling),
        resource=build_resource(service or ServiceOptions()),
        id_generator=RequestedTraceIdGenerator(),
        shutdown_on_exit=False,
    )
    if console:
        options = console if isinstance(console, ConsoleOptions) else ConsoleOptions()
        provider.add_span_processor(SimpleSpanProcessor(SpanTreeConsoleExporter(options)))
    for processor in span_processors:
        provider.add_span_processor(processor)
    destinations = (
        [] if export is None else [export] if isinstance(export, ExportOptions) else export
    )
    batch_processors = [
        _export_processor(resolve_export(destination), batch, shutdown)
        for destination in destinations
    ]
    for batch_processor in batch_processors:
        provider.add_span_processor(batch_processor)
    telemetry = Telemetry(provider, batch_processors, shutdown)
    if set_global:
        telemetry.is_global = _set_global(provider)
    return telemetry


def _export_processor(
    resolved: ResolvedExport, batch: BatchOptions, shutdown: ShutdownOptions
) -> ChildProcessSpanProcessor | DropCountingBatchSpanProcessor:
    """The counting batch processor of one destination, exporting where `batch` says."""
    delay = None if batch.schedule_delay is None else batch.schedule_delay * 1000
    if batch.export_in == "thread":
        return DropCountingBatchSpanProcessor(
            build_exporter(resolved),
            max_queue_size=batch.max_queue_size,
            schedule_delay_millis=delay,
            max_export_batch_size=batch.max_export_batch_size,
            shutdown_timeout_millis=shutdown.flush_timeout * 1000,
        )
    return ChildProcessSpanProcessor(
        resolved,
        max_queue_size=batch.max_queue_size,
        schedule_delay_millis=delay,
        max_export_batch_size=batch.max_export_batch_size,
        shutdown_timeout_millis=shutdown.flush_timeout * 1000,
    )


def build_resource(service: ServiceOptions) -> Resource:
    """SDK defaults, then `OTEL_RESOURCE_ATTRIBUTES` and `OTEL_SERVICE_NAME`, then `service`."""
    attributes: dict[str, AttributeValue] = dict(service.attributes)
    for key, value in (
        ("service.name", service.name),
        ("service.version", service.version),
        ("deployment.environment.name", service.environment),
    ):
        if value is not None:
            attributes[key] = value
    return Resource.create(attributes)


def build_sampler(options: SamplingOptions) -> Sampler | None:
    """The sampler for `options`; None lets the SDK read `OTEL_TRACES_SAMPLER` (or default)."""
    if options.ratio is None:
        # The SDK's default when OTEL_TRACES_SAMPLER is unset is parent-based always-on.
        return None
    root: Sampler = TraceIdRatioBased(options.ratio)
    return ParentBased(root) if options.parent_based else root


def _set_global(provider: TracerProvider) -> bool:
    current = trace.get_tracer_provider()
    if not isinstance(current, trace.ProxyTracerProvider):
        logger.warning(
            "A global tracer provider (%s) is already set and OpenTelemetry allows only one; "
            "spanflow_otel.configure() did not replace it. Pass set_global=False and give "
            "Telemetry.provider to spanflow explicitly, or configure once per process.",
            type(current).__name__,
        )
        return False
    trace.set_tracer_provider(provider)
    return True
