"""Which suspended step a resume is for: picking it by step, id or path, and checking it.

A run can be suspended at several places at once (parallel branches, foreach iterations, steps
of nested workflows). `pick_suspended` turns what the caller named (nothing, a step, an id, or a
path like ``"outer.inner"``) into one suspended path, with errors that list what is suspended.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

from spanflow.errors import InvalidInputError, RunStateError, StepNotFoundError
from spanflow.workflows._entries import ForeachEntry
from spanflow.workflows._snapshot import ForeachProgress, RunSnapshot
from spanflow.workflows.step import Step

if TYPE_CHECKING:
    from spanflow.workflows.workflow import Workflow

__all__ = ["StepRef", "check_foreach_index", "find_step", "pick_suspended"]

StepRef: TypeAlias = "Step[Any, Any] | Workflow | str | Sequence[str]"
"""How a caller names the step to resume: the step, its id, or its path."""


def pick_suspended(run_id: str, suspended: list[list[str]], step: StepRef | None) -> list[str]:
    paths = [list(p) for p in suspended]
    listing = ", ".join("'" + ".".join(p) + "'" for p in paths) or "none"
    if step is None:
        if len(paths) == 1:
            return paths[0]
        if not paths:
            raise RunStateError(f"run {run_id!r} has no suspended step to resume")
        raise StepNotFoundError(
            f"run {run_id!r} has several suspended steps ({listing}); "
            f"name the one to resume with step=..."
        )
    if isinstance(step, str):
        wanted = step.split(".")
    elif isinstance(step, Sequence):
        wanted = [str(s) for s in step]
    else:  # a step or a nested workflow
        wanted = [step.id]
    if wanted in paths:
        return wanted
    tails = [p for p in paths if p[-len(wanted) :] == wanted or p[: len(wanted)] == wanted]
    if len(tails) == 1:
        return tails[0]
    name = ".".join(wanted)
    if len(tails) > 1:
        raise StepNotFoundError(
            f"step '{name}' matches several suspended steps of run {run_id!r} ({listing}); "
            f"give the full path"
        )
    raise StepNotFoundError(
        f"step '{name}' is not suspended in run {run_id!r}; suspended steps: {listing}"
    )


def find_step(workflow: Workflow, path: list[str]) -> Any:
    current: Any = workflow
    for part in path:
        if isinstance(current, Step):  # a step has no steps inside: the path ends here
            break
        found = current.find_step(part)
        if found is None:
            raise StepNotFoundError(
                f"workflow {current.id!r} has no step {part!r} (path {'.'.join(path)!r}); "
                f"was the workflow changed since the run was stored?"
            )
        current = found
    return current


def check_foreach_index(
    workflow: Workflow, snapshot: RunSnapshot, path: list[str], index: int | None
) -> None:
    """Check that `index` names a suspended iteration of the foreach at `path`."""
    if index is None:
        return
    frame = snapshot.frame
    entries = workflow._entries
    entry = entries[frame.position] if frame.position < len(entries) else None
    if not (isinstance(entry, ForeachEntry) and entry.step.id == path[0]):
        raise InvalidInputError(
            f"foreach_index={index} given, but step '{'.'.join(path)}' is not a foreach"
        )
    progress = frame.entry
    suspended = set(progress.suspend_payloads) if isinstance(progress, ForeachProgress) else set()
    if index not in suspended:
        raise StepNotFoundError(
            f"foreach iteration {index} of step '{path[0]}' is not suspended; "
            f"suspended iterations: {sorted(suspended) or 'none'}"
        )
