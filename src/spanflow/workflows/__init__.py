"""The workflow engine: typed steps, control flow, runs, their events and results.

Public modules are nouns: `workflow` (the builder and its entries), `step`, `run`, `stream`,
`events` and `results`. The machinery that drives a run is private: `_drive` walks the
entries, `_blocks` and `_foreach` run the control-flow blocks, `_step_runner` runs one step
and its attempts, `_frame` holds the execution state, `_nested` runs a workflow as a step,
`_snapshot` is the typed run snapshot and its codec, `_resume_target` finds the step a resume
is for (by step, path or label), `_execution` runs one execution of a run and its hooks, and
`_time_travel` positions a stored run at the step a time travel re-executes it from.
`from spanflow import ...` re-exports the public names; `RunSnapshot` and `read_run_snapshot`
are the typed view of a stored run, for the CLI and the server.
"""

from spanflow.workflows._snapshot import RunSnapshot, read_run_snapshot
from spanflow.workflows.events import (
    CustomPayload,
    StepOutputPayload,
    StepProgressPayload,
    StepResultPayload,
    StepStartPayload,
    StepSuspendedPayload,
    StepWaitingPayload,
    WorkflowCanceledPayload,
    WorkflowEvent,
    WorkflowFinishPayload,
    WorkflowStartPayload,
)
from spanflow.workflows.results import StepResult, WorkflowResult
from spanflow.workflows.run import Run
from spanflow.workflows.step import Step, StepContext, create_step, step
from spanflow.workflows.stream import WorkflowStream
from spanflow.workflows.workflow import (
    ConditionContext,
    RetryConfig,
    RunHook,
    RunHookEvent,
    Workflow,
    create_workflow,
)

__all__ = [  # noqa: RUF022 - grouped by purpose, not sorted
    # Building
    "ConditionContext",
    "RetryConfig",
    "Step",
    "StepContext",
    "Workflow",
    "create_step",
    "create_workflow",
    "step",
    # Running
    "Run",
    "RunHook",
    "RunHookEvent",
    "StepResult",
    "WorkflowResult",
    "WorkflowStream",
    # Stored runs
    "RunSnapshot",
    "read_run_snapshot",
    # Events
    "CustomPayload",
    "StepOutputPayload",
    "StepProgressPayload",
    "StepResultPayload",
    "StepStartPayload",
    "StepSuspendedPayload",
    "StepWaitingPayload",
    "WorkflowCanceledPayload",
    "WorkflowEvent",
    "WorkflowFinishPayload",
    "WorkflowStartPayload",
]
