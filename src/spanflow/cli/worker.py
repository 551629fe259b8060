"""``spanflow worker module:app``: execute a registry's queued runs, many at once.

``module:app`` names a `Spanflow` registry whose executor is a `spanflow.queue.QueueExecutor`
(the same module the web service imports, so both agree on the workflows and the queue). The
worker applies the migrations (``spanflow db migrate``), then takes jobs from the registry's
queue and executes up to ``--concurrency`` runs at once in one asyncio loop (runs spend their
time waiting on models and tools, not on the CPU), and requeues runs whose worker died.

Tracing: set up as ``spanflow serve`` does (``--otlp URL`` or the standard ``OTEL_*``
variables, service name ``spanflow-worker``), and left alone when the registry's
`TracingConfig` names a tracer provider or a global one is installed. Each run span is a child
of the PRODUCER span of the process that enqueued it, so the trace crosses processes.

Shutdown: on SIGTERM or Ctrl-C the worker stops taking jobs, lets running ones finish within
``--shutdown-grace`` seconds (the executor's ``shutdown_grace`` unless given), cancels the
rest (their runs are restarted by another worker once their leases expire), flushes the
spans and exits 0. A second signal ends the process at once.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Final

from spanflow.cli.errors import CommandError
from spanflow.cli.serve import load_registry
from spanflow.cli.tracing import add_export_arguments, service_tracing
from spanflow.cli.workflows import workflow_ref
from spanflow.registry import Spanflow

if TYPE_CHECKING:
    from spanflow.queue import QueueExecutor

__all__ = ["WORKER_SERVICE", "add_command"]

WORKER_SERVICE: Final = "spanflow-worker"
"""``service.name`` of a worker's spans unless ``--service`` or ``OTEL_SERVICE_NAME`` say."""


def add_command(commands: Any) -> None:
    """Register ``worker`` on the ``spanflow`` parser's subcommands."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "worker",
        help="execute the queued runs of a Spanflow registry (module:app)",
        description="Take jobs from the queue of a Spanflow registry whose executor is a "
        "QueueExecutor, and execute their runs, up to --concurrency at once. Applies the "
        "migrations first; requeues runs whose worker died. Stops gracefully on SIGTERM.",
        epilog="The registry: Spanflow(workflows=[...], storage=PostgresStorage(URL), "
        "executor=QueueExecutor(URL)). Start as many workers, on as many machines, as needed.",
    )
    parser.add_argument(
        "app",
        type=workflow_ref,
        metavar="MODULE:APP",
        help="the Spanflow registry whose runs to execute, e.g. myservice.flows:app",
    )
    parser.add_argument(
        "--concurrency",
        type=_positive_int,
        default=20,
        metavar="N",
        help="runs executed at once (default: 20)",
    )
    parser.add_argument(
        "--shutdown-grace",
        type=_seconds,
        default=None,
        metavar="SECONDS",
        help="on SIGTERM, how long running jobs may take to finish (default: the executor's, 30)",
    )
    add_export_arguments(parser, default_service=WORKER_SERVICE, span_tree_option=False)
    parser.set_defaults(handler=_worker, command_name="worker", command_parser=parser)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number above 0, got {text!r}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not 0 <= value <= 86_400:
        raise argparse.ArgumentTypeError(f"expected 0 to 86400 seconds, got {text!r}")
    return value


def _worker(options: argparse.Namespace) -> int:
    try:
        from spanflow.queue import QueueExecutor
    except ImportError:
        raise CommandError("workers need the queue extra: pip install 'spanflow[queue]'") from None
    registry = load_registry(options.app)
    executor = registry.executor
    if not isinstance(executor, QueueExecutor):
        raise CommandError(
            f"{options.app} runs its workflows with {executor!r}, which takes no jobs from a "
            "queue: create it as Spanflow(workflows=[...], storage=PostgresStorage(URL), "
            "executor=QueueExecutor(URL)) (from spanflow.queue import QueueExecutor)"
        )
    if options.shutdown_grace is not None:
        executor.shutdown_grace = options.shutdown_grace
    tracing = service_tracing(options, registry)
    try:
        asyncio.run(_run(registry, executor, options))
    finally:
        if tracing is not None:
            tracing.close()
    return 0


async def _run(registry: Spanflow, executor: QueueExecutor, options: argparse.Namespace) -> None:
    print(
        f"spanflow worker: {options.app} on {executor!r}, {options.concurrency} runs at once; "
        "SIGTERM or Ctrl-C stops it",
        flush=True,
    )
    try:
        with _saying_progress():
            await registry.run_worker(concurrency=options.concurrency)
    finally:
        await registry.close()


@contextlib.contextmanager
def _saying_progress() -> Iterator[None]:
    """Print the worker's own progress (migrations, requeued runs, stopping) on stdout.

    Its warnings and errors already reach stderr through the command's one-line handler.
    """
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("spanflow worker: %(message)s"))
    handler.addFilter(lambda record: record.levelno < logging.WARNING)
    logger = logging.getLogger("spanflow.queue")
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
