"""A worker process for the durability tests: ``python durable_worker.py SPEC COMMAND RUN_ID``.

SPEC is JSON naming the store (``{"kind": "sqlite", "path": ...}`` or ``{"kind": "postgres",
"dsn": ..., "schema": ...}``). COMMAND is ``start``, ``resume`` or ``restart``. The worker traces
with an in-memory SDK exporter and prints one JSON line: the outcome and the spans it made.
A file named by ``SPANFLOW_TEST_GO`` makes it wait for that file before acting (a starting gun).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from spanflow import SpanflowError
from spanflow.storage import PostgresStorage, SqliteStorage, Storage

sys.path.insert(0, str(Path(__file__).parents[2]))  # the repository root, for `tests.*`
from tests.integration.durable_app import build_workflow


def open_store(spec: dict[str, Any]) -> Storage:
    if spec["kind"] == "sqlite":
        return SqliteStorage(spec["path"])
    return PostgresStorage(spec["dsn"], schema=spec["schema"])


async def act(spec: dict[str, Any], command: str, run_id: str) -> dict[str, Any]:
    workflow = build_workflow()
    workflow.storage = open_store(spec)
    go = os.environ.get("SPANFLOW_TEST_GO")
    # The test creates the file from another process: polling is the only way to see it.
    # The test creates the file from another process: polling is the only way to see it.
    while go and not Path(go).exists():  # noqa: ASYNC110, ASYNC240
        await asyncio.sleep(0.005)
    try:
        run = await workflow.create_run(run_id=run_id)
        if command == "start":
            result = await run.start({"order_id": "o-1", "amount": 900})
        elif command == "resume":
            result = await run.resume({"approved_by": f"pid-{os.getpid()}"})
        else:
            result = await run.restart()
        return {"status": result.status, "trace_id": result.trace_id, "span_id": result.span_id}
    except SpanflowError as err:
        return {"status": "error", "error": type(err).__name__, "message": str(err)}
    finally:
        await workflow.storage.close()


def main() -> None:
    spec, command, run_id = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    outcome = asyncio.run(act(spec, command, run_id))
    outcome["spans"] = [
        {
            "name": s.name,
            "trace_id": format(s.context.trace_id, "032x"),
            "span_id": format(s.context.span_id, "016x"),
            "parent_id": format(s.parent.span_id, "016x") if s.parent else None,
            "attributes": {
                k: v for k, v in (s.attributes or {}).items() if isinstance(v, str | bool | int)
            },
        }
        for s in exporter.get_finished_spans()
    ]
    outcome["pid"] = os.getpid()
    outcome["t"] = time.time()
    print(json.dumps(outcome))


if __name__ == "__main__":
    main()
