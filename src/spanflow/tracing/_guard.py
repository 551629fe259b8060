"""The one never-fail guard: tracing code never breaks the run or agent call it traces.

Every entry point of the tracing seam wraps its work in `internal_errors`. In production an
error inside is logged (logger ``spanflow.tracing``, with its stack) and swallowed, and the
caller falls back to doing nothing. Under spanflow's own test suite
(``SPANFLOW_RAISE_INTERNAL_ERRORS=1``, set by ``tests/conftest.py``) it is re-raised instead, so a
tracing bug fails a test rather than vanishing into a log. Tests that break tracing on purpose
(a failing exporter, a provider that raises) turn re-raising off for themselves. Logfire's
``handle_internal_errors`` is the model.

Errors of the user's own code that tracing calls (a redactor function: `RedactionError`) are not
internal: the guard always logs and swallows them, and the caller records a placeholder.
"""

from __future__ import annotations

import logging
import os
from types import TracebackType

from spanflow.tracing.redaction import RedactionError

__all__ = ["RAISE_INTERNAL_ERRORS", "InternalErrors", "internal_errors"]

logger = logging.getLogger("spanflow.tracing")

RAISE_INTERNAL_ERRORS = "SPANFLOW_RAISE_INTERNAL_ERRORS"
"""The environment variable that makes the guard re-raise (``1``): spanflow's test suite."""


def internal_errors(what: str, *args: object) -> InternalErrors:
    """``with internal_errors(...):`` logs and swallows an error raised inside (re-raises it
    under the test suite); code after the block runs as the fallback.

    A guard holds no state, so one instance serves every use: code on a hot path (every span,
    every event) keeps its guards as module constants instead of making one per call.

    Args:
        what: What could not be done, for the log line (``%``-style, with `args`).
    """
    return InternalErrors(what, args)


class InternalErrors:
    """The guard `internal_errors` returns (a reusable context manager)."""

    __slots__ = ("_args", "_what")

    def __init__(self, what: str, args: tuple[object, ...]) -> None:
        self._what = what
        self._args = args

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        if error is None or not isinstance(error, Exception):
            return False
        if not isinstance(error, RedactionError) and os.environ.get(RAISE_INTERNAL_ERRORS) == "1":
            return False
        logger.error("spanflow: " + self._what, *self._args, exc_info=error)
        return True
