"""Durable runs across real processes: suspend in one, resume in another; one resumer wins;
a run killed with SIGKILL mid-step is restarted without re-running the steps it had finished.

Each worker is a separate Python process (``durable_worker.py``) with its own store object,
its own OpenTelemetry provider and its own copy of the workflow, as in a real deployment.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from spanflow.errors import RunClaimError
from tests.integration.durable_app import LEASE_SECONDS, build_workflow
from tests.support.stores import StoreSpec

WORKER = Path(__file__).with_name("durable_worker.py")


def worker_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["SPANFLOW_TEST_LOG"] = str(tmp_path / "steps.log")
    env.update(extra)
    return env


def run_worker(spec: StoreSpec, command: str, run_id: str, env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(WORKER), spec.to_json(), command, run_id],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert isinstance(outcome, dict)
    return outcome


def steps_log(tmp_path: Path) -> list[tuple[str, int]]:
    lines = (tmp_path / "steps.log").read_text().split()
    return [(lines[i], int(lines[i + 1])) for i in range(0, len(lines), 2)]


def run_span(outcome: dict[str, Any]) -> dict[str, Any]:
    spans = [s for s in outcome["spans"] if s["name"] == "invoke_workflow durable-order"]
    assert len(spans) == 1, outcome["spans"]
    span: dict[str, Any] = spans[0]
    return span


def test_a_run_suspended_in_one_process_resumes_in_another(
    shared_store_spec: StoreSpec, tmp_path: Path
) -> None:
    run_id = f"run-{uuid.uuid4().hex[:8]}"
    env = worker_env(tmp_path)

    first = run_worker(shared_store_spec, "start", run_id, env)
    second = run_worker(shared_store_spec, "resume", run_id, env)

    assert first["status"] == "suspended"
    assert second["status"] == "success"
    assert first["pid"] != second["pid"]
    ran = steps_log(tmp_path)
    assert [name for name, _ in ran] == ["prepare", "slow", "approve", "approve", "finish"]
    assert {pid for name, pid in ran[:3]} == {first["pid"]}
    assert {pid for name, pid in ran[3:]} == {second["pid"]}
    # The resumed run span continues the original trace, as a child of the original run span.
    original, resumed = run_span(first), run_span(second)
    assert resumed["trace_id"] == original["trace_id"] == first["trace_id"]
    assert resumed["parent_id"] == original["span_id"]
    assert resumed["attributes"]["spanflow.run.resumed"] is True
    assert second["trace_id"] == original["trace_id"]


def test_only_one_of_many_concurrent_resumers_wins(
    shared_store_spec: StoreSpec, tmp_path: Path
) -> None:
    run_id = f"run-{uuid.uuid4().hex[:8]}"
    assert run_worker(shared_store_spec, "start", run_id, worker_env(tmp_path))["status"] == (
        "suspended"
    )
    go = tmp_path / "go"
    env = worker_env(tmp_path, SPANFLOW_TEST_GO=str(go))
    resumers = [
        subprocess.Popen(
            [sys.executable, str(WORKER), shared_store_spec.to_json(), "resume", run_id],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(6)
    ]
    time.sleep(1.0)  # let every process import and open its store before the starting gun
    go.touch()
    outcomes = []
    for proc in resumers:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        outcomes.append(json.loads(out.strip().splitlines()[-1]))

    winners = [o for o in outcomes if o["status"] == "success"]
    losers = [o for o in outcomes if o["status"] == "error"]
    assert len(winners) == 1
    assert len(losers) == 5
    # A loser either lost the claim itself, or looked after the winner had finished.
    assert Counter(o["error"] for o in losers).keys() <= {"RunClaimError", "RunStateError"}
    assert all(
        "another caller" in o["message"] or "not suspended" in o["message"] for o in losers
    ), losers
    assert [name for name, _ in steps_log(tmp_path)].count("finish") == 1


def test_a_run_killed_mid_step_restarts_without_rerunning_finished_steps(
    shared_store_spec: StoreSpec, tmp_path: Path
) -> None:
    run_id = f"run-{uuid.uuid4().hex[:8]}"
    hang = tmp_path / "hang"
    hang.touch()
    env = worker_env(tmp_path, SPANFLOW_TEST_HANG=str(hang))
    proc = subprocess.Popen(
        [sys.executable, str(WORKER), shared_store_spec.to_json(), "start", run_id],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    log = tmp_path / "steps.log"
    deadline = time.monotonic() + 30
    while "slow" not in (log.read_text() if log.exists() else ""):
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() < deadline, "the worker never reached the slow step"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    hang.unlink()

    async def restart() -> tuple[str, str, list[str]]:
        workflow = build_workflow()
        workflow.storage = shared_store_spec.open()
        try:
            stored = await workflow.storage.get_run(run_id)
            assert stored is not None
            run = await workflow.create_run(run_id=run_id)
            given_up = time.monotonic() + LEASE_SECONDS + 10
            # The dead worker's lease is still live: nobody may take the run over yet.
            with pytest.raises(RunClaimError, match="holds its lease until"):
                await run.restart()
            while True:
                try:
                    result = await run.restart()
                    break
                except RunClaimError:
                    assert time.monotonic() < given_up, "the dead worker's lease never ran out"
                    await asyncio.sleep(0.2)
            return stored.status, result.status, sorted(result.steps)
        finally:
            await workflow.storage.close()

    os.environ["SPANFLOW_TEST_LOG"] = str(log)
    try:
        stored_status, status, steps = asyncio.run(restart())
    finally:
        del os.environ["SPANFLOW_TEST_LOG"]

    assert stored_status == "running"  # what the killed process left behind
    assert status == "suspended"  # re-driven up to the approval
    assert steps == ["approve", "prepare", "slow"]
    # prepare had finished and was stored: it did not run again; slow (interrupted) did.
    assert [name for name, _ in steps_log(tmp_path)] == ["prepare", "slow", "slow", "approve"]


def test_restart_refuses_a_run_that_is_not_running(tmp_path: Path) -> None:
    from spanflow import RunStateError
    from spanflow.storage import SqliteStorage

    async def scenario() -> None:
        workflow = build_workflow()
        workflow.storage = SqliteStorage(tmp_path / "runs.db")
        try:
            run = await workflow.create_run()
            result = await run.start({"order_id": "o-2", "amount": 5})
            assert result.status == "suspended"
            with pytest.raises(RunStateError, match="not running"):
                await run.restart()
        finally:
            await workflow.storage.close()

    asyncio.run(scenario())
