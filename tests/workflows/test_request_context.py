"""`RequestContext`: per-run values every step can read, stored with the run."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from spanflow import (
    ConditionContext,
    InvalidInputError,
    RequestContext,
    StepContext,
    create_step,
    create_workflow,
)

from .support import fn_step


def test_get_set_has_and_to_dict() -> None:
    context = RequestContext({"user": "ada"})

    context.set("locale", "en-GB")
    context["when"] = date(2024, 5, 1)

    assert context.get("user") == "ada"
    assert context.get("missing") is None
    assert context.get("missing", "fallback") == "fallback"
    assert context.has("locale")
    assert not context.has("missing")
    assert context.to_dict() == {"user": "ada", "locale": "en-GB", "when": "2024-05-01"}


def test_it_is_a_mutable_mapping() -> None:
    context = RequestContext()
    context["a"] = 1
    context.update(b=2)

    del context["a"]

    assert dict(context) == {"b": 2}
    assert len(context) == 1
    assert list(context) == ["b"]


def test_keys_must_be_strings() -> None:
    context = RequestContext()
    bad_key: Any = 42

    with pytest.raises(InvalidInputError, match="keys must be strings, got int"):
        context[bad_key] = "x"


def test_coerce_keeps_a_context_and_wraps_a_mapping() -> None:
    context = RequestContext({"a": 1})

    assert RequestContext.coerce(context) is context
    assert RequestContext.coerce({"a": 1}).to_dict() == {"a": 1}
    assert RequestContext.coerce(None).to_dict() == {}


def test_to_dict_names_a_value_that_is_not_json() -> None:
    context = RequestContext({"socket": object()})

    with pytest.raises(InvalidInputError, match=r"request_context\['socket'\]"):
        context.to_dict()


async def test_steps_and_conditions_see_the_runs_context() -> None:
    seen: list[tuple[str, Any]] = []

    async def read(ctx: StepContext[Any]) -> str:
        seen.append(("step", ctx.request_context.get("tenant")))
        return str(ctx.request_context["tenant"])

    def condition(ctx: ConditionContext) -> bool:
        seen.append(("condition", ctx.request_context.get("tenant")))
        return True

    workflow = (
        create_workflow(id="ctx")
        .branch([(condition, create_step(id="read", execute=read))])
        .commit()
    )

    result = await (await workflow.create_run()).start(None, request_context={"tenant": "acme"})

    assert result.result == {"read": "acme"}
    assert seen == [("condition", "acme"), ("step", "acme")]


async def test_a_given_context_object_is_the_one_steps_see() -> None:
    context = RequestContext({"n": 1})

    async def bump(ctx: StepContext[Any]) -> None:
        ctx.request_context.set("n", ctx.request_context.get("n") + 1)

    workflow = create_workflow(id="shared-ctx").then(create_step(id="bump", execute=bump))

    await (await workflow.commit().create_run()).start(None, request_context=context)

    assert context.get("n") == 2


async def test_the_context_is_stored_without_credentials_and_restored_on_resume() -> None:
    seen: list[dict[str, Any]] = []

    async def ask(ctx: StepContext[Any]) -> None:
        seen.append(ctx.request_context.to_dict())
        if ctx.resume_data is None:
            ctx.suspend(None)

    workflow = create_workflow(id="stored-ctx").then(create_step(id="ask", execute=ask)).commit()
    run = await workflow.create_run()
    await run.start(None, request_context={"tenant": "acme", "api_key": "sk-secret"})

    stored = await workflow.storage.get_run(run.run_id)
    assert stored is not None
    assert stored.snapshot["requestContext"] == {"tenant": "acme"}

    await (await workflow.create_run(run_id=run.run_id)).resume("go")

    assert seen == [{"tenant": "acme", "api_key": "sk-secret"}, {"tenant": "acme"}]


async def test_a_resume_can_bring_its_own_context() -> None:
    seen: list[Any] = []

    async def ask(ctx: StepContext[Any]) -> None:
        seen.append(ctx.request_context.get("user"))
        if ctx.resume_data is None:
            ctx.suspend(None)

    workflow = create_workflow(id="resume-ctx").then(create_step(id="ask", execute=ask)).commit()
    run = await workflow.create_run()
    await run.start(None, request_context={"user": "first"})

    await run.resume("go", request_context=RequestContext({"user": "approver"}))

    assert seen == ["first", "approver"]


async def test_a_workflow_without_a_context_gets_an_empty_one() -> None:
    workflow = create_workflow(id="no-ctx").then(fn_step("s", lambda v: v)).commit()
    run = await workflow.create_run()

    await run.start(None)

    stored = await workflow.storage.get_run(run.run_id)
    assert stored is not None
    assert stored.snapshot["requestContext"] == {}
