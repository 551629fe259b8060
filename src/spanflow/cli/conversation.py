"""An agent step's chunks, read as a conversation under the step.

An agent used as a step forwards its chunks as ``workflow-step-output`` events whose output is
the chunk, ``{"from": "AGENT", "type": ..., "payload": ...}`` (`is_agent_chunk`). They read as:
a line per tool call and per tool result, the text word-wrapped under a bar, and the tokens the
agent used. On a terminal the text appears word by word as it streams (a word is wrapped whole
once its end is seen); in plain output it is printed once, when it is complete.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.text import Text

from spanflow.cli.values import compact, describe_usage, error_text, has_tokens, scalar
from spanflow.usage import Usage

if TYPE_CHECKING:
    from spanflow.cli.display import Glyphs

__all__ = ["AgentConversation", "is_agent_chunk"]

_AGENT_TEXT_INDENT = "    "
_WORD = re.compile(r"(\S*)(\s*)")


def is_agent_chunk(value: Any) -> bool:
    """An agent's chunk forwarded by an agent step (``{"type", "from": "AGENT", ...}``)."""
    return isinstance(value, dict) and value.get("from") == "AGENT" and "type" in value


class AgentConversation:
    """Prints the chunks of the agents running under a display's steps."""

    def __init__(
        self, console: Console, glyphs: Glyphs, print_line: Callable[[Text], None]
    ) -> None:
        """Print on `console` with `glyphs`; `print_line` prints one whole line of the display."""
        self.console = console
        self.glyphs = glyphs
        self._print = print_line
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

    def show(self, chunk: dict[str, Any]) -> None:
        """Render one agent chunk (see `is_agent_chunk`)."""
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
            self._on_tool_result(error_text(data.get("error")), failed=True)
        elif kind == "start":
            self._agent_ids[str(chunk.get("runId"))] = str(data.get("agentId", "the agent"))
        elif kind == "finish":
            self._end_agent_text()
            usage = Usage.from_dict((data.get("output") or {}).get("usage") or {})
            agent = self._agent_ids.pop(str(chunk.get("runId")), "the agent")
            if has_tokens(usage):
                line = Text.assemble("    ", (self.glyphs.tokens, "blue"), " ")
                self._print(line.append(f"{agent} used {describe_usage(usage)}", style="dim"))
        elif kind in ("error", "abort"):
            self._end_agent_text()
            error = data.get("error")
            what = "agent failed" if kind == "error" else "agent aborted"
            line = Text.assemble("    ", (self.glyphs.failed, "red"), " ")
            self._print(
                line.append(what + (f": {error_text(error)}" if error else ""), style="red")
            )
        # step-start, text-start and step-finish add nothing a person needs to read

    def _on_tool_call(self, data: dict[str, Any]) -> None:
        args = data.get("args")
        if isinstance(args, dict):
            shown = ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in args.items())
        else:  # arguments that were not valid JSON: the model's text as it is
            shown = scalar(args)
        name = str(data.get("toolName", "tool"))
        call = compact(f"{name}({shown})", self.glyphs.more, max(self.console.width - 6, 24))
        tool = call[: len(name)]
        self._print(
            Text.assemble(
                "    ", (self.glyphs.tool_call, "magenta"), " ", (tool, "bold"), call[len(tool) :]
            )
        )

    def _on_tool_result(self, result: Any, *, failed: bool) -> None:
        glyph = (self.glyphs.tool_result, "red" if failed else "magenta")
        line = Text.assemble("      ", glyph, " ")
        self._print(
            line.append(
                compact(result, self.glyphs.more, max(self.console.width - 9, 24)),
                style="red" if failed else "",
            )
        )

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
                self.close_line()
            return
        ids = [text_id] if text_id is not None else list(self._partial_words)
        for done in ids:
            self._write_words(done, self._partial_words.pop(done, ""), final=True)
        if text_id is None or self._open_text == text_id:
            self.close_line()

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
                self.close_line()

    def _write_word(self, text_id: str, word: str) -> None:
        start = len(_AGENT_TEXT_INDENT) + 2
        fits = self._text_column + 1 + len(word) <= max(self.console.width, start + 20)
        if self._open_text != text_id or not fits:
            self.close_line()  # another agent's text, or a full line
        if self._open_text is None:
            bar = Text.assemble(_AGENT_TEXT_INDENT, (self.glyphs.note, "blue"), " ")
            self.console.print(bar, end="", soft_wrap=True)
            self._open_text, self._text_column = text_id, start
        elif self._text_column > start:
            word = " " + word
        self.console.print(Text(word), end="", soft_wrap=True)
        self._text_column += len(word)

    def close_line(self) -> None:
        """End the line an agent's text is being written on, if one is open."""
        if self._open_text is not None:
            self.console.print(soft_wrap=True)
            self._open_text = None
