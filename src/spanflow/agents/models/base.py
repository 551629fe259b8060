"""The `Model` protocol: given messages, tool definitions and settings, stream model chunks.

A model call is one `ModelRequest` in, an async iterator of `ModelChunk`s out: `TextDelta`s
as text arrives, a complete `ModelToolCall` per requested tool call, `ModelUsage` when the
provider reports token counts, and a final `ModelFinish` with the finish reason. A model
raises `ModelError` (with a message naming the endpoint) when the call fails; the agent turns
that into an ``error`` chunk and a failed result.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from spanflow.agents.errors import AgentDefinitionError
from spanflow.agents.messages import Message
from spanflow.usage import Usage

__all__ = [
    "FinishReason",
    "Model",
    "ModelChunk",
    "ModelFinish",
    "ModelRequest",
    "ModelSettings",
    "ModelToolCall",
    "ModelUsage",
    "ResponseFormat",
    "ServerEndpoint",
    "StructuredOutputs",
    "TextDelta",
    "ToolDefinition",
]

FinishReason = Literal[
    "stop", "length", "content-filter", "tool-calls", "error", "other", "unknown"
]
"""Why a model call ended (the AI SDK's names, which Mastra's chunks use)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelSettings:
    """Per-call generation settings. ``None`` leaves a setting to the provider's default."""

    temperature: float | None = None
    max_tokens: int | None = None
    """Upper bound on generated tokens."""
    top_p: float | None = None
    stop: tuple[str, ...] | None = None
    """Stop sequences."""
    seed: int | None = None
    timeout: float | None = None
    """Seconds a request may take to connect and between streamed chunks; ``None`` uses the
    model's own timeout."""
    extra: Mapping[str, Any] = field(default_factory=dict)
    """Provider-specific request fields passed through as they are."""

    def __post_init__(self) -> None:
        for name in ("temperature", "top_p", "timeout"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float) or value < 0
            ):
                raise AgentDefinitionError(
                    f"ModelSettings.{name} must be a non-negative number, got {value!r}"
                )
        for name in ("max_tokens", "seed"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise AgentDefinitionError(f"ModelSettings.{name} must be an int, got {value!r}")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise AgentDefinitionError(
                f"ModelSettings.max_tokens must be at least 1, got {self.max_tokens}"
            )
        if isinstance(self.stop, str):
            raise AgentDefinitionError(
                "ModelSettings.stop must be a tuple of strings, not a string: write stop=('END',)"
            )


@dataclass(frozen=True, slots=True)
class ToolDefinition:
    """A tool as the model sees it: a name, a description and a JSON schema."""

    name: str
    description: str
    parameters: dict[str, Any]
    """JSON schema of the arguments (an object schema)."""


@dataclass(frozen=True, slots=True)
class ResponseFormat:
    """A JSON Schema the answer must match, for models with a native response format (OpenAI's
    ``response_format={"type": "json_schema", ...}``)."""

    name: str
    schema: dict[str, Any]
    strict: bool = False
    """OpenAI's strict mode needs every property required and no additional ones; spanflow
    validates the answer itself, so it asks for the lenient mode."""


@dataclass(frozen=True, slots=True)
class ModelRequest:
    """One model call: the conversation so far, the tools on offer, and the settings."""

    messages: tuple[Message, ...]
    tools: tuple[ToolDefinition, ...] = ()
    settings: ModelSettings = field(default_factory=ModelSettings)
    response_format: ResponseFormat | None = None
    """Set only for models that are `StructuredOutputs` and say they support it."""


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A piece of generated text."""

    text: str


@dataclass(frozen=True, slots=True)
class ModelToolCall:
    """A complete tool call (models that stream argument deltas assemble them first)."""

    id: str
    name: str
    arguments: str
    """The arguments as JSON text, exactly as generated (it may be malformed)."""


@dataclass(frozen=True, slots=True)
class ModelUsage:
    """Token counts of this call."""

    usage: Usage


@dataclass(frozen=True, slots=True)
class ModelFinish:
    """The last chunk of a call."""

    reason: FinishReason
    response_model: str | None = None
    """The model that actually answered (``gen_ai.response.model``), when reported."""
    response_id: str | None = None
    """The provider's id of the completion (``gen_ai.response.id``), when reported."""


ModelChunk = TextDelta | ModelToolCall | ModelUsage | ModelFinish
"""What a model streams."""


@runtime_checkable
class Model(Protocol):
    """A chat model an agent can call. Implementations: `OpenAIChatModel`, `ScriptedModel`."""

    @property
    def provider(self) -> str:
        """The provider, as ``gen_ai.provider.name`` (``"openai"``, ``"spanflow.scripted"``)."""
        ...

    @property
    def model_id(self) -> str:
        """The requested model (``gen_ai.request.model``), also the chat span's name suffix."""
        ...

    def stream(self, request: ModelRequest) -> AsyncIterator[ModelChunk]:
        """Stream the answer to `request`, ending with one `ModelFinish`.

        Raises:
            ModelError: The call failed (while starting or mid-stream).
        """
        ...


@runtime_checkable
class StructuredOutputs(Protocol):
    """Optionally implemented by models with a native JSON-schema response format.

    When ``supports_response_format`` is true, a call with ``structured_output=`` sends the
    schema as the request's `ResponseFormat`; otherwise the schema goes into the system
    prompt as an instruction. The answer is validated either way.
    """

    @property
    def supports_response_format(self) -> bool: ...


@runtime_checkable
class ServerEndpoint(Protocol):
    """Optionally implemented by models that call a server (``server.address`` on spans)."""

    @property
    def server_address(self) -> str | None: ...

    @property
    def server_port(self) -> int | None: ...
