"""``spanflow demo``: the order-fulfilment example, run on SQLite and streamed live.

The demo runs ``examples/order_fulfilment.py`` with a seven-line order, printing every event as
it arrives (see `RunDisplay`). The order is over the approval limit, so the run suspends at
``manager-approval`` and is stored in SQLite. After a short pause a manager "approves" it: the
demo then does what a second process would do, opening the database afresh, loading the run by
id, and resuming it with the manager's decision, and streams the rest of the run.

Options:
    ``--db PATH``: the SQLite file (default ``spanflow-demo.db`` in the system temp directory,
    so the demo leaves nothing in your checkout; each demo adds one run to it).
    ``--speed FACTOR``: divide every simulated delay by FACTOR (default 1: about two seconds in
    all; the tests use a large factor to run in milliseconds).

The example lives in the source checkout, not in the installed package: the demo imports
``examples.order_fulfilment`` and, when that is not importable, looks for the checkout this
package was installed from in editable mode (what ``make demo`` sets up).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from spanflow.cli.display import RunDisplay
from spanflow.errors import SpanflowError
from spanflow.results import WorkflowResult
from spanflow.storage import SqliteStorage

if TYPE_CHECKING:
    from spanflow.run import Run
    from spanflow.stream import WorkflowStream

__all__ = [
    "DEFAULT_DB",
    "DemoUnavailableError",
    "add_command",
    "load_order_example",
    "print_span_tree",
    "run_demo",
]

DEFAULT_DB = Path(tempfile.gettempdir()) / "spanflow-demo.db"
"""Where the demo stores its runs unless ``--db`` says otherwise."""

EXAMPLE_MODULE = "examples.order_fulfilment"
MANAGER_REVIEW_SECONDS = 1.2
"""How long the pretend manager looks at the order before approving it (at speed 1)."""
APPROVER = "Grace Hopper"


class DemoUnavailableError(SpanflowError):
    """The example workflow the demo runs cannot be found."""


def add_command(commands: Any) -> None:
    """Register ``demo`` on the ``spanflow`` parser's subcommands."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "demo",
        help="run the order-fulfilment example on SQLite and watch it live",
        description=(
            "Run the order-fulfilment example workflow on SQLite, streaming its events live: "
            "parallel checks, a shipping branch, a foreach with a progress bar, a suspension "
            "for a manager's approval, and the resume of the stored run."
        ),
    )
    parser.add_argument(
        "--db",
        type=Path,
        default=DEFAULT_DB,
        metavar="PATH",
        help=f"SQLite file to store runs in (default: {DEFAULT_DB})",
    )
    parser.add_argument(
        "--speed",
        type=_positive_float,
        default=1.0,
        metavar="FACTOR",
        help="divide every simulated delay by FACTOR (default: 1)",
    )
    parser.set_defaults(handler=_run_command)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number above 0, got {text!r}")
    return value


def _run_command(options: argparse.Namespace) -> int:
    console = Console(highlight=False, emoji=False)
    db = options.db.expanduser().resolve()
    result = asyncio.run(run_demo(console, db=db, speed=options.speed))
    return 0 if result.status == "success" else 1


def load_order_example() -> None:
    """Make ``examples.order_fulfilment`` importable, from the source checkout if need be.

    Raises:
        DemoUnavailableError: Neither importable nor found next to this package's sources.
    """
    try:
        importlib.import_module(EXAMPLE_MODULE)
        return
    except ModuleNotFoundError as exc:
        if exc.name not in ("examples", EXAMPLE_MODULE):
            raise
    # src/spanflow/cli/demo.py -> the checkout root, when installed in editable mode.
    checkout = Path(__file__).resolve().parents[3]
    if (checkout / "examples" / "order_fulfilment.py").is_file():
        sys.path.insert(0, str(checkout))
        try:
            importlib.import_module(EXAMPLE_MODULE)
            return
        except ModuleNotFoundError:
            pass
    raise DemoUnavailableError(
        "the demo runs examples/order_fulfilment.py from spanflow's source checkout, which "
        "this installation does not include; run 'make demo' in a clone of the repository"
    )


async def run_demo(console: Console, *, db: Path, speed: float = 1.0) -> WorkflowResult:
    """Run the demo, printing to `console`; returns the run's final result.

    Raises:
        DemoUnavailableError: The example workflow cannot be imported.
        StorageError: The SQLite file cannot be opened or written.
    """
    load_order_example()
    from examples.order_fulfilment import (
        SIMULATED_LATENCY,
        ManagerDecision,
        build_order_workflow,
        sample_order,
    )

    order = sample_order()
    workflow = build_order_workflow()
    display = RunDisplay(console, workflow)
    try:
        async with SqliteStorage(db) as storage:  # opened now: a bad path fails before output
            workflow.storage = storage
            display.intro(
                "spanflow demo: order fulfilment",
                [
                    ("workflow", f"{workflow.id} (examples/order_fulfilment.py)"),
                    (
                        "order",
                        f"{order['order_id']} for {order['customer']['name']}: "
                        f"{len(order['items'])} line items, {order['shipping']} shipping",
                    ),
                    ("storage", f"SQLite, {db}"),
                ],
            )
            run = await workflow.create_run()
            stream = run.stream(order, request_context={SIMULATED_LATENCY: 1 / speed})
            result = await _watch(display, run, stream)

        if result.status == "suspended":
            display.say(
                f"the run is saved in {db.name}; a manager is reviewing the order...", style="dim"
            )
            await asyncio.sleep(MANAGER_REVIEW_SECONDS / speed)
            decision = ManagerDecision(
                approved=True, approver=APPROVER, note="Regular customer, ship it today."
            )
            display.say(
                f'approved by {decision.approver}: "{decision.note}"',
                style="bold green",
                glyph="success",
            )
            display.say(
                "reloading the run from SQLite by id, as another process would, and resuming it",
                style="dim",
                glyph="resume",
            )
            # A fresh workflow object and store: nothing from the first part stays in memory.
            async with SqliteStorage(db) as storage:
                resumed_workflow = build_order_workflow()
                resumed_workflow.storage = storage
                stored_run = await resumed_workflow.create_run(run_id=run.run_id)
                result = await _watch(display, stored_run, stored_run.resume_stream(decision))
    finally:
        display.close()

    rows = [("storage", f"SQLite, {db}")]
    if result.trace_id is not None:
        rows.append(("trace id", result.trace_id))
    display.summary(result, rows)
    print_span_tree(console, result)
    return result


async def _watch(display: RunDisplay, run: Run, stream: WorkflowStream) -> WorkflowResult:
    """Show the stream's events; if showing fails (say, stdout was closed), cancel the run."""
    try:
        async for event in stream:
            display.show(event)
    except BaseException:
        # The run executes in its own task: stop it before the caller closes its store.
        await run.cancel()
        raise
    return await stream.result


def print_span_tree(console: Console, result: WorkflowResult) -> None:
    """Hook: print the run's span tree after the demo. Deliberately empty for now.

    A later issue fills this in with the tracing plugin's console exporter (``spanflow_otel``):
    configure it before the run, then render the spans of ``result.trace_id`` here. Until then
    the demo prints no spans rather than a made-up tree.
    """
    del console, result
