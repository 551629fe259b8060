"""Models an agent can call: the `Model` protocol, its chunk types, and two implementations.

`OpenAIChatModel` speaks the OpenAI-compatible chat-completions API (the ``openai`` extra, imported
only when a model is made); `ScriptedModel` replies from a script, for tests, examples and demos.
"""

from spanflow.agents.models.base import (
    FinishReason,
    Model,
    ModelChunk,
    ModelFinish,
    ModelRequest,
    ModelSettings,
    ModelToolCall,
    ModelUsage,
    ResponseFormat,
    ServerEndpoint,
    StructuredOutputs,
    TextDelta,
    ToolDefinition,
)
from spanflow.agents.models.openai import OpenAIChatModel
from spanflow.agents.models.scripted import (
    ScriptedModel,
    ScriptedReply,
    ScriptedToolCall,
    ScriptFunction,
    last_tool_results,
    last_user_text,
)
from spanflow.agents.models.structured import OutputSchema, OutputValidationError

__all__ = [  # noqa: RUF022 - grouped by purpose, not sorted
    # The protocol
    "Model",
    "ModelRequest",
    "ModelSettings",
    "ServerEndpoint",
    "ToolDefinition",
    # Structured output
    "OutputSchema",
    "OutputValidationError",
    "ResponseFormat",
    "StructuredOutputs",
    # What a model streams
    "FinishReason",
    "ModelChunk",
    "ModelFinish",
    "ModelToolCall",
    "ModelUsage",
    "TextDelta",
    # Implementations
    "OpenAIChatModel",
    "ScriptedModel",
    "ScriptedReply",
    "ScriptedToolCall",
    "ScriptFunction",
    "last_tool_results",
    "last_user_text",
]
