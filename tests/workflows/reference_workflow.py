"""The workflows of the Mastra reference captures, rebuilt with spanflow.

``tests/workflows/reference/mastra/README.md`` describes them: `ref-wf` is
add-one -> double (writes custom output) -> parallel[par-a, par-b] -> merge ->
branch[big | small] -> to-list -> foreach(per-item, concurrency 2) -> approve (suspends) ->
maybe-fail (throws when the input asks for it); `fail-wf` is add-one -> boom (throws). The step
logic reproduces the captured values: input ``{"value": 5}`` ends suspended at approve with
``{"reason": "needs approval", "total": 9077}``, and resuming with ``{"approvedBy": "alice"}``
ends with ``{"final": 9077}``.

The engine tests compare event sequences with the captures; the tracing tests reuse the same
workflows to compare span trees.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal, NotRequired

from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import TypedDict

from spanflow import ConditionContext, StepContext, Workflow, create_step, create_workflow

__all__ = [
    "REFERENCE_DIR",
    "RESUME_DATA",
    "Approval",
    "ApprovalRequest",
    "Approved",
    "Final",
    "RefInput",
    "build_fail_workflow",
    "build_reference_workflow",
    "load_capture",
]

REFERENCE_DIR = Path(__file__).resolve().parent / "reference" / "mastra"
"""The Mastra captures, copied into the repository so the suite needs nothing outside it."""

RESUME_DATA = {"approvedBy": "alice"}
"""What the captured resume stream resumed `approve` with."""


def load_capture(name: str) -> list[dict[str, Any]]:
    """The events of one ``events-*.jsonl`` capture, without the ``_t_ms`` receive times."""
    lines = (REFERENCE_DIR / name).read_text().splitlines()
    events = [json.loads(line) for line in lines if line.strip()]
    for event in events:
        event.pop("_t_ms", None)
    return events


# -- schemas ---------------------------------------------------------------------------------


class RefInput(TypedDict):
    """The workflow input; ``fail: True`` makes maybe-fail throw."""

    value: int
    fail: NotRequired[bool]


class Value(BaseModel):
    value: int


class AOut(BaseModel):
    a: int


class BOut(BaseModel):
    b: int


class AData(TypedDict):
    a: int


class BData(TypedDict):
    b: int


MergeIn = TypedDict("MergeIn", {"par-a": AData, "par-b": BData})
"""The parallel block's output, ``{step_id: output}``, declared as plain data: par-a and par-b
hand over `AOut` and `BOut` models, and merge receives them as dicts (hand-overs are
structural)."""


class Sized(BaseModel):
    value: int
    size: Literal["big", "small"]


class ToListIn(TypedDict, total=False):
    """The branch block's output: only the branch that ran is present."""

    big: Sized
    small: Sized


class Item(BaseModel):
    n: int


class Square(BaseModel):
    sq: int


class _Camel(BaseModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)


class ApprovalRequest(BaseModel):
    reason: str
    total: int


class Approval(_Camel):
    approved_by: str = Field(alias="approvedBy")


class Approved(_Camel):
    total: int
    approved_by: str = Field(alias="approvedBy")


class Final(BaseModel):
    final: int


# -- steps -----------------------------------------------------------------------------------


async def _add_one(ctx: StepContext[Value]) -> Value:
    return Value(value=ctx.input_data.value + 1)


async def _double(ctx: StepContext[Value]) -> Value:
    value = ctx.input_data.value
    await ctx.writer.write({"type": "custom-progress", "note": "doubling", "value": value})
    return Value(value=value * 2)


async def _par_a(ctx: StepContext[Value]) -> AOut:
    return AOut(a=ctx.input_data.value + 10)


async def _par_b(ctx: StepContext[Value]) -> BOut:
    return BOut(b=ctx.input_data.value + 20)


async def _merge(ctx: StepContext[MergeIn]) -> Value:
    return Value(value=ctx.input_data["par-a"]["a"] + ctx.input_data["par-b"]["b"])


async def _big(ctx: StepContext[Value]) -> Sized:
    return Sized(value=ctx.input_data.value, size="big")


async def _small(ctx: StepContext[Value]) -> Sized:
    return Sized(value=ctx.input_data.value, size="small")


async def _to_list(ctx: StepContext[ToListIn]) -> list[Item]:
    chosen = ctx.input_data.get("big") or ctx.input_data["small"]
    return [Item(n=chosen.value + i) for i in range(3)]


async def _per_item(ctx: StepContext[Item]) -> Square:
    return Square(sq=ctx.input_data.n * ctx.input_data.n)


async def _approve(ctx: StepContext[list[Square]]) -> Approved:
    total = sum(square.sq for square in ctx.input_data)
    if ctx.resume_data is None:
        ctx.suspend(ApprovalRequest(reason="needs approval", total=total))
    approval: Approval = ctx.resume_data
    return Approved(total=total, approved_by=approval.approved_by)


async def _maybe_fail(ctx: StepContext[Approved]) -> Final:
    init: RefInput = ctx.get_init_data()
    if init.get("fail"):
        raise RuntimeError("maybe-fail: the input asked for it")
    return Final(final=ctx.input_data.total)


def _is_big(ctx: ConditionContext) -> bool:
    value: Value = ctx.input_data
    return value.value > 50


def _is_small(ctx: ConditionContext) -> bool:
    value: Value = ctx.input_data
    return value.value <= 50


def build_reference_workflow() -> Workflow:
    """A fresh, committed `ref-wf` (fresh each call: each gets its own in-memory storage)."""
    add_one = create_step(id="add-one", input_schema=Value, output_schema=Value, execute=_add_one)
    double = create_step(id="double", input_schema=Value, output_schema=Value, execute=_double)
    par_a = create_step(id="par-a", input_schema=Value, output_schema=AOut, execute=_par_a)
    par_b = create_step(id="par-b", input_schema=Value, output_schema=BOut, execute=_par_b)
    merge = create_step(id="merge", input_schema=MergeIn, output_schema=Value, execute=_merge)
    big = create_step(id="big", input_schema=Value, output_schema=Sized, execute=_big)
    small = create_step(id="small", input_schema=Value, output_schema=Sized, execute=_small)
    to_list = create_step(
        id="to-list", input_schema=ToListIn, output_schema=list[Item], execute=_to_list
    )
    per_item = create_step(
        id="per-item", input_schema=Item, output_schema=Square, execute=_per_item
    )
    approve = create_step(
        id="approve",
        input_schema=list[Square],
        output_schema=Approved,
        suspend_schema=ApprovalRequest,
        resume_schema=Approval,
        execute=_approve,
    )
    maybe_fail = create_step(
        id="maybe-fail", input_schema=Approved, output_schema=Final, execute=_maybe_fail
    )
    return (
        create_workflow(id="ref-wf", input_schema=RefInput, output_schema=Final)
        .then(add_one)
        .then(double)
        .parallel([par_a, par_b])
        .then(merge)
        .branch([(_is_big, big), (_is_small, small)])
        .then(to_list)
        .foreach(per_item, concurrency=2)
        .then(approve)
        .then(maybe_fail)
        .commit()
    )


async def _boom(ctx: StepContext[Value]) -> Value:
    raise RuntimeError("boom: thrown directly")


def build_fail_workflow() -> Workflow:
    """A fresh, committed `fail-wf`: add-one, then a step that throws."""
    add_one = create_step(id="add-one", input_schema=Value, output_schema=Value, execute=_add_one)
    boom = create_step(id="boom", input_schema=Value, output_schema=Value, execute=_boom)
    return create_workflow(id="fail-wf", input_schema=Value).then(add_one).then(boom).commit()
