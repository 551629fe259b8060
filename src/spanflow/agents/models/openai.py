"""`OpenAIChatModel`: any OpenAI-compatible chat-completions endpoint, streamed.

Built on the official ``openai`` package (the ``openai`` extra: ``pip install
'spanflow[openai]'``), imported only when a model is created. One class serves OpenAI, Azure
OpenAI's compatible endpoint, vLLM, Ollama, LM Studio, OpenRouter and the like through
``base_url``. Requests always stream, with ``stream_options={"include_usage": true}`` so the
last chunk reports token usage; tool-call argument deltas are assembled by their index into
complete tool calls.

Failures become a `ModelError` whose message names the endpoint and, for HTTP errors, the
status (``model endpoint http://localhost:11434/v1 returned HTTP 500: ...``); the openai
exception is its ``__cause__``. ``timeout`` bounds connecting and every wait for the next
streamed chunk, so an endpoint that stops answering fails the call instead of hanging it.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from spanflow.agents.errors import AgentDefinitionError, ModelError
from spanflow.agents.messages import (
    Message,
    SystemMessage,
    ToolMessage,
    UserMessage,
)
from spanflow.agents.models.base import (
    FinishReason,
    ModelChunk,
    ModelFinish,
    ModelRequest,
    ModelToolCall,
    ModelUsage,
    TextDelta,
)
from spanflow.usage import Usage

if TYPE_CHECKING:
    from openai import AsyncOpenAI

__all__ = ["OpenAIChatModel"]

_DEFAULT_BASE_URL: Final = "https://api.openai.com/v1"
_FINISH_REASONS: Final[dict[str, FinishReason]] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool-calls",
    "function_call": "tool-calls",
    "content_filter": "content-filter",
}


class OpenAIChatModel:
    """A chat model behind an OpenAI-compatible ``/chat/completions`` endpoint.

    Args:
        model: The model name sent in each request (``"gpt-4o-mini"``, ``"llama3.1"``).
        base_url: The API root, e.g. ``"http://localhost:11434/v1"``; default: the
            ``OPENAI_BASE_URL`` variable, else OpenAI's API.
        api_key: Default: the ``OPENAI_API_KEY`` variable. Local servers that need no key
            work without one when a ``base_url`` is given.
        timeout: Seconds to connect and to wait for each streamed chunk (a `ModelSettings`
            timeout overrides it per call).
        max_retries: Retries of a request that failed to connect or got a retryable HTTP
            status (408, 409, 429, 5xx), with the openai package's backoff.
        provider: ``gen_ai.provider.name`` on spans (``"openai"``; e.g. ``"ollama"``).
        default_headers: Headers added to every request.
        client: A ready ``openai.AsyncOpenAI`` client to use instead of building one (its own
            base URL, key, timeout and retries then apply).
        structured_outputs: Whether the endpoint takes ``response_format={"type":
            "json_schema", ...}`` (OpenAI, vLLM and Ollama do). Set ``False`` for one that does
            not: ``structured_output=`` then asks in the system prompt instead.

    Raises:
        AgentDefinitionError: The ``openai`` package is not installed, or an argument is bad.
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 60.0,
        max_retries: int = 2,
        provider: str = "openai",
        default_headers: Mapping[str, str] | None = None,
        client: AsyncOpenAI | None = None,
        structured_outputs: bool = True,
    ) -> None:
        if not isinstance(model, str) or not model:
            raise AgentDefinitionError(f"OpenAIChatModel needs a model name, got {model!r}")
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise AgentDefinitionError(f"timeout must be a positive number, got {timeout!r}")
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise AgentDefinitionError(f"max_retries must be an int >= 0, got {max_retries!r}")
        openai = _import_openai()
        self._model_id = model
        self._provider = provider
        self._timeout = float(timeout)
        self._owns_client = client is None
        self._structured_outputs = bool(structured_outputs)
        if client is None:
            base_url = base_url or os.environ.get("OPENAI_BASE_URL") or _DEFAULT_BASE_URL
            key = api_key or os.environ.get("OPENAI_API_KEY")
            if key is None:
                if base_url.rstrip("/") == _DEFAULT_BASE_URL:
                    raise AgentDefinitionError(
                        "OpenAIChatModel needs an API key for api.openai.com: pass api_key=... "
                        "or set OPENAI_API_KEY"
                    )
                key = "not-needed"  # local servers (Ollama, vLLM) ignore it, the client wants one
            client = openai.AsyncOpenAI(
                base_url=base_url,
                api_key=key,
                timeout=self._timeout,
                max_retries=max_retries,
                default_headers=dict(default_headers) if default_headers else None,
            )
        self._client: AsyncOpenAI = client
        self._base_url = str(client.base_url).rstrip("/")
        parts = urlsplit(self._base_url)
        self._server_address = parts.hostname
        self._server_port = parts.port or (443 if parts.scheme == "https" else 80)

    async def aclose(self) -> None:
        """Close the HTTP client this model built (a client passed in is left to its owner).

        Close a model before its event loop ends: a client closed by the garbage collector
        later tries to run on a loop that is gone. ``async with OpenAIChatModel(...)`` does it.
        """
        if self._owns_client:
            await self._client.close()

    async def __aenter__(self) -> OpenAIChatModel:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    @property
    def provider(self) -> str:
        return self._provider

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def supports_response_format(self) -> bool:
        """Whether ``structured_output=`` is sent as ``response_format`` (see the class)."""
        return self._structured_outputs

    @property
    def base_url(self) -> str:
        """The endpoint's API root."""
        return self._base_url

    @property
    def server_address(self) -> str | None:
        return self._server_address

    @property
    def server_port(self) -> int | None:
        return self._server_port

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelChunk]:
        openai = _import_openai()
        settings = request.settings
        timeout = settings.timeout if settings.timeout is not None else self._timeout
        params = self._request_params(request, timeout)
        assembler = _ToolCallAssembler()
        reason: FinishReason | None = None
        response_model: str | None = None
        response_id: str | None = None
        try:
            stream = await self._client.chat.completions.create(**params)
            try:
                async for chunk in stream:
                    response_model = chunk.model or response_model
                    response_id = chunk.id or response_id
                    if chunk.usage is not None:
                        yield ModelUsage(_usage(chunk.usage))
                    for choice in chunk.choices:
                        if choice.index != 0:
                            continue  # n > 1 is not supported: the first choice is the answer
                        delta = choice.delta
                        if delta.content:
                            yield TextDelta(delta.content)
                        for part in delta.tool_calls or ():
                            assembler.add(part)
                        if choice.finish_reason is not None:
                            reason = _FINISH_REASONS.get(choice.finish_reason, "other")
                            for call in assembler.complete():
                                yield call
            finally:
                await stream.close()
        except (openai.OpenAIError, ValueError) as exc:
            raise self._model_error(openai, exc, timeout) from exc
        for call in assembler.complete():  # a server that never sent a finish reason
            yield call
        if reason is None:
            reason = "tool-calls" if assembler.emitted else "unknown"
        yield ModelFinish(reason, response_model, response_id)

    def _request_params(self, request: ModelRequest, timeout: float) -> dict[str, Any]:
        """The keyword arguments of one streamed ``chat.completions.create`` call."""
        settings = request.settings
        params: dict[str, Any] = {
            "model": self._model_id,
            "messages": [_message_param(m) for m in request.messages],
            "stream": True,
            "stream_options": {"include_usage": True},
            "timeout": timeout,
        }
        if request.tools:
            params["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": tool.name,
                        "description": tool.description,
                        "parameters": tool.parameters,
                    },
                }
                for tool in request.tools
            ]
        for name in ("temperature", "max_tokens", "top_p", "seed"):
            value = getattr(settings, name)
            if value is not None:
                params[name] = value
        if request.response_format is not None:
            response_format = request.response_format
            params["response_format"] = {
                "type": "json_schema",
                "json_schema": {
                    "name": response_format.name,
                    "schema": response_format.schema,
                    "strict": response_format.strict,
                },
            }
        if settings.stop:
            params["stop"] = list(settings.stop)
        if settings.extra:
            params["extra_body"] = dict(settings.extra)
        return params

    def _model_error(self, openai: Any, exc: Exception, timeout: float) -> ModelError:
        """The `ModelError` for an openai (or stream-reading) failure, naming the endpoint."""
        if isinstance(exc, openai.APIStatusError):
            return ModelError(
                f"model endpoint {self._base_url} returned HTTP {exc.status_code}: "
                f"{_api_message(exc)}",
                provider=self._provider,
                base_url=self._base_url,
                status_code=exc.status_code,
                kind=f"http_{exc.status_code}",
            )
        if isinstance(exc, openai.APITimeoutError):
            return ModelError(
                f"model endpoint {self._base_url} did not answer within {timeout:g}s "
                f"(raise timeout= if the model is slow)",
                provider=self._provider,
                base_url=self._base_url,
                kind="timeout",
            )
        if isinstance(exc, openai.APIConnectionError):
            cause = exc.__cause__
            detail = f": {cause}" if cause is not None and str(cause) else ""
            return ModelError(
                f"could not reach model endpoint {self._base_url}{detail}",
                provider=self._provider,
                base_url=self._base_url,
                kind="connection",
            )
        return ModelError(
            f"model endpoint {self._base_url} sent a stream that could not be read: {exc}",
            provider=self._provider,
            base_url=self._base_url,
            kind="stream",
        )

    def __repr__(self) -> str:
        return f"<OpenAIChatModel {self._model_id!r} at {self._base_url}>"


def _import_openai() -> Any:
    try:
        import openai
    except ImportError as exc:
        raise AgentDefinitionError(
            "OpenAIChatModel needs the openai package: pip install 'spanflow[openai]'"
        ) from exc
    return openai


@dataclass(slots=True)
class _PartialCall:
    id: str = ""
    name: str = ""
    arguments: str = ""


class _ToolCallAssembler:
    """Joins streamed tool-call deltas into complete calls, keyed by their index."""

    def __init__(self) -> None:
        self._calls: dict[int, _PartialCall] = {}
        self.emitted = 0

    def add(self, part: Any) -> None:
        index = part.index if part.index is not None else self._index_without(part.id)
        call = self._calls.setdefault(index, _PartialCall())
        if part.id:
            call.id = part.id
        function = part.function
        if function is not None:
            # OpenAI sends the name once; some compatible servers repeat it in every delta.
            if function.name and function.name != call.name:
                call.name += function.name
            if function.arguments:
                call.arguments += function.arguments

    def _index_without(self, call_id: str | None) -> int:
        """Where a delta without an index belongs: the call with its id, a new call for a new
        id, else the latest call."""
        for index, call in self._calls.items():
            if call_id and call.id == call_id:
                return index
        if call_id or not self._calls:
            return max(self._calls, default=-1) + 1
        return max(self._calls)

    def complete(self) -> list[ModelToolCall]:
        calls = [
            ModelToolCall(call.id or f"call_{index}", call.name, call.arguments)
            for index, call in sorted(self._calls.items())
        ]
        self.emitted += len(calls)
        self._calls.clear()
        return calls


def _message_param(message: Message) -> dict[str, Any]:
    if isinstance(message, SystemMessage | UserMessage):
        return {"role": message.role, "content": message.content}
    if isinstance(message, ToolMessage):
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.content}
    out: dict[str, Any] = {"role": "assistant", "content": message.content or None}
    if message.tool_calls:
        out["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }
            for call in message.tool_calls
        ]
    return out


def _usage(usage: Any) -> Usage:
    prompt = int(usage.prompt_tokens or 0)
    completion = int(usage.completion_tokens or 0)
    details = usage.prompt_tokens_details
    completion_details = usage.completion_tokens_details
    return Usage(
        input_tokens=prompt,
        output_tokens=completion,
        total_tokens=int(usage.total_tokens or prompt + completion),
        reasoning_tokens=int(getattr(completion_details, "reasoning_tokens", None) or 0),
        cached_input_tokens=int(getattr(details, "cached_tokens", None) or 0),
        cache_creation_input_tokens=int(getattr(details, "cache_write_tokens", None) or 0),
    )


def _api_message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, Mapping):
        error = body.get("error", body)
        if isinstance(error, Mapping) and isinstance(error.get("message"), str):
            return str(error["message"])
        if isinstance(error, str):
            return error
    if isinstance(body, str) and body.strip():
        return body.strip()[:500]
    message = getattr(exc, "message", None)
    if isinstance(message, str) and message:
        return message
    try:
        return json.dumps(body)[:500]
    except (TypeError, ValueError):
        return str(exc)
