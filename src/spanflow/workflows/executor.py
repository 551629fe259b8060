"""Where a run's executions happen: the `Executor` seam (``distributed.md`` §1).

The user's code is the same either way: ``run.start()``, ``stream()``, ``resume()``,
``resume_stream()``, ``restart()`` and ``cancel()`` keep their signatures. What changes is the
workflow's executor (``Spanflow(executor=...)`` gives every registered workflow the same one):

- `LocalExecutor` (the default): each execution runs in the calling process, in an asyncio
  task of the caller's loop, and ``run.stream()`` is fed in memory as events happen.
- A queued executor (``in_process = False``; `spanflow.queue.QueueExecutor` on procrastinate
  and PostgreSQL): ``start``/``stream``/``resume``/``restart`` check their input as always, store
  the run as ``queued`` together with what the execution needs (`QueuedExecution` in the
  snapshot: input, initial state, resume data, tracing options), hand a `RunJob` to
  `Executor.submit`, and follow the run's event log (``Run.observe``): ``await out.result`` and
  ``start()``'s return resolve when a worker ends or suspends the run, in whichever process
  awaits it. Workers call `execute_job` for each job they take.

A job is one execution of a run (``start``, ``resume`` or ``restart``), never one step, and it
carries ids and the W3C trace context of its PRODUCER span only: input and resume data live in
the stored run, so a job can be delivered twice (the second delivery loses the claim
``queued -> running`` and does nothing) and stays small.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, get_args, runtime_checkable

from spanflow.errors import InvalidInputError
from spanflow.tracing.ids import short_repr

if TYPE_CHECKING:
    from spanflow.storage.base import Storage
    from spanflow.workflows.results import WorkflowResult
    from spanflow.workflows.workflow import Workflow

__all__ = ["LOCAL_EXECUTOR", "Executor", "LocalExecutor", "RunJob", "RunOp", "WorkerApp"]

RunOp = Literal["start", "resume", "restart"]
"""What a job does with its run: start it, resume it (its resume data is stored), or restart it
from its last snapshot (after its executor died)."""

_OPS: tuple[str, ...] = get_args(RunOp)

logger = logging.getLogger("spanflow.jobs")


@dataclass(frozen=True, slots=True)
class RunJob:
    """One execution of a stored run, as handed to a queue."""

    op: RunOp
    workflow_id: str
    run_id: str
    carrier: dict[str, str] = field(default_factory=dict)
    """The PRODUCER span's context (``traceparent``, ``tracestate``, ``baggage``): the
    worker's run span is its child (a start) or links to it (a resume or restart)."""

    def to_dict(self) -> dict[str, Any]:
        """The job's wire form (the queue's job arguments)."""
        return {
            "op": self.op,
            "workflow_id": self.workflow_id,
            "run_id": self.run_id,
            "carrier": dict(self.carrier),
        }

    @classmethod
    def from_dict(cls, data: Any) -> RunJob:
        """The job back from its wire form.

        Raises:
            InvalidInputError: `data` is not a job's wire form; the message names the field.
        """
        if not isinstance(data, Mapping):
            raise InvalidInputError(f"a run job must be a JSON object; got {short_repr(data)}")
        op = data.get("op")
        if op not in _OPS:
            raise InvalidInputError(
                f"a run job's op must be one of {', '.join(_OPS)}; got {short_repr(op)}"
            )
        for key in ("workflow_id", "run_id"):
            value = data.get(key)
            if not isinstance(value, str) or not value:
                raise InvalidInputError(
                    f"a run job's {key} must be a non-empty string; got {short_repr(value)}"
                )
        carrier = data.get("carrier", {})
        if not isinstance(carrier, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in carrier.items()
        ):
            raise InvalidInputError(
                f"a run job's carrier must map strings to strings; got {short_repr(carrier)}"
            )
        return cls(op, data["workflow_id"], data["run_id"], dict(carrier))


class WorkerApp(Protocol):
    """What a worker needs of the registry it serves (`spanflow.Spanflow`)."""

    @property
    def storage(self) -> Storage:
        """The store its workflows keep their runs in."""
        ...

    @property
    def workflows(self) -> dict[str, Workflow]:
        """The workflows whose jobs it executes, by id."""
        ...

    def get_workflow(self, workflow_id: str) -> Workflow:
        """The workflow with this id; raises ``NotRegisteredError`` (a `LookupError`)."""
        ...


@runtime_checkable
class Executor(Protocol):
    """Where executions of runs happen."""

    in_process: bool
    """``True``: executions run in the calling process (`LocalExecutor`); ``False``: they are
    stored ``queued`` and handed to `submit`, and the caller follows the run's event log."""
    messaging_system: str
    """``messaging.system`` of its jobs' publish spans (``procrastinate``)."""

    async def submit(self, job: RunJob) -> None:
        """Hand one job to whoever executes it; return once it is durably queued."""
        ...

    async def run_worker(self, app: WorkerApp, *, concurrency: int = 20) -> None:
        """Take jobs and execute them (`execute_job`) for `app`'s workflows, up to
        `concurrency` at once, until stopped (SIGTERM, or the task is canceled)."""
        ...

    async def close(self) -> None:
        """Release connections. Safe to call twice."""
        ...


class LocalExecutor:
    """Executions run in the calling process: today's behaviour, and the default.

    `submit` executes a job here as a worker would (`execute_job` in a task of the running
    loop): a run stored ``queued`` can be handed to this process.
    """

    in_process = True
    messaging_system = "spanflow"

    def __init__(self) -> None:
        self._workflows: dict[str, Workflow] = {}
        self._tasks: set[asyncio.Task[WorkflowResult | None]] = set()

    def serve(self, workflow: Workflow) -> None:
        """Execute `workflow`'s jobs handed to `submit` (the registry calls it)."""
        self._workflows[workflow.id] = workflow

    async def submit(self, job: RunJob) -> None:
        """Execute `job` in this process, in a task of the running loop."""
        from spanflow.workflows.jobs import execute_job

        workflow = self._workflows.get(job.workflow_id)
        if workflow is None:
            raise InvalidInputError(
                f"this process executes no workflow {job.workflow_id!r} "
                f"(known: {', '.join(sorted(self._workflows)) or 'none'})"
            )
        task = asyncio.get_running_loop().create_task(
            execute_job(workflow, job), name=f"spanflow-job-{job.run_id}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[WorkflowResult | None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error(
                "spanflow: a job executed in this process failed", exc_info=task.exception()
            )

    async def run_worker(self, app: WorkerApp, *, concurrency: int = 20) -> None:
        """Refused: a local executor takes no jobs from anywhere; runs execute where they
        are started."""
        raise InvalidInputError(
            "the local executor has no queue to take jobs from: runs execute in the process "
            "that starts them; give the registry a queued executor (spanflow.queue."
            "QueueExecutor) to run workers"
        )

    async def close(self) -> None:
        """Nothing to release."""

    def __repr__(self) -> str:
        return "LocalExecutor()"


LOCAL_EXECUTOR = LocalExecutor()
"""The executor of workflows no registry with an executor of its own registered."""
