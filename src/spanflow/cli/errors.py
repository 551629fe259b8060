"""The two ways a ``spanflow`` command can fail before or instead of running a workflow.

`UsageError`: the command line itself is wrong (exit code 2). `CommandError`: the command line
was fine but what it names cannot be used, such as a module that does not import or a storage
URL with an unknown scheme (exit code 1). Either way the message is the whole explanation,
printed as one line.
"""

from __future__ import annotations

from spanflow.errors import SpanflowError

__all__ = ["CommandError", "UsageError"]


class UsageError(Exception):
    """The command line could not be parsed; the message is the whole explanation."""


class CommandError(SpanflowError):
    """What the command line names cannot be used (a module, a workflow, a store)."""
