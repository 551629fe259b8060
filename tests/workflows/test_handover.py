"""Hand-overs between steps are structural, and the same whether a run is fresh or continued.

A step's input schema is checked against the previous output's fields, not its class: a value
that is not already an instance of the target type is validated from its JSON-compatible form.
A step without an input schema receives the previous output as the producing step handed it
over (validated by that step's output schema), also after its run was suspended and resumed, or
restarted, from any store: stored JSON is validated again with the producing step's schema.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import pytest
from pydantic import BaseModel
from typing_extensions import TypedDict

from spanflow import (
    ConditionContext,
    InvalidInputError,
    Step,
    StepContext,
    Workflow,
    create_step,
    create_workflow,
)
from spanflow.storage import Storage
from tests.support.stores import StoreSpec

from .support import fn_step

# -- the types handed over -------------------------------------------------------------------


class AOut(BaseModel):
    a: int


class BOut(BaseModel):
    b: int


class Point(BaseModel):
    x: int
    y: int


class Item(BaseModel):
    n: int


class Square(BaseModel):
    sq: int


class Counter(BaseModel):
    count: int


class Start(BaseModel):
    n: int
    pause: Literal["no", "suspend", "crash"] = "no"


class AData(TypedDict):
    a: int


class BData(TypedDict):
    b: int


class PairData(TypedDict):
    a: AData
    b: BData


class ACData(TypedDict):
    a: int
    c: int


class NeedsC(TypedDict):
    """The parallel's output, but with a field `c` that par-a does not produce."""

    a: ACData
    b: BData


class APlain(BaseModel):
    a: int


class BPlain(BaseModel):
    b: int


class Pair(BaseModel):
    """Another model with the fields of the parallel's output."""

    a: APlain
    b: BPlain


def shape(value: Any) -> Any:
    """What a step saw: each model as ``(class name, fields)``, containers walked, data as is."""
    if isinstance(value, BaseModel):
        return (type(value).__name__, value.model_dump())
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(item) for item in value]
    return value


# -- structural validation ---------------------------------------------------------------------


def produce_a(ctx: StepContext[Any]) -> AOut:
    return AOut(a=1)


def produce_b(ctx: StepContext[Any]) -> BOut:
    return BOut(b=2)


def receiver(input_schema: Any, seen: list[Any], step_id: str = "merge") -> Step[Any, Any]:
    async def execute(ctx: StepContext[Any]) -> None:
        seen.append(ctx.input_data)

    return create_step(id=step_id, input_schema=input_schema, execute=execute)


def after_parallel(input_schema: Any, seen: list[Any]) -> Workflow:
    return (
        create_workflow(id="after-parallel")
        .parallel(
            [
                create_step(id="a", output_schema=AOut, execute=produce_a),
                create_step(id="b", output_schema=BOut, execute=produce_b),
            ]
        )
        .then(receiver(input_schema, seen))
        .commit()
    )


@pytest.mark.parametrize(
    ("input_schema", "expected"),
    [
        pytest.param(dict[str, dict[str, int]], {"a": {"a": 1}, "b": {"b": 2}}, id="dict-of-dicts"),
        pytest.param(dict[str, Any], {"a": ("AOut", {"a": 1}), "b": ("BOut", {"b": 2})}, id="any"),
        pytest.param(PairData, {"a": {"a": 1}, "b": {"b": 2}}, id="typed-dict"),
        pytest.param(Pair, ("Pair", {"a": {"a": 1}, "b": {"b": 2}}), id="another-model"),
    ],
)
async def test_a_step_after_parallel_may_declare_its_input_as_any_type_with_those_fields(
    input_schema: Any, expected: Any
) -> None:
    seen: list[Any] = []

    result = await (await after_parallel(input_schema, seen).create_run()).start(None)

    assert result.status == "success"
    assert [shape(value) for value in seen] == [expected]


async def test_another_models_fields_are_read_as_that_model_declares_them() -> None:
    seen: list[Any] = []

    await (await after_parallel(Pair, seen).create_run()).start(None)

    assert isinstance(seen[0], Pair)
    assert isinstance(seen[0].a, APlain)


async def test_a_structural_mismatch_fails_the_step_naming_the_field() -> None:
    seen: list[Any] = []

    result = await (await after_parallel(NeedsC, seen).create_run()).start(None)

    assert result.status == "failed"
    assert isinstance(result.error, InvalidInputError)
    assert str(result.error) == "invalid input of step 'merge': field 'a.c': Field required"
    assert seen == []


async def test_a_model_handed_to_a_step_declaring_that_model_is_the_same_object() -> None:
    made: list[Point] = []
    seen: list[Any] = []

    async def make(ctx: StepContext[Any]) -> Point:
        made.append(Point(x=1, y=2))
        return made[0]

    workflow = (
        create_workflow(id="same-object")
        .then(create_step(id="make", output_schema=Point, execute=make))
        .then(receiver(Point, seen))
        .commit()
    )
    await (await workflow.create_run()).start(None)

    assert seen[0] is made[0]


async def test_a_step_after_branch_may_declare_a_typed_dict_of_plain_data() -> None:
    class Chosen(TypedDict, total=False):
        a: AData
        b: BData

    seen: list[Any] = []
    workflow = (
        create_workflow(id="after-branch")
        .branch(
            [
                (lambda ctx: True, create_step(id="a", output_schema=AOut, execute=produce_a)),
                (lambda ctx: False, create_step(id="b", output_schema=BOut, execute=produce_b)),
            ]
        )
        .then(receiver(Chosen, seen))
        .commit()
    )

    await (await workflow.create_run()).start(None)

    assert seen == [{"a": {"a": 1}}]


class SquareData(TypedDict):
    sq: int


@pytest.mark.parametrize(
    "input_schema", [list[dict[str, int]], list[SquareData]], ids=["dicts", "typed-dicts"]
)
async def test_a_step_after_foreach_may_declare_a_list_of_plain_data(input_schema: Any) -> None:
    async def square(ctx: StepContext[Item]) -> Square:
        return Square(sq=ctx.input_data.n**2)

    seen: list[Any] = []
    workflow = (
        create_workflow(id="after-foreach")
        .foreach(create_step(id="square", input_schema=Item, output_schema=Square, execute=square))
        .then(receiver(input_schema, seen))
        .commit()
    )

    await (await workflow.create_run()).start([{"n": 2}, {"n": 3}])

    assert seen == [[{"sq": 4}, {"sq": 9}]]


async def test_a_step_after_map_or_a_nested_workflow_receives_their_models_as_data() -> None:
    inner = (
        create_workflow(id="inner", output_schema=Point)
        .then(fn_step("locate", lambda _: {"x": 5, "y": 6}))
        .commit()
    )
    seen: list[Any] = []
    workflow = (
        create_workflow(id="after-map")
        .map(lambda ctx: AOut(a=7), id="to-a")
        .then(receiver(AData, seen, step_id="from-map"))
        .then(inner)
        .then(receiver(dict[str, int], seen, step_id="from-nested"))
        .commit()
    )

    await (await workflow.create_run()).start(None)

    assert seen == [{"a": 7}, {"x": 5, "y": 6}]


async def test_resume_data_is_validated_structurally() -> None:
    class Decision(BaseModel):
        approved: bool

    class DecisionData(TypedDict):
        approved: bool

    seen: list[Any] = []

    async def approve(ctx: StepContext[Any]) -> None:
        if ctx.resume_data is None:
            ctx.suspend(None)
        seen.append(ctx.resume_data)

    workflow = (
        create_workflow(id="structural-resume")
        .then(create_step(id="approve", resume_schema=DecisionData, execute=approve))
        .commit()
    )
    run = await workflow.create_run()
    await run.start(None)

    result = await run.resume(Decision(approved=True))

    assert result.status == "success"
    assert seen == [{"approved": True}]


# -- the same types fresh, resumed and restarted ----------------------------------------------


def make_point(ctx: StepContext[Start]) -> dict[str, int]:
    return {"x": ctx.input_data.n, "y": 2}  # a dict: the output schema makes it a Point


def point_step(step_id: str = "make") -> Step[Any, Any]:
    return create_step(id=step_id, input_schema=Start, output_schema=Point, execute=make_point)


def ab_steps() -> list[Step[Any, Any]]:
    async def a(ctx: StepContext[Point]) -> AOut:
        return AOut(a=ctx.input_data.x + 1)

    async def b(ctx: StepContext[Point]) -> BOut:
        return BOut(b=ctx.input_data.x + 2)

    return [
        create_step(id="a", input_schema=Point, output_schema=AOut, execute=a),
        create_step(id="b", input_schema=Point, output_schema=BOut, execute=b),
    ]


def items_step(ctx: StepContext[Start]) -> list[dict[str, int]]:
    return [{"n": ctx.input_data.n}, {"n": ctx.input_data.n + 1}]


def square(ctx: StepContext[Item]) -> Square:
    return Square(sq=ctx.input_data.n**2)


def count_up(ctx: StepContext[Any]) -> Counter:
    before = ctx.input_data.count if isinstance(ctx.input_data, Counter) else 0
    return Counter(count=before + 1)


def reached_two(ctx: ConditionContext) -> bool:
    counter: Counter = ctx.input_data
    return counter.count >= 2


def nested(workflow_id: str, output_schema: Any) -> Workflow:
    return (
        create_workflow(id=workflow_id, output_schema=output_schema)
        .then(point_step("inner-make"))
        .commit()
    )


Producer = Callable[[Workflow], Workflow]
"""Adds the entries whose output the watching step receives."""

PRODUCERS: dict[str, tuple[Producer, list[str], Any]] = {
    # name: (the entries, the step ids the watcher looks up, what the watcher must receive)
    "step": (lambda w: w.then(point_step()), ["make"], ("Point", {"x": 3, "y": 2})),
    "step without output schema": (
        lambda w: w.then(fn_step("raw", lambda start: {"x": start.n})),
        ["raw"],
        {"x": 3},
    ),
    "parallel": (
        lambda w: w.then(point_step()).parallel(ab_steps()),
        ["a", "b"],
        {"a": ("AOut", {"a": 4}), "b": ("BOut", {"b": 5})},
    ),
    "branch": (
        lambda w: w.then(point_step()).branch(
            [(lambda ctx: True, ab_steps()[0]), (lambda ctx: False, ab_steps()[1])]
        ),
        ["a", "b"],
        {"a": ("AOut", {"a": 4})},
    ),
    "foreach": (
        lambda w: w.then(
            create_step(
                id="items", input_schema=Start, output_schema=list[Item], execute=items_step
            )
        ).foreach(
            create_step(id="square", input_schema=Item, output_schema=Square, execute=square),
            concurrency=2,
        ),
        ["items", "square"],
        [("Square", {"sq": 9}), ("Square", {"sq": 16})],
    ),
    "map": (
        lambda w: w.map(lambda ctx: {"x": 1, "y": 1}, id="shape", output_schema=Point),
        ["shape"],
        ("Point", {"x": 1, "y": 1}),
    ),
    "nested workflow": (
        lambda w: w.then(nested("inner", Point)),
        ["inner"],
        ("Point", {"x": 3, "y": 2}),
    ),
    "nested workflow without output schema": (
        lambda w: w.then(nested("inner", None)),
        ["inner"],
        ("Point", {"x": 3, "y": 2}),
    ),
    "loop": (
        lambda w: w.dountil(
            create_step(id="count", output_schema=Counter, execute=count_up), reached_two
        ),
        ["count"],
        ("Counter", {"count": 2}),
    ),
    "sleep": (lambda w: w.then(point_step()).sleep(0), ["make"], ("Point", {"x": 3, "y": 2})),
}


@dataclass
class Watcher:
    """A step without an input schema that records what it receives, after the producer.

    It suspends (``pause="suspend"``) or hangs forever, as in a dying process
    (``pause="crash"``), the first time it runs; what it records comes from the run that gets
    past that point.
    """

    seen: list[dict[str, Any]] = field(default_factory=list)
    runs: int = 0
    hanging: asyncio.Event = field(default_factory=asyncio.Event)

    def workflow(self, producer: str, storage: Storage) -> Workflow:
        build, looked_up, _ = PRODUCERS[producer]
        start = create_workflow(id="handover", input_schema=Start, storage=storage)
        return build(start).then(self.step(looked_up)).commit()

    def step(self, looked_up: list[str]) -> Step[Any, Any]:
        async def watch(ctx: StepContext[Any]) -> None:
            self.runs += 1
            pause = ctx.get_init_data().pause
            if pause == "suspend" and ctx.resume_data is None:
                ctx.suspend(None)
            if pause == "crash" and self.runs == 1:
                self.hanging.set()
                await asyncio.Event().wait()
            self.seen.append(
                {
                    "input": shape(ctx.input_data),
                    "results": {i: shape(ctx.get_step_result(i)) for i in looked_up},
                }
            )

        return create_step(id="watch", execute=watch)


async def fresh_run(producer: str, storage: Storage) -> list[dict[str, Any]]:
    watcher = Watcher()
    run = await watcher.workflow(producer, storage).create_run()
    result = await run.start({"n": 3})
    assert result.status == "success"
    return watcher.seen


@pytest.mark.parametrize("producer", list(PRODUCERS))
async def test_a_step_sees_the_same_values_and_types_fresh_and_after_a_resume(
    producer: str, stores: tuple[Storage, Storage]
) -> None:
    first, second = stores
    fresh = await fresh_run(producer, first)
    run = await Watcher().workflow(producer, first).create_run()
    suspended = await run.start({"n": 3, "pause": "suspend"})

    watcher = Watcher()  # the workflow built again, on another store object: nothing shared
    again = await watcher.workflow(producer, second).create_run(run_id=run.run_id)
    resumed = await again.resume("go")

    assert suspended.status == "suspended"
    assert resumed.status == "success"
    assert [seen["input"] for seen in fresh] == [PRODUCERS[producer][2]]
    assert watcher.seen == fresh


@pytest.mark.parametrize("producer", list(PRODUCERS))
async def test_a_step_sees_the_same_values_and_types_fresh_and_after_a_restart(
    producer: str, shared_store_spec: StoreSpec
) -> None:
    first, second = shared_store_spec.open(), shared_store_spec.open()
    try:
        fresh = await fresh_run(producer, first)
        dying = Watcher()
        run = await dying.workflow(producer, first).create_run()
        starter = asyncio.create_task(run.start({"n": 3, "pause": "crash"}))
        await dying.hanging.wait()
        starter.cancel()  # the executor dies: the run stays "running" at the watcher's entry
        with pytest.raises(asyncio.CancelledError):
            await starter

        watcher = Watcher(runs=1)  # "already crashed once": runs through this time
        again = await watcher.workflow(producer, second).create_run(run_id=run.run_id)
        restarted = await again.restart()
    finally:
        await first.close()
        await second.close()

    assert restarted.status == "success"
    assert watcher.seen == fresh
    assert [seen["input"] for seen in fresh] == [PRODUCERS[producer][2]]


@dataclass
class Gate:
    """A step without an input schema that suspends on its first call (unless resumed), and
    records what it received when it runs through."""

    seen: list[Any] = field(default_factory=list)
    calls: int = 0

    def step(self, step_id: str) -> Step[Any, Any]:
        async def gate(ctx: StepContext[Any]) -> Any:
            self.calls += 1
            if ctx.resume_data is None and self.calls == 1:
                ctx.suspend(None)
            self.seen.append(shape(ctx.input_data))
            return ctx.input_data

        return create_step(id=step_id, execute=gate)


async def test_a_resumed_parallel_branch_sees_its_input_as_the_step_before_produced_it(
    stores: tuple[Storage, Storage],
) -> None:
    first, second = stores

    def workflow(gate: Gate, storage: Storage) -> Workflow:
        return (
            create_workflow(id="par-gate", input_schema=Start, storage=storage)
            .then(point_step())
            .parallel([gate.step("gate"), ab_steps()[0]])
            .commit()
        )

    run = await workflow(Gate(), first).create_run()
    await run.start({"n": 3})
    gate = Gate()
    result = await (await workflow(gate, second).create_run(run_id=run.run_id)).resume("go")

    assert result.status == "success"
    assert gate.seen == [("Point", {"x": 3, "y": 2})]
    assert shape(result.result) == {"gate": ("Point", {"x": 3, "y": 2}), "a": ("AOut", {"a": 4})}


async def test_a_resumed_foreach_iteration_sees_its_item_as_the_step_before_produced_it(
    stores: tuple[Storage, Storage],
) -> None:
    first, second = stores

    def workflow(gate: Gate, storage: Storage) -> Workflow:
        return (
            create_workflow(id="each-gate", input_schema=Start, storage=storage)
            .then(
                create_step(
                    id="items", input_schema=Start, output_schema=list[Item], execute=items_step
                )
            )
            .foreach(gate.step("gate"))
            .commit()
        )

    run = await workflow(Gate(), first).create_run()
    await run.start({"n": 3})
    gate = Gate()
    result = await (await workflow(gate, second).create_run(run_id=run.run_id)).resume("go")

    assert result.status == "success"
    assert gate.seen == [("Item", {"n": 3}), ("Item", {"n": 4})]  # resumed, then the next
    assert shape(result.steps["gate"].payload) == [("Item", {"n": 3}), ("Item", {"n": 4})]


async def test_a_loop_resumed_in_a_later_iteration_sees_its_own_previous_output(
    stores: tuple[Storage, Storage],
) -> None:
    first, second = stores

    def workflow(gate: Gate, storage: Storage) -> Workflow:
        async def count_then_ask(ctx: StepContext[Any]) -> Counter:
            gate.seen.append(shape(ctx.input_data))
            counter = count_up(ctx)
            if counter.count == 2 and ctx.resume_data is None:
                ctx.suspend(None)
            return counter

        step = create_step(id="count", output_schema=Counter, execute=count_then_ask)
        return (
            create_workflow(id="loop-gate", input_schema=Start, storage=storage)
            .dountil(step, reached_two)
            .commit()
        )

    fresh_gate = Gate()
    run = await workflow(fresh_gate, first).create_run()
    await run.start({"n": 3})
    gate = Gate()
    result = await (await workflow(gate, second).create_run(run_id=run.run_id)).resume("go")

    assert fresh_gate.seen == [("Start", {"n": 3, "pause": "no"}), ("Counter", {"count": 1})]
    assert gate.seen == [("Counter", {"count": 1})]
    assert result.result == Counter(count=2)


async def test_a_nested_workflow_without_an_input_schema_resumed_inside_sees_the_outer_value(
    stores: tuple[Storage, Storage],
) -> None:
    first, second = stores

    def workflow(gate: Gate, storage: Storage) -> Workflow:
        inner = create_workflow(id="inner").then(gate.step("gate")).commit()
        return (
            create_workflow(id="outer-gate", input_schema=Start, storage=storage)
            .then(point_step())
            .then(inner)
            .commit()
        )

    fresh_gate = Gate(calls=1)  # runs through: what a fresh run hands in
    fresh = await (await workflow(fresh_gate, first).create_run()).start({"n": 3})
    run = await workflow(Gate(), first).create_run()
    suspended = await run.start({"n": 3})
    gate = Gate()
    resumed = await (await workflow(gate, second).create_run(run_id=run.run_id)).resume(
        "go", step="inner.gate"
    )

    assert suspended.status == "suspended"
    assert fresh.status == resumed.status == "success"
    assert gate.seen == fresh_gate.seen == [("Point", {"x": 3, "y": 2})]
    assert shape(resumed.result) == shape(fresh.result) == ("Point", {"x": 3, "y": 2})
