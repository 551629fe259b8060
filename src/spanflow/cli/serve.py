"""``spanflow serve module:app``: serve a `Spanflow` registry over HTTP, on uvicorn.

``module:app`` names the registry (a `Spanflow` object), the way ``spanflow run`` names a
workflow; the app is `spanflow.server.create_app` of it, under ``--prefix`` (``/api``).

Safety: with no token the server only listens on a loopback address (``127.0.0.1``,
``::1``, ``localhost``); anything else needs ``SPANFLOW_AUTH_TOKEN`` set, and every request
must then send ``Authorization: Bearer <token>``. The token is read from the environment,
never from the command line, where any user could read it in the process list. CORS is off
unless ``--cors ORIGIN`` is given.

The run browser (`spanflow.server.ui`) is served at ``/`` unless ``--no-ui``; it links each
run's trace to ``--jaeger-ui URL`` (Jaeger's ``http://localhost:16686`` by default).

Tracing: set up as ``spanflow demo`` does, from the standard ``OTEL_*`` variables
(``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OTEL_SERVICE_NAME``, ...) or ``--otlp URL``, and only when
exporting was asked for; it is left alone when the registry's `TracingConfig` names a tracer
provider or the app already installed a global one. Spans are flushed when the server stops.

Shutdown: on SIGTERM or Ctrl-C uvicorn stops accepting connections and lets open responses
finish (up to ``--graceful-timeout`` seconds), then the spans are flushed and the command exits
0. Runs still executing when the process ends stay ``running`` (or ``waiting``) in a durable
store (SQLite, PostgreSQL), to be restarted (``POST .../restart``) or observed from another
server.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import ipaddress
import os
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any, Final

from spanflow.cli.errors import CommandError, UsageError
from spanflow.cli.export_report import DEFAULT_JAEGER_UI
from spanflow.cli.tracing import add_export_arguments, service_tracing
from spanflow.cli.workflows import WorkflowRef, workflow_ref
from spanflow.registry import Spanflow

__all__ = ["SERVE_SERVICE", "TOKEN_VARIABLE", "add_command", "is_loopback", "load_registry"]

SERVE_SERVICE: Final = "spanflow-server"
"""``service.name`` of the server's spans unless ``--service`` or ``OTEL_SERVICE_NAME`` say."""
TOKEN_VARIABLE: Final = "SPANFLOW_AUTH_TOKEN"
"""The environment variable holding the bearer token."""


def add_command(commands: Any) -> None:
    """Register ``serve`` on the ``spanflow`` parser's subcommands."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "serve",
        help="serve a Spanflow registry (module:app) over HTTP in Mastra's wire format",
        description="Serve the workflows and agents of a Spanflow registry over HTTP, with "
        "Mastra's routes and wire format (so @mastra/client-js can drive them), on uvicorn. "
        "Each request is traced as a SERVER span in the trace of its traceparent header.",
        epilog=f"environment: {TOKEN_VARIABLE}=TOKEN requires 'Authorization: Bearer TOKEN' "
        "on every request (needed to listen beyond loopback); OTEL_EXPORTER_OTLP_ENDPOINT "
        "exports the spans.",
    )
    parser.add_argument(
        "app",
        type=workflow_ref,
        metavar="MODULE:APP",
        help="the Spanflow registry to serve, e.g. examples.order_fulfilment:app",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=_port, default=4111, help="port (default: 4111)")
    parser.add_argument("--prefix", default="/api", help="route prefix (default: /api)")
    parser.add_argument(
        "--cors",
        action="append",
        default=None,
        metavar="ORIGIN",
        help="allow browsers from ORIGIN ('*' for any; repeatable); default: CORS off",
    )
    parser.add_argument(
        "--max-body-bytes",
        type=_positive_int,
        default=1024 * 1024,
        metavar="N",
        help="largest request body (default: 1 MiB)",
    )
    parser.add_argument(
        "--no-ui",
        dest="ui",
        action="store_false",
        help="serve the API only, without the run browser at /",
    )
    parser.add_argument(
        "--graceful-timeout",
        type=_positive_int,
        default=30,
        metavar="SECONDS",
        help="on shutdown, how long open responses may take to finish (default: 30)",
    )
    add_export_arguments(parser, default_service=SERVE_SERVICE, span_tree_option=False)
    parser.set_defaults(handler=_serve, command_name="serve", command_parser=parser)


def _port(text: str) -> int:
    value = _positive_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"expected a port up to 65535, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number above 0, got {text!r}")
    return value


def is_loopback(host: str) -> bool:
    """Whether `host` is a loopback address (or ``localhost``)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def load_registry(ref: WorkflowRef) -> Spanflow:
    """Import ``module`` (the working directory first) and return its `Spanflow` attribute.

    Raises:
        CommandError: The module does not import, or the attribute is not a `Spanflow`.
    """
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(ref.module)
    except Exception as exc:
        text = " ".join(str(exc).split())
        raise CommandError(
            f"importing {ref.module!r} failed: {type(exc).__name__}: {text}"
        ) from None
    value: object = module
    for name in ref.attribute.split("."):
        if not hasattr(value, name):
            raise CommandError(f"{ref} does not exist: no attribute {name!r}")
        value = getattr(value, name)
    if not isinstance(value, Spanflow):
        raise CommandError(
            f"{ref} is a {type(value).__name__}, not a Spanflow registry: serve "
            "Spanflow(workflows=[...], agents=[...]) (a workflow alone can be registered in one)"
        )
    return value


def _serve(options: argparse.Namespace) -> int:
    token = os.environ.get(TOKEN_VARIABLE, "").strip() or None
    if token is None and not is_loopback(options.host):
        raise UsageError(
            f"refusing to serve on {options.host} without authentication: set "
            f"{TOKEN_VARIABLE} (clients then send 'Authorization: Bearer <token>'), or listen "
            "on 127.0.0.1"
        )
    try:
        import uvicorn

        from spanflow.server import create_app
    except ImportError:
        raise CommandError(
            "serving needs the server extra: pip install 'spanflow[server]'"
        ) from None
    registry = load_registry(options.app)
    tracing = service_tracing(options, registry)
    try:
        app = create_app(
            registry,
            prefix=options.prefix,
            auth_token=token,
            max_body_bytes=options.max_body_bytes,
            cors_origins=options.cors,
            ui=options.ui,
            jaeger_ui=_jaeger_ui(options) if options.ui else None,
        )
        config = uvicorn.Config(
            app,
            host=options.host,
            port=options.port,
            timeout_graceful_shutdown=options.graceful_timeout,
            log_level="info",
        )
        _server_class(uvicorn)(config).run()
    finally:
        if tracing is not None:
            tracing.close()
    return 0


def _jaeger_ui(options: argparse.Namespace) -> str:
    """The Jaeger UI the run browser links traces to: ``--jaeger-ui`` (the export option the
    other commands print trace links with), else Jaeger's default address."""
    url: str = options.jaeger_ui or DEFAULT_JAEGER_UI
    if not url.startswith(("http://", "https://")):
        raise UsageError(f"--jaeger-ui must be an http:// or https:// URL, got {url!r}")
    return url


def _server_class(uvicorn: Any) -> Any:
    """uvicorn's `Server`, except that a SIGTERM or Ctrl-C ends `run` normally.

    uvicorn shuts down gracefully on those signals, then raises the signal again so that the
    process dies of it; ``spanflow serve`` still has spans to flush, so it restores the previous
    handlers without raising, flushes, and exits 0.
    """

    class Server(uvicorn.Server):  # type: ignore[misc]
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            previous = {sig: signal.signal(sig, self.handle_exit) for sig in _SIGNALS}
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    return Server


_SIGNALS = (signal.SIGINT, signal.SIGTERM)
