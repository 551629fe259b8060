"""Fixtures of the queue tests: one PostgreSQL, worker subprocesses, and the caller's registry.

- `queue_url`: a database in the session's throwaway PostgreSQL (a missing PostgreSQL fails
  the session in CI, see ``tests/conftest.py``), migrated once with ``spanflow db migrate``
  (spanflow's tables and procrastinate's schema) and holding the step log of `tests.queue.app`.
- `receiver`: an OTLP/HTTP receiver in this process; every worker exports its spans to it.
- `workers`: a `WorkerPool` starting ``spanflow worker tests.queue.app:app`` subprocesses on
  that database; each test starts the workers it needs and kills or stops them as it says.
  At teardown the pool stops what is left with SIGTERM and prints each worker's log, which
  pytest shows when the test failed. `shared_workers`: two workers started once per module,
  for tests that only start runs (a module using it must not also use `workers`, whose
  tests expect to control every worker alive).
- `registry`: the caller's side, in this process: the same workflows (plus ``ghost``, which no
  worker knows) on the queue executor, traced by `caller_tracing`'s SDK provider, so this
  process writes the caller's spans and the PRODUCER span of each enqueue.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from spanflow import Spanflow
from spanflow.storage import StoredRun
from spanflow.tracing import TracingConfig
from tests.queue.app import STEP_LOG, STEP_LOG_DDL, URL_ENV, build_app, ghost_workflow
from tests.support.otlp_receiver import OtlpReceiver, otlp_receiver
from tests.support.postgres import ThrowawayPostgres

REPO = Path(__file__).parents[2]
SPANFLOW = Path(sys.executable).with_name("spanflow")
WORKER_APP = "tests.queue.app:app"
CONCURRENCY = 5
READY_WITHIN = 30.0
"""Seconds a worker may take to register with the queue (it imports spanflow first)."""
STOP_WITHIN = 15.0
WITHIN = 30.0
"""Seconds a scenario may take before its test fails (a hang, not slowness)."""

T = TypeVar("T")


# -- the database and the receiver ---------------------------------------------------------


@pytest.fixture(scope="session")
def queue_url(postgres_cluster: ThrowawayPostgres) -> str:
    """A migrated database for the queue tests, with the step log table."""
    url = postgres_cluster.create_database("spanflow_queue")
    migrated = subprocess.run(
        [str(SPANFLOW), "db", "migrate", "--storage", url],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert migrated.returncode == 0, (
        f"spanflow db migrate exited {migrated.returncode}:\n{migrated.stdout}{migrated.stderr}"
    )
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(STEP_LOG_DDL)
    return url


@pytest.fixture(scope="session")
def receiver() -> Iterator[OtlpReceiver]:
    """The collector the workers export to (spans of every test; join them by trace id)."""
    with otlp_receiver() as started:
        yield started


# -- the caller's side ---------------------------------------------------------------------


@dataclass
class CallerTracing:
    """This process's tracer provider, writing finished spans to memory (random ids, so the
    traces of different tests never share an id at the session's receiver)."""

    provider: TracerProvider
    exporter: InMemorySpanExporter

    @property
    def spans(self) -> tuple[ReadableSpan, ...]:
        return self.exporter.get_finished_spans()


@pytest.fixture
def caller_tracing() -> Iterator[CallerTracing]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource({"service.name": "queue-test-caller"}), shutdown_on_exit=False
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield CallerTracing(provider, exporter)
    provider.shutdown()


@pytest.fixture
async def registry(queue_url: str, caller_tracing: CallerTracing) -> AsyncIterator[Spanflow]:
    """The caller's registry: the workers' workflows and ``ghost``, on the queue executor."""
    app = build_app(
        queue_url,
        tracing=TracingConfig(tracer_provider=caller_tracing.provider),
        extra=[ghost_workflow(queue_url)],
    )
    yield app
    await app.executor.close()
    await app.close()


# -- the workers ---------------------------------------------------------------------------


@dataclass
class Worker:
    """One ``spanflow worker`` subprocess."""

    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """``kill -9``: no shutdown, no lease let go, no span flushed."""
        os.kill(self.pid, signal.SIGKILL)
        self.process.wait(timeout=STOP_WITHIN)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else "(no output)"


class WorkerPool:
    """Starts and stops worker subprocesses for one test."""

    def __init__(self, url: str, receiver: OtlpReceiver, log_dir: Path) -> None:
        self.url = url
        self.started: list[Worker] = []
        self._log_dir = log_dir
        env = {**os.environ}
        for name in (
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "OTEL_SERVICE_NAME",
            "SPANFLOW_STORAGE_URL",
        ):
            env.pop(name, None)
        path = env.get("PYTHONPATH")
        env.update(
            {
                URL_ENV: url,
                "PYTHONPATH": str(REPO) if not path else f"{REPO}{os.pathsep}{path}",
                "PYTHONUNBUFFERED": "1",
                "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.http_base,
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                "OTEL_BSP_SCHEDULE_DELAY": "100",  # ms: spans reach the receiver quickly
            }
        )
        self._env = env

    def by_pid(self, pid: int) -> Worker:
        (worker,) = [w for w in self.started if w.pid == pid]
        return worker

    async def start(self, count: int = 1, *, concurrency: int = CONCURRENCY) -> list[Worker]:
        """Start `count` workers at once; return when each registered with the queue."""
        baseline = await self._newest_worker_row()
        new = [self._spawn(concurrency) for _ in range(count)]
        deadline = time.monotonic() + READY_WITHIN
        while await self._rows_after(baseline) < count:
            for worker in new:
                if not worker.alive:
                    pytest.fail(
                        f"worker {worker.pid} exited {worker.process.returncode} before it "
                        f"was ready:\n{worker.output()}"
                    )
            if time.monotonic() > deadline:
                logs = "\n".join(f"--- worker {w.pid}:\n{w.output()}" for w in new)
                pytest.fail(f"{count} worker(s) not ready within {READY_WITHIN}s\n{logs}")
            await asyncio.sleep(0.05)
        return new

    async def stop(self, worker: Worker) -> int:
        """SIGTERM, as a deployment stops a worker; its exit code once it exited."""
        if worker.alive:
            worker.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(worker.process.wait, STOP_WITHIN)
        except subprocess.TimeoutExpired:
            worker.process.kill()
            worker.process.wait()
            pytest.fail(f"worker {worker.pid} did not exit within {STOP_WITHIN}s of SIGTERM")
        return worker.process.returncode

    def stop_all(self) -> None:
        """Stop every worker still running (teardown): SIGTERM, then SIGKILL if need be."""
        alive = [w for w in self.started if w.alive]
        for worker in alive:
            worker.process.send_signal(signal.SIGTERM)
        for worker in alive:
            try:
                worker.process.wait(timeout=STOP_WITHIN)
            except subprocess.TimeoutExpired:
                worker.process.kill()
                worker.process.wait()

    def report(self) -> str:
        return "\n".join(
            f"--- worker {w.pid} (exit {w.process.returncode}):\n{w.output()}" for w in self.started
        )

    def _spawn(self, concurrency: int) -> Worker:
        log = self._log_dir / f"worker-{len(self.started)}.log"
        with log.open("wb") as sink:
            process = subprocess.Popen(
                [str(SPANFLOW), "worker", WORKER_APP, "--concurrency", str(concurrency)],
                cwd=REPO,
                env=self._env,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        worker = Worker(process, log)
        self.started.append(worker)
        return worker

    async def _newest_worker_row(self) -> int:
        async with await psycopg.AsyncConnection.connect(self.url) as connection:
            cursor = await connection.execute(
                "SELECT coalesce(max(id), 0) FROM procrastinate_workers"
            )
            row = await cursor.fetchone()
        assert row is not None
        return int(row[0])

    async def _rows_after(self, baseline: int) -> int:
        async with await psycopg.AsyncConnection.connect(self.url) as connection:
            cursor = await connection.execute(
                "SELECT count(*) FROM procrastinate_workers WHERE id > %s", (baseline,)
            )
            row = await cursor.fetchone()
        assert row is not None
        return int(row[0])


@pytest.fixture
def workers(queue_url: str, receiver: OtlpReceiver, tmp_path: Path) -> Iterator[WorkerPool]:
    pool = WorkerPool(queue_url, receiver, tmp_path)
    try:
        yield pool
    finally:
        pool.stop_all()
        print(pool.report())  # shown by pytest when the test failed


@pytest.fixture(scope="module")
def module_workers(
    queue_url: str, receiver: OtlpReceiver, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerPool]:
    """Two workers for a whole module, for tests that only start runs on them (no kill, no
    stop): each start of a worker costs a second or two of imports."""
    pool = WorkerPool(queue_url, receiver, tmp_path_factory.mktemp("workers"))
    try:
        asyncio.run(pool.start(2))
        yield pool
    finally:
        pool.stop_all()


@pytest.fixture
def shared_workers(module_workers: WorkerPool) -> Iterator[WorkerPool]:
    """`module_workers`, alive at the start of the test; their logs printed after it."""
    dead = [w for w in module_workers.started if not w.alive]
    if dead:
        pytest.fail(f"a shared worker died before this test:\n{module_workers.report()}")
    yield module_workers
    print(module_workers.report())


# -- reading what happened -----------------------------------------------------------------


@dataclass(frozen=True)
class StepRow:
    """One row of the step log: a step of a run reached `phase` in process `pid`."""

    step: str
    pid: int
    phase: str


async def step_log(url: str, run_id: str) -> list[StepRow]:
    """The step log of one run, in the order it was written."""
    async with await psycopg.AsyncConnection.connect(url) as connection:
        cursor = await connection.execute(
            f"SELECT step, pid, phase FROM {STEP_LOG} WHERE run_id = %s ORDER BY seq", (run_id,)
        )
        rows = await cursor.fetchall()
    return [StepRow(step, pid, phase) for step, pid, phase in rows]


def started_steps(rows: list[StepRow]) -> list[str]:
    return [row.step for row in rows if row.phase == "started"]


async def eventually(
    probe: Callable[[], Awaitable[T | None]], what: str, *, within: float = 15.0
) -> T:
    """The first truthy value `probe` returns, polling; fails naming `what` after `within` s."""
    deadline = time.monotonic() + within
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {within}s")
        await asyncio.sleep(0.02)


async def step_reached(url: str, run_id: str, step: str, phase: str = "started") -> StepRow:
    """Wait until step `step` of the run reached `phase`; that row (with the worker's pid)."""

    async def probe() -> StepRow | None:
        rows = [r for r in await step_log(url, run_id) if (r.step, r.phase) == (step, phase)]
        return rows[-1] if rows else None

    return await eventually(probe, f"step {step!r} of run {run_id} {phase}")


async def stored_as(registry: Spanflow, run_id: str, *statuses: str) -> StoredRun:
    """Wait until the run is stored with one of `statuses`."""

    async def probe() -> StoredRun | None:
        stored = await registry.storage.get_run(run_id)
        return stored if stored is not None and stored.status in statuses else None

    return await eventually(probe, f"run {run_id} stored as {' or '.join(statuses)}")


async def procrastinate_jobs(url: str, run_id: str) -> list[tuple[int, str, dict[str, Any]]]:
    """The queue's jobs for a run: id, status, arguments."""
    async with await psycopg.AsyncConnection.connect(url) as connection:
        cursor = await connection.execute(
            "SELECT id, status::text, args FROM procrastinate_jobs "
            "WHERE args->>'run_id' = %s ORDER BY id",
            (run_id,),
        )
        rows = await cursor.fetchall()
    return [(int(job_id), status, args) for job_id, status, args in rows]


async def still_serving(registry: Spanflow) -> None:
    """A chain run started now ends in success: the workers take jobs as before."""
    run = await registry.get_workflow("chain").create_run()
    async with asyncio.timeout(WITHIN):
        assert (await run.start({})).status == "success"
