"""`dump_spans`: a span tree as indented text, for assertions that read well when they fail.

One line per span, ``name [KIND] STATUS`` then the selected attributes as ``{key=value}``;
under it the span's events (``• name {attributes}``) and links (``↔ link to <name>``), then its
children indented by two spaces. Order is deterministic (start time, then name, then span id).
A span whose parent is not among the spans is shown as a root with ``(parent=<hex>)`` when the
parent is remote, or ``(parent=<hex> missing)`` when it is a local span that was not captured.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode
from opentelemetry.util.types import AttributeValue

from spanflow_otel._tree import build_forest, walk

__all__ = ["AttributeFilter", "dump_spans", "without_stacktraces"]

AttributeFilter = Collection[str] | Callable[[str], bool] | None
"""Which attributes to show: key names (a trailing ``*`` matches a prefix), a predicate on the
key, or None for no attributes at all."""


def without_stacktraces(key: str) -> bool:
    """Every attribute except ``exception.stacktrace`` (multi-line, machine-specific)."""
    return key != "exception.stacktrace"


def dump_spans(
    spans: Iterable[ReadableSpan],
    *,
    attributes: AttributeFilter = without_stacktraces,
    include_events: bool = True,
    include_links: bool = True,
) -> str:
    """Render `spans` as an indented tree, one line per span (see the module docstring)."""
    spans = list(spans)
    keep = _key_filter(attributes)
    names = {
        (context.trace_id, context.span_id): span.name
        for span in spans
        if (context := span.get_span_context()) is not None
    }
    lines: list[str] = []
    for depth, node in walk(build_forest(spans)):
        span = node.span
        indent = "  " * depth
        line = f"{indent}{span.name} [{span.kind.name}] {_status(span)}"
        if depth == 0 and span.parent is not None:
            missing = "" if span.parent.is_remote else " missing"
            line += f" (parent={span.parent.span_id:016x}{missing})"
        lines.append(line + _attributes(span.attributes, keep))
        if include_events:
            for event in span.events:
                lines.append(f"{indent}  • {event.name}{_attributes(event.attributes, keep)}")
        if include_links:
            for link in span.links:
                target = names.get((link.context.trace_id, link.context.span_id))
                if target is None:
                    target = f"{link.context.trace_id:032x}:{link.context.span_id:016x}"
                lines.append(f"{indent}  ↔ link to {target}{_attributes(link.attributes, keep)}")
    return "\n".join(lines)


def _key_filter(attributes: AttributeFilter) -> Callable[[str], bool]:
    if attributes is None:
        return lambda key: False
    if callable(attributes):
        return attributes
    exact = {key for key in attributes if not key.endswith("*")}
    prefixes = tuple(key[:-1] for key in attributes if key.endswith("*"))
    return lambda key: key in exact or key.startswith(prefixes)


def _status(span: ReadableSpan) -> str:
    status = span.status
    if status.status_code is StatusCode.ERROR and status.description:
        return f"ERROR: {status.description}"
    return status.status_code.name


def _attributes(
    attributes: Mapping[str, AttributeValue] | None, keep: Callable[[str], bool]
) -> str:
    shown = [
        f"{key}={_value(value)}" for key, value in sorted((attributes or {}).items()) if keep(key)
    ]
    return " {" + ", ".join(shown) + "}" if shown else ""


def _value(value: AttributeValue) -> str:
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}={_value(v)}" for k, v in sorted(value.items())) + "}"
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    return repr(value)
