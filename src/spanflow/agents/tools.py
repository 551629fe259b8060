"""Tools: functions an agent's model may call, with validated input.

Make one with `create_tool(id=..., description=..., input_schema=..., execute=fn)` (Mastra
parity), with the `@tool` decorator, or from a workflow with `workflow_as_tool`. The model is
shown the JSON schema of the input schema; the arguments it sends are validated before
``execute`` runs, so a bad call becomes a tool error the model is told about, never a crash.

``execute`` may be ``async`` or plain (a plain function runs in a worker thread). With
`create_tool` it receives the validated input, and the `ToolContext` if it takes a second
parameter. With `@tool` and no ``input_schema``, the function's own parameters are the schema:

    @tool
    async def get_weather(city: str, unit: Literal["C", "F"] = "C") -> dict[str, Any]:
        '''Current weather of a city.'''

A parameter annotated `ToolContext` (or named ``ctx``) receives the context instead.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import re
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal, overload

import pydantic

from spanflow._schema import Schema, schema_of, to_wire
from spanflow.agents.errors import AgentDefinitionError, ToolArgumentsError, ToolError
from spanflow.agents.messages import Message
from spanflow.agents.models.base import ToolDefinition
from spanflow.context import RequestContext
from spanflow.errors import InvalidInputError

if TYPE_CHECKING:
    from spanflow.tracing.genai import ToolScope
    from spanflow.workflows.workflow import Workflow

__all__ = [
    "TOOL_NAME_PATTERN",
    "Tool",
    "ToolContext",
    "ToolExecute",
    "call_in_scope",
    "create_tool",
    "tool",
    "tool_result_text",
    "workflow_as_tool",
]

ToolExecute = Callable[..., Any]
"""``execute(input)``, ``execute(input, ctx)`` or, for `@tool`, ``fn(**arguments)``."""

TOOL_NAME_PATTERN: Final = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
"""What model APIs accept as a tool name."""
_EMPTY_OBJECT: Final[dict[str, Any]] = {"type": "object", "properties": {}}
CallStyle = Literal["input", "input_ctx", "kwargs"]


@dataclass(frozen=True, slots=True, eq=False)
class ToolContext:
    """What a tool's ``execute`` gets besides its input."""

    tool_call_id: str
    """The model's id for this call."""
    tool_name: str
    agent_id: str | None
    """The calling agent's id (``None`` when the tool is run directly)."""
    run_id: str | None
    """The calling agent run's id."""
    request_context: RequestContext
    """The request context of the agent call."""
    messages: tuple[Message, ...] = ()
    """The conversation up to this call."""
    abort_signal: asyncio.Event | None = None
    """Set when the agent call is aborted; long-running tools may watch it."""


@dataclass(frozen=True, slots=True, eq=False)
class Tool:
    """A function the model can call. Immutable once made; build with `create_tool`/`@tool`."""

    id: str
    """The name the model calls it by: letters, digits, ``_`` and ``-``, at most 64."""
    description: str
    execute: ToolExecute
    input_schema: Any = None
    """A pydantic model (or any type a `TypeAdapter` accepts that describes an object);
    ``None`` accepts any JSON object."""
    output_schema: Any = None
    """Validates what ``execute`` returns; ``None`` accepts anything."""
    call_style: CallStyle = "input"
    """How ``execute`` is called: with the input, with the input and the context, or with
    the input's fields as keyword arguments (``@tool`` over a plain signature)."""
    context_parameter: str | None = None
    """For ``kwargs`` style: the parameter that receives the `ToolContext`, if any."""
    _input: Schema | None = field(init=False, repr=False)
    _output: Schema | None = field(init=False, repr=False)
    _parameters: dict[str, Any] = field(init=False, repr=False)
    _is_async: bool = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not TOOL_NAME_PATTERN.match(self.id):
            raise AgentDefinitionError(
                f"tool id {self.id!r} must be 1-64 letters, digits, '_' or '-' "
                f"(model APIs reject other names)"
            )
        if not isinstance(self.description, str):
            raise AgentDefinitionError(f"tool {self.id!r}: description must be a string")
        if not callable(self.execute):
            raise AgentDefinitionError(f"tool {self.id!r}: execute must be callable")
        set_ = object.__setattr__
        set_(self, "_input", schema_of(self.input_schema))
        set_(self, "_output", schema_of(self.output_schema))
        set_(self, "_parameters", _parameters_schema(self.id, self._input))
        set_(self, "_is_async", inspect.iscoroutinefunction(self.execute))

    @property
    def parameters(self) -> dict[str, Any]:
        """The JSON schema of the input, as sent to the model."""
        return self._parameters

    def definition(self) -> ToolDefinition:
        """The tool as the model sees it."""
        return ToolDefinition(self.id, self.description, self._parameters)

    def validate_input(self, args: Any) -> Any:
        """The validated input for `args` (the model's parsed arguments).

        Raises:
            ToolArgumentsError: The arguments do not match the input schema (the message
                names the field).
        """
        if self._input is None:
            if not isinstance(args, dict):
                raise ToolArgumentsError(
                    f"invalid arguments for tool {self.id!r}: expected a JSON object, "
                    f"got {type(args).__name__}"
                )
            return args
        try:
            return self._input.validate(args, what=f"arguments for tool {self.id!r}")
        except InvalidInputError as exc:
            raise ToolArgumentsError(str(exc)) from None

    async def call(self, value: Any, ctx: ToolContext) -> Any:
        """Run ``execute`` on an already validated input and validate its output.

        Raises:
            ToolError: The output does not match the output schema.
            Exception: Whatever ``execute`` raised.
        """
        if self.call_style == "input":
            args: tuple[Any, ...] = (value,)
            kwargs: dict[str, Any] = {}
        elif self.call_style == "input_ctx":
            args, kwargs = (value, ctx), {}
        else:
            args = ()
            kwargs = _fields(value)
            if self.context_parameter is not None:
                kwargs[self.context_parameter] = ctx
        if self._is_async:
            output = await self.execute(*args, **kwargs)
        else:
            output = await asyncio.to_thread(self.execute, *args, **kwargs)
            if inspect.isawaitable(output):
                output = await output
        if self._output is not None:
            try:
                output = self._output.validate(output, what=f"output of tool {self.id!r}")
            except InvalidInputError as exc:
                raise ToolError(str(exc)) from None
        return output

    def __repr__(self) -> str:
        return f"<Tool {self.id!r}>"


def create_tool(
    *,
    id: str,
    description: str,
    execute: ToolExecute,
    input_schema: Any = None,
    output_schema: Any = None,
) -> Tool:
    """Make a tool (Mastra's ``createTool``).

    ``execute(input)`` or ``execute(input, ctx)``, sync or async.

    Raises:
        AgentDefinitionError: A bad id, a schema that does not describe a JSON object, or an
            ``execute`` that takes neither one nor two positional parameters.
    """
    return Tool(
        id=id,
        description=description,
        execute=execute,
        input_schema=input_schema,
        output_schema=output_schema,
        call_style=_positional_style(id, execute),
    )


@overload
def tool(fn: ToolExecute, /) -> Tool: ...
@overload
def tool(
    *,
    id: str | None = None,
    description: str | None = None,
    input_schema: Any = None,
    output_schema: Any = None,
) -> Callable[[ToolExecute], Tool]: ...
def tool(
    fn: ToolExecute | None = None,
    /,
    *,
    id: str | None = None,
    description: str | None = None,
    input_schema: Any = None,
    output_schema: Any = None,
) -> Tool | Callable[[ToolExecute], Tool]:
    """Decorator form of `create_tool`: id from the function's name, description from its
    docstring, and (without ``input_schema``) the input schema from its parameters.

    A function whose only parameter (besides the context) is annotated with a pydantic model
    takes that model as its input, like `create_tool`.
    """

    def wrap(func: ToolExecute) -> Tool:
        name = id or getattr(func, "__name__", None)
        if not name:
            raise AgentDefinitionError("@tool needs an id for a callable without __name__")
        doc = inspect.getdoc(func)
        text = description if description is not None else (doc or "").split("\n\n")[0]
        if input_schema is not None:
            return create_tool(
                id=name,
                description=text,
                execute=func,
                input_schema=input_schema,
                output_schema=output_schema,
            )
        return _tool_from_signature(name, text, func, output_schema)

    return wrap(fn) if fn is not None else wrap


def workflow_as_tool(
    workflow: Workflow, *, id: str | None = None, description: str | None = None
) -> Tool:
    """Expose a committed workflow as a tool: its input schema is the tool's, a run's result
    is the tool's result, and a failed (or suspended) run is a tool error.

    The workflow's run span nests under the ``execute_tool`` span and the run sees the agent
    call's request context.

    Raises:
        AgentDefinitionError: The workflow is not committed.
    """
    if not workflow.committed:
        raise AgentDefinitionError(
            f"workflow {workflow.id!r} must be committed before it is used as a tool"
        )
    name = id or workflow.id

    async def execute(value: Any, ctx: ToolContext) -> Any:
        run = await workflow.create_run()
        try:
            result = await run.start(input_data=value, request_context=ctx.request_context)
        except Exception:
            await run.discard()  # refused before it started: leave no pending run behind
            raise
        if result.status == "success":
            return result.result
        if result.status == "failed":
            raise ToolError(f"workflow {workflow.id!r} failed: {result.error}") from result.error
        raise ToolError(
            f"workflow {workflow.id!r} ended with status {result.status!r}; a workflow used "
            f"as a tool must finish in one run"
        )

    return Tool(
        id=name,
        description=description or workflow.description or f"Run the {workflow.id} workflow.",
        execute=execute,
        input_schema=workflow.input_schema,
        output_schema=workflow.output_schema,
        call_style="input_ctx",
    )


def tool_result_text(value: Any) -> str:
    """A tool's result as the text fed back to the model: strings as they are, else JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(to_wire(value), ensure_ascii=False, default=str)


# -- internals -----------------------------------------------------------------------------


def _parameters_schema(tool_id: str, schema: Schema | None) -> dict[str, Any]:
    if schema is None:
        return dict(_EMPTY_OBJECT)
    try:
        parameters = schema.json_schema()
    except Exception as exc:
        raise AgentDefinitionError(
            f"tool {tool_id!r}: cannot build a JSON schema from its input schema: {exc}"
        ) from exc
    if parameters.get("type") != "object":
        raise AgentDefinitionError(
            f"tool {tool_id!r}: the input schema must describe a JSON object (a pydantic "
            f"model or a TypedDict), got a schema of type {parameters.get('type')!r}"
        )
    return parameters


def _positional_style(tool_id: str, execute: ToolExecute) -> CallStyle:
    try:
        signature = inspect.signature(execute)
    except (TypeError, ValueError):  # builtins without a signature: assume execute(input)
        return "input"
    positional = [
        p
        for p in signature.parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    variadic = any(p.kind is p.VAR_POSITIONAL for p in signature.parameters.values())
    if len(positional) >= 2 or variadic:
        return "input_ctx"
    if len(positional) == 1:
        return "input"
    raise AgentDefinitionError(
        f"tool {tool_id!r}: execute must take the input (and optionally the context) as "
        f"positional parameters, e.g. async def execute(input, ctx)"
    )


def _tool_from_signature(
    name: str, description: str, func: ToolExecute, output_schema: Any
) -> Tool:
    signature = inspect.signature(func)
    try:
        hints = typing.get_type_hints(func)
    except Exception:  # unresolvable forward references: treat them as Any
        hints = {}
    context_parameter: str | None = None
    fields: dict[str, Any] = {}
    for parameter in signature.parameters.values():
        annotation = hints.get(parameter.name, Any)
        if annotation is ToolContext or parameter.name == "ctx":
            context_parameter = parameter.name
            continue
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            raise AgentDefinitionError(
                f"tool {name!r}: *args/**kwargs cannot be described to a model; "
                f"give each argument its own parameter"
            )
        default = ... if parameter.default is parameter.empty else parameter.default
        fields[parameter.name] = (annotation, default)
    if len(fields) == 1:
        (only, (annotation, _)), *_ = fields.items()
        if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
            style: CallStyle = "input_ctx" if context_parameter else "input"
            if context_parameter is not None and _first_parameter(signature) != only:
                raise AgentDefinitionError(
                    f"tool {name!r}: put the input parameter {only!r} before the context"
                )
            return Tool(
                id=name,
                description=description,
                execute=func,
                input_schema=annotation,
                output_schema=output_schema,
                call_style=style,
            )
    model_name = "".join(part.capitalize() for part in re.split(r"[_-]", name)) + "Input"
    input_model = pydantic.create_model(model_name, **fields)
    return Tool(
        id=name,
        description=description,
        execute=func,
        input_schema=input_model,
        output_schema=output_schema,
        call_style="kwargs",
        context_parameter=context_parameter,
    )


def _first_parameter(signature: inspect.Signature) -> str:
    return next(iter(signature.parameters))


def _fields(value: Any) -> dict[str, Any]:
    if isinstance(value, pydantic.BaseModel):
        return {name: getattr(value, name) for name in type(value).model_fields}
    if isinstance(value, dict):
        return dict(value)
    raise ToolError(f"cannot pass {type(value).__name__} as keyword arguments")


async def call_in_scope(scope: ToolScope, call: Callable[[], Awaitable[Any]]) -> Any:
    """``await call()`` with the tool call's span `scope` current, and the span ended as the
    call did: ``success`` with its result, ``failed`` with its error, ``aborted`` when
    cancelled; errors propagate (the caller turns them into its own outcome). The one way an
    agent's tool loop and a network's tool primitive trace a tool call."""
    token = scope.enter()
    try:
        output = await call()
    except asyncio.CancelledError:
        scope.exit(token)
        scope.end("aborted")
        raise
    except Exception as exc:
        scope.exit(token)
        scope.end("failed", error=exc)
        raise
    scope.exit(token)
    scope.end("success", result=output)
    return output
