"""Stored runs for a person: the ``runs list`` table and the ``runs show`` report.

Both read only what the store keeps (`StoredRun` and its snapshot), so they need no workflow
code. Times are shown in the local time zone, to the second. A snapshot this spanflow cannot
read (written by a newer one, or damaged) still shows the run's stored columns, with a line
saying why the rest is not shown.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.text import Text

from spanflow.cli.display import fields_table, glyphs_for, labelled
from spanflow.cli.values import format_duration
from spanflow.errors import StorageError
from spanflow.storage import RunPage, StoredRun
from spanflow.workflows import read_run_snapshot

__all__ = ["format_time", "print_run", "print_runs", "runs_table"]

_COLUMNS = ("RUN ID", "WORKFLOW", "STATUS", "RESOURCE", "CREATED", "UPDATED")
_STATUS_STYLE = {
    "queued": "cyan",
    "success": "green",
    "failed": "red",
    "suspended": "yellow",
    "waiting": "yellow",
    "canceled": "magenta",
}


def format_time(epoch_seconds: float) -> str:
    """``2025-06-01 14:03:27`` in local time; ``-`` for no time."""
    if not epoch_seconds:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch_seconds))


def runs_table(runs: Sequence[StoredRun]) -> list[str]:
    """The rows of ``runs list``, header first, columns aligned with two spaces between."""
    rows = [_COLUMNS] + [
        (
            run.run_id,
            run.workflow_id,
            run.status,
            run.resource_id or "-",
            format_time(run.created_at),
            format_time(run.updated_at),
        )
        for run in runs
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def print_runs(page: RunPage, where: str, *, filtered: bool = False) -> None:
    """``runs list``: the table, a line per run whose row cannot be read (the others are
    listed all the same), and a line saying which runs of how many it shows."""
    for damaged in page.damaged:
        print(
            f"cannot read run {damaged.run_id} ({damaged.workflow_id}, {damaged.status}): "
            f"{damaged.problem}"
        )
    if not page.runs:
        if page.total:
            print(f"no runs past --offset {page.offset}: {page.total} in {where}")
        else:
            print(f"no runs {'match ' if filtered else ''}in {where}")
        return
    for line in runs_table(page.runs):
        print(line)
    first, last = page.offset + 1, page.offset + len(page.runs)
    shown = (
        f"{page.total} run{'s' if page.total != 1 else ''}"
        if (first, last) == (1, page.total)
        else (f"runs {first}-{last} of {page.total}")
    )
    more = f"; --offset {last} for more" if last < page.total else ""
    print(f"{shown}, newest first, in {where}{more}")


def print_run(console: Console, stored: StoredRun, where: str) -> None:
    """``runs show``: status, ids and times, steps, then result, error or what it waits for.

    When the snapshot cannot be read, only the stored columns (and the trace ids, if the raw
    snapshot has them) and one line saying why.
    """
    try:
        snapshot = read_run_snapshot(stored)
    except StorageError as unreadable:
        trace_id, span_id = _raw_trace_ids(stored.snapshot)
        _print_trimmed(console, labelled(_run_rows(stored, trace_id, span_id, where)))
        console.print(Text(f"\nsnapshot not shown: {unreadable}", style="yellow"), soft_wrap=True)
        return
    trace = snapshot.trace
    rows = _run_rows(
        stored,
        trace.trace_id if trace is not None else "-",
        trace.span_id if trace is not None else "-",
        where,
    )
    parts: list[RenderableType] = [labelled(rows)]
    steps = snapshot.frame.steps
    if steps:
        parts += [Text("\nsteps", style="bold"), _steps_table(console, steps)]
    if stored.status == "success":
        parts += [Text("\nresult", style="bold"), fields_table(snapshot.result)]
    error = snapshot.error
    if isinstance(error, dict):
        name, message = error.get("name", "Error"), error.get("message", "")
        parts += [Text("\nerror", style="bold"), Text(f"{name}: {message}", style="red")]
    if stored.status == "suspended":
        payloads = snapshot.suspend_payload
        for path in snapshot.suspended:
            step_path = ".".join(path)
            parts.append(Text(f"\nwaiting for {step_path}", style="bold yellow"))
            payload = payloads.get(path[0]) if path else None
            if payload is not None:
                parts.append(fields_table(payload))
    for part in parts:
        _print_trimmed(console, part)


def _run_rows(stored: StoredRun, trace_id: str, span_id: str, where: str) -> list[tuple[str, str]]:
    return [
        ("run id", stored.run_id),
        ("workflow", stored.workflow_id),
        ("status", stored.status),
        ("resource", stored.resource_id or "-"),
        ("created", format_time(stored.created_at)),
        ("updated", format_time(stored.updated_at)),
        ("trace id", trace_id),
        ("run span", span_id),
        ("storage", where),
    ]


def _raw_trace_ids(snapshot: Any) -> tuple[str, str]:
    """The trace and run span ids of a snapshot too new or damaged to read, ``-`` if absent."""
    trace = snapshot.get("trace") if isinstance(snapshot, dict) else None
    if not isinstance(trace, dict):
        return "-", "-"
    trace_id, span_id = trace.get("traceId"), trace.get("spanId")
    return (
        trace_id if isinstance(trace_id, str) and trace_id else "-",
        span_id if isinstance(span_id, str) and span_id else "-",
    )


def _print_trimmed(console: Console, part: RenderableType) -> None:
    """Print `part`; in plain output without the spaces a table pads its last column with."""
    if console.is_terminal:
        console.print(part)
        return
    with console.capture() as capture:
        console.print(part)
    for line in capture.get().splitlines():
        console.out(line.rstrip(), highlight=False)


def _steps_table(console: Console, steps: dict[str, Any]) -> RenderableType:
    glyphs = glyphs_for(console)
    symbol = {"success": glyphs.success, "failed": glyphs.failed, "suspended": glyphs.suspended}
    lines: list[RenderableType] = []
    width = max(len(step_id) for step_id in steps) + 2
    for step_id, step in steps.items():
        status = str(step.get("status", "?"))
        style = _STATUS_STYLE.get(status, "")
        line = Text.assemble(
            "  ",
            (symbol.get(status, glyphs.start), style),
            " ",
            (step_id.ljust(width), "bold"),
            (status.ljust(10), style),
        )
        started, ended = step.get("startedAt"), step.get("endedAt")
        if isinstance(started, int) and isinstance(ended, int):
            line.append(format_duration(ended - started), style="dim")
        error = step.get("error")
        if isinstance(error, dict):
            line.append(f"  {error.get('name', 'Error')}: {error.get('message', '')}", style="red")
        lines.append(line)
    return Group(*lines)
