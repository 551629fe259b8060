"""Building workflows: mistakes in a definition raise `WorkflowDefinitionError` at once."""

from __future__ import annotations

from typing import Any

import pytest

from spanflow import Workflow, WorkflowDefinitionError, create_workflow

from .support import const


def test_duplicate_step_ids_are_refused() -> None:
    workflow = create_workflow(id="dupes").then(const("same", 1))

    with pytest.raises(WorkflowDefinitionError, match="already has a step with id 'same'"):
        workflow.then(const("same", 2))


def test_duplicate_step_ids_inside_a_parallel_block_are_refused() -> None:
    with pytest.raises(WorkflowDefinitionError, match="'twin'"):
        create_workflow(id="dupes").parallel([const("twin", 1), const("twin", 2)])


def test_an_uncommitted_nested_workflow_is_refused() -> None:
    inner = create_workflow(id="inner").then(const("a", 1))

    with pytest.raises(WorkflowDefinitionError, match="nested workflow 'inner' must be committed"):
        create_workflow(id="outer").then(inner)


def test_an_empty_workflow_cannot_be_committed() -> None:
    with pytest.raises(WorkflowDefinitionError, match="has no steps"):
        create_workflow(id="empty").commit()


async def test_create_run_on_an_uncommitted_workflow_raises() -> None:
    workflow = create_workflow(id="draft").then(const("a", 1))

    with pytest.raises(WorkflowDefinitionError, match=r"not committed: call \.commit\(\)"):
        await workflow.create_run()


async def test_create_run_on_an_empty_workflow_raises() -> None:
    with pytest.raises(WorkflowDefinitionError):
        await create_workflow(id="empty").create_run()


def test_a_committed_workflow_cannot_grow() -> None:
    workflow = create_workflow(id="frozen").then(const("a", 1)).commit()

    with pytest.raises(WorkflowDefinitionError, match="is committed"):
        workflow.then(const("b", 2))


def test_a_workflow_cannot_contain_itself() -> None:
    workflow = create_workflow(id="self").then(const("a", 1)).commit()

    with pytest.raises(WorkflowDefinitionError):
        workflow.then(workflow)


@pytest.mark.parametrize("bad_id", ["", "has.dot"])
def test_a_workflow_id_must_be_non_empty_and_dot_free(bad_id: str) -> None:
    with pytest.raises(WorkflowDefinitionError, match="id"):
        create_workflow(id=bad_id)


@pytest.mark.parametrize("concurrency", [0, -1])
def test_foreach_concurrency_must_be_at_least_one(concurrency: int) -> None:
    with pytest.raises(WorkflowDefinitionError, match="concurrency"):
        create_workflow(id="fe").foreach(const("each", 1), concurrency=concurrency)


def test_parallel_and_branch_need_at_least_one_step() -> None:
    with pytest.raises(WorkflowDefinitionError, match="parallel"):
        create_workflow(id="p").parallel([])
    with pytest.raises(WorkflowDefinitionError, match="branch"):
        create_workflow(id="b").branch([])


def test_branch_takes_condition_step_pairs() -> None:
    not_a_pair: Any = [const("a", 1)]

    with pytest.raises(WorkflowDefinitionError, match=r"\(condition, step\) pairs"):
        create_workflow(id="b").branch(not_a_pair)


def test_sleep_needs_a_non_negative_duration() -> None:
    with pytest.raises(WorkflowDefinitionError, match="sleep"):
        create_workflow(id="s").sleep(-1)


def test_only_steps_and_workflows_can_be_added() -> None:
    not_a_step: Any = lambda ctx: None  # noqa: E731

    with pytest.raises(WorkflowDefinitionError, match="expected a Step or a committed Workflow"):
        create_workflow(id="x").then(not_a_step)


def test_a_committed_workflow_is_itself_usable_as_a_step() -> None:
    inner = create_workflow(id="inner").then(const("a", 1)).commit()

    outer = create_workflow(id="outer").then(inner).commit()

    assert isinstance(outer.find_step("inner"), Workflow)
