"""The README's two-terminal example works as it says: a worker serving
``examples.queued_orders:app`` executes the order that ``python -m examples.queued_orders``
starts, suspends and approves through the queue."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.support.postgres import ThrowawayPostgres

REPO = Path(__file__).resolve().parents[2]
SPANFLOW = Path(sys.executable).with_name("spanflow")


def test_the_order_example_runs_through_a_worker(
    postgres_cluster: ThrowawayPostgres, tmp_path: Path
) -> None:
    url = postgres_cluster.create_database("spanflow_example")
    env = {**os.environ, "SPANFLOW_STORAGE_URL": url, "PYTHONUNBUFFERED": "1"}
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    migrate = [str(SPANFLOW), "db", "migrate", "--storage", url]
    subprocess.run(migrate, cwd=REPO, env=env, check=True, capture_output=True, timeout=60)
    log = tmp_path / "worker.log"
    with log.open("wb") as sink:
        worker = subprocess.Popen(
            [str(SPANFLOW), "worker", "examples.queued_orders:app", "--concurrency", "4"],
            cwd=REPO,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        caller = subprocess.run(
            [sys.executable, "-m", "examples.queued_orders"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        worker.send_signal(signal.SIGTERM)
        stopped = worker.wait(timeout=60)
    worker_output = log.read_text()

    assert caller.returncode == 0, f"{caller.stdout}{caller.stderr}\n--- worker:\n{worker_output}"
    lines = caller.stdout.splitlines()
    assert lines[0].endswith(": queued for a worker")
    assert "workflow-step-suspended" in caller.stdout  # at manager-approval
    assert "approving it (a resume, queued too)" in lines
    assert lines[-1].endswith(": success")
    assert stopped == 0, worker_output
