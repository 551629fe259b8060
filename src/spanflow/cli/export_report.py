"""What became of a command's exported spans, told in one line once they were flushed.

The OTLP exporter logs every retry and failure on its own (``Transient error ... retrying``,
``Failed to export spans batch ...``); on a command line that is noise ending the output, and it
never says how many spans arrived. While a command exports, those messages are kept
(`FoldedLog`) instead of printed; after the flush the plugin's counts (`Telemetry.export_counts`)
and the most telling kept message become one line (`ExportReport.line`): how many spans were
exported, how many failed and why, and a link to the trace only when something arrived.

Which viewer the link names: an endpoint on port 6006, Phoenix's port for its UI and its
OTLP/HTTP receiver, is Phoenix (the link is its UI: Phoenix's trace pages are addressed by
project ids the command does not know); any other endpoint is Jaeger (``<jaeger-ui>/trace/<id>``)
unless ``--jaeger-ui`` says where. An explicit ``--jaeger-ui`` always means Jaeger.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = [
    "DEFAULT_JAEGER_UI",
    "PHOENIX_PORT",
    "ExportReport",
    "FoldedLog",
    "failure_reason",
    "jaeger_trace_url",
    "trace_viewer",
]

DEFAULT_JAEGER_UI = "http://localhost:16686"
"""Jaeger's UI in ``docker-compose.jaeger.yml``; ``--jaeger-ui`` changes it."""

PHOENIX_PORT = 6006
"""An OTLP endpoint on this port is taken for Arize Phoenix."""

EXPORTER_LOGGER = "opentelemetry.exporter"
"""The OTLP exporters' loggers (HTTP and gRPC) are below this one."""

_REASONS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"connection refused", re.IGNORECASE), "connection refused"),
    (re.compile(r"\[Errno -?\d+\] ([^'\")\]]+)"), r"\1"),
    (re.compile(r"code: (\d{3}), reason: ([^,]+)"), r"HTTP \1 \2"),
    (re.compile(r"StatusCode\.([A-Z_]+)"), r"gRPC \1"),
    (re.compile(r"timed out|timeout", re.IGNORECASE), "timed out"),
)
"""From the most telling cause to the least: the first pattern any message matches wins."""


def jaeger_trace_url(ui: str, trace_id: str) -> str:
    """The page of `trace_id` in the Jaeger UI at `ui`."""
    return f"{ui.rstrip('/')}/trace/{trace_id}"


def trace_viewer(endpoint: str, trace_id: str, jaeger_ui: str | None) -> tuple[str, str]:
    """The viewer that shows the trace the spans sent to `endpoint` form, and its link."""
    parts = urlsplit(endpoint)
    if jaeger_ui is None and parts.port == PHOENIX_PORT:
        return "Phoenix", f"{parts.scheme}://{parts.netloc}"
    return "Jaeger", jaeger_trace_url(jaeger_ui or DEFAULT_JAEGER_UI, trace_id)


def failure_reason(messages: Sequence[str]) -> str | None:
    """Why exporting failed, in a few words, from the exporter's messages; None if unknown."""
    for pattern, template in _REASONS:
        for message in reversed(messages):
            if found := pattern.search(message):
                return found.expand(template).strip()
    return " ".join(messages[-1].split())[:120] if messages else None


@dataclass(frozen=True, slots=True)
class ExportReport:
    """How many of a command's spans reached the OTLP endpoint, and why the others did not."""

    endpoint: str
    exported: int
    failed: int
    """In batches the exporter gave up on."""
    dropped: int = 0
    """Evicted from a full export queue."""
    unsent: int = 0
    """Still queued when the bounded flush ran out of time."""
    reason: str | None = None
    """Why the failed batches failed (``connection refused``, ``HTTP 404 Not Found``)."""
    flush_timeout: float = 5.0

    @property
    def total(self) -> int:
        return self.exported + self.failed + self.dropped + self.unsent

    @property
    def complete(self) -> bool:
        """Every span arrived."""
        return self.exported == self.total

    def line(self, trace_id: str | None, jaeger_ui: str | None = None) -> str:
        """One line: what was exported, what failed and why, and the trace's link if any."""
        if self.complete:
            text = f"{_spans(self.exported)} exported to {self.endpoint}"
        else:
            text = f"{self.exported} of {_spans(self.total)} exported to {self.endpoint}: "
            text += ", ".join(self._losses())
        if self.exported == 0 and not self.complete:
            return text + "; no trace link, since nothing arrived"
        if self.exported == 0 or trace_id is None:  # no spans at all, or no id to link
            return text
        viewer, link = trace_viewer(self.endpoint, trace_id, jaeger_ui)
        return (
            f"{text}; {'the trace' if self.complete else 'part of the trace'} in {viewer}: {link}"
        )

    def _losses(self) -> list[str]:
        losses = []
        if self.failed:
            because = f" ({self.reason})" if self.reason else ""
            losses.append(f"{self.failed} failed{because}")
        if self.dropped:
            losses.append(f"{self.dropped} dropped (the export queue was full)")
        if self.unsent:
            losses.append(f"{self.unsent} not sent within the {self.flush_timeout:g} s flush limit")
        return losses


def _spans(count: int) -> str:
    return f"{count} span{'' if count == 1 else 's'}"


class FoldedLog(logging.Handler):
    """Keeps the messages of some loggers (warnings and up) instead of letting them print."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []
        """Every message kept, oldest first."""

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())

    @contextmanager
    def folding(self, *names: str) -> Iterator[FoldedLog]:
        """Keep the messages of the loggers `names` (and below them) for the block's duration."""
        loggers = [logging.getLogger(name) for name in names]
        saved = [(logger.level, logger.propagate) for logger in loggers]
        for logger in loggers:
            logger.addHandler(self)
            logger.setLevel(logging.WARNING)
            logger.propagate = False
        try:
            yield self
        finally:
            for logger, (level, propagate) in zip(loggers, saved, strict=True):
                logger.removeHandler(self)
                logger.setLevel(level)
                logger.propagate = propagate
