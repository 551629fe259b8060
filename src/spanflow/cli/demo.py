"""``spanflow demo``: the order-fulfilment example, run on SQLite and streamed live.

The demo runs ``examples/order_fulfilment.py`` with a seven-line order, printing every event as
it arrives (see `RunDisplay`). The order is over the approval limit, so the run suspends at
``manager-approval`` and is stored in SQLite. After a short pause a manager "approves" it: the
demo then does what a second process would do, opening the database afresh, loading the run by
id, and resuming it with the manager's decision, and streams the rest of the run.

After the payment, the ``write-confirmation`` step is an agent ("Confirmation writer"): it calls
its ``lookup_delivery_window`` tool, then writes the customer's message, which appears as it
streams and ends up in the result; its tokens are counted in the run's usage. Its model is
scripted unless ``SPANFLOW_DEMO_BASE_URL`` names an OpenAI-compatible endpoint (see
`writer_model_from_env`).

Both halves of the run are traced with the tracing plugin (`spanflow_otel.configure`): its
console exporter collects each half's span tree as the run span ends, and the demo prints
them after the summary. The run carries the example's tracing options (metadata ``user.id`` and
``order.id``, tag ``vip``), which the resumed half keeps.

Options:
    ``--db PATH``: the SQLite file (default ``spanflow-demo.db`` in the system temp directory,
    so the demo leaves nothing in your checkout; each demo adds one run to it).
    ``--speed FACTOR``: divide every simulated delay by FACTOR (default 1: about two seconds in
    all; the tests use a large factor to run in milliseconds).
    ``--otlp URL`` (or ``OTEL_EXPORTER_OTLP_ENDPOINT``): also export the spans over OTLP, and
    print the trace's page in Jaeger (``--jaeger-ui``, default http://localhost:16686).

Environment:
    ``SPANFLOW_DEMO_BASE_URL``: an OpenAI-compatible API root (``https://api.openai.com/v1``,
    ``http://localhost:11434/v1`` for Ollama, ...); the writer then uses that endpoint.
    ``SPANFLOW_DEMO_MODEL``: the model name there (default ``gpt-4o-mini``).
    ``SPANFLOW_DEMO_API_KEY``: its key; local servers need none, and for api.openai.com
    ``OPENAI_API_KEY`` is used when this is unset (it is never sent anywhere else).

The example lives in the source checkout, not in the installed package: the demo imports
``examples.order_fulfilment`` and, when that is not importable, looks for the checkout this
package was installed from in editable mode (what ``make demo`` sets up).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import shlex
import sys
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from rich.console import Console

from spanflow.agents.errors import AgentDefinitionError
from spanflow.agents.models import Model, ModelChunk, ModelRequest, OpenAIChatModel, TextDelta
from spanflow.cli.display import RunDisplay, tree_width, watch
from spanflow.cli.errors import CommandError
from spanflow.cli.storage import DEMO_DB
from spanflow.cli.tracing import (
    DEMO_SERVICE,
    CommandTracing,
    add_export_arguments,
    say_export_report,
)
from spanflow.errors import SpanflowError
from spanflow.storage import SqliteStorage
from spanflow.workflows.results import WorkflowResult

if TYPE_CHECKING:
    from spanflow.workflows.workflow import Workflow

__all__ = [
    "DEFAULT_DB",
    "DEFAULT_MODEL",
    "DemoUnavailableError",
    "add_command",
    "load_order_example",
    "run_demo",
    "writer_model_from_env",
]

DEFAULT_DB = DEMO_DB
"""Where the demo stores its runs unless ``--db`` says otherwise."""

EXAMPLE_MODULE = "examples.order_fulfilment"
MANAGER_REVIEW_SECONDS = 1.2
"""How long the pretend manager looks at the order before approving it (at speed 1)."""
APPROVER = "Grace Hopper"
SECONDS_PER_WORD = 0.035
"""How fast the scripted writer "types" (at speed 1): its text arrives at about reading pace."""

BASE_URL_VARIABLE = "SPANFLOW_DEMO_BASE_URL"
MODEL_VARIABLE = "SPANFLOW_DEMO_MODEL"
API_KEY_VARIABLE = "SPANFLOW_DEMO_API_KEY"
DEFAULT_MODEL = "gpt-4o-mini"
"""The writer's model on a real endpoint unless ``SPANFLOW_DEMO_MODEL`` names another."""
_OPENAI_HOST = "api.openai.com"


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
            "for a manager's approval, and the resume of the stored run. Then print the span "
            "tree of both halves of the run's trace; with --otlp (or "
            "OTEL_EXPORTER_OTLP_ENDPOINT) the spans are exported too, and the trace's Jaeger "
            "link is printed. After the payment an agent step writes the customer's "
            "confirmation, calling a tool first; its model is scripted unless "
            f"{BASE_URL_VARIABLE} is set."
        ),
        epilog=(
            f"environment: {BASE_URL_VARIABLE}=URL makes the confirmation writer call that "
            "OpenAI-compatible endpoint (e.g. https://api.openai.com/v1, or "
            f"http://localhost:11434/v1 for Ollama) instead of its scripted model; "
            f"{MODEL_VARIABLE} names the model (default: {DEFAULT_MODEL}); "
            f"{API_KEY_VARIABLE} is the key (not needed by local servers; for api.openai.com "
            "OPENAI_API_KEY is used when it is unset)."
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
    add_export_arguments(parser, default_service=DEMO_SERVICE, span_tree_option=False)
    parser.set_defaults(handler=_run_command, command_name="demo", command_parser=parser)


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
    tracing = CommandTracing.from_options(
        options, span_tree=True, install_global=options.as_program, tree_width=tree_width(console)
    )
    with tracing:
        result = asyncio.run(run_demo(console, db=db, speed=options.speed, tracing=tracing))
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


async def run_demo(
    console: Console,
    *,
    db: Path,
    speed: float = 1.0,
    tracing: CommandTracing | None = None,
) -> WorkflowResult:
    """Run the demo, printing to `console`; returns the run's final result.

    Args:
        console: Where the demo prints.
        db: The SQLite file runs are stored in.
        speed: Divides every simulated delay.
        tracing: Where spans go; None: a provider of the demo's own that only collects the
            span tree (closed before returning).

    Raises:
        DemoUnavailableError: The example workflow cannot be imported.
        CommandError: ``SPANFLOW_DEMO_BASE_URL`` is set but no model can be made for it.
        StorageError: The SQLite file cannot be opened or written.
    """
    load_order_example()
    from examples.order_fulfilment import (
        SIMULATED_LATENCY,
        ManagerDecision,
        sample_order,
        sample_tracing,
        scripted_writer,
    )

    real_model = writer_model_from_env(os.environ)  # a bad setting fails before any output
    writer_model = real_model or _ReadingPace(scripted_writer(), SECONDS_PER_WORD / speed)
    owned = tracing is None
    tracing = tracing or CommandTracing.start(
        service=DEMO_SERVICE, span_tree=True, tree_width=tree_width(console)
    )
    order = sample_order()
    workflow = _order_workflow(writer_model, tracing)
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
                    ("writer model", _describe_model(real_model)),
                    *_describe_tracing(tracing),
                ],
            )
            run = await workflow.create_run()
            stream = run.stream(
                order,
                request_context={SIMULATED_LATENCY: 1 / speed},
                tracing_options=sample_tracing(),
            )
            result = await watch(display, run, stream)

        if result.status == "suspended":
            display.say(
                f"the run is saved in {db}; a manager is reviewing the order...", style="dim"
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
            # The resume passes no tracing options: the stored trace context makes the resumed
            # run span a child of the first one, with the same tags and metadata.
            async with SqliteStorage(db) as storage:
                resumed_workflow = _order_workflow(writer_model, tracing)
                resumed_workflow.storage = storage
                stored_run = await resumed_workflow.create_run(run_id=run.run_id)
                result = await watch(display, stored_run, stored_run.resume_stream(decision))
    finally:
        display.close()
        if isinstance(real_model, OpenAIChatModel):
            await real_model.aclose()
        if owned:
            tracing.close()

    listing = shlex.join(["spanflow", "runs", "list", "--db", str(db)])
    display.summary(
        result,
        [("storage", f"SQLite, {db}"), ("runs", listing), *tracing.rows(result.trace_id)],
    )
    display.span_tree(
        tracing.span_tree(), "span tree (the run, then its resumed half, in one trace)"
    )
    say_export_report(display, tracing, result.trace_id)
    return result


def writer_model_from_env(environ: Mapping[str, str]) -> Model | None:
    """The confirmation writer's model on the endpoint the environment names, else None.

    ``SPANFLOW_DEMO_BASE_URL`` turns it on; ``SPANFLOW_DEMO_MODEL`` names the model (default
    `DEFAULT_MODEL`); ``SPANFLOW_DEMO_API_KEY`` is the key. Without one, OpenAI's own API gets
    ``OPENAI_API_KEY`` and any other endpoint a placeholder: a key meant for OpenAI is never
    sent to a server the user named for the demo.

    Raises:
        CommandError: The ``openai`` extra is not installed, or OpenAI's API is named and no
            key is set.
    """
    base_url = environ.get(BASE_URL_VARIABLE, "").strip()
    if not base_url:
        return None
    model = environ.get(MODEL_VARIABLE, "").strip() or DEFAULT_MODEL
    key = environ.get(API_KEY_VARIABLE, "").strip()
    if urlsplit(base_url).hostname == _OPENAI_HOST:
        key = key or environ.get("OPENAI_API_KEY", "").strip()
        if not key:
            raise CommandError(
                f"{BASE_URL_VARIABLE} names OpenAI's API, which needs a key: "
                f"set {API_KEY_VARIABLE} or OPENAI_API_KEY"
            )
    try:
        # Local servers (Ollama, vLLM) ignore the key, but the client wants one.
        return OpenAIChatModel(model, base_url=base_url, api_key=key or "not-needed")
    except AgentDefinitionError as exc:
        raise CommandError(f"{BASE_URL_VARIABLE} is set, but {exc}") from None


class _ReadingPace:
    """A model whose text deltas arrive `seconds` apart (the scripted model's come at once),
    so the demo's writer can be watched typing."""

    def __init__(self, model: Model, seconds: float) -> None:
        self._model = model
        self._seconds = seconds

    @property
    def provider(self) -> str:
        return self._model.provider

    @property
    def model_id(self) -> str:
        return self._model.model_id

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelChunk]:
        async for chunk in self._model.stream(request):
            if isinstance(chunk, TextDelta):
                await asyncio.sleep(self._seconds)
            yield chunk


def _order_workflow(writer_model: Model, tracing: CommandTracing) -> Workflow:
    """The example workflow, its runs and its writer agent traced by `tracing`."""
    from examples.order_fulfilment import build_order_workflow, confirmation_writer

    writer = confirmation_writer(writer_model)
    workflow = build_order_workflow(writer)
    # The agent has no tracing of its own: as a step it traces like the run, so its spans
    # land in the run's tree on the demo's provider.
    tracing.instrument(workflow)
    return workflow


def _describe_model(model: Model | None) -> str:
    if model is None:
        return f"scripted (set {BASE_URL_VARIABLE} to use a real endpoint)"
    where = model.base_url if isinstance(model, OpenAIChatModel) else model.provider
    return f"{model.model_id} at {where}"


def _describe_tracing(tracing: CommandTracing) -> list[tuple[str, str]]:
    if tracing.telemetry is None:
        return [("tracing", "off (install spanflow[otel] to see the span tree)")]
    rows = [("tracing", "the span tree is printed at the end")]
    if tracing.export_endpoint is not None:
        rows.append(("exporting to", tracing.export_endpoint))
    return rows
