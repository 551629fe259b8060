"""`RunDisplay`: renders a run's stream events for a person, one line per event as it arrives.

A coloured line when a step starts and when it ends (with its duration), the notes steps write
with ``ctx.writer`` indented under them, a line per foreach iteration plus a live progress bar,
a panel when a step suspends for input, and a summary of the result. Given the workflow, it also
says which steps run in parallel, which branch was taken and how wide a foreach is.

An agent step's chunks (``workflow-step-output`` events whose output is an agent chunk, ``{"from":
"AGENT", ...}``) read as a conversation under the step: a line per tool call and per tool
result, the text word-wrapped under a bar, and the tokens the agent used. Token usage also ends
the run's finish line and the summary.

On a terminal it uses colour and a live progress bar, and an agent's text appears word by word
as it streams; when stdout is not a terminal (a pipe, a file, a test's captured output) rich's
`Console` emits plain text with no control codes, the progress bar is left out, and an agent's
text is printed once, when it is complete, so every line still reads well. Glyphs fall back to
ASCII when the output encoding cannot show them.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from dataclasses import astuple, dataclass
from typing import TYPE_CHECKING, Any

from pydantic_core import to_jsonable_python
from rich import box
from rich.console import Console, Group, OverflowMethod, RenderableType
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.table import Table
from rich.text import Text

from spanflow.usage import Usage
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
from spanflow.workflows.results import StoredError, WorkflowResult
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
    "success": "green",
    "failed": "red",
    "suspended": "yellow",
    "waiting": "yellow",
    "canceled": "magenta",
}


_AGENT_TEXT_INDENT = "    "
_WORD = re.compile(r"(\S*)(\s*)")


def describe_usage(usage: Usage) -> str:
    """``281 tokens (239 in, 42 out)``."""
    total = usage.total_tokens or usage.input_tokens + usage.output_tokens
    return f"{total:,} tokens ({usage.input_tokens:,} in, {usage.output_tokens:,} out)"


def format_duration(milliseconds: float) -> str:
    """``42 ms`` below a second, ``1.23 s`` above."""
    if milliseconds < 1000:
        return f"{milliseconds:.0f} ms"
    return f"{milliseconds / 1000:.2f} s"


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
        self._agent_texts: dict[str, str] = {}
        """Plain output: each agent text so far, by text id, printed when it ends."""
        self._open_text: str | None = None
        """Terminal output: the id of the agent text whose line is open (not yet ended)."""
        self._text_column = 0
        """Terminal output: the column after the text written on the open line."""
        self._partial_words: dict[str, str] = {}
        """Terminal output: by text id, the streamed start of a word not yet complete (a word
        is wrapped whole)."""
        self._agent_ids: dict[str, str] = {}
        """The agent id of each agent call under way, by the call's run id."""

    # -- events ---------------------------------------------------------------------------

    def show(self, event: WorkflowEvent) -> None:
        """Render one event."""
        payload = event.payload
        if event.type == "workflow-start":
            self._on_workflow_start(event.run_id)
        elif isinstance(payload, StepStartPayload):
            self._on_step_start(payload)
        elif isinstance(payload, StepOutputPayload):
            if _is_agent_chunk(payload.output):
                self._on_agent_chunk(payload.output)
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
            if _has_tokens(p.usage):
                line.append(f", {describe_usage(p.usage)}", style="dim")
        elif status == "suspended":
            waiting = ", ".join(self._suspended) or "a step"
            line.append(f"suspended after {elapsed}: waiting for {waiting}", style=style)
        else:
            line.append(f"{status} after {elapsed}", style=style)
            if p.error is not None:
                line.append(": " + describe_error(p.error), style=style)
        self._print(line)

    # -- agent chunks ---------------------------------------------------------------------

    def _on_agent_chunk(self, chunk: dict[str, Any]) -> None:
        kind = chunk.get("type")
        data: dict[str, Any] = chunk.get("payload") or {}
        if kind == "text-delta":
            self._on_text_delta(str(data.get("id")), str(data.get("text", "")))
        elif kind == "text-end":
            self._end_agent_text(str(data.get("id")))
        elif kind == "tool-call":
            self._on_tool_call(data)
        elif kind == "tool-result":
            failed = bool(data.get("isError"))
            self._on_tool_result(data.get("result"), failed=failed)
        elif kind == "tool-error":
            self._on_tool_result(_error_text(data.get("error")), failed=True)
        elif kind == "start":
            self._agent_ids[str(chunk.get("runId"))] = str(data.get("agentId", "the agent"))
        elif kind == "finish":
            self._end_agent_text()
            usage = Usage.from_dict((data.get("output") or {}).get("usage") or {})
            agent = self._agent_ids.pop(str(chunk.get("runId")), "the agent")
            if _has_tokens(usage):
                line = Text.assemble("    ", (self.glyphs.tokens, "blue"), " ")
                self._print(line.append(f"{agent} used {describe_usage(usage)}", style="dim"))
        elif kind in ("error", "abort"):
            self._end_agent_text()
            error = data.get("error")
            what = "agent failed" if kind == "error" else "agent aborted"
            line = Text.assemble("    ", (self.glyphs.failed, "red"), " ")
            self._print(
                line.append(what + (f": {_error_text(error)}" if error else ""), style="red")
            )
        # step-start, text-start and step-finish add nothing a person needs to read

    def _on_tool_call(self, data: dict[str, Any]) -> None:
        args = data.get("args")
        if isinstance(args, dict):
            shown = ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in args.items())
        else:  # arguments that were not valid JSON: the model's text as it is
            shown = _scalar(args)
        name = str(data.get("toolName", "tool"))
        call = _compact(f"{name}({shown})", self.glyphs.more, max(self.console.width - 6, 24))
        tool = call[: len(name)]
        self._print(
            Text.assemble(
                "    ", (self.glyphs.tool_call, "magenta"), " ", (tool, "bold"), call[len(tool) :]
            )
        )

    def _on_tool_result(self, result: Any, *, failed: bool) -> None:
        glyph = (self.glyphs.tool_result, "red" if failed else "magenta")
        line = Text.assemble("      ", glyph, " ")
        self._print(line.append(self._compact(result, 9), style="red" if failed else ""))

    def _on_text_delta(self, text_id: str, text: str) -> None:
        if not self.console.is_terminal:
            self._agent_texts[text_id] = self._agent_texts.get(text_id, "") + text
            return
        self._write_words(text_id, self._partial_words.pop(text_id, "") + text, final=False)

    def _end_agent_text(self, text_id: str | None = None) -> None:
        """The end of one text (`text_id`) or of every unfinished one: print or finish it."""
        if not self.console.is_terminal:
            ids = [text_id] if text_id is not None else list(self._agent_texts)
            for done in ids:
                self._write_words(done, self._agent_texts.pop(done, "").strip(), final=True)
                self._close_text_line()
            return
        ids = [text_id] if text_id is not None else list(self._partial_words)
        for done in ids:
            self._write_words(done, self._partial_words.pop(done, ""), final=True)
        if text_id is None or self._open_text == text_id:
            self._close_text_line()

    def _write_words(self, text_id: str, text: str, *, final: bool) -> None:
        """Write `text` word-wrapped under a bar; keep an unfinished last word unless `final`."""
        words = [(word, gap) for word, gap in _WORD.findall(text) if word or gap]
        if not final and words and not words[-1][1]:
            self._partial_words[text_id] = words.pop()[0]  # wrapped once we see where it ends
        for word, gap in words:
            if word:
                self._write_word(text_id, word)
            for _ in range(gap.count("\n")):
                if self._open_text is None:  # an empty line between paragraphs
                    bar = Text.assemble(_AGENT_TEXT_INDENT, (self.glyphs.note, "blue"))
                    self.console.print(bar, soft_wrap=True)
                self._close_text_line()

    def _write_word(self, text_id: str, word: str) -> None:
        start = len(_AGENT_TEXT_INDENT) + 2
        fits = self._text_column + 1 + len(word) <= max(self.console.width, start + 20)
        if self._open_text != text_id or not fits:
            self._close_text_line()  # another agent's text, or a full line
        if self._open_text is None:
            bar = Text.assemble(_AGENT_TEXT_INDENT, (self.glyphs.note, "blue"), " ")
            self.console.print(bar, end="", soft_wrap=True)
            self._open_text, self._text_column = text_id, start
        elif self._text_column > start:
            word = " " + word
        self.console.print(Text(word), end="", soft_wrap=True)
        self._text_column += len(word)

    def _close_text_line(self) -> None:
        if self._open_text is not None:
            self.console.print(soft_wrap=True)
            self._open_text = None

    # -- narration and summary ------------------------------------------------------------

    def intro(self, title: str, rows: Sequence[tuple[str, str]]) -> None:
        """A framed heading: a title and labelled lines (what is about to run, and where)."""
        self._print(_panel(labelled(rows), Text(title, style="bold"), "cyan"))

    def say(self, text: str, *, style: str = "", glyph: str | None = None) -> None:
        """A narrator's line between runs (``glyph``: a `Glyphs` field name, e.g. "success")."""
        symbol = getattr(self.glyphs, glyph) + " " if glyph else ""
        self._print(Text(symbol + text, style=style))

    def summary(self, result: WorkflowResult, rows: Sequence[tuple[str, str]] = ()) -> None:
        """A panel with the run's final status, extra labelled `rows`, the tokens its models used
        (if any), and its result or error."""
        style = _STATUS_STYLE.get(result.status, "")
        lines = [("run id", result.run_id), *rows]
        if _has_tokens(result.usage):
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

        Long lines are neither wrapped nor cut: the tree keeps its shape in a narrow terminal
        and stays whole in a file. Box-drawing characters fall back to ASCII with the glyphs.
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
        self._close_text_line()  # an agent's text still streaming continues on a new line
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
        return _compact(value, self.glyphs.more, max(self.console.width - indent, 24))

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


def glyphs_for(console: Console) -> Glyphs:
    """Unicode glyphs when the console's encoding can show them, else ASCII."""
    return UNICODE_GLYPHS if _can_encode(console, UNICODE_GLYPHS) else ASCII_GLYPHS


def _can_encode(console: Console, glyphs: Glyphs) -> bool:
    try:
        "".join(astuple(glyphs)).encode(console.encoding or "ascii")
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def _is_agent_chunk(value: Any) -> bool:
    """An agent's chunk forwarded by an agent step (``{"type", "from": "AGENT", ...}``)."""
    return isinstance(value, dict) and value.get("from") == "AGENT" and "type" in value


def _error_text(error: Any) -> str:
    """An error as chunks carry it (``{name, message}``): ``ValueError: message``."""
    if isinstance(error, dict) and "message" in error:
        name = error.get("name")
        return f"{name}: {error['message']}" if name else str(error["message"])
    return _scalar(error)


def _has_tokens(usage: Usage) -> bool:
    return bool(usage.total_tokens or usage.input_tokens or usage.output_tokens)


def _wire(value: Any) -> Any:
    return to_jsonable_python(value, fallback=repr)


def _scalar(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_scalar(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_scalar(v) for v in value) + "]"
    return str(value)


def _compact(value: Any, more: str, limit: int) -> str:
    """A value on one short line: ``key=value, key=value`` for objects, shortened with `more`."""
    data = _wire(value)
    if isinstance(data, dict):
        text = ", ".join(f"{k}={_scalar(v)}" for k, v in data.items())
    elif isinstance(data, list):
        text = f"{len(data)} items"
    else:
        text = _scalar(data)
    return text if len(text) <= limit else text[: limit - len(more)] + more


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
    data = _wire(value)
    if not isinstance(data, dict):
        return Text(_scalar(data))
    return labelled([(str(key), _scalar(item)) for key, item in data.items()])


def describe_error(error: BaseException) -> str:
    name = error.name if isinstance(error, StoredError) else type(error).__name__
    return f"{name}: {error}"
