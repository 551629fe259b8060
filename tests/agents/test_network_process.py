"""A network suspended at a workflow resumes in another operating-system process (issue 17).

This process starts the network of `network_app` and sees it suspend; a child Python process,
sharing nothing with it but the SQLite file, builds the same network and resumes it with
`network_resume`. The in-process variant (another store object, same process) is in
``test_network.py``; this one proves no state hides in the first process's memory.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from spanflow.agents.network import network
from spanflow.storage import SqliteStorage

from . import network_app
from .network_app import BOOKED, DATABASE_ENV, FINAL_RESULT, build_agent

REPO_ROOT = Path(__file__).resolve().parents[2]


def resume_in_a_child_process(run_id: str, resume_data: Any, database: Path) -> dict[str, Any]:
    """Run ``python -m tests.agents.network_app`` from the repo root and return what it
    printed; a child that fails shows its stderr in the assertion."""
    env = dict(os.environ)
    env[DATABASE_ENV] = str(database)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    done = subprocess.run(
        [sys.executable, "-m", network_app.__name__, run_id, json.dumps(resume_data)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    printed: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return printed


async def test_a_network_suspended_at_a_workflow_resumes_in_another_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = tmp_path / "runs.db"
    monkeypatch.setenv(DATABASE_ENV, str(database))

    out = network(build_agent("start"), "Book me something in Tokyo", max_steps=3)
    chunks = [chunk.to_dict() async for chunk in out]
    suspended = await out.result

    assert suspended.status == "suspended"
    assert chunks[-1]["type"] == "workflow-execution-suspended"
    assert chunks[-1]["payload"]["suspendPayload"] == {
        "approve": {"question": "book Visit a park in Tokyo?"}
    }
    assert suspended.suspended is not None
    workflow_run_id = suspended.suspended["runId"]

    resumed = resume_in_a_child_process(workflow_run_id, {"approved": True}, database)

    assert resumed == {"status": "success", "result": FINAL_RESULT, "runId": out.run_id}
    async with SqliteStorage(database) as store:
        stored = await store.get_run(workflow_run_id)
    assert stored is not None
    assert stored.status == "success"
    assert stored.snapshot["result"] == BOOKED
