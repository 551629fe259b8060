"""Agents: an LLM with instructions and tools, streamed as Mastra-shaped chunks and traced with
the OpenTelemetry GenAI conventions.

Build tools (`create_tool`, `@tool`, `workflow_as_tool`), pick a model (`OpenAIChatModel` for
any OpenAI-compatible endpoint, `ScriptedModel` for tests and demos), and make an `Agent`.
``await agent.generate(...)`` returns an `AgentResult`; ``agent.stream(...)`` an `AgentStream`
of `AgentChunk`s; ``agent.as_step()`` a workflow step.
"""

from spanflow.agents.agent import Agent, AgentStream, Instructions
from spanflow.agents.chunks import (
    AbortPayload,
    AgentChunk,
    AgentChunkPayload,
    ChunkType,
    ErrorPayload,
    FinishPayload,
    StartPayload,
    StepFinishPayload,
    StepStartPayload,
    TextDeltaPayload,
    TextEndPayload,
    TextStartPayload,
    ToolCallPayload,
    ToolErrorPayload,
    ToolResultPayload,
)
from spanflow.agents.errors import (
    AgentDefinitionError,
    AgentError,
    AgentRunError,
    ModelError,
    ToolArgumentsError,
    ToolError,
    UnknownToolError,
)
from spanflow.agents.messages import (
    AssistantMessage,
    Message,
    MessagesInput,
    SystemMessage,
    ToolCall,
    ToolMessage,
    UserMessage,
)
from spanflow.agents.models import (
    Model,
    ModelSettings,
    OpenAIChatModel,
    ScriptedModel,
    ScriptedReply,
    ScriptedToolCall,
)
from spanflow.agents.results import (
    AgentResult,
    AgentStatus,
    AgentStepResult,
    ToolCallRecord,
    ToolResultRecord,
)
from spanflow.agents.step import AgentStepInput, AgentStepOutput, create_agent_step
from spanflow.agents.tools import Tool, ToolContext, create_tool, tool, workflow_as_tool
from spanflow.tracing.genai import GenAITracing

__all__ = [  # noqa: RUF022 - grouped by purpose, not sorted
    # Building
    "Agent",
    "Instructions",
    "Tool",
    "ToolContext",
    "create_tool",
    "tool",
    "workflow_as_tool",
    # Models
    "Model",
    "ModelSettings",
    "OpenAIChatModel",
    "ScriptedModel",
    "ScriptedReply",
    "ScriptedToolCall",
    # Running
    "AgentResult",
    "AgentStatus",
    "AgentStepResult",
    "AgentStream",
    "ToolCallRecord",
    "ToolResultRecord",
    # In workflows
    "AgentStepInput",
    "AgentStepOutput",
    "create_agent_step",
    # Messages
    "AssistantMessage",
    "Message",
    "MessagesInput",
    "SystemMessage",
    "ToolCall",
    "ToolMessage",
    "UserMessage",
    # Chunks
    "AbortPayload",
    "AgentChunk",
    "AgentChunkPayload",
    "ChunkType",
    "ErrorPayload",
    "FinishPayload",
    "StartPayload",
    "StepFinishPayload",
    "StepStartPayload",
    "TextDeltaPayload",
    "TextEndPayload",
    "TextStartPayload",
    "ToolCallPayload",
    "ToolErrorPayload",
    "ToolResultPayload",
    # Tracing
    "GenAITracing",
    # Errors
    "AgentDefinitionError",
    "AgentError",
    "AgentRunError",
    "ModelError",
    "ToolArgumentsError",
    "ToolError",
    "UnknownToolError",
]
