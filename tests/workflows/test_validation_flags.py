"""``create_workflow(validate_inputs=False, validate_outputs=False)``: validation switched off.

Mastra's ``options.validateInputs``: step inputs are passed as they come and recorded raw.
``validate_outputs=False`` does the same for what a step hands out (its output and its suspend
payload). Output validation is on by default, unlike Mastra, which never validates outputs.
Each workflow's flags govern its own steps, nested workflows included.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from spanflow import InvalidInputError, StepContext, Workflow, create_step, create_workflow

from .support import fn_step


class Point(BaseModel):
    x: int
    y: int


def recorder(seen: list[Any], step_id: str = "use") -> Any:
    async def use(ctx: StepContext[Any]) -> Any:
        seen.append(ctx.input_data)
        return ctx.input_data

    return create_step(id=step_id, input_schema=Point, execute=use)


def bad_point_then_use(seen: list[Any], *, validate_inputs: bool = True) -> Workflow:
    return (
        create_workflow(id="inputs", validate_inputs=validate_inputs)
        .then(fn_step("make", lambda _: {"x": "left"}))
        .then(recorder(seen))
        .commit()
    )


async def test_step_inputs_are_validated_by_default() -> None:
    seen: list[Any] = []

    result = await (await bad_point_then_use(seen).create_run()).start(None)

    assert result.status == "failed"
    assert isinstance(result.error, InvalidInputError)
    assert str(result.error).startswith("invalid input of step 'use': field 'x': ")
    assert seen == []


async def test_without_input_validation_a_step_gets_its_input_as_it_came_and_records_it_raw() -> (
    None
):
    seen: list[Any] = []
    workflow = bad_point_then_use(seen, validate_inputs=False)
    run = await workflow.create_run()

    result = await run.start(None)

    assert result.status == "success"
    assert seen == [{"x": "left"}]
    assert result.steps["use"].payload == {"x": "left"}
    stored = await workflow.storage.get_run(run.run_id)
    assert stored is not None
    assert stored.snapshot["frame"]["steps"]["use"]["payload"] == {"x": "left"}


async def test_without_input_validation_a_valid_input_is_not_turned_into_the_model() -> None:
    seen: list[Any] = []
    workflow = (
        create_workflow(id="raw-but-valid", validate_inputs=False).then(recorder(seen)).commit()
    )

    await (await workflow.create_run()).start({"x": 1, "y": 2})

    assert seen == [{"x": 1, "y": 2}]


def returns_half_a_point(
    *, validate_inputs: bool = True, validate_outputs: bool = True
) -> Workflow:
    half = create_step(id="half", output_schema=Point, execute=lambda ctx: {"x": 1})
    return (
        create_workflow(
            id="outputs", validate_inputs=validate_inputs, validate_outputs=validate_outputs
        )
        .then(half)
        .commit()
    )


async def test_step_outputs_are_validated_by_default_unlike_mastra() -> None:
    result = await (await returns_half_a_point().create_run()).start(None)

    assert result.status == "failed"
    assert str(result.error) == "invalid output of step 'half': field 'y': Field required"


async def test_without_output_validation_an_output_is_recorded_as_the_step_returned_it() -> None:
    result = await (await returns_half_a_point(validate_outputs=False).create_run()).start(None)

    assert result.status == "success"
    assert result.steps["half"].output == {"x": 1}
    assert result.result == {"x": 1}


async def test_turning_inputs_off_leaves_output_validation_on() -> None:
    result = await (await returns_half_a_point(validate_inputs=False).create_run()).start(None)

    assert result.status == "failed"
    assert "invalid output of step 'half'" in str(result.error)


async def test_without_output_validation_a_suspend_payload_is_kept_as_given() -> None:
    class Question(BaseModel):
        question: str

    async def ask(ctx: StepContext[Any]) -> None:
        ctx.suspend({"topic": "budget"})

    def workflow(validate_outputs: bool = True) -> Workflow:
        step = create_step(id="ask", suspend_schema=Question, execute=ask)
        return create_workflow(id="asks", validate_outputs=validate_outputs).then(step).commit()

    checked = await (await workflow().create_run()).start(None)
    unchecked = await (await workflow(validate_outputs=False).create_run()).start(None)

    assert checked.status == "failed"
    assert "suspend payload of step 'ask': field 'question'" in str(checked.error)
    assert unchecked.status == "suspended"
    assert unchecked.suspend_payload == {"ask": {"topic": "budget"}}


async def test_state_is_validated_whatever_the_flags() -> None:
    class Tally(BaseModel):
        count: int

    async def corrupt(ctx: StepContext[Any]) -> None:
        ctx.set_state({"count": "many"})

    workflow = (
        create_workflow(
            id="state-checked", state_schema=Tally, validate_inputs=False, validate_outputs=False
        )
        .then(create_step(id="corrupt", execute=corrupt))
        .commit()
    )

    result = await (await workflow.create_run()).start(None, initial_state={"count": 0})

    assert result.status == "failed"
    assert "invalid state set by step 'corrupt': field 'count'" in str(result.error)


async def test_a_nested_workflow_validates_its_steps_by_its_own_flag_not_the_outers() -> None:
    inner_seen: list[Any] = []
    outer_seen: list[Any] = []
    checking_inner = create_workflow(id="checking").then(recorder(inner_seen, "inner-use")).commit()
    lenient = (
        create_workflow(id="lenient", validate_inputs=False)
        .then(fn_step("make", lambda _: {"x": "left"}))
        .then(recorder(outer_seen, "outer-use"))
        .then(checking_inner)
        .commit()
    )

    result = await (await lenient.create_run()).start(None)

    assert outer_seen == [{"x": "left"}]  # the lenient outer workflow's own step: raw
    assert inner_seen == []  # the nested workflow checks its step's input
    assert result.status == "failed"
    assert str(result.error).startswith("invalid input of step 'inner-use': field 'x': ")


async def test_a_lenient_nested_workflow_passes_raw_inputs_inside_a_checking_outer_one() -> None:
    seen: list[Any] = []
    lenient_inner = (
        create_workflow(id="lenient-inner", validate_inputs=False)
        .then(recorder(seen, "inner-use"))
        .commit()
    )
    checking = (
        create_workflow(id="checking-outer")
        .then(fn_step("make", lambda _: {"x": "left"}))
        .then(lenient_inner)
        .commit()
    )

    result = await (await checking.create_run()).start(None)

    assert result.status == "success"
    assert seen == [{"x": "left"}]


async def test_without_output_validation_a_resumed_step_sees_the_stored_json() -> None:
    """Nothing is validated on the way in or out, so nothing is on loading either: a value a
    step handed over as it was is, after a resume, its stored JSON form."""
    seen: list[Any] = []

    async def gate(ctx: StepContext[Any]) -> None:
        if ctx.resume_data is None:
            ctx.suspend(None)
        seen.append(ctx.input_data)

    workflow = (
        create_workflow(id="raw-resume", validate_outputs=False)
        .then(create_step(id="make", output_schema=Point, execute=lambda ctx: Point(x=1, y=2)))
        .then(create_step(id="gate", execute=gate))
        .commit()
    )
    run = await workflow.create_run()
    await run.start(None)

    await run.resume("go")

    assert seen == [{"x": 1, "y": 2}]
    assert type(seen[0]) is dict
