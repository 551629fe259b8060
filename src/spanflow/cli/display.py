"""`RunDisplay`: renders a run's stream events for a person, one line per event as it arrives.

A coloured line when a step starts and when it ends (with its duration), the notes steps write
with ``ctx.writer`` indented under them, a line per foreach iteration plus a live progress bar,
a panel when a step suspends for input, and a summary of the result. Given the workflow, it also
says which steps run in parallel, which branch was taken and how wide a foreach is.

An agent step's chunks read as a conversation under the step (`spanflow.cli.conversation`);
token usage also ends the run's finish line and the summary. Values are put on one line by
`spanflow.cli.values`.

On a terminal it uses colour and a live progress bar, and an agent's text appears word by word
as it streams; when stdout is not a terminal (a pipe, a file, a test's captured output) rich's
`Console` emits plain text with no control codes, the progress bar is left out, and an agent's
text is printed once, when it is complete, so every line still reads well. Glyphs fall back to
ASCII when the output encoding cannot show them.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import astuple, dataclass
from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import Console, Group, OverflowMethod, RenderableType
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.table import Table
from rich.text import Text

from spanflow.cli.conversation import AgentConversation, is_agent_chunk
from spanflow.cli.values import (
    compact,
    describe_error,
    describe_usage,
    format_duration,
    has_tokens,
    scalar,
    wire,
)
from spanflow.workflows.events import (
    StepOutputPayload,
    StepProgressPayload,
    StepResultPayload,
    StepStartPayload,
    StepSuspendedPayload,
    StepWaitingPayload,
    WorkflowEvent,
    WorkflowFinishPayload,
)
from spanflow.workflows.results import WorkflowResult
from spanflow.workflows.workflow import BranchEntry, ForeachEntry, ParallelEntry, Workflow

if TYPE_CHECKING:
    from spanflow.workflows.run import Run
    from spanflow.workflows.stream import WorkflowStream

__all__ = [
    "Glyphs",
    "RunDisplay",
    "describe_error",
    "describe_usage",
    "fields_table",
    "format_duration",
    "glyphs_for",
    "labelled",
    "tree_width",
    "watch",
]


@dataclass(frozen=True, slots=True)
class Glyphs:
    """The symbols a display draws with."""

    run: str
    resume: str
    start: str
    success: str
    failed: str
    suspended: str
    waiting: str
    note: str
    parallel: str
    branch: str
    more: str
    """Marks a shortened value."""
    tool_call: str
    tool_result: str
    tokens: str


UNICODE_GLYPHS = Glyphs("▶", "↻", "▸", "✓", "✗", "‖", "…", "│", "∥", "⑂", "…", "→", "←", "Σ")
ASCII_GLYPHS = Glyphs(">", "~", ">", "+", "x", "||", "...", "|", "||", "?", "...", "->", "<-", "=")

_ASCII_TREE = str.maketrans({"├": "|", "└": "`", "│": "|", "─": "-", "µ": "u", "…": "~"})

_STATUS_STYLE = {
    "queued": "cyan",
    "success": "green",
    "failed": "red",
    "suspended": "yellow",
    "waiting": "yellow",
    "canceled": "magenta",
}


class RunDisplay:
    """Prints a run's events as they arrive. Feed it every event of every stream of the run."""

    def __init__(
        self, console: Console, workflow: Workflow | None = None, *, resuming: bool = False
    ) -> None:
        """Show events on `console`.

        Args:
            console: Where to print. Its terminal detection decides colour and progress bar.
            workflow: The workflow being run, to annotate parallel, branch and foreach steps.
            resuming: The first stream shown continues a stored run (``runs resume``), so its
                start reads "resumed"; otherwise only the streams after the first do.
        """
        self.console = console
        self.glyphs = glyphs_for(console)
        self._workflow_id = workflow.id if workflow is not None else "workflow"
        self._hints: dict[str, str] = _topology_hints(workflow, self.glyphs) if workflow else {}
        names = [s.id for s in workflow.iter_steps()] if workflow is not None else []
        self._width = max([18, *map(len, names)]) + 2
        self._started_ms: dict[str, int] = {}
        self._suspended: list[str] = []
        self._stream_started = 0.0
        self._streams = 1 if resuming else 0
        self._progress: Progress | None = None
        self._progress_task: TaskID | None = None
        self._progress_step: str | None = None
        self._agent = AgentConversation(console, self.glyphs, self._print)

    # -- events ---------------------------------------------------------------------------

    def show(self, event: WorkflowEvent) -> None:
        """Render one event."""
        payload = event.payload
        if event.type == "workflow-start":
            self._on_workflow_start(event.run_id)
        elif isinstance(payload, StepStartPayload):
            self._on_step_start(payload)
        elif isinstance(payload, StepOutputPayload):
            if is_agent_chunk(payload.output):
                self._agent.show(payload.output)
            else:
                self._print(self._note(self._compact(payload.output, 6)))
        elif isinstance(payload, StepProgressPayload):
            self._on_progress(payload)
        elif isinstance(payload, StepResultPayload):
            self._on_step_result(payload)
        elif isinstance(payload, StepSuspendedPayload):
            self._on_step_suspended(payload)
        elif isinstance(payload, StepWaitingPayload):
            line = Text.assemble("  ", (self.glyphs.waiting, "yellow"), " ", (payload.id, "bold"))
            self._print(line.append(" sleeping", style="dim"))
        elif event.type == "workflow-canceled":
            self._print(Text.assemble((f"{self.glyphs.failed} run canceled", "magenta")))
        elif isinstance(payload, WorkflowFinishPayload):
            self._on_finish(payload)
        else:  # a user's data-* chunk, shown like a note
            data = {k: v for k, v in event.payload.to_dict().items() if k != "type"}
            indent = 8 + len(event.type)
            self._print(self._note(f"{event.type}: {self._compact(data, indent)}"))

    def _on_workflow_start(self, run_id: str) -> None:
        self._streams += 1
        self._stream_started = time.monotonic()
        self._suspended.clear()
        glyph, verb = (
            (self.glyphs.run, "started") if self._streams == 1 else (self.glyphs.resume, "resumed")
        )
        self._print(
            Text.assemble(
                (f"{glyph} ", "bold cyan"),
                (self._workflow_id, "bold"),
                f" {verb} ",
                (f"(run {run_id})", "dim"),
            )
        )

    def _on_step_start(self, p: StepStartPayload) -> None:
        self._started_ms[p.id] = p.resumed_at or p.started_at
        line = Text.assemble(
            "  ", (self.glyphs.start, "cyan"), " ", (p.id.ljust(self._width), "bold")
        )
        foreach = p.step_call_id is None and isinstance(p.payload, list)
        if p.resume_payload is not None:
            line.append("resumed", style="dim")
        elif foreach:
            line.append(f"foreach over {len(p.payload)} items", style="dim")
            hint = self._hints.get(p.id)
            if hint:
                line.append(f", {hint}", style="dim")
        elif p.id in self._hints:
            line.append(self._hints[p.id], style="dim")
        self._print(line)
        if p.resume_payload is not None:
            self._print(self._note(f"resume data: {self._compact(p.resume_payload, 20)}"))
        if foreach and p.resume_payload is None:
            self._start_progress(p.id, len(p.payload))

    def _on_progress(self, p: StepProgressPayload) -> None:
        style = _STATUS_STYLE.get(p.iteration_status, "")
        glyph = {"success": self.glyphs.success, "failed": self.glyphs.failed}.get(
            p.iteration_status, self.glyphs.suspended
        )
        line = Text.assemble(
            "    ",
            (glyph, style),
            (f" {p.completed_count}/{p.total_count}", "bold"),
            (f"  item {p.current_index}  ", "dim"),
            self._compact(p.iteration_output, 24)
            if p.iteration_output is not None
            else p.iteration_status,
        )
        self._print(line)
        if self._progress is not None and self._progress_task is not None:
            self._progress.update(self._progress_task, completed=p.completed_count, refresh=True)

    def _on_step_result(self, p: StepResultPayload) -> None:
        if p.id == self._progress_step:
            self._stop_progress()
        style = _STATUS_STYLE.get(p.status, "")
        glyph = self.glyphs.success if p.status == "success" else self.glyphs.failed
        line = Text.assemble("  ", (glyph, style), " ", (p.id.ljust(self._width), "bold"))
        started = self._started_ms.pop(p.id, None)
        if started is not None:
            line.append(format_duration(p.ended_at - started), style="dim")
        if p.status == "failed" and p.error is not None:
            line.append("  " + describe_error(p.error), style="red")
        elif p.status != "success":
            line.append(f"  {p.status}", style=style)
        self._print(line)

    def _on_step_suspended(self, p: StepSuspendedPayload) -> None:
        if p.id == self._progress_step:
            self._stop_progress()
        self._suspended.append(p.id)
        line = Text.assemble(
            "  ", (self.glyphs.suspended, "yellow"), " ", (p.id.ljust(self._width), "bold")
        )
        self._print(line.append("suspended: waiting for input", style="yellow"))
        title = Text.assemble(
            (f"{self.glyphs.suspended} ", "yellow"), (p.id, "bold"), " needs input"
        )
        self._print(_panel(fields_table(p.suspend_payload), title, "yellow"))

    def _on_finish(self, p: WorkflowFinishPayload) -> None:
        self._stop_progress()
        elapsed = format_duration((time.monotonic() - self._stream_started) * 1000)
        status = p.workflow_status
        style = _STATUS_STYLE.get(status, "")
        glyph = {
            "success": self.glyphs.success,
            "suspended": self.glyphs.suspended,
            "waiting": self.glyphs.waiting,
        }.get(status, self.glyphs.failed)
        line = Text.assemble((f"{glyph} ", style), (self._workflow_id, "bold"), " ")
        if status == "success":
            line.append(f"succeeded in {elapsed}", style=style)
            if has_tokens(p.usage):
                line.append(f", {describe_usage(p.usage)}", style="dim")
        elif status == "suspended":
            waiting = ", ".join(self._suspended) or "a step"
            line.append(f"suspended after {elapsed}: waiting for {waiting}", style=style)
        else:
            line.append(f"{status} after {elapsed}", style=style)
            if p.error is not None:
                line.append(": " + describe_error(p.error), style=style)
        self._print(line)

    # -- narration and summary ------------------------------------------------------------

    def intro(self, title: str, rows: Sequence[tuple[str, str]]) -> None:
        """A framed heading: a title and labelled lines (what is about to run, and where)."""
        self._print(_panel(labelled(rows), Text(title, style="bold"), "cyan"))

    def say(
        self, text: str, *, style: str = "", glyph: str | None = None, whole: bool = False
    ) -> None:
        """A narrator's line between runs (``glyph``: a `Glyphs` field name, e.g. "success").

        With `whole` the line is never cut to the terminal's width (a link or a command to
        copy): the terminal wraps it instead.
        """
        symbol = getattr(self.glyphs, glyph) + " " if glyph else ""
        if whole:
            self._agent.close_line()
            self.console.print(Text(symbol + text, style=style), soft_wrap=True)
        else:
            self._print(Text(symbol + text, style=style))

    def summary(self, result: WorkflowResult, rows: Sequence[tuple[str, str]] = ()) -> None:
        """A panel with the run's final status, extra labelled `rows`, the tokens its models used
        (if any), and its result or error."""
        style = _STATUS_STYLE.get(result.status, "")
        lines = [("run id", result.run_id), *rows]
        if has_tokens(result.usage):
            lines.append(("tokens", describe_usage(result.usage)))
        parts: list[RenderableType] = [labelled(lines)]
        if result.status == "success":
            parts += [Text("\nresult", style="bold"), fields_table(result.result)]
        elif result.error is not None:
            parts += [
                Text("\nerror", style="bold"),
                Text(describe_error(result.error), style="red"),
            ]
        elif result.status == "suspended":
            waiting = ", ".join(".".join(path) for path in result.suspended)
            parts.append(Text(f"\nwaiting for {waiting}", style=style))
        title = Text(f"{self._workflow_id}: {result.status}", style="bold")
        self._print(_panel(Group(*parts), title, style or "white"))

    def span_tree(self, text: str, title: str = "span tree") -> None:
        """The tracing plugin's span tree (`spanflow_otel.format_run_tree` text), as printed.

        The text is printed as it is: on a terminal the plugin already fitted it to the width
        (`tree_width`), wrapping a span's attributes under the tree's rails; in a file or a
        pipe its lines are whole. Box-drawing characters fall back to ASCII with the glyphs.
        """
        if not text.strip():
            return
        self._print(Text(title, style="bold"))
        if self.glyphs is ASCII_GLYPHS:
            text = text.translate(_ASCII_TREE)
        for line in text.rstrip("\n").splitlines():
            self.console.out(line, highlight=False)

    def close(self) -> None:
        """Stop the live progress bar if one is showing (safe to call at any time)."""
        self._stop_progress()

    # -- internals ------------------------------------------------------------------------

    def _print(self, renderable: RenderableType) -> None:
        self._agent.close_line()  # an agent's text still streaming continues on a new line
        if isinstance(renderable, Text):  # one event, one line: cut rather than wrap
            renderable.rstrip()
            overflow: OverflowMethod = "ellipsis" if self.glyphs is UNICODE_GLYPHS else "crop"
            self.console.print(renderable, no_wrap=True, overflow=overflow)
        else:
            self.console.print(renderable)

    def _note(self, text: str) -> Text:
        return Text.assemble("    ", (self.glyphs.note, "blue"), " ", text)

    def _compact(self, value: Any, indent: int = 20) -> str:
        """`value` on one line that fits the console after `indent` columns."""
        return compact(value, self.glyphs.more, max(self.console.width - indent, 24))

    def _start_progress(self, step_id: str, total: int) -> None:
        self._stop_progress()
        if not self.console.is_terminal or total == 0:
            return  # plain output: the per-iteration lines say it all
        progress = Progress(
            TextColumn("    [cyan]{task.description}"),
            BarColumn(bar_width=32),
            MofNCompleteColumn(),
            console=self.console,
            transient=True,
        )
        self._progress_task = progress.add_task(step_id, total=total)
        self._progress = progress
        self._progress_step = step_id
        progress.start()

    def _stop_progress(self) -> None:
        if self._progress is not None:
            self._progress.stop()
        self._progress = None
        self._progress_task = None
        self._progress_step = None


async def watch(display: RunDisplay, run: Run, stream: WorkflowStream) -> WorkflowResult:
    """Show the stream's events; if showing fails (say, stdout was closed), cancel the run."""
    try:
        async for event in stream:
            display.show(event)
    except BaseException:
        # The run executes in its own task: stop it before the caller closes its store.
        await run.cancel()
        raise
    return await stream.result


def _topology_hints(workflow: Workflow, glyphs: Glyphs) -> dict[str, str]:
    """What the events cannot say: which steps run side by side, branch, or fan out."""
    hints: dict[str, str] = {}
    for entry in workflow.entries:
        if isinstance(entry, ParallelEntry):
            ids = [s.id for s in entry.steps]
            for step_id in ids:
                others = ", ".join(i for i in ids if i != step_id)
                hints[step_id] = f"{glyphs.parallel} in parallel with {others}"
        elif isinstance(entry, BranchEntry):
            ids = [s.id for _, s in entry.branches]
            for step_id in ids:
                hints[step_id] = f"{glyphs.branch} chosen from " + " | ".join(ids)
        elif isinstance(entry, ForeachEntry):
            hints[entry.step.id] = f"{entry.concurrency} at a time"
    return hints


def tree_width(console: Console) -> int | None:
    """The width a span tree must fit on `console`: a terminal's; None (never cut) otherwise."""
    return console.width if console.is_terminal else None


def glyphs_for(console: Console) -> Glyphs:
    """Unicode glyphs when the console's encoding can show them, else ASCII."""
    return UNICODE_GLYPHS if _can_encode(console, UNICODE_GLYPHS) else ASCII_GLYPHS


def _can_encode(console: Console, glyphs: Glyphs) -> bool:
    try:
        "".join(astuple(glyphs)).encode(console.encoding or "ascii")
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def _panel(body: RenderableType, title: Text, border: str) -> Panel:
    return Panel(
        body,
        title=title,
        title_align="left",
        border_style=border,
        box=box.ROUNDED,
        expand=False,
        padding=(0, 1),
    )


def labelled(rows: Sequence[tuple[str, str]]) -> Table:
    """Aligned ``label  value`` rows, labels dimmed."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="dim", no_wrap=True)
    table.add_column()
    for label, value in rows:
        table.add_row(label, value)
    return table


def fields_table(value: Any) -> RenderableType:
    """An object's fields as `_labelled` rows (anything else as one line)."""
    data = wire(value)
    if not isinstance(data, dict):
        return Text(scalar(data))
    return labelled([(str(key), scalar(item)) for key, item in data.items()])
