"""Request bodies and query parameters: pydantic models of Mastra's camelCase wire form.

The models are where data enters (pydantic at the edge, dataclasses inside): `read_body` reads
at most the configured number of bytes (413 past it), parses JSON (400 when it is not), and
validates it against a model in strict mode (``"5"`` is not a number, ``"true"`` not a
boolean), answering 400 with the first failing field's dotted path (``tracingOptions.tags``).
The same models give the OpenAPI document its schemas (`model_json_schema`).

Unknown top-level keys are ignored, as Mastra's server does: clients send keys some servers
know and others not (``perStep``, ``disableScorers``). Unknown keys inside ``tracingOptions``
are refused, since a misspelt ``traceID`` would otherwise silently start a new trace. A body
may be empty (clients send none for ``create-run`` and ``cancel``); it then means ``{}``.
Clients send JSON without a JSON content type (a plain ``fetch`` with a string body), so the
content type is not checked.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypeVar

import pydantic
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request

from spanflow.server.errors import ApiError
from spanflow.storage.base import RunStatus
from spanflow.tracing import TracingOptions, resolve_tracing_options

__all__ = [
    "AgentBody",
    "CreateRunBody",
    "MemoryBody",
    "RestartBody",
    "ResumeBody",
    "StreamBody",
    "StructuredOutputBody",
    "TracingOptionsBody",
    "query_date",
    "query_int",
    "query_status",
    "read_body",
    "tracing_options",
]

Body = TypeVar("Body", bound=BaseModel)


class _Body(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class TracingOptionsBody(BaseModel):
    """Mastra's ``tracingOptions`` (spanflow's `TracingOptions`, in camelCase)."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    traceId: str | None = None
    """Join this trace (1-32 hex); wins over the request's ``traceparent`` header."""
    parentSpanId: str | None = None
    """Make the run span a child of this span (1-16 hex; needs ``traceId``)."""
    traceparent: str | None = None
    """A W3C ``traceparent`` value, instead of the two ids."""
    metadata: dict[str, Any] | None = None
    """Flattened to ``spanflow.metadata.<path>`` attributes."""
    tags: list[str] | None = None
    """Each becomes ``spanflow.tag.<tag>=true``."""
    requestContextKeys: list[str] | None = None
    """Request-context keys exported as ``spanflow.metadata.<key>``."""
    hideInput: bool | None = None
    """Do not record the run's input."""
    hideOutput: bool | None = None
    """Do not record the run's output."""


class _RunBody(_Body):
    requestContext: dict[str, Any] | None = None
    """Values steps and tools read (`RequestContext`)."""
    tracingOptions: TracingOptionsBody | None = None


class StreamBody(_RunBody):
    """``stream``, ``start`` and ``start-async``: start a run."""

    inputData: Any = None
    """The workflow's input."""
    initialState: Any = None
    """The workflow's initial state."""
    resourceId: str | None = None
    """The user or resource the run is for (used when this request creates the run)."""
    closeOnSuspend: bool = True
    """End the stream when the run suspends (``stream`` only); ``false`` keeps it open until
    a resume in this process ends the run."""


class ResumeBody(_RunBody):
    """``resume-stream``, ``resume`` and ``resume-async``: continue a suspended run."""

    step: str | list[str] | None = None
    """The suspended step: an id, a dotted path, or the path as a list; omitted, the one
    suspended step."""
    resumeData: Any = None
    """What the suspended step receives."""
    forEachIndex: int | None = Field(default=None, ge=0)
    """Which suspended foreach iteration to resume."""
    label: str | None = None
    """The resume label the step suspended with (spanflow's ``resume_label``)."""


class RestartBody(_RunBody):
    """``restart``: re-drive a run that a crashed process left running."""


class CreateRunBody(_Body):
    """``create-run``: store a pending run."""

    resourceId: str | None = None
    """The user or resource the run is for."""


class MemoryBody(_Body):
    """Mastra's ``memory`` option: which conversation the call belongs to."""

    thread: str | dict[str, Any]
    """The conversation id (or ``{"id": ...}``): recorded as ``gen_ai.conversation.id``."""
    resource: str | None = None
    """The user or resource: recorded as ``spanflow.resource.id``."""

    def thread_id(self) -> str:
        """The conversation id, whichever form it was given in."""
        if isinstance(self.thread, str):
            return self.thread
        value = self.thread.get("id")
        if not isinstance(value, str) or not value:
            raise ApiError(400, "invalid body: field 'memory.thread.id': must be a string")
        return value


class StructuredOutputBody(_Body):
    """Mastra's ``structuredOutput`` option (refused: spanflow agents answer in text)."""

    schema_: Any = Field(default=None, alias="schema")


class AgentBody(_RunBody):
    """``generate`` and ``stream`` of an agent."""

    messages: Any
    """A prompt, a message or a list of messages (``{role, content}``; content may be a
    string or a list of ``{type: "text", text}`` parts)."""
    memory: MemoryBody | None = None
    maxSteps: int | None = Field(default=None, ge=1)
    """The most model calls (tool rounds) of this call."""
    structuredOutput: StructuredOutputBody | None = None
    resourceId: str | None = None
    """The user or resource (when ``memory`` does not name one)."""
    runId: str | None = None
    """The call's id (default: a new UUID)."""


async def read_body(request: Request, model: type[Body], limit: int) -> Body:
    """The request's JSON body validated as `model` (an empty body is ``{}``).

    Raises:
        ApiError: 413 past `limit` bytes, 400 for bad JSON or a field that does not fit.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    raw = b"".join(chunks)
    data: Any = {}
    if raw.strip():
        try:
            data = json.loads(raw)
        except UnicodeDecodeError:
            raise ApiError(400, "invalid body: not UTF-8 text") from None
        except json.JSONDecodeError as exc:
            raise ApiError(
                400,
                f"invalid body: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})",
            ) from None
    if not isinstance(data, dict):
        raise ApiError(400, f"invalid body: expected a JSON object, got {_json_kind(data)}")
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        raise ApiError(400, f"invalid body: {_first_problem(exc)}") from None


def tracing_options(body: TracingOptionsBody | None) -> TracingOptions | None:
    """The engine's `TracingOptions` for the body's, checked strictly (a bad id is a 400, not
    a silently new trace); ``None`` when none were given."""
    if body is None:
        return None
    options = TracingOptions(
        trace_id=body.traceId,
        parent_span_id=body.parentSpanId,
        traceparent=body.traceparent,
        metadata=body.metadata,
        tags=body.tags,
        request_context_keys=body.requestContextKeys,
        hide_input=bool(body.hideInput),
        hide_output=bool(body.hideOutput),
        strict=True,
    )
    resolve_tracing_options(options)  # raises TracingOptionsError (400, naming the field)
    return options


def query_int(query: Mapping[str, str], name: str, *, minimum: int) -> int | None:
    """An integer query parameter (``None`` when absent); 400 unless it is one >= `minimum`."""
    text = query.get(name)
    if text is None or text == "":
        return None
    try:
        value = int(text)
    except ValueError:
        raise ApiError(
            400, f"invalid query parameter '{name}': expected an integer, got {text!r}"
        ) from None
    if value < minimum:
        raise ApiError(
            400, f"invalid query parameter '{name}': must be {minimum} or more, got {value}"
        )
    return value


def query_date(query: Mapping[str, str], name: str) -> datetime | None:
    """An ISO 8601 date query parameter (``2026-01-31T12:00:00.000Z``); naive means UTC."""
    text = query.get(name)
    if text is None or text == "":
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise ApiError(
            400, f"invalid query parameter '{name}': expected an ISO 8601 date, got {text!r}"
        ) from None


_STATUSES: tuple[str, ...] = RunStatus.__args__  # type: ignore[attr-defined]


def query_status(query: Mapping[str, str]) -> RunStatus | None:
    """The ``status`` filter of a runs listing; 400 for a status runs never have."""
    text = query.get("status")
    if text is None or text == "":
        return None
    if text not in _STATUSES:
        raise ApiError(
            400,
            f"invalid query parameter 'status': expected one of {', '.join(_STATUSES)}, "
            f"got {text!r}",
        )
    return text  # type: ignore[return-value]


def _too_large(limit: int) -> ApiError:
    return ApiError(413, f"request body too large: the limit is {limit} bytes")


def _first_problem(error: pydantic.ValidationError) -> str:
    """The first failing field and why; for a union (``str | list[str]``) every member's
    reason, joined: ``field 'step': Input should be a valid string, or a valid list``."""
    problems = error.errors(include_url=False)
    where = _field_path(problems[0]["loc"])
    reasons: list[str] = []
    for problem in problems:
        if _field_path(problem["loc"]) != where:
            continue
        reason = "unknown field" if problem["type"] == "extra_forbidden" else problem["msg"]
        if reasons:
            reason = reason.removeprefix("Input should be ")
        reasons.append(reason)
    message = ", or ".join(dict.fromkeys(reasons))
    return f"field '{where}': {message}" if where else message


_UNION_TAGS = frozenset({"str", "int", "float", "bool", "none"})


def _field_path(loc: tuple[int | str, ...]) -> str:
    """The dotted path of an error location without pydantic's union member tags."""
    parts = [
        str(part)
        for part in loc
        if not (isinstance(part, str) and ("[" in part or part in _UNION_TAGS))
    ]
    return ".".join(parts)


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array"
