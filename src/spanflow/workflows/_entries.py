"""The entries a workflow records, and what its conditions see.

`Workflow`'s builder methods append one entry each; the driver (`_drive`, `_blocks`,
`_foreach`) walks them. Plain frozen dataclasses, re-exported by `spanflow.workflows.workflow`.
They name `Workflow` in annotations only, so the machinery that reads them never imports the
builder (which imports `Run`, which imports the machinery).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from spanflow.context import RequestContext
from spanflow.errors import WorkflowDefinitionError
from spanflow.workflows.step import Step

if TYPE_CHECKING:
    from spanflow.workflows.workflow import Workflow

__all__ = [
    "BranchEntry",
    "ConditionContext",
    "ConditionFunction",
    "Entry",
    "ForeachEntry",
    "LoopEntry",
    "ParallelEntry",
    "RetryConfig",
    "SleepEntry",
    "StepEntry",
]


@dataclass(frozen=True, slots=True)
class RetryConfig:
    """Default retries for every step of a workflow (a step's own `retries` wins)."""

    attempts: int = 0
    """Extra attempts after the first failure."""
    delay: float = 0.0
    """Seconds to wait between attempts."""

    def __post_init__(self) -> None:
        if self.attempts < 0 or self.delay < 0:
            raise WorkflowDefinitionError(
                f"RetryConfig needs attempts >= 0 and delay >= 0, got {self}"
            )


@dataclass(slots=True, eq=False)
class ConditionContext:
    """What a branch or loop condition receives."""

    input_data: Any
    """For a branch: the entry's input. For a loop: the step's latest output."""
    state: Any
    request_context: RequestContext
    run_id: str
    iteration_count: int = 0
    """Loops only: how many times the step has run so far (1-based)."""
    _steps: dict[str, Any] = field(default_factory=dict, repr=False)
    _init: Any = field(default=None, repr=False)

    def get_step_result(self, step: Step[Any, Any] | str) -> Any:
        """That step's output if it succeeded in this run, else ``None``."""
        result = self._steps.get(step if isinstance(step, str) else step.id)
        return result.output if result is not None and result.status == "success" else None

    def get_init_data(self) -> Any:
        """The workflow's original input."""
        return self._init


ConditionFunction = Callable[[ConditionContext], bool | Awaitable[bool]]


@dataclass(frozen=True, slots=True)
class _EntryBase:
    id: str
    description: str | None
    metadata: dict[str, Any]


@dataclass(frozen=True, slots=True)
class StepEntry(_EntryBase):
    """``.then(step)``, ``.map(fn)`` or a nested workflow."""

    step: Step[Any, Any] | Workflow


@dataclass(frozen=True, slots=True)
class ParallelEntry(_EntryBase):
    """``.parallel([...])``: all steps at once; output ``{step_id: output}``."""

    steps: tuple[Step[Any, Any] | Workflow, ...]


@dataclass(frozen=True, slots=True)
class BranchEntry(_EntryBase):
    """``.branch([(cond, step), ...])``: every step whose condition holds runs."""

    branches: tuple[tuple[ConditionFunction, Step[Any, Any] | Workflow], ...]


@dataclass(frozen=True, slots=True)
class ForeachEntry(_EntryBase):
    """``.foreach(step, concurrency=n)``: one execution per element of a list input."""

    step: Step[Any, Any] | Workflow
    concurrency: int


@dataclass(frozen=True, slots=True)
class LoopEntry(_EntryBase):
    """``.dowhile(step, cond)`` / ``.dountil(step, cond)``."""

    step: Step[Any, Any] | Workflow
    condition: ConditionFunction
    kind: Literal["dowhile", "dountil"]


@dataclass(frozen=True, slots=True)
class SleepEntry(_EntryBase):
    """``.sleep(seconds)`` / ``.sleep_until(when)``; the input passes through."""

    seconds: float | Callable[[ConditionContext], float] | None = None
    until: datetime | Callable[[ConditionContext], datetime] | None = None


Entry = StepEntry | ParallelEntry | BranchEntry | ForeachEntry | LoopEntry | SleepEntry
