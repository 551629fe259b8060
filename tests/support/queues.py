"""A queued executor for tests: jobs wait in a list until the test delivers one, executed as a
worker would (`execute_job`), in this process."""

from __future__ import annotations

import asyncio

from spanflow import Workflow
from spanflow.workflows.executor import RunJob, WorkerApp
from spanflow.workflows.jobs import execute_job
from spanflow.workflows.results import WorkflowResult

__all__ = ["HeldQueue"]


class HeldQueue:
    """A queued executor whose jobs wait in a list until `deliver` executes one."""

    in_process = False
    messaging_system = "held"

    def __init__(self, refuse: bool = False) -> None:
        self.jobs: list[RunJob] = []
        self.refuse = refuse
        self.workflows: dict[str, Workflow] = {}
        self._arrived = asyncio.Event()

    async def submit(self, job: RunJob) -> None:
        if self.refuse:
            raise ConnectionError("the queue is down")
        self.jobs.append(RunJob.from_dict(job.to_dict()))  # as it travels: plain data
        self._arrived.set()

    async def wait_for(self, count: int = 1) -> None:
        """Until `count` jobs were queued."""
        while len(self.jobs) < count:
            self._arrived.clear()
            await self._arrived.wait()

    async def deliver(self, index: int = -1) -> WorkflowResult | None:
        job = self.jobs[index]
        return await execute_job(self.workflows[job.workflow_id], job)

    async def run_worker(self, app: WorkerApp, *, concurrency: int = 20) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        return None
