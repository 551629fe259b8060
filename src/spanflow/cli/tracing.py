"""Tracing for the commands that run workflows: where spans go and how a run is traced.

Every run a command executes is traced with a tracer provider of its own, built by the tracing
plugin (`spanflow_otel.configure`), so the run's trace id is recorded with it and a later
``runs resume`` continues the same trace. Spans are exported over OTLP only when asked:
``--otlp URL``, or the standard ``OTEL_EXPORTER_OTLP_ENDPOINT`` /
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` variables. The console exporter writes the run's span
tree to a buffer that the command prints after the run, fitted to the terminal's width when
there is one. The export queue is flushed, within the plugin's bounded timeout, before the
command exits; `CommandTracing.close` then says in an `ExportReport` what arrived (the
exporter's own log messages are folded into it, see `spanflow.cli.export_report`).

``--trace-id``, ``--parent-span-id``, ``--traceparent``, ``--tag`` and ``--meta`` become the
run's `TracingOptions`, checked strictly: a bad id is a usage error, not a silent new trace.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import os
import weakref
from typing import TYPE_CHECKING

from opentelemetry import trace

from spanflow.cli.errors import CommandError, UsageError
from spanflow.cli.export_report import (
    DEFAULT_JAEGER_UI,
    EXPORTER_LOGGER,
    ExportReport,
    FoldedLog,
    failure_reason,
)
from spanflow.cli.inputs import meta_pair, nest_metadata
from spanflow.cli.logs import warn
from spanflow.tracing import (
    OtelInstrumentation,
    TracingOptions,
    TracingOptionsError,
    resolve_tracing_options,
)
from spanflow.workflows.workflow import Workflow

if TYPE_CHECKING:
    from spanflow_otel import OtlpProtocol, Telemetry

    from spanflow.cli.display import RunDisplay
    from spanflow.registry import Spanflow

__all__ = [
    "DEFAULT_JAEGER_UI",
    "DEMO_SERVICE",
    "OTLP_ENDPOINT_VARIABLES",
    "CommandTracing",
    "add_export_arguments",
    "add_tracing_option_arguments",
    "say_export_report",
    "service_tracing",
    "tracing_options",
]

DEMO_SERVICE = "spanflow-demo"
"""The ``service.name`` of ``spanflow demo``'s spans (what to pick in Jaeger's Search)."""

OTLP_ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
"""Either one set turns exporting on without ``--otlp``."""

_COMMAND_PROVIDERS: weakref.WeakSet[object] = weakref.WeakSet()
"""The tracer providers commands built, so a later command may replace them."""

_FLAGS = {
    "trace_id": "--trace-id",
    "parent_span_id": "--parent-span-id",
    "traceparent": "--traceparent",
    "tags": "--tag",
    "metadata": "--meta",
}


def add_export_arguments(
    parser: argparse.ArgumentParser, *, default_service: str, span_tree_option: bool
) -> None:
    """``--otlp``, ``--otlp-protocol``, ``--service``, ``--jaeger-ui`` (and ``--span-tree``)."""
    group = parser.add_argument_group("exporting spans")
    group.add_argument(
        "--otlp",
        metavar="URL",
        help="export the run's spans over OTLP to URL, e.g. http://localhost:4318 (Jaeger's "
        "OTLP/HTTP port); default: $OTEL_EXPORTER_OTLP_ENDPOINT if set, else no export",
    )
    group.add_argument(
        "--otlp-protocol",
        choices=("http/protobuf", "grpc"),
        help="OTLP transport (default: $OTEL_EXPORTER_OTLP_PROTOCOL, else http/protobuf; "
        "gRPC URLs look like http://localhost:4317)",
    )
    group.add_argument(
        "--service",
        metavar="NAME",
        help=f"service.name of the exported spans (default: $OTEL_SERVICE_NAME, else "
        f"{default_service})",
    )
    group.add_argument(
        "--jaeger-ui",
        metavar="URL",
        help=f"Jaeger UI the printed trace links (and, for serve, the run browser's) point to "
        f"(default: {DEFAULT_JAEGER_UI}; an --otlp URL on port 6006 is taken for Phoenix "
        "instead, unless this is given)",
    )
    if span_tree_option:
        group.add_argument(
            "--span-tree",
            action="store_true",
            help="print the run's span tree after the run",
        )
    parser.set_defaults(default_service=default_service)


def add_tracing_option_arguments(parser: argparse.ArgumentParser) -> None:
    """The run's `TracingOptions`: parent trace, tags and metadata."""
    group = parser.add_argument_group(
        "tracing the run",
        "Link the run into an existing trace and make it findable: every tag becomes the span "
        "attribute spanflow.tag.<tag>=true, every --meta key=value the attribute "
        "spanflow.metadata.<key>=<value>, on every span of the run.",
    )
    group.add_argument(
        "--trace-id",
        metavar="HEX",
        help="join this trace (1-32 hex digits); without --parent-span-id the run span is a "
        "root span of it",
    )
    group.add_argument(
        "--parent-span-id",
        metavar="HEX",
        help="make the run span a child of this span (1-16 hex digits; needs --trace-id)",
    )
    group.add_argument(
        "--traceparent",
        metavar="VALUE",
        help="a W3C traceparent header value, instead of --trace-id and --parent-span-id",
    )
    group.add_argument(
        "--tag",
        action="append",
        default=[],
        metavar="TAG",
        help="tag the run (repeatable)",
    )
    group.add_argument(
        "--meta",
        action="append",
        type=meta_pair,
        default=[],
        metavar="KEY=VALUE",
        help="metadata (repeatable); dotted keys nest: --meta user.id=u-42 gives "
        '{"user": {"id": "u-42"}}; values are always strings',
    )


def tracing_options(options: argparse.Namespace) -> TracingOptions | None:
    """The run's `TracingOptions` from the command line, checked; None when none were given.

    Raises:
        UsageError: An id, traceparent, tag or metadata key is invalid.
    """
    metadata = nest_metadata(options.meta) if options.meta else None
    given = TracingOptions(
        trace_id=options.trace_id,
        parent_span_id=options.parent_span_id,
        traceparent=options.traceparent,
        tags=list(options.tag) or None,
        metadata=metadata,
        strict=True,
    )
    if given == TracingOptions(strict=True):
        return None
    try:
        resolve_tracing_options(given)
    except TracingOptionsError as exc:
        name = exc.field.partition("[")[0].partition(".")[0]
        flag = _FLAGS.get(name, name)
        raise UsageError(f"argument {flag}: {exc.value_repr} {exc.reason}") from None
    return given


class CommandTracing:
    """The tracer provider a command runs its workflows under, and what it tells the user."""

    def __init__(
        self,
        telemetry: Telemetry | None,
        *,
        export_endpoint: str | None,
        jaeger_ui: str | None,
        tree: io.StringIO | None,
    ) -> None:
        self.telemetry = telemetry
        """The plugin's handle; None when the ``otel`` extra is not installed."""
        self.export_endpoint = export_endpoint
        """Where spans are exported (the resolved OTLP URL), or None."""
        self.jaeger_ui = jaeger_ui
        """The Jaeger UI given on the command line (None: the default, or Phoenix)."""
        self.report: ExportReport | None = None
        """What arrived at `export_endpoint`, once `close` flushed (None before, or no export)."""
        self._tree = tree
        self._closed = False
        self._exporter_log = FoldedLog()
        self._folding = contextlib.ExitStack()
        if export_endpoint is not None:
            self._folding.enter_context(self._exporter_log.folding(EXPORTER_LOGGER))

    @classmethod
    def from_options(
        cls,
        options: argparse.Namespace,
        *,
        span_tree: bool,
        install_global: bool,
        tree_width: int | None = None,
    ) -> CommandTracing:
        """`start` with the values of `add_export_arguments`' options."""
        return cls.start(
            otlp=options.otlp,
            protocol=options.otlp_protocol,
            service=_service_name(options.service, options.default_service),
            jaeger_ui=options.jaeger_ui,
            span_tree=span_tree,
            tree_width=tree_width,
            install_global=install_global,
        )

    @classmethod
    def start(
        cls,
        *,
        otlp: str | None = None,
        protocol: OtlpProtocol | None = None,
        service: str | None = None,
        jaeger_ui: str | None = None,
        span_tree: bool = False,
        tree_width: int | None = None,
        install_global: bool = False,
    ) -> CommandTracing:
        """Configure tracing for one command.

        Args:
            otlp: Export to this OTLP endpoint; None: only if the OTLP variables name one.
            protocol: OTLP transport; None: from the environment, else HTTP/protobuf.
            service: ``service.name``; None: from the environment.
            jaeger_ui: Base URL of the Jaeger UI for trace links (None: the default one, or
                Phoenix for an endpoint on its port; see `spanflow.cli.export_report`).
            span_tree: Collect each finished run's span tree for `span_tree`.
            tree_width: Fit the tree's lines in this many columns (None: never cut them).
            install_global: Also make the provider OpenTelemetry's global one (when the
                command is the program; never when `main` is called by a test), so libraries
                instrumented inside steps nest their spans under the step's.

        Raises:
            CommandError: Exporting was asked for but the ``otel`` extra is not installed.
        """
        exporting = otlp is not None or any(
            os.environ.get(name, "").strip() for name in OTLP_ENDPOINT_VARIABLES
        )
        try:
            import spanflow_otel as so
            from spanflow_otel.console import span_tree_processor
        except ImportError:
            if exporting:
                raise CommandError(
                    "exporting spans needs the tracing plugin: pip install 'spanflow[otel]'"
                ) from None
            return cls(None, export_endpoint=None, jaeger_ui=jaeger_ui, tree=None)

        export = so.ExportOptions(endpoint=otlp, protocol=protocol) if exporting else None
        tree = io.StringIO() if span_tree else None
        console = (
            []
            if tree is None
            else [span_tree_processor(so.ConsoleOptions(stream=tree), width=tree_width)]
        )
        telemetry = so.configure(
            so.ServiceOptions(name=service),
            export=export,
            span_processors=console,
            shutdown=so.ShutdownOptions(atexit=False, sigterm=install_global),
            set_global=install_global
            and isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider),
        )
        _COMMAND_PROVIDERS.add(telemetry.provider)
        endpoint = so.resolve_export(export).endpoint if export is not None else None
        return cls(telemetry, export_endpoint=endpoint, jaeger_ui=jaeger_ui, tree=tree)

    def instrument(self, workflow: Workflow) -> None:
        """Trace `workflow`'s runs with this provider, keeping its own tracing settings.

        A workflow whose instrumentation already names a tracer provider keeps it (whoever
        built the workflow chose where its spans go), unless an earlier command in this
        process put it there.
        """
        if self.telemetry is None:
            return
        current = workflow.instrumentation
        if not isinstance(current, OtelInstrumentation):
            return
        provider = current.config.tracer_provider
        if provider is None or provider in _COMMAND_PROVIDERS:
            config = dataclasses.replace(current.config, tracer_provider=self.telemetry.provider)
            workflow.instrumentation = OtelInstrumentation(config)

    def rows(self, trace_id: str | None) -> list[tuple[str, str]]:
        """Summary lines: the trace id (where the spans went is known after `close`)."""
        return [] if trace_id is None else [("trace id", trace_id)]

    def span_tree(self) -> str:
        """What the console exporter printed so far (one tree per finished run span)."""
        return self._tree.getvalue() if self._tree is not None else ""

    def close(self) -> ExportReport | None:
        """Flush and stop within the plugin's bounded timeout; what arrived, when exporting."""
        if self._closed or self.telemetry is None:
            return self.report
        self._closed = True
        with self._folding, self._exporter_log.folding("spanflow.tracing"):
            self.telemetry.shutdown()
        if self.export_endpoint is not None:
            counts = self.telemetry.export_counts
            self.report = ExportReport(
                self.export_endpoint,
                exported=counts.exported,
                failed=counts.failed,
                dropped=counts.dropped,
                unsent=counts.unsent,
                reason=failure_reason(self._exporter_log.messages),
            )
        return self.report

    def __enter__(self) -> CommandTracing:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc_info: object) -> None:
        report = self.close()
        if exc_type is not None and report is not None and not report.complete:
            warn(report.line(None))  # the command failed before it could say so itself


def say_export_report(display: RunDisplay, tracing: CommandTracing, trace_id: str | None) -> None:
    """Flush `tracing`, then say in one line what reached the OTLP endpoint (if exporting).

    A tracing failure never fails the command: the line says what failed, and that is all.
    """
    report = tracing.close()
    if report is None:
        return
    line = report.line(trace_id, tracing.jaeger_ui)
    if report.complete:
        display.say(line, style="green", glyph="success", whole=True)
    else:
        display.say(line, style="yellow", glyph="failed", whole=True)


def _service_name(given: str | None, default: str) -> str | None:
    """`given`, else None when the environment names the service, else `default`."""
    if given:
        return given
    if os.environ.get("OTEL_SERVICE_NAME", "").strip():
        return None
    resource = os.environ.get("OTEL_RESOURCE_ATTRIBUTES", "")
    if any(item.partition("=")[0].strip() == "service.name" for item in resource.split(",")):
        return None
    return default


def service_tracing(options: argparse.Namespace, registry: Spanflow) -> CommandTracing | None:
    """A long-running command's tracer provider (``serve``, ``worker``), when exporting is
    asked for (``--otlp`` or the ``OTEL_EXPORTER_OTLP_*`` endpoints) and neither the registry
    nor the app set one up."""
    exporting = options.otlp is not None or any(
        os.environ.get(name, "").strip() for name in OTLP_ENDPOINT_VARIABLES
    )
    own_provider = registry.tracing.tracer_provider is not None or not isinstance(
        trace.get_tracer_provider(), trace.ProxyTracerProvider
    )
    if not exporting or own_provider:
        return None
    return CommandTracing.from_options(options, span_tree=False, install_global=True)
