"""A console exporter that prints each finished run as one span tree.

Spans are buffered per trace; when a local root ends (a span with no parent, or whose parent
is remote, like a run joining an incoming request's trace), it and its buffered descendants
are printed as a tree: name, duration, status when not unset, and the key attributes
(``spanflow.*`` by default, without the prefix, values cut short). An attribute a span shares
with its parent, such as the run id copied to every span, is shown once, on the parent.

Given a width (a terminal's), a span's line that would not fit is wrapped between attributes
onto lines that continue the tree's rails (``│``), and a part longer than a whole line is cut
with ``…``, so the tree keeps its shape; without one, lines are never cut (a file, a pipe).
"""

from __future__ import annotations

import sys
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence

from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import StatusCode
from opentelemetry.util.types import AttributeValue

from spanflow_otel._tree import SpanNode, build_forest
from spanflow_otel.config import ConsoleOptions

__all__ = ["SpanTreeConsoleExporter", "format_duration", "format_run_tree", "span_tree_processor"]


class SpanTreeConsoleExporter(SpanExporter):
    """Prints a run's span tree to a stream when its root span ends (use a simple processor)."""

    def __init__(self, options: ConsoleOptions | None = None, *, width: int | None = None) -> None:
        """Print trees as `options` say; `width`: fit every line in that many columns."""
        self._options = options or ConsoleOptions()
        self._width = width
        self._lock = threading.Lock()
        self._pending: OrderedDict[int, list[ReadableSpan]] = OrderedDict()
        self._buffered = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        for span in spans:
            if (tree := self._add(span)) is not None:
                stream = self._options.stream or sys.stderr
                stream.write(format_run_tree(tree, self._options, width=self._width))
                stream.flush()
        return SpanExportResult.SUCCESS

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True

    def _add(self, span: ReadableSpan) -> list[ReadableSpan] | None:
        context = span.get_span_context()
        if context is None:
            return None
        with self._lock:
            pending = self._pending.setdefault(context.trace_id, [])
            if span.parent is not None and not span.parent.is_remote:
                pending.append(span)
                self._buffered += 1
                self._evict()
                return None
            tree = _take_subtree(pending, span)
            self._buffered -= len(tree) - 1
            if not pending:
                del self._pending[context.trace_id]
            return tree

    def _evict(self) -> None:
        while self._buffered > self._options.max_buffered_spans and self._pending:
            _, spans = self._pending.popitem(last=False)
            self._buffered -= len(spans)


def span_tree_processor(
    options: ConsoleOptions | None = None, *, width: int | None = None
) -> SpanProcessor:
    """The console exporter behind the simple processor it needs, for `configure`'s
    ``span_processors`` (``console=`` gives the same tree, never fitted to a width)."""
    return SimpleSpanProcessor(SpanTreeConsoleExporter(options, width=width))


def _take_subtree(pending: list[ReadableSpan], root: ReadableSpan) -> list[ReadableSpan]:
    """Remove from `pending` and return `root` with every span that descends from it."""
    parent_of = {_span_id(s): s.parent.span_id for s in pending if s.parent is not None}
    members = {_span_id(root)}

    def descends(span_id: int) -> bool:
        chain: list[int] = []
        while span_id not in members:
            if span_id in chain or span_id not in parent_of:
                return False
            chain.append(span_id)
            span_id = parent_of[span_id]
        members.update(chain)
        return True

    taken = [s for s in pending if descends(_span_id(s))]
    pending[:] = [s for s in pending if _span_id(s) not in members]
    return [root, *taken]


def _span_id(span: ReadableSpan) -> int:
    context = span.get_span_context()
    return context.span_id if context is not None else 0


def format_run_tree(
    spans: Sequence[ReadableSpan],
    options: ConsoleOptions | None = None,
    *,
    width: int | None = None,
) -> str:
    """The text the console exporter prints for `spans` (one trace header, then the tree).

    Args:
        spans: The spans of one or more trees.
        options: Which attributes to show and how long their values may be.
        width: Fit every line in this many columns (wrapping, then cutting); None: never cut.
    """
    options = options or ConsoleOptions()
    lines: list[str] = []
    for root in build_forest(spans):
        context = root.span.get_span_context()
        header = f"── trace {context.trace_id:032x}" if context else "── trace ?"
        if root.span.parent is not None:
            header += f" (parent span {root.span.parent.span_id:016x})"
        lines.append(_cut(header + " ──", width))
        _render(root, ("", ""), {}, options, width, lines)
    return "\n".join(lines) + "\n"


def _render(
    node: SpanNode,
    prefixes: tuple[str, str],
    inherited: dict[str, AttributeValue],
    options: ConsoleOptions,
    width: int | None,
    lines: list[str],
) -> None:
    """Append `node`'s line(s), then its children's; `prefixes`: its first line's and the rest's."""
    first_prefix, rest_prefix = prefixes
    shown = _key_attributes(node.span, options)
    own = {k: v for k, v in shown.items() if inherited.get(k, _MISSING) != v}
    words = [_headline(node.span)]
    if own:
        pairs = [f"{_short_key(k)}={_short(v, options)}" for k, v in own.items()]
        words += [f"{pair}," for pair in pairs[:-1]] + [f"{pairs[-1]}}}"]
        words[1] = "{" + words[1]
    # A wrapped line goes on under the span's own rail when it has children.
    continued = rest_prefix + ("│  " if node.children else "   ")
    lines += _fit(words, first_prefix, continued, width)
    for index, child in enumerate(node.children):
        last = index == len(node.children) - 1
        child_prefixes = (
            rest_prefix + ("└─ " if last else "├─ "),
            rest_prefix + ("   " if last else "│  "),
        )
        _render(child, child_prefixes, shown, options, width, lines)


def _headline(span: ReadableSpan) -> str:
    """Name, duration and status (when not unset), two spaces apart."""
    parts = [span.name]
    if span.start_time is not None and span.end_time is not None:
        parts.append(format_duration(span.end_time - span.start_time))
    if span.status.status_code is StatusCode.ERROR:
        parts.append(f"ERROR: {span.status.description}" if span.status.description else "ERROR")
    elif span.status.status_code is StatusCode.OK:
        parts.append("OK")
    return "  ".join(parts)


def _fit(words: list[str], first_prefix: str, continued: str, width: int | None) -> list[str]:
    """`words` (a headline, then attributes) on lines of at most `width` columns."""
    if width is None:
        return [first_prefix + "  ".join(words[:2]) + "".join(f" {w}" for w in words[2:])]
    lines = [first_prefix + _cut(words[0], width - len(first_prefix))]
    for index, word in enumerate(words[1:]):
        gap = "  " if index == 0 else " "
        if len(lines[-1]) + len(gap) + len(word) <= width:
            lines[-1] += gap + word
        else:
            lines.append(continued + _cut(word, width - len(continued)))
    return lines


def _cut(text: str, width: int | None) -> str:
    """`text`, ending in ``…`` where it would pass `width` columns (at least one is kept)."""
    if width is None or len(text) <= width:
        return text
    return text[: max(width - 1, 0)] + "…" if width > 1 else text[:1]


_MISSING = object()


def _key_attributes(span: ReadableSpan, options: ConsoleOptions) -> dict[str, AttributeValue]:
    return {
        key: value
        for key, value in sorted((span.attributes or {}).items())
        if key.startswith(options.attribute_prefixes) and key not in options.hidden_attributes
    }


def _short_key(key: str) -> str:
    return key.removeprefix("spanflow.")


def _short(value: AttributeValue, options: ConsoleOptions) -> str:
    text = value if isinstance(value, str) else _plain(value)
    text = text.replace("\n", " ")
    limit = max(options.max_value_length, 2)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _plain(value: AttributeValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{k}={_plain(v)}" for k, v in value.items()) + "}"
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return "[" + ",".join(_plain(item) for item in value) + "]"
    return str(value)


def format_duration(nanoseconds: int) -> str:
    """Human-sized duration: ``850µs``, ``12.3ms``, ``210ms``, ``1.20s``, ``2m03s``."""
    if nanoseconds < 1_000_000:
        return f"{nanoseconds // 1000}µs"
    milliseconds = nanoseconds / 1_000_000
    if milliseconds < 100:
        return f"{milliseconds:.1f}ms"
    if milliseconds < 1000:
        return f"{milliseconds:.0f}ms"
    seconds = milliseconds / 1000
    if seconds < 60:
        return f"{seconds:.2f}s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m{rest:02d}s"
