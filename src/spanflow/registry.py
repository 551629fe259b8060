"""`Spanflow`: the optional registry (Mastra's ``Mastra`` class).

It holds what a deployment shares: the run store and the tracing configuration. Registering a
workflow gives it that tracing and that store; without a registry a workflow keeps its runs in
memory (unless given a store) and traces through OpenTelemetry's global tracer provider.

Which store a registered workflow uses: every registered workflow keeps its runs in the
registry's store, so `Spanflow.list_runs`, `Spanflow.get_run`, `Spanflow.delete_run` and
`Spanflow.run_counts` see them all.

- The registry's store is the ``storage`` it was given; else the first given workflow's own
  store (adopted at construction); else `spanflow.storage.default_storage_from_env`
  (``SPANFLOW_STORAGE_URL``, else ``./spanflow.db``).
- A workflow's own store is the one its user set: passed to `create_workflow` or assigned to
  ``workflow.storage`` (`Workflow.own_storage`). Running a workflow, or reading its
  ``storage``, before registering it gives it none.
- A workflow without a store of its own gets the registry's (`Workflow.use_shared_storage`,
  which does not make it its own: the same workflow can be registered again elsewhere).
- A workflow whose own store differs from the registry's is refused with
  `StorageConflictError`: spanflow never moves a workflow's runs to another store silently,
  nor keeps runs the registry cannot list.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from spanflow.errors import SpanflowError, WorkflowDefinitionError
from spanflow.storage import default_storage_from_env
from spanflow.storage.base import (
    IDLE_STATUSES,
    RunPage,
    RunStatus,
    Storage,
    StoredRun,
)
from spanflow.tracing.config import TracingConfig
from spanflow.tracing.otel import OtelInstrumentation
from spanflow.workflows.executor import Executor, LocalExecutor
from spanflow.workflows.workflow import Workflow, check_deletable

__all__ = ["NotRegisteredError", "Spanflow", "StorageConflictError"]


class NotRegisteredError(SpanflowError, LookupError):
    """No workflow or agent with that id is registered."""


class StorageConflictError(SpanflowError):
    """A workflow with its own store was registered in a registry keeping runs in another."""


class Spanflow:
    """Workflows and agents sharing one store and one tracing configuration.

    Args:
        workflows: Committed workflows to register (each gets this registry's tracing and
            keeps its runs in this registry's store; see the module docstring).
        agents: Agents to register (anything with an ``id``).
        storage: The run store. Default: the first given workflow's own store, else
            `spanflow.storage.default_storage_from_env`, i.e. the ``SPANFLOW_STORAGE_URL``
            variable, else an SQLite file ``spanflow.db`` in the working directory (created on
            first use).
        tracing: Deployment-wide tracing settings (default: `TracingConfig()`).
        executor: Where runs execute (`spanflow.workflows.executor`): `LocalExecutor` (the
            default) in the process that starts them; `spanflow.queue.QueueExecutor` on
            workers taking jobs from a queue (``spanflow worker module:app``).
    """

    def __init__(
        self,
        *,
        workflows: Iterable[Workflow] = (),
        agents: Iterable[Any] = (),
        storage: Storage | None = None,
        tracing: TracingConfig | None = None,
        executor: Executor | None = None,
    ) -> None:
        workflows = list(workflows)
        if executor is not None and not isinstance(executor, Executor):
            raise WorkflowDefinitionError(
                f"executor must be an Executor (LocalExecutor, QueueExecutor), got {executor!r}"
            )
        self.executor: Executor = executor or LocalExecutor()
        self.storage: Storage
        self.storage, self._storage_source = _registry_storage(storage, workflows)
        self.tracing: TracingConfig = tracing or TracingConfig()
        self.instrumentation = OtelInstrumentation(self.tracing)
        self._workflows: dict[str, Workflow] = {}
        self._agents: dict[str, Any] = {}
        for workflow in workflows:
            self.add_workflow(workflow)
        for agent in agents:
            self.add_agent(agent)

    def add_workflow(self, workflow: Workflow) -> Workflow:
        """Register a committed workflow: it traces as configured and keeps its runs in the
        registry's store.

        Raises:
            StorageConflictError: The workflow has its own store, other than the registry's.
        """
        if not isinstance(workflow, Workflow):
            raise WorkflowDefinitionError(f"expected a Workflow, got {workflow!r}")
        if not workflow.committed:
            raise WorkflowDefinitionError(
                f"workflow {workflow.id!r} must be committed before it is registered"
            )
        existing = self._workflows.get(workflow.id)
        if existing is not None and existing is not workflow:
            raise WorkflowDefinitionError(f"a workflow with id {workflow.id!r} is registered")
        own = workflow.own_storage
        if own is None:
            workflow.use_shared_storage(self.storage)
        elif own is not self.storage:
            raise StorageConflictError(
                f"workflow {workflow.id!r} has its own store, {own!r}, but every registered "
                f"workflow keeps its runs in the registry's store, {self.storage!r} "
                f"({self._storage_source}); pass the same store to both, or remove the "
                "workflow's own so that it uses the registry's"
            )
        workflow.instrumentation = self.instrumentation
        workflow.executor = self.executor
        if isinstance(self.executor, LocalExecutor):
            self.executor.serve(workflow)
        self._workflows[workflow.id] = workflow
        return workflow

    def add_agent(self, agent: Any) -> Any:
        """Register an agent (it traces with this registry's configuration)."""
        agent_id = getattr(agent, "id", None)
        if not isinstance(agent_id, str) or not agent_id:
            raise WorkflowDefinitionError(f"an agent needs a string id, got {agent!r}")
        if agent_id in self._agents and self._agents[agent_id] is not agent:
            raise WorkflowDefinitionError(f"an agent with id {agent_id!r} is registered")
        if hasattr(agent, "instrumentation"):
            agent.instrumentation = self.tracing
        self._agents[agent_id] = agent
        return agent

    def get_workflow(self, workflow_id: str) -> Workflow:
        """The registered workflow with this id."""
        try:
            return self._workflows[workflow_id]
        except KeyError:
            known = ", ".join(sorted(self._workflows)) or "none"
            raise NotRegisteredError(
                f"no workflow {workflow_id!r} is registered (registered: {known})"
            ) from None

    def get_agent(self, agent_id: str) -> Any:
        """The registered agent with this id."""
        try:
            return self._agents[agent_id]
        except KeyError:
            known = ", ".join(sorted(self._agents)) or "none"
            raise NotRegisteredError(
                f"no agent {agent_id!r} is registered (registered: {known})"
            ) from None

    @property
    def workflows(self) -> dict[str, Workflow]:
        """Registered workflows by id (a copy)."""
        return dict(self._workflows)

    @property
    def agents(self) -> dict[str, Any]:
        """Registered agents by id (a copy)."""
        return dict(self._agents)

    async def list_runs(
        self,
        *,
        workflow_id: str | None = None,
        status: RunStatus | None = None,
        resource_id: str | None = None,
        from_date: datetime | None = None,
        to_date: datetime | None = None,
        limit: int = 20,
        offset: int = 0,
    ) -> RunPage:
        """Stored runs of every workflow in this store, newest first, filtered and paged.

        `from_date` and `to_date` bound the creation time, both included (naive means UTC);
        see `Storage.list_runs`.
        """
        return await self.storage.list_runs(
            workflow_id=workflow_id,
            status=status,
            resource_id=resource_id,
            from_date=from_date,
            to_date=to_date,
            limit=limit,
            offset=offset,
        )

    async def get_run(self, run_id: str) -> StoredRun | None:
        """The stored run with this id, or ``None``."""
        return await self.storage.get_run(run_id)

    async def delete_run(
        self, run_id: str, *, workflow_id: str | None = None, force: bool = False
    ) -> bool:
        """Delete a stored run (Mastra's ``DELETE /workflows/:workflowId/runs/:runId``).

        The rule: a run whose status is ``running`` or ``waiting`` is being executed (by this
        process or another; a waiting run sleeps inside its execution), and a ``queued`` one
        is about to be, so both are refused with `RunStateError`: cancel it first. A pending,
        suspended or finished run is deleted. The store checks the status again atomically with
        the delete, so a pending run that a process starts at that moment is either deleted
        first (its start then finds no run) or refused. ``force=True`` deletes whatever the
        status, for a run left ``running`` by a process that died; it removes the stored run
        only, and a run that is in fact still executing stores itself again with its next
        snapshot.

        Args:
            run_id: The run to delete.
            workflow_id: Only delete the run if it belongs to this registered workflow; a run
                of another workflow is left alone, as if unknown.
            force: Delete the run even while it is running or waiting.

        Returns:
            ``True`` if the run was deleted, ``False`` if no such run (of that workflow) is
            stored.

        Raises:
            RunStateError: The run is running or waiting and `force` is not set.
            NotRegisteredError: `workflow_id` names no registered workflow.
        """
        if workflow_id is not None:
            self.get_workflow(workflow_id)  # raises NotRegisteredError
        stored = await self.storage.get_run(run_id)
        if stored is None or workflow_id not in (None, stored.workflow_id):
            return False
        if force:
            return await self.storage.delete_run(run_id)
        check_deletable(stored, forceable=stored.status != "queued")
        # Checked again in the store, atomically with the delete: a run that started since
        # it was read above is refused there (RunStateError naming its new status).
        return await self.storage.delete_run(run_id, if_status=IDLE_STATUSES)

    async def run_counts(self) -> dict[str, dict[RunStatus, int]]:
        """How many stored runs each registered workflow has per status.

        ``{workflow_id: {status: count}}`` in registration order, every registered workflow
        included (``{}`` when it has no runs), statuses in `RunStatus` order with nonzero
        counts only. Runs of workflows not registered here are left out.
        """
        counts = await self.storage.count_runs()
        return {workflow_id: counts.get(workflow_id, {}) for workflow_id in self._workflows}

    async def run_worker(self, *, concurrency: int = 20) -> None:
        """Take jobs from this registry's queue and execute them here, up to `concurrency` runs
        at once, until stopped (``spanflow worker module:app`` runs this). Needs a queued
        executor (`spanflow.queue.QueueExecutor`)."""
        await self.executor.run_worker(self, concurrency=concurrency)

    async def close(self) -> None:
        """Close the executor and the store."""
        await self.executor.close()
        await self.storage.close()


def _registry_storage(given: Storage | None, workflows: list[Workflow]) -> tuple[Storage, str]:
    """The registry's store, and where it came from (for `StorageConflictError` messages)."""
    if given is not None:
        return given, "given to the registry"
    for workflow in workflows:
        # isinstance: a non-workflow is refused by `add_workflow`, with a clearer error.
        own = workflow.own_storage if isinstance(workflow, Workflow) else None
        if own is not None:
            return own, f"adopted from workflow {workflow.id!r}"
    return default_storage_from_env(), "the default, from SPANFLOW_STORAGE_URL or ./spanflow.db"
