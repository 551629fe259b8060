"""``spanflow runs list | show | resume``: the stored runs, one run, continuing a suspended run.

All three read the store that ``--db`` / ``--storage`` / ``SPANFLOW_STORAGE_URL`` name (default
``spanflow.db`` here). ``list`` and ``show`` need nothing but the store, and only read it: a
SQLite file is opened read-only, and a missing one is an error, never created. ``resume`` runs
code, so it needs the workflow too: ``--workflow module:attribute``, the same reference
``spanflow run`` takes; the stored run must belong to that workflow.
"""

from __future__ import annotations

import argparse
import asyncio
import typing
from typing import Any

from rich.console import Console

from spanflow.cli.inputs import json_argument
from spanflow.cli.run import add_run_arguments, execute, finish
from spanflow.cli.storage import (
    STORAGE_HELP,
    SelectedStorage,
    add_storage_arguments,
    select_storage,
)
from spanflow.cli.stored import print_run, print_runs
from spanflow.cli.tracing import tracing_options
from spanflow.cli.workflows import load_workflow, workflow_ref
from spanflow.errors import RunNotFoundError
from spanflow.storage import RunPage, RunStatus, StoredRun
from spanflow.workflows.run import Run
from spanflow.workflows.stream import WorkflowStream

__all__ = ["add_command"]

RUN_STATUSES: tuple[str, ...] = typing.get_args(RunStatus)


def add_command(commands: Any) -> None:
    """Register ``runs`` and its subcommands on the ``spanflow`` parser's subcommands."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "runs",
        help="list, show and resume stored runs",
        description="Look at stored runs and continue suspended ones.",
        epilog=STORAGE_HELP,
    )
    runs = parser.add_subparsers(
        title="commands", dest="runs_command", metavar="COMMAND", parser_class=type(parser)
    )
    runs.required = True

    listing = runs.add_parser(
        "list",
        help="stored runs, newest first",
        description="List stored runs, newest first, as an aligned table.",
        epilog=STORAGE_HELP,
    )
    listing.add_argument("--workflow", metavar="ID", help="only runs of this workflow id")
    listing.add_argument("--status", choices=RUN_STATUSES, help="only runs with this status")
    listing.add_argument("--resource", metavar="ID", help="only runs of this resource id")
    listing.add_argument(
        "--limit", type=_count(minimum=1), default=20, metavar="N", help="at most N runs (20)"
    )
    listing.add_argument(
        "--offset", type=_count(minimum=0), default=0, metavar="N", help="skip the N newest"
    )
    add_storage_arguments(listing)
    listing.set_defaults(handler=_list_command, command_name="runs list", command_parser=listing)

    show = runs.add_parser(
        "show",
        help="one run: status, steps, result or error, trace id",
        description="Show one stored run: status, steps, result or error, and trace id.",
        epilog=STORAGE_HELP,
    )
    show.add_argument("run_id", metavar="RUN_ID")
    add_storage_arguments(show)
    show.set_defaults(handler=_show_command, command_name="runs show", command_parser=show)

    resume = runs.add_parser(
        "resume",
        help="continue a suspended run and stream its events",
        description="Resume a suspended run with data for its suspended step, streaming the "
        "events like 'spanflow run'. The workflow's code is needed to continue it: name it "
        "with --workflow module:attribute. Without tracing options the resumed run continues "
        "the run's trace as a child of its run span; with them, the explicit parent wins and "
        "the new run span links to the original.",
        epilog=STORAGE_HELP,
    )
    resume.add_argument("run_id", metavar="RUN_ID")
    resume.add_argument(
        "--workflow",
        type=workflow_ref,
        required=True,
        metavar="MODULE:WORKFLOW",
        help="the workflow the run belongs to, e.g. examples.order_fulfilment:order_workflow",
    )
    resume.add_argument(
        "--data",
        type=json_argument,
        metavar="JSON",
        help="resume data for the suspended step, as JSON or @FILE (default: null)",
    )
    resume.add_argument(
        "--step",
        metavar="PATH",
        help="which suspended step to resume (an id, or outer.inner for a nested one); "
        "needed only when several are suspended",
    )
    add_run_arguments(resume)
    resume.set_defaults(handler=_resume_command, command_name="runs resume", command_parser=resume)


def _count(*, minimum: int) -> typing.Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected a number >= {minimum}, got {value}")
        return value

    return parse


def _list_command(options: argparse.Namespace) -> int:
    selected = select_storage(options, read_only=True)

    async def read() -> RunPage:
        try:
            return await selected.storage.list_runs(
                workflow_id=options.workflow,
                status=options.status,
                resource_id=options.resource,
                limit=options.limit,
                offset=options.offset,
            )
        finally:
            await selected.storage.close()

    filtered = any(f is not None for f in (options.workflow, options.status, options.resource))
    print_runs(asyncio.run(read()), selected.where, filtered=filtered)
    return 0


def _show_command(options: argparse.Namespace) -> int:
    selected = select_storage(options, read_only=True)

    async def read() -> StoredRun:
        try:
            return await _stored_run(selected, options.run_id)
        finally:
            await selected.storage.close()

    stored = asyncio.run(read())
    print_run(Console(highlight=False, emoji=False), stored, selected.where)
    return 0


def _resume_command(options: argparse.Namespace) -> int:
    run_tracing = tracing_options(options)
    workflow = load_workflow(options.workflow)

    async def check(selected: SelectedStorage) -> None:
        await _stored_run(selected, options.run_id)

    def start(run: Run) -> WorkflowStream:
        return run.resume_stream(
            options.data,
            step=options.step,
            request_context=options.request_context,
            tracing_options=run_tracing,
        )

    console = Console(highlight=False, emoji=False)
    shown = execute(options, console, workflow, start, run_id=options.run_id, check=check)
    return finish(shown, options)


async def _stored_run(selected: SelectedStorage, run_id: str) -> StoredRun:
    stored = await selected.storage.get_run(run_id)
    if stored is None:
        raise RunNotFoundError(f"no run {run_id!r} in {selected.where}")
    return stored
