"""Warnings while a command runs: one line each on stderr, ``spanflow: warning: ...``.

Libraries log what goes wrong in the background (the tracing plugin when spans cannot be
delivered, the OTLP exporter when a collector refuses them). While a command runs, their
warnings and errors are printed as single lines without tracebacks, so they read like the
command's own messages; the OpenTelemetry exporters' retry chatter is cut to errors only.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["command_logging", "warn"]

_QUIETER = {"opentelemetry.exporter": logging.ERROR}
"""Loggers whose warnings are noise on a command line (retries that may still succeed)."""


def warn(message: str) -> None:
    """Print ``spanflow: warning: <message>`` on stderr."""
    print(f"spanflow: warning: {_one_line(message)}", file=sys.stderr)


class _OneLineHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            # "warning" whatever the level: the command's own errors end it (see main), these
            # are reports from the background (an export that failed) and the command goes on.
            print(f"spanflow: warning: {_one_line(record.getMessage())}", file=sys.stderr)
        except Exception:
            self.handleError(record)


@contextmanager
def command_logging() -> Iterator[None]:
    """Show warnings and errors as one-line messages for the duration of a command."""
    root = logging.getLogger()
    handler = _OneLineHandler(logging.WARNING)
    root.addHandler(handler)
    previous = {name: logging.getLogger(name).level for name in _QUIETER}
    for name, level in _QUIETER.items():
        logging.getLogger(name).setLevel(level)
    try:
        yield
    finally:
        root.removeHandler(handler)
        for name, level in previous.items():
            logging.getLogger(name).setLevel(level)


def _one_line(text: str) -> str:
    return " ".join(text.split())
