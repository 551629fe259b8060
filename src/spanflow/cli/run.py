"""``spanflow run module:workflow``: start a run of any workflow and stream its events.

The workflow is imported from ``module:attribute``, its runs stored where ``--db`` /
``--storage`` / ``SPANFLOW_STORAGE_URL`` say (default ``spanflow.db`` here), and the run is
shown live with the demo's display, then summarised with its trace id. A run that suspends is
stored and can be continued with ``spanflow runs resume``. Exit code: 0 when the run succeeds
or suspends, 1 when it fails or is canceled (with one ``spanflow: error:`` line on stderr).

The same helpers serve ``runs resume``: `execute` runs a stream with display, tracing and the
store, and `finish` prints the outcome.
"""

from __future__ import annotations

import argparse
import asyncio
import shlex
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from rich.console import Console

from spanflow.cli.display import RunDisplay, describe_error, tree_width, watch
from spanflow.cli.inputs import json_argument, json_object_argument
from spanflow.cli.storage import (
    STORAGE_HELP,
    SelectedStorage,
    add_storage_arguments,
    select_storage,
)
from spanflow.cli.tracing import (
    CommandTracing,
    add_export_arguments,
    add_tracing_option_arguments,
    say_export_report,
    tracing_options,
)
from spanflow.cli.workflows import WorkflowRef, load_workflow, workflow_ref
from spanflow.workflows.results import WorkflowResult
from spanflow.workflows.run import Run
from spanflow.workflows.stream import WorkflowStream
from spanflow.workflows.workflow import Workflow

__all__ = ["RUN_SERVICE", "Shown", "add_command", "add_run_arguments", "execute", "finish"]

RUN_SERVICE = "spanflow"
"""``service.name`` of the spans of ``spanflow run`` and ``runs resume`` by default."""

StartStream = Callable[[Run], WorkflowStream]
"""Opens the stream on the run: ``run.stream(...)`` or ``run.resume_stream(...)``."""
Check = Callable[[SelectedStorage], Awaitable[None]]
"""Runs against the open store before the run starts (raises to stop the command)."""


@dataclass(frozen=True, slots=True)
class Shown:
    """A run that was streamed to the display, as `execute` leaves it."""

    result: WorkflowResult
    display: RunDisplay
    storage: SelectedStorage
    """Where the run was stored."""


def add_command(commands: Any) -> None:
    """Register ``run`` on the ``spanflow`` parser's subcommands."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "run",
        help="run a workflow (module:attribute) and stream its events",
        description="Run a workflow and show its events as they happen, then a summary with "
        "the run id and trace id. A run that suspends is stored; continue it with 'spanflow "
        "runs resume'. Exit code 0 when the run succeeds or suspends, 1 when it fails.",
        epilog=STORAGE_HELP,
    )
    parser.add_argument(
        "workflow",
        type=workflow_ref,
        metavar="MODULE:WORKFLOW",
        help="the committed workflow to run, e.g. examples.order_fulfilment:order_workflow "
        "(the working directory is searched first)",
    )
    parser.add_argument(
        "--input",
        type=json_argument,
        metavar="JSON",
        help="the run's input as JSON, or @FILE to read it from a file",
    )
    parser.add_argument(
        "--resource",
        metavar="ID",
        help="resource id of the run (what 'runs list --resource' filters on)",
    )
    add_run_arguments(parser)
    parser.set_defaults(handler=_run_command, command_name="run", command_parser=parser)


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """What ``run`` and ``runs resume`` share: request context, tracing, export, storage."""
    parser.add_argument(
        "--request-context",
        type=json_object_argument,
        metavar="JSON",
        help="the run's request context, a JSON object (or @FILE)",
    )
    add_tracing_option_arguments(parser)
    add_export_arguments(parser, default_service=RUN_SERVICE, span_tree_option=True)
    add_storage_arguments(parser)


def _run_command(options: argparse.Namespace) -> int:
    run_tracing = tracing_options(options)  # a bad id fails before anything is imported
    workflow = load_workflow(options.workflow)

    def start(run: Run) -> WorkflowStream:
        return run.stream(
            options.input, request_context=options.request_context, tracing_options=run_tracing
        )

    console = Console(highlight=False, emoji=False)
    shown = execute(options, console, workflow, start, resource_id=options.resource)
    return finish(shown, options)


def execute(
    options: argparse.Namespace,
    console: Console,
    workflow: Workflow,
    start: StartStream,
    *,
    run_id: str | None = None,
    resource_id: str | None = None,
    check: Check | None = None,
) -> Shown:
    """Open the store, trace, stream `start`'s run to a live display; close everything.

    Args:
        options: Parsed arguments of a command that called `add_run_arguments`.
        console: Where the display prints.
        workflow: The workflow to run (its storage becomes the selected store).
        start: Opens the stream on the run.
        run_id: Continue this stored run; None: a new run.
        resource_id: Resource id of a new run.
        check: Awaited with the open store before the run (e.g. that the run exists).
    """
    selected = select_storage(options)
    display = RunDisplay(console, workflow, resuming=run_id is not None)
    with CommandTracing.from_options(
        options,
        span_tree=options.span_tree,
        install_global=options.as_program,
        tree_width=tree_width(console),
    ) as tracing:
        tracing.instrument(workflow)
        workflow.storage = selected.storage

        async def go() -> WorkflowResult:
            try:
                if check is not None:
                    await check(selected)
                run = await workflow.create_run(run_id=run_id, resource_id=resource_id)
                try:
                    return await watch(display, run, start(run))
                except Exception:
                    if run_id is None:  # ours, refused before it started: leave none behind
                        await run.discard()
                    raise
            finally:
                display.close()
                await selected.storage.close()

        result = asyncio.run(go())
        display.summary(result, [("storage", selected.where), *tracing.rows(result.trace_id)])
        display.span_tree(tracing.span_tree())
        say_export_report(display, tracing, result.trace_id)
    return Shown(result, display, selected)


def finish(shown: Shown, options: argparse.Namespace) -> int:
    """Say how to continue a suspended run; turn the run's status into the exit code."""
    result = shown.result
    if result.status == "suspended":
        waiting = ", ".join(".".join(path) for path in result.suspended)
        shown.display.say(
            f"waiting for {waiting}; {_how_to_continue(shown, options)}", style="dim", whole=True
        )
        return 0
    if result.status == "success":
        return 0
    detail = f": {describe_error(result.error)}" if result.error is not None else ""
    message = " ".join(f"run {result.run_id} {result.status}{detail}".split())
    print(f"spanflow: error: {message}", file=sys.stderr)
    return 1


def _how_to_continue(shown: Shown, options: argparse.Namespace) -> str:
    """The command that resumes the suspended run, or why there is none."""
    if not shown.storage.keeps_runs:
        return (
            "it cannot be resumed: it was stored in memory, which is gone when this command "
            "exits; run it with --db PATH or --storage URL to resume it later"
        )
    result = shown.result
    ref: WorkflowRef = options.workflow
    command = ["spanflow", "runs", "resume", result.run_id, "--workflow", str(ref)]
    if options.db is not None:
        command += ["--db", str(options.db)]
    elif options.storage is not None:
        command += ["--storage", options.storage]
    if len(result.suspended) > 1:
        command += ["--step", ".".join(result.suspended[0])]
    return f"continue with: {shlex.join(command)} --data JSON"
