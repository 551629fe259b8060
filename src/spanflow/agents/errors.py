"""Errors of agents, tools and models (all rooted in `SpanflowError`).

An agent call does not raise these at its caller: a model or tool failure becomes an ``error``
or ``tool-error`` chunk and, for the model, a failed `AgentResult` whose ``error`` is the
exception. They are raised where a definition is wrong (a tool without a usable schema) and by
the agent-as-step adapter, which fails its workflow step with `AgentRunError`.
"""

from __future__ import annotations

from spanflow.errors import SpanflowError

__all__ = [
    "AgentDefinitionError",
    "AgentError",
    "AgentRunError",
    "ModelError",
    "NetworkError",
    "ProcessorError",
    "StructuredOutputError",
    "ToolArgumentsError",
    "ToolError",
    "UnknownToolError",
]


class AgentError(SpanflowError):
    """Base class of the errors raised by agents, tools and models."""


class AgentDefinitionError(AgentError):
    """An agent, tool or model was built wrongly (bad name, schema, setting, missing extra)."""


class ModelError(AgentError):
    """A model call failed: endpoint unreachable, HTTP error, timeout, or a broken stream.

    The message names the endpoint (and the HTTP status); the original exception, if any, is
    the ``__cause__``.
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        base_url: str | None = None,
        status_code: int | None = None,
        kind: str | None = None,
    ) -> None:
        super().__init__(message)
        self.provider = provider
        """The model's provider (``gen_ai.provider.name``), when known."""
        self.base_url = base_url
        """The endpoint that failed, when the model has one."""
        self.status_code = status_code
        """The HTTP status the endpoint returned, for HTTP errors."""
        self.kind = kind
        """A short, low-cardinality description of the failure for ``error.type``:
        ``"http_500"``, ``"timeout"``, ``"connection"``, ``"stream"``..."""


class ToolError(AgentError):
    """A tool call could not be carried out; its message is what the model is told."""


class UnknownToolError(ToolError):
    """The model called a tool the agent does not have."""


class ToolArgumentsError(ToolError):
    """The model's tool-call arguments were not valid JSON or did not match the input schema."""


class AgentRunError(AgentError):
    """An agent used as a workflow step failed or was aborted (the cause is chained)."""


class StructuredOutputError(AgentError):
    """The answer to a ``structured_output=`` call did not match the schema, even after the
    one repair attempt; the message says what was wrong and quotes the start of the reply."""

    def __init__(self, message: str, *, problems: str, reply: str) -> None:
        super().__init__(message)
        self.problems = problems
        """What the validation found wrong with the last reply."""
        self.reply = reply
        """The last reply's text."""


class ProcessorError(AgentError):
    """An input or output processor raised (not ``abort``): the call fails, naming it."""

    def __init__(self, message: str, *, processor: str, hook: str) -> None:
        super().__init__(message)
        self.processor = processor
        """The processor's name."""
        self.hook = hook
        """Where it raised: ``process_input``, ``process_output`` or ``process_chunk``."""


class NetworkError(AgentError):
    """The network could not go on: the routing model failed, or answered something that is
    not a valid decision, or a resume was asked of a network that cannot be resumed."""
