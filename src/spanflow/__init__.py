"""spanflow: typed AI workflows and agents, with OpenTelemetry tracing built in.

Build workflows from typed steps (`create_step`, `@step`, `create_workflow`), run them with
`Workflow.create_run`, and stream Mastra-compatible events with `Run.stream`. Every run and step
is a live OpenTelemetry span; link runs into existing traces with `TracingOptions`. Runs are
stored (memory, SQLite, PostgreSQL) so a suspended run can be resumed by another process.
"""

from spanflow.context import RequestContext
from spanflow.errors import (
    InvalidInputError,
    JobError,
    NonRetryableError,
    RunClaimError,
    RunNotFoundError,
    RunStateError,
    SpanflowError,
    StepNotFoundError,
    StorageError,
    SyncInLoopError,
    WorkflowDefinitionError,
)
from spanflow.registry import NotRegisteredError, Spanflow, StorageConflictError
from spanflow.tracing import TracingConfig, TracingOptions, TracingOptionsError
from spanflow.usage import Usage
from spanflow.workflows import (
    ConditionContext,
    CustomPayload,
    RetryConfig,
    Run,
    RunHook,
    RunHookEvent,
    Step,
    StepContext,
    StepOutputPayload,
    StepProgressPayload,
    StepResult,
    StepResultPayload,
    StepStartPayload,
    StepSuspendedPayload,
    StepWaitingPayload,
    Workflow,
    WorkflowCanceledPayload,
    WorkflowEvent,
    WorkflowFinishPayload,
    WorkflowResult,
    WorkflowStartPayload,
    WorkflowStream,
    create_step,
    create_workflow,
    step,
)
from spanflow.workflows.executor import Executor, LocalExecutor, RunJob

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
    "RequestContext",
    "Run",
    "RunHook",
    "RunHookEvent",
    "StepResult",
    "Usage",
    "WorkflowResult",
    "WorkflowStream",
    # Registry, executors and tracing
    "Spanflow",
    "Executor",
    "LocalExecutor",
    "RunJob",
    "TracingConfig",
    "TracingOptions",
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
    # Errors
    "InvalidInputError",
    "JobError",
    "NonRetryableError",
    "NotRegisteredError",
    "RunClaimError",
    "RunNotFoundError",
    "RunStateError",
    "SpanflowError",
    "StepNotFoundError",
    "StorageConflictError",
    "StorageError",
    "SyncInLoopError",
    "TracingOptionsError",
    "WorkflowDefinitionError",
]
