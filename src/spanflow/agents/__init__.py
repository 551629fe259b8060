"""Agents: an LLM with instructions and tools, streamed as Mastra-shaped chunks and traced with
the OpenTelemetry GenAI conventions.

Build tools (`create_tool`, `@tool`, `workflow_as_tool`), pick a model (`OpenAIChatModel` for
any OpenAI-compatible endpoint, `ScriptedModel` for tests and demos), and make an `Agent`.
``await agent.generate(...)`` returns an `AgentResult`; ``agent.stream(...)`` an `AgentStream`
of `AgentChunk`s; ``agent.as_step()`` a workflow step. ``structured_output=`` asks for a
validated object; processors (`spanflow.agents.processors`) guard what goes in and comes out,
and may stop a call (status ``tripwire``); ``memory=`` keeps conversations
(`spanflow.agents.memory.Memory`).
"""

from spanflow.agents.agent import Agent, AgentMemory, AgentStream, Instructions, MemoryOption
from spanflow.agents.chunks import (
    AbortPayload,
    AgentChunk,
    AgentChunkPayload,
    ChunkType,
    ErrorPayload,
    FinishPayload,
    ObjectPayload,
    ObjectResultPayload,
    StartPayload,
    StepFinishPayload,
    StepStartPayload,
    TextDeltaPayload,
    TextEndPayload,
    TextStartPayload,
    ToolCallPayload,
    ToolErrorPayload,
    ToolResultPayload,
    TripwirePayload,
)
from spanflow.agents.errors import (
    AgentDefinitionError,
    AgentError,
    AgentRunError,
    ModelError,
    ProcessorError,
    StructuredOutputError,
    ToolArgumentsError,
    ToolError,
    UnknownToolError,
)
from spanflow.agents.memory import Memory, Thread
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
    OutputSchema,
    ScriptedModel,
    ScriptedReply,
    ScriptedToolCall,
)
from spanflow.agents.network import (
    NetworkChunk,
    NetworkError,
    NetworkResult,
    NetworkStream,
    network_resume,
)
from spanflow.agents.processors import (
    PII_PATTERNS,
    Processor,
    ProcessorContext,
    RegexRedactor,
    TokenLimiter,
    TripWire,
    TripwireInfo,
    pii_redactor,
)
from spanflow.agents.results import (
    AgentResult,
    AgentStatus,
    AgentStepResult,
    ToolCallRecord,
    ToolResultRecord,
)
from spanflow.agents.step import (
    AgentStepInput,
    AgentStepOutput,
    AgentTripwireError,
    create_agent_step,
)
from spanflow.agents.tools import Tool, ToolContext, create_tool, tool, workflow_as_tool
from spanflow.tracing.genai import GenAITracing

__all__ = [  # noqa: RUF022 - grouped by purpose, not sorted
    # Building
    "Agent",
    "AgentMemory",
    "Memory",
    "NetworkChunk",
    "NetworkError",
    "NetworkResult",
    "NetworkStream",
    "Thread",
    "network_resume",
    "Instructions",
    "MemoryOption",
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
    # Structured output
    "OutputSchema",
    # Processors
    "PII_PATTERNS",
    "Processor",
    "ProcessorContext",
    "RegexRedactor",
    "TokenLimiter",
    "TripWire",
    "TripwireInfo",
    "pii_redactor",
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
    "AgentTripwireError",
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
    "ObjectPayload",
    "ObjectResultPayload",
    "StartPayload",
    "StepFinishPayload",
    "StepStartPayload",
    "TextDeltaPayload",
    "TextEndPayload",
    "TextStartPayload",
    "ToolCallPayload",
    "ToolErrorPayload",
    "ToolResultPayload",
    "TripwirePayload",
    # Tracing
    "GenAITracing",
    # Errors
    "AgentDefinitionError",
    "AgentError",
    "AgentRunError",
    "ModelError",
    "ProcessorError",
    "StructuredOutputError",
    "ToolArgumentsError",
    "ToolError",
    "UnknownToolError",
]
