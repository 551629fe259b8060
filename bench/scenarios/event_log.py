"""Scenario 11: what the run event log costs per step, on SQLite and PostgreSQL.

Runs of a 100-step sequential workflow (`bench.workloads.chain`) with ``start()``, tracing off
(no SDK), on a durable store made with the event log on (the default) and with
``event_log=False``: four variants, interleaved repetition by repetition, each repetition
``Sizes.event_log_runs`` runs back to back. The added cost per step is (on − off) / steps.

Each variant has one store for all its repetitions, opened (tables created, pool connected)
before the warm-up, so connecting is never timed; runs accumulate in it as they would in a
deployment (a few dozen runs here), in both variants alike. SQLite: a file per variant in
a temporary directory, the store's own settings (WAL, ``synchronous=NORMAL``). PostgreSQL: a
throwaway cluster (`tests.support.postgres.ThrowawayPostgres`, the one the tests start:
``fsync=off``, ``synchronous_commit=off``, so the figure is the CPU and protocol cost of the
log, not this shared machine's disk), one schema per variant. Without the server binaries or
psycopg the PostgreSQL variants are reported as not available and SQLite still runs.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack, ExitStack
from pathlib import Path

from bench.measure import Measurement, Sizes, emit, interleaved
from bench.workloads import Value, chain, run_start
from spanflow import Workflow
from spanflow.storage.base import Storage
from spanflow.storage.sqlite import SqliteStorage

STEPS = 100
LOGS = {"on": True, "off": False}


def body(workflow: Workflow, runs: int) -> Callable[[], Awaitable[float]]:
    async def timed() -> float:
        start = time.perf_counter()
        for _ in range(runs):
            result = await run_start(workflow, {"v": 0})
        elapsed = time.perf_counter() - start
        if result != Value(v=STEPS):
            raise RuntimeError(f"unexpected result {result!r}")
        return elapsed

    return timed


def _postgres_stores(stack: ExitStack) -> dict[str, Storage] | str:
    """A PostgresStorage per log setting in a throwaway cluster, or why there is none."""
    try:
        from spanflow.storage.postgres import PostgresStorage
        from tests.support.postgres import PostgresBinariesMissing, ThrowawayPostgres
    except ImportError as exc:  # psycopg missing
        return f"PostgreSQL needs psycopg: {exc}"
    try:
        cluster = stack.enter_context(ThrowawayPostgres())
    except (PostgresBinariesMissing, RuntimeError, OSError) as exc:
        return str(exc).splitlines()[0]
    dsn = cluster.create_database("spanflow_bench")
    return {
        name: PostgresStorage(dsn, schema=f"bench_log_{name}", event_log=log)
        for name, log in LOGS.items()
    }


async def measure(sizes: Sizes) -> list[Measurement]:
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="spanflow-bench-") as tmp:
        stores: dict[str, Storage] = {
            f"sqlite.{name}": SqliteStorage(Path(tmp) / f"log-{name}.db", event_log=log)
            for name, log in LOGS.items()
        }
        postgres = _postgres_stores(stack)
        if isinstance(postgres, dict):
            stores |= {f"postgres.{name}": store for name, store in postgres.items()}
        async with AsyncExitStack() as opened:
            for store in stores.values():
                await opened.enter_async_context(store)  # type: ignore[arg-type]
            variants = {}
            for key, store in stores.items():
                workflow = chain(STEPS, "log-" + key.replace(".", "-"))
                workflow.storage = store
                variants[f"s11.{key}"] = body(workflow, sizes.event_log_runs)
            timings = await interleaved(variants, sizes.reps)
    units = STEPS * sizes.event_log_runs
    results = [
        Measurement(key, timing.samples, units, "step", timing.extra())
        for key, timing in timings.items()
    ]
    if isinstance(postgres, str):
        results += [
            Measurement(f"s11.postgres.{name}", [], units, "step", {"unavailable": postgres})
            for name in LOGS
        ]
    return results


def main() -> None:
    emit(asyncio.run(measure(Sizes.from_argv(sys.argv[1:]))))


if __name__ == "__main__":
    main()
