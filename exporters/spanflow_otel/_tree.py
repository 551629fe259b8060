"""Arranges finished spans into parent/child trees, in a deterministic order.

Shared by the console exporter and `testing.dump_spans`. A span whose parent is not among the
given spans (a remote parent, or a local one that has not ended or was not captured) becomes a
root. Siblings and roots are ordered by start time, then name, then span id, so the same spans
always render the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from opentelemetry.sdk.trace import ReadableSpan

__all__ = ["SpanNode", "build_forest", "walk"]


@dataclass(eq=False, slots=True)
class SpanNode:
    """One span and its children, in render order."""

    span: ReadableSpan
    children: list[SpanNode] = field(default_factory=list)

    @property
    def key(self) -> tuple[int, int]:
        """(trace id, span id)."""
        context = self.span.get_span_context()
        return (context.trace_id, context.span_id) if context else (0, id(self.span))


def _order(node: SpanNode) -> tuple[int, str, int]:
    return (node.span.start_time or 0, node.span.name, node.key[1])


def build_forest(spans: Iterable[ReadableSpan]) -> list[SpanNode]:
    """The roots of the trees `spans` form, each with its children attached and sorted."""
    nodes = [SpanNode(span) for span in spans]
    by_key = {node.key: node for node in nodes}
    roots: list[SpanNode] = []
    for node in nodes:
        parent = node.span.parent
        parent_node = by_key.get((parent.trace_id, parent.span_id)) if parent else None
        if parent_node is None or parent_node is node:
            roots.append(node)
        else:
            parent_node.children.append(node)
    reached = {id(node) for _, node in walk(roots)}
    # Parent links that form a cycle (only possible with hand-made ids) would hide spans.
    roots.extend(node for node in nodes if id(node) not in reached)
    for node in nodes:
        node.children.sort(key=_order)
    roots.sort(key=_order)
    return roots


def walk(roots: Iterable[SpanNode], depth: int = 0) -> Iterator[tuple[int, SpanNode]]:
    """Every node under `roots`, depth first, with its depth."""
    seen: set[int] = set()
    stack = [(depth, node) for node in reversed(list(roots))]
    while stack:
        level, node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        yield level, node
        stack.extend((level + 1, child) for child in reversed(node.children))
