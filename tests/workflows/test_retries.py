"""Retries: ``RetryConfig`` for a workflow, ``retries`` on a step, `NonRetryableError`."""

from __future__ import annotations

import time

import pytest

from spanflow import (
    NonRetryableError,
    RetryConfig,
    StepContext,
    WorkflowDefinitionError,
    create_step,
    create_workflow,
)

from .support import collect, event_types


class Flaky:
    """A step body that fails its first `failures` attempts, recording each retry count."""

    def __init__(self, failures: int, error: type[Exception] = ConnectionError) -> None:
        self.failures = failures
        self.error = error
        self.retry_counts: list[int] = []

    async def __call__(self, ctx: StepContext[int]) -> str:
        self.retry_counts.append(ctx.retry_count)
        if len(self.retry_counts) <= self.failures:
            raise self.error(f"attempt {len(self.retry_counts)} failed")
        return f"ok after {len(self.retry_counts)}"


async def test_the_workflow_retry_config_retries_a_failing_step() -> None:
    flaky = Flaky(failures=2)
    workflow = (
        create_workflow(id="retrying", retry_config=RetryConfig(attempts=2))
        .then(create_step(id="flaky", execute=flaky))
        .commit()
    )

    result = await (await workflow.create_run()).start(None)

    assert result.status == "success"
    assert result.result == "ok after 3"
    assert flaky.retry_counts == [0, 1, 2]


async def test_without_retries_a_step_fails_on_its_first_error() -> None:
    flaky = Flaky(failures=1)
    workflow = create_workflow(id="no-retry").then(create_step(id="flaky", execute=flaky))

    result = await (await workflow.commit().create_run()).start(None)

    assert result.status == "failed"
    assert flaky.retry_counts == [0]


async def test_exhausted_retries_fail_with_the_last_error() -> None:
    flaky = Flaky(failures=5)
    workflow = (
        create_workflow(id="exhausted", retry_config=RetryConfig(attempts=2))
        .then(create_step(id="flaky", execute=flaky))
        .commit()
    )

    result = await (await workflow.create_run()).start(None)

    assert result.status == "failed"
    assert str(result.error) == "attempt 3 failed"
    assert flaky.retry_counts == [0, 1, 2]


async def test_a_steps_own_retries_override_the_workflow_config() -> None:
    more = Flaky(failures=3)
    none = Flaky(failures=1)
    workflow = (
        create_workflow(id="override", retry_config=RetryConfig(attempts=1))
        .parallel(
            [
                create_step(id="more", execute=more, retries=3),
                create_step(id="none", execute=none, retries=0),
            ]
        )
        .commit()
    )

    result = await (await workflow.create_run()).start(None)

    assert more.retry_counts == [0, 1, 2, 3]
    assert result.steps["more"].status == "success"
    assert none.retry_counts == [0]
    assert result.steps["none"].status == "failed"


async def test_a_non_retryable_error_stops_retrying_at_once() -> None:
    flaky = Flaky(failures=5, error=NonRetryableError)
    workflow = (
        create_workflow(id="give-up", retry_config=RetryConfig(attempts=4))
        .then(create_step(id="flaky", execute=flaky))
        .commit()
    )

    result = await (await workflow.create_run()).start(None)

    assert result.status == "failed"
    assert isinstance(result.error, NonRetryableError)
    assert flaky.retry_counts == [0]


async def test_the_delay_is_waited_between_attempts() -> None:
    flaky = Flaky(failures=2)
    workflow = (
        create_workflow(id="delayed", retry_config=RetryConfig(attempts=2, delay=0.015))
        .then(create_step(id="flaky", execute=flaky))
        .commit()
    )

    started = time.monotonic()
    result = await (await workflow.create_run()).start(None)

    assert result.status == "success"
    assert time.monotonic() - started >= 0.025  # two delays of 15 ms (timer slack allowed)


async def test_retries_are_invisible_in_the_stream_one_start_one_result() -> None:
    flaky = Flaky(failures=2)
    workflow = (
        create_workflow(id="quiet-retries", retry_config=RetryConfig(attempts=2))
        .then(create_step(id="flaky", execute=flaky))
        .commit()
    )
    run = await workflow.create_run()

    events = await collect(run.stream(None))

    assert event_types(events) == [
        "workflow-start",
        "workflow-step-start",
        "workflow-step-result",
        "workflow-finish",
    ]
    assert events[2].to_dict()["payload"]["status"] == "success"


async def test_a_suspension_is_never_retried() -> None:
    calls = 0

    async def ask(ctx: StepContext[None]) -> None:
        nonlocal calls
        calls += 1
        ctx.suspend({"q": 1})

    workflow = (
        create_workflow(id="no-retry-suspend", retry_config=RetryConfig(attempts=3))
        .then(create_step(id="ask", execute=ask))
        .commit()
    )

    result = await (await workflow.create_run()).start(None)

    assert result.status == "suspended"
    assert calls == 1


def test_retry_config_refuses_negative_values() -> None:
    with pytest.raises(WorkflowDefinitionError, match="attempts >= 0"):
        RetryConfig(attempts=-1)
    with pytest.raises(WorkflowDefinitionError, match="delay >= 0"):
        RetryConfig(delay=-0.5)
