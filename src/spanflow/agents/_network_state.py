"""A network's saved state, and the thread record that keeps it beside a suspended workflow run.

`NetworkState` is what a network needs to go on (task, iteration, usage, the results so far,
the trace to continue), JSON-able. When a workflow primitive suspends, `save_state` writes it
as the metadata of a thread record of the workflow's own store (`ThreadStore`): id
``spanflow-network:<workflow run id>`` (`network_thread_id`), resource ``spanflow-network``
(`NETWORK_RESOURCE_ID`); `load_state` reads it back for `spanflow.agents.network.network_resume`
in any process on that store, and `delete_state` removes it once the resumed run has ended.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from spanflow._schema import to_wire
from spanflow.agents.errors import NetworkError
from spanflow.storage.base import StoredThread, ThreadStore
from spanflow.tracing.options import TracingOptions, options_from_dict
from spanflow.usage import Usage

if TYPE_CHECKING:
    from spanflow.workflows.workflow import Workflow

__all__ = [
    "NETWORK_RESOURCE_ID",
    "NetworkState",
    "Outcome",
    "delete_state",
    "load_state",
    "network_thread_id",
    "save_state",
]

NETWORK_RESOURCE_ID = "spanflow-network"
"""The resource of the thread records in which suspended networks keep their state (in the
suspended workflow's store), apart from every application resource."""


def network_thread_id(workflow_run_id: str) -> str:
    """The id of the thread record that keeps the state of the network suspended at workflow
    run `workflow_run_id` (of resource `NETWORK_RESOURCE_ID`, in the workflow's store)."""
    return f"spanflow-network:{workflow_run_id}"


@dataclass(slots=True, kw_only=True)
class NetworkState:
    """What a network needs to go on, JSON-able (kept beside a suspended workflow run, in the
    metadata of a thread record of the workflow's store)."""

    run_id: str
    task: str
    max_steps: int
    thread_id: str
    resource_id: str
    uses_memory: bool = False
    iteration: int = 0
    usage: Usage = field(default_factory=Usage)
    history: list[str] = field(default_factory=list)
    """The results so far, as the JSON texts the router reads (without a memory)."""
    last: dict[str, Any] = field(default_factory=dict)
    """The last decision and result: primitiveId, primitiveType, result, selectionReason,
    prompt, feedback."""
    tracing: dict[str, Any] = field(default_factory=dict)
    trace_parent: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = {
            "runId": self.run_id,
            "task": self.task,
            "maxSteps": self.max_steps,
            "threadId": self.thread_id,
            "resourceId": self.resource_id,
            "usesMemory": self.uses_memory,
            "iteration": self.iteration,
            "usage": self.usage.to_dict(),
            "history": self.history,
            "last": self.last,
            "tracing": self.tracing,
            "traceParent": self.trace_parent,
        }
        # Through JSON: the store keeps JSON data only (a result may hold other values).
        loaded: dict[str, Any] = json.loads(json.dumps(data, ensure_ascii=False, default=str))
        return loaded

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NetworkState:
        try:
            return cls(
                run_id=data["runId"],
                task=data["task"],
                max_steps=int(data["maxSteps"]),
                thread_id=data["threadId"],
                resource_id=data["resourceId"],
                uses_memory=bool(data.get("usesMemory")),
                iteration=int(data["iteration"]),
                usage=Usage.from_dict(data.get("usage") or {}),
                history=list(data.get("history") or []),
                last=dict(data.get("last") or {}),
                tracing=dict(data.get("tracing") or {}),
                trace_parent=dict(data.get("traceParent") or {}),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise NetworkError(f"the stored network state is unreadable: {exc!r}") from exc

    def parent_options(self) -> TracingOptions | None:
        parent = self.trace_parent
        if not parent.get("traceId") or not parent.get("spanId"):
            return None
        return TracingOptions(trace_id=parent["traceId"], parent_span_id=parent["spanId"])

    def resumed_tracing_options(self) -> TracingOptions | None:
        """The tracing options of a resumed network: the stored ones, continuing the trace of
        the network span that suspended (`trace_parent`)."""
        options = options_from_dict(self.tracing) if self.tracing else None
        parent = self.parent_options()
        if parent is None:
            return options
        if options is None:
            return parent
        return dataclasses.replace(
            options,
            trace_id=parent.trace_id,
            parent_span_id=parent.parent_span_id,
            traceparent=None,
        )


@dataclass(slots=True)
class Outcome:
    """What a primitive produced, as the router and the check are told."""

    result: Any
    failed: bool = False
    suspended: dict[str, Any] | None = None
    """For a workflow that suspended: ``{workflowId, runId, suspendPayload, suspended}`` (the
    network suspends with it)."""

    def text(self) -> str:
        if isinstance(self.result, str):
            return self.result
        return json.dumps(to_wire(self.result), ensure_ascii=False, default=str)


def _thread_store(workflow: Workflow) -> ThreadStore:
    """The workflow's store, as the keeper of a suspended network's state."""
    storage = workflow.storage
    if not isinstance(storage, ThreadStore):
        raise NetworkError(
            f"the store of workflow {workflow.id!r} ({type(storage).__name__}) keeps no "
            "threads, so a network cannot keep its state there to be resumed"
        )
    return storage


async def save_state(
    workflow: Workflow, workflow_run_id: str, state: NetworkState, usage: Usage, agent_id: str
) -> None:
    """Keep the network's state beside the suspended run, in the workflow's store, for
    `network_resume` (from any process on that store); `usage` is the network's usage without
    the run (a resume adds the whole run's)."""
    data = state.to_dict()
    data["usage"] = usage.to_dict()
    await _thread_store(workflow).save_thread(
        StoredThread(
            thread_id=network_thread_id(workflow_run_id),
            resource_id=NETWORK_RESOURCE_ID,
            title=f"network {state.run_id} of agent {agent_id}",
            metadata={"network": data},
        )
    )


async def load_state(workflow: Workflow, workflow_run_id: str) -> NetworkState:
    """The state of the network suspended at `workflow_run_id` (`save_state`)."""
    thread = await _thread_store(workflow).get_thread(
        network_thread_id(workflow_run_id), resource_id=NETWORK_RESOURCE_ID
    )
    data = thread.metadata.get("network") if thread is not None else None
    if not isinstance(data, Mapping):
        raise NetworkError(
            f"workflow run {workflow_run_id!r} was not started by a network (no network state "
            f"is stored for it in the store of workflow {workflow.id!r}); resume it as a "
            "workflow run instead"
        )
    return NetworkState.from_dict(data)


async def delete_state(workflow: Workflow, workflow_run_id: str) -> None:
    """Forget the state of a resumed network whose workflow run has ended."""
    await _thread_store(workflow).delete_thread(
        network_thread_id(workflow_run_id), resource_id=NETWORK_RESOURCE_ID
    )
