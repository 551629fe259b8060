"""Steps: the typed units of work a workflow is made of, and the context they run with.

Make one with `create_step(...)` (Mastra parity) or the `@step` decorator. ``execute`` is an
``async def fn(ctx)``; a plain ``def`` is accepted too and runs in a worker thread
(`asyncio.to_thread`) so it never blocks the event loop. Such a sync step can still call
``ctx.suspend``/``ctx.bail``, but not the async ``ctx.writer`` methods.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, NoReturn, TypeVar, overload

from spanflow._schema import Schema, schema_of
from spanflow.context import RequestContext
from spanflow.errors import BailSignal, SuspendSignal, WorkflowDefinitionError
from spanflow.usage import Usage

if TYPE_CHECKING:
    from spanflow.tracing.instrumentation import Scope, StepTracing
    from spanflow.workflows._frame import Frame

__all__ = ["Step", "StepContext", "StepFunction", "StepWriter", "create_step", "step"]

InT = TypeVar("InT")
OutT = TypeVar("OutT")

StepFunction = Callable[["StepContext[Any]"], Awaitable[Any] | Any]
"""What a step runs: ``async def execute(ctx) -> output`` (or a sync function)."""

NO_STATE_CHANGE: Any = object()
"""`StepContext._new_state` until the step calls `set_state` (the executor tests for it)."""


@dataclass(frozen=True, slots=True, eq=False)
class Step(Generic[InT, OutT]):
    """A unit of work with validated input and output. Immutable once made."""

    id: str
    execute: StepFunction
    input_schema: Any = None
    """A pydantic model or any type a `TypeAdapter` accepts; ``None`` accepts anything."""
    output_schema: Any = None
    description: str | None = None
    state_schema: Any = None
    resume_schema: Any = None
    suspend_schema: Any = None
    retries: int | None = None
    """Extra attempts after a failure; ``None`` uses the workflow's `RetryConfig`."""
    metadata: dict[str, Any] = field(default_factory=dict)
    _input: Schema | None = field(init=False, repr=False)
    _output: Schema | None = field(init=False, repr=False)
    _state: Schema | None = field(init=False, repr=False)
    _resume: Schema | None = field(init=False, repr=False)
    _suspend: Schema | None = field(init=False, repr=False)
    _is_async: bool = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise WorkflowDefinitionError(f"a step needs a non-empty string id, got {self.id!r}")
        if "." in self.id:
            raise WorkflowDefinitionError(
                f"step id {self.id!r} must not contain '.': dots separate nested step paths"
            )
        if not callable(self.execute):
            raise WorkflowDefinitionError(f"step {self.id!r}: execute must be callable")
        if self.retries is not None and (not isinstance(self.retries, int) or self.retries < 0):
            raise WorkflowDefinitionError(
                f"step {self.id!r}: retries must be a non-negative int, got {self.retries!r}"
            )
        set_ = object.__setattr__
        set_(self, "_input", schema_of(self.input_schema))
        set_(self, "_output", schema_of(self.output_schema))
        set_(self, "_state", schema_of(self.state_schema))
        set_(self, "_resume", schema_of(self.resume_schema))
        set_(self, "_suspend", schema_of(self.suspend_schema))
        set_(self, "_is_async", inspect.iscoroutinefunction(self.execute))

    async def call(self, ctx: StepContext[Any]) -> Any:
        """Run `execute` once: awaited if async, in a worker thread if sync."""
        if self._is_async:
            return await self.execute(ctx)
        result = await asyncio.to_thread(self.execute, ctx)
        if inspect.isawaitable(result):  # a sync function that returned a coroutine
            return await result
        return result


def create_step(
    *,
    id: str,
    execute: StepFunction,
    input_schema: Any = None,
    output_schema: Any = None,
    description: str | None = None,
    state_schema: Any = None,
    resume_schema: Any = None,
    suspend_schema: Any = None,
    retries: int | None = None,
    metadata: dict[str, Any] | None = None,
) -> Step[Any, Any]:
    """Make a step (Mastra's ``createStep``)."""
    return Step(
        id=id,
        execute=execute,
        input_schema=input_schema,
        output_schema=output_schema,
        description=description,
        state_schema=state_schema,
        resume_schema=resume_schema,
        suspend_schema=suspend_schema,
        retries=retries,
        metadata=dict(metadata or {}),
    )


@overload
def step(fn: StepFunction, /) -> Step[Any, Any]: ...
@overload
def step(
    *,
    id: str | None = None,
    input_schema: Any = None,
    output_schema: Any = None,
    description: str | None = None,
    state_schema: Any = None,
    resume_schema: Any = None,
    suspend_schema: Any = None,
    retries: int | None = None,
) -> Callable[[StepFunction], Step[Any, Any]]: ...
def step(
    fn: StepFunction | None = None,
    /,
    *,
    id: str | None = None,
    input_schema: Any = None,
    output_schema: Any = None,
    description: str | None = None,
    state_schema: Any = None,
    resume_schema: Any = None,
    suspend_schema: Any = None,
    retries: int | None = None,
) -> Step[Any, Any] | Callable[[StepFunction], Step[Any, Any]]:
    """Decorator form of `create_step`; the id defaults to the function's name.

    The docstring's first paragraph becomes the description unless one is given.
    """

    def wrap(func: StepFunction) -> Step[Any, Any]:
        name = getattr(func, "__name__", None)
        step_id = id or name
        if not step_id:
            raise WorkflowDefinitionError("@step needs an id for a callable without __name__")
        doc = inspect.getdoc(func)
        return create_step(
            id=step_id,
            execute=func,
            input_schema=input_schema,
            output_schema=output_schema,
            description=description or (doc.split("\n\n")[0] if doc else None),
            state_schema=state_schema,
            resume_schema=resume_schema,
            suspend_schema=suspend_schema,
            retries=retries,
        )

    return wrap(fn) if fn is not None else wrap


class StepWriter:
    """``ctx.writer``: lets a step stream values to the run's consumers while it works."""

    __slots__ = ("_frame", "_scope", "_step_name")

    def __init__(self, frame: Frame, step_name: str, scope: Scope) -> None:
        self._frame = frame
        self._step_name = step_name
        self._scope = scope

    async def write(self, value: Any) -> None:
        """Emit ``workflow-step-output`` (``from: USER``) with `value` as its output."""
        self._frame.publish_output(self._step_name, value, self._scope)

    async def custom(self, chunk: dict[str, Any]) -> None:
        """Forward a ``data-*`` chunk (``{"type": "data-...", ...}``) into the stream as is."""
        chunk_type = chunk.get("type") if isinstance(chunk, dict) else None
        if not isinstance(chunk_type, str) or not chunk_type.startswith("data-"):
            raise ValueError(
                f"writer.custom() needs a dict whose 'type' starts with 'data-', got {chunk!r}"
            )
        self._frame.publish_custom(chunk, self._scope)


@dataclass(slots=True, eq=False, kw_only=True)
class StepContext(Generic[InT]):
    """What a step's ``execute(ctx)`` receives (``engine.md`` §1)."""

    run_id: str
    workflow_id: str
    resource_id: str | None
    input_data: InT
    """The input: the previous entry's output (or the workflow input), validated by the
    step's input schema as data, so any value with the right fields fits; without a schema
    (or with ``validate_inputs=False``), the value as the previous step produced it."""
    state: Any
    """The run state (validated by the state schema); change it with `set_state`."""
    retry_count: int
    """0 on the first attempt."""
    request_context: RequestContext
    writer: StepWriter
    tracing: StepTracing
    """The step span: ``ctx.tracing.current_span`` and ``with ctx.tracing.span(name): ...``."""
    resume_data: Any = None
    """Set when the step runs again after a resume."""
    suspend_data: Any = None
    """The payload this step suspended with, when it runs again after a resume."""
    _frame: Frame | None = field(default=None, repr=False)
    _step: Step[Any, Any] | None = field(default=None, repr=False)
    _new_state: Any = field(default=NO_STATE_CHANGE, repr=False)

    def set_state(self, new_state: Any) -> None:
        """Replace the run state; applied (and validated) when the step returns or suspends.

        State set before ``ctx.suspend`` is stored with the suspended run, so the steps after
        the resume (and this one, run again) see it. A step that fails changes nothing.
        """
        self._new_state = new_state

    def get_step_result(self, step: Step[Any, Any] | str) -> Any:
        """That step's output if it succeeded in this run, else ``None``."""
        assert self._frame is not None
        step_id = step if isinstance(step, str) else step.id
        result = self._frame.steps.get(step_id)
        if result is None or result.status != "success":
            return None
        return result.output

    def get_init_data(self) -> Any:
        """The workflow's original (validated) input."""
        assert self._frame is not None
        return self._frame.input

    def suspend(self, payload: Any = None, resume_label: str | None = None) -> NoReturn:
        """Suspend the run at this step. Code after this call does not run."""
        raise SuspendSignal(payload, resume_label)

    def bail(self, value: Any = None) -> NoReturn:
        """End the whole run now, with status ``success`` and ``result = value``."""
        raise BailSignal(value)

    def record_usage(self, usage: Usage) -> None:
        """Add model token usage to the run (an agent step does this; it sums into ``usage``)."""
        assert self._frame is not None
        self._frame.run.usage.add(usage)

    def abort(self) -> None:
        """Cancel the run from inside: no further entry is scheduled after this step."""
        assert self._frame is not None
        self._frame.run.request_cancel()

    @property
    def cancelled(self) -> bool:
        """Whether cancellation of the run was requested."""
        return self._frame is not None and self._frame.run.cancel_requested
