"""Which suspended step a resume is for: picking it by step, id, path or label, and checking it.

A run can be suspended at several places at once (parallel branches, foreach iterations, steps
of nested workflows). `pick_suspended` turns what the caller named (nothing, a step, an id, or a
path like ``"outer.inner"``) into one suspended path, with errors that list what is suspended.
`resolve_label` turns a resume label (``ctx.suspend(payload, resume_label="approve")``) into
that step's path, and its foreach iteration when one is meant.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

from spanflow.errors import InvalidInputError, RunStateError, StepNotFoundError
from spanflow.workflows._entries import ForeachEntry
from spanflow.workflows._snapshot import (
    BranchProgress,
    ForeachProgress,
    FrameSnapshot,
    LoopProgress,
    NestedProgress,
    ParallelProgress,
    RunSnapshot,
)
from spanflow.workflows.step import Step

if TYPE_CHECKING:
    from spanflow.workflows.workflow import Workflow

__all__ = [
    "StepRef",
    "check_foreach_index",
    "find_step",
    "pick_suspended",
    "resolve_label",
    "step_path",
]

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
    """Check that `index` names a suspended iteration of the foreach on `path` (the first
    foreach the path meets, inside nested workflows too: ``"inner.gate"``)."""
    if index is None:
        return
    found = _foreach_on(workflow, snapshot.frame, path)
    if found is None:
        raise InvalidInputError(
            f"foreach_index={index} given, but step '{'.'.join(path)}' is not a foreach"
        )
    frame, step_id = found
    progress = frame.entry
    suspended = set(progress.suspend_payloads) if isinstance(progress, ForeachProgress) else set()
    if index not in suspended:
        raise StepNotFoundError(
            f"foreach iteration {index} of step '{step_id}' is not suspended; "
            f"suspended iterations: {sorted(suspended) or 'none'}"
        )


def _foreach_on(
    workflow: Workflow, frame: FrameSnapshot, path: list[str]
) -> tuple[FrameSnapshot, str] | None:
    """The frame whose entry in progress is the foreach on `path`, and the foreach's step id;
    the path goes down through the stored frames of suspended nested workflows."""
    current: Any = workflow
    for step_id in path:
        entries = current._entries
        entry = entries[frame.position] if frame.position < len(entries) else None
        if isinstance(entry, ForeachEntry) and entry.step.id == step_id:
            return frame, step_id
        progress = frame.entry
        if isinstance(progress, ParallelProgress | BranchProgress):
            slot = progress.slots.get(step_id)
        else:
            slot = progress.slot if isinstance(progress, NestedProgress | LoopProgress) else None
        current = current.find_step(step_id)
        if slot is None or current is None or isinstance(current, Step):
            return None
        frame = slot
    return None


# -- resume labels --------------------------------------------------------------------------


def step_path(step: StepRef) -> list[str]:
    """The path a step reference names: ``"outer.inner"`` and ``["outer", inner]`` alike."""
    if isinstance(step, str):
        return step.split(".")
    if isinstance(step, Sequence):
        return [part if isinstance(part, str) else str(getattr(part, "id", part)) for part in step]
    return [step.id]  # a step or a nested workflow


@dataclass(frozen=True, slots=True)
class _Suspension:
    """One place a run is suspended at: a step's path, the foreach iteration, its label."""

    path: list[str]
    index: int | None
    label: str | None


def resolve_label(
    run_id: str,
    snapshot: RunSnapshot,
    label: str,
    step: StepRef | None,
    foreach_index: int | None,
) -> tuple[list[str], int | None]:
    """The path (and foreach iteration) of the suspended step carrying resume label `label`.

    With `step` too, the two must name the same step. A label carried by several iterations of
    one foreach resumes all of them when they are all the foreach's suspended iterations (as a
    resume by step would); otherwise `foreach_index` picks one.

    Raises:
        InvalidInputError: `label` is not a non-empty string, or `step` names another step.
        StepNotFoundError: No suspended step carries `label` (the error lists the labels that
            are there), or it names several steps or iterations and nothing picks one.
    """
    if not isinstance(label, str) or not label:
        raise InvalidInputError(f"label must be a non-empty string, got {label!r}")
    everywhere = _suspensions(snapshot)
    labelled = [s for s in everywhere if s.label == label]
    if not labelled:
        known = sorted({s.label for s in everywhere if s.label is not None})
        listing = ", ".join(f"'{k}'" for k in known) or "none"
        raise StepNotFoundError(
            f"no suspended step of run {run_id!r} has resume label '{label}'; "
            f"labels of its suspended steps: {listing}"
        )
    if step is not None:
        labelled = _agreeing(label, labelled, step_path(step))
    paths = list(dict.fromkeys(".".join(s.path) for s in labelled))
    if len(paths) > 1:
        listing = ", ".join(f"'{p}'" for p in paths)
        raise StepNotFoundError(
            f"resume label '{label}' is on several suspended steps of run {run_id!r} "
            f"({listing}); name the one to resume with step=..."
        )
    return labelled[0].path, _iteration(label, labelled, everywhere, foreach_index)


def _agreeing(label: str, labelled: list[_Suspension], wanted: list[str]) -> list[_Suspension]:
    """The suspensions carrying the label that `step=` names too (exactly, or by the end or
    the start of their path, as `pick_suspended` matches)."""
    n = len(wanted)
    agree = [s for s in labelled if s.path == wanted or wanted in (s.path[-n:], s.path[:n])]
    if not agree:
        on = ", ".join(dict.fromkeys(f"'{'.'.join(s.path)}'" for s in labelled))
        raise InvalidInputError(
            f"resume label '{label}' is on step {on}, but step='{'.'.join(wanted)}' names "
            f"another: give one of them, or both naming the same step"
        )
    return agree


def _iteration(
    label: str,
    labelled: list[_Suspension],
    everywhere: list[_Suspension],
    foreach_index: int | None,
) -> int | None:
    """The foreach iteration a label resume is for (``None``: not a foreach, or all of them)."""
    indices = sorted({s.index for s in labelled if s.index is not None})
    if foreach_index is not None or not indices:
        return foreach_index  # `check_foreach_index` checks a given index
    if len(indices) == 1:
        return indices[0]
    path = labelled[0].path
    suspended = sorted({s.index for s in everywhere if s.path == path and s.index is not None})
    if indices == suspended:
        return None  # every suspended iteration carries it: resume them all, as step= would
    raise StepNotFoundError(
        f"resume label '{label}' is on foreach iterations {indices} of step '{'.'.join(path)}' "
        f"(suspended: {suspended}); pick one with foreach_index=..."
    )


def _suspensions(snapshot: RunSnapshot) -> list[_Suspension]:
    """Everywhere the run is suspended, with the label each suspension carries.

    A suspended step's result keeps its label (``resumeLabel`` in its wire form); a foreach
    keeps its plain iterations' labels by index. Only what the run lists as suspended counts.
    """
    suspended = [list(p) for p in snapshot.suspended]
    return [s for s in _frame_suspensions(snapshot.frame, [], None) if s.path in suspended]


def _frame_suspensions(
    frame: FrameSnapshot, prefix: list[str], index: int | None
) -> list[_Suspension]:
    found = [
        _Suspension([*prefix, step_id], index, _label(raw.get("resumeLabel")))
        for step_id, raw in frame.steps.items()
        if raw.get("status") == "suspended"
    ]
    entry = frame.entry
    if isinstance(entry, NestedProgress):
        found += _frame_suspensions(entry.slot, [*prefix, entry.slot.workflow_id], index)
    elif isinstance(entry, ParallelProgress | BranchProgress):
        for step_id, slot in entry.slots.items():
            found += _frame_suspensions(slot, [*prefix, step_id], index)
    elif isinstance(entry, LoopProgress) and entry.slot is not None:
        found += _frame_suspensions(entry.slot, [*prefix, entry.slot.workflow_id], index)
    elif isinstance(entry, ForeachProgress):
        found += _foreach_suspensions(entry, prefix)
    return found


def _foreach_suspensions(progress: ForeachProgress, prefix: list[str]) -> list[_Suspension]:
    labels = progress.labels
    found: list[_Suspension] = []
    for i in sorted(progress.suspend_payloads):
        slot = progress.slots.get(i)
        if slot is not None:  # a nested workflow suspended inside: its steps say where
            found += _frame_suspensions(slot, [*prefix, slot.workflow_id], i)
            continue
        for path in progress.paths.get(i) or []:
            found.append(_Suspension([*prefix, *path], i, labels.get(i)))
    return found


def _label(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
