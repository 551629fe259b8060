"""The files under ``examples/`` that the README points at work as it says."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from examples.order_fulfilment import Order, order_workflow, sample_order
from spanflow.storage import SqliteStorage, StoredRun

ROOT = Path(__file__).resolve().parents[1]
ORDER_JSON = ROOT / "examples" / "order.json"


async def stored_runs(db: Path) -> list[StoredRun]:
    async with SqliteStorage(db) as store:
        return (await store.list_runs()).runs


def test_order_json_is_a_valid_input_of_the_order_workflow() -> None:
    data = json.loads(ORDER_JSON.read_text())

    assert order_workflow.input_schema is Order
    assert Order.model_validate(data).order_id == "ORD-20417"


def test_order_json_is_the_order_the_demo_runs() -> None:
    assert json.loads(ORDER_JSON.read_text()) == sample_order()


def test_the_readme_command_runs_the_order_from_order_json(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    env = {**os.environ, "NO_COLOR": "1"}
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    env.pop("SPANFLOW_STORAGE_URL", None)

    # The README's line, with the store in tmp_path; the working directory is the repository's.
    command = [
        sys.executable, "-m", "spanflow.cli.main",
        "run", "examples.order_fulfilment:order_workflow", "--input", "@examples/order.json",
        "--meta", "user.id=u-42", "--tag", "vip", "--request-context", '{"simulated_latency": 0}',
        "--db", str(db),
    ]  # fmt: skip
    done = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )

    assert done.returncode == 0, done.stderr
    assert [(run.workflow_id, run.status) for run in asyncio.run(stored_runs(db))] == [
        ("order-fulfilment", "suspended")  # over $1,000: it waits for a manager
    ]
