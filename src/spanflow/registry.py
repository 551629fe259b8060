"""`Spanflow`: the optional registry (Mastra's ``Mastra`` class).

It holds what a deployment shares: the run store and the tracing configuration. Registering a
workflow gives it that tracing, and that store unless it has its own; without a registry a
workflow keeps its runs in memory and traces through OpenTelemetry's global tracer provider.

Which store a registered workflow uses:

- A workflow with no store of its own (none passed to `create_workflow`, none assigned to
  ``workflow.storage``) gets the registry's.
- A workflow that has its own keeps it when the registry was given no ``storage``; the registry
  then adopts the first such store as its own (so ``list_runs`` sees those runs) instead of
  opening ``SPANFLOW_STORAGE_URL`` or ``./spanflow.db``.
- A workflow whose own store differs from the ``storage`` the registry was given is refused with
  `StorageConflictError`: spanflow never moves a workflow's runs to another store silently.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from spanflow.errors import SpanflowError, WorkflowDefinitionError
from spanflow.storage.base import RunPage, RunStatus, Storage, StoredRun
from spanflow.tracing.config import TracingConfig
from spanflow.tracing.otel import OtelInstrumentation
from spanflow.workflows.workflow import Workflow

__all__ = ["NotRegisteredError", "Spanflow", "StorageConflictError"]


class NotRegisteredError(SpanflowError, LookupError):
    """No workflow or agent with that id is registered."""


class StorageConflictError(SpanflowError):
    """A workflow with its own store was registered in a registry given a different one."""


class Spanflow:
    """Workflows and agents sharing one store and one tracing configuration.

    Args:
        workflows: Committed workflows to register (each gets this registry's tracing, and its
            store unless the workflow has its own; see the module docstring).
        agents: Agents to register (anything with an ``id``).
        storage: The run store. Default: the first given workflow's own store, else
            `spanflow.storage.default_storage_from_env`, i.e. the ``SPANFLOW_STORAGE_URL``
            variable, else an SQLite file ``spanflow.db`` in the working directory (created on
            first use).
        tracing: Deployment-wide tracing settings (default: `TracingConfig()`).
    """

    def __init__(
        self,
        *,
        workflows: Iterable[Workflow] = (),
        agents: Iterable[Any] = (),
        storage: Storage | None = None,
        tracing: TracingConfig | None = None,
    ) -> None:
        workflows = list(workflows)
        self._storage_given = storage is not None
        if storage is None:
            storage = next((own for own in map(_own_storage, workflows) if own is not None), None)
        if storage is None:
            from spanflow.storage import default_storage_from_env

            storage = default_storage_from_env()
        self.storage: Storage = storage
        self.tracing: TracingConfig = tracing or TracingConfig()
        self.instrumentation = OtelInstrumentation(self.tracing)
        self._workflows: dict[str, Workflow] = {}
        self._agents: dict[str, Any] = {}
        for workflow in workflows:
            self.add_workflow(workflow)
        for agent in agents:
            self.add_agent(agent)

    def add_workflow(self, workflow: Workflow) -> Workflow:
        """Register a committed workflow: it traces as configured and, unless it has its own
        store, keeps its runs in the registry's.

        Raises:
            StorageConflictError: The workflow has its own store and this registry was given a
                different one.
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
        own = _own_storage(workflow)
        if own is None:
            workflow.storage = self.storage
        elif own is not self.storage and self._storage_given:
            raise StorageConflictError(
                f"workflow {workflow.id!r} has its own store, {own!r}, and the registry was "
                f"given another, {self.storage!r}; set the store in one place only (remove "
                "one of them, or pass the same store to both)"
            )
        workflow.instrumentation = self.instrumentation
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
        limit: int = 20,
        offset: int = 0,
    ) -> RunPage:
        """Stored runs of every workflow in this store, newest first, filtered and paged."""
        return await self.storage.list_runs(
            workflow_id=workflow_id,
            status=status,
            resource_id=resource_id,
            limit=limit,
            offset=offset,
        )

    async def get_run(self, run_id: str) -> StoredRun | None:
        """The stored run with this id, or ``None``."""
        return await self.storage.get_run(run_id)

    async def close(self) -> None:
        """Close the store."""
        await self.storage.close()


def _own_storage(workflow: Workflow) -> Storage | None:
    """The store set on `workflow` (at creation or by assignment), or None if it has none."""
    # The private field: the public `storage` property would create the in-memory default.
    # getattr, because the constructor looks before `add_workflow` checks the type.
    own: Storage | None = getattr(workflow, "_storage", None)
    return own
