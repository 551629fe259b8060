"""The queue executor without workers: jobs it cannot execute, migrations, deferring, the CLI.

What needs worker processes (runs spread over workers, ``kill -9``, cancel, tracing across
processes) is in ``test_workers*.py``. Here a job handler is called directly, with
`spanflow.workflows.jobs` spied on where the outcome is "the run is failed with this message".
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import psycopg
import pytest

from spanflow import Spanflow
from spanflow.cli.main import build_parser, main
from spanflow.errors import InvalidInputError, StorageError
from spanflow.queue import TASK_NAME, QueueExecutor, UnexecutableJobError, migrate
from spanflow.queue._worker import JobHandler, recover_once
from spanflow.storage import MemoryStorage, StoredRun
from spanflow.workflows.executor import RunJob
from tests.support.postgres import ThrowawayPostgres

pytestmark = pytest.mark.postgres


@pytest.fixture
def empty_database(postgres_cluster: ThrowawayPostgres) -> str:
    """A new database with no tables at all (procrastinate's schema lives in ``public``)."""
    return postgres_cluster.create_database(f"queue_unit_{uuid.uuid4().hex[:10]}")


def _rows(url: str, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as connection:
        return connection.execute(query).fetchall()


# -- jobs no worker can execute --------------------------------------------------------------


class _Registry:
    """The part of a registry a job handler uses: its workflows by id."""

    def __init__(self, *workflow_ids: str) -> None:
        self._workflows: dict[str, Any] = {workflow_id: object() for workflow_id in workflow_ids}

    @property
    def workflows(self) -> dict[str, Any]:
        return dict(self._workflows)

    @property
    def storage(self) -> Any:
        raise AssertionError("the handler and the recovery use the store they were given")

    def get_workflow(self, workflow_id: str) -> Any:
        try:
            return self._workflows[workflow_id]
        except KeyError:
            raise LookupError(f"no workflow {workflow_id!r} is registered") from None


@pytest.fixture
def failed_runs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Every ``fail_job(storage, run_id, message)`` a handler makes, as (run id, message)."""
    calls: list[tuple[str, str]] = []

    async def fail_job(storage: Any, run_id: str, error: str) -> bool:
        calls.append((run_id, error))
        return True

    async def execute_job(workflow: Any, job: RunJob) -> None:
        raise AssertionError(f"a job that cannot be executed was executed: {job}")

    monkeypatch.setattr("spanflow.queue._worker.fail_job", fail_job)
    monkeypatch.setattr("spanflow.queue._worker.execute_job", execute_job)
    return calls


async def test_a_payload_that_does_not_decode_fails_its_run_and_the_job(
    failed_runs: list[tuple[str, str]],
) -> None:
    handler = JobHandler(_Registry("orders"), MemoryStorage())

    with pytest.raises(UnexecutableJobError, match="op must be one of"):
        await handler({"op": "explode", "workflow_id": "orders", "run_id": "run-1"})

    [(run_id, message)] = failed_runs
    assert run_id == "run-1"
    assert message.startswith("a worker could not decode the run's job")
    assert "'explode'" in message


async def test_a_payload_without_a_readable_run_id_fails_only_the_job(
    failed_runs: list[tuple[str, str]],
) -> None:
    handler = JobHandler(_Registry("orders"), MemoryStorage())

    with pytest.raises(UnexecutableJobError, match="run_id must be a non-empty string"):
        await handler({"op": "start", "workflow_id": "orders", "run_id": 42})

    assert failed_runs == []


async def test_a_job_of_a_workflow_this_worker_does_not_serve_fails_its_run(
    failed_runs: list[tuple[str, str]],
) -> None:
    handler = JobHandler(_Registry("orders"), MemoryStorage())
    job = RunJob("start", "ghost", "run-2")

    with pytest.raises(UnexecutableJobError, match="ghost"):
        await handler(job.to_dict())

    [(run_id, message)] = failed_runs
    assert run_id == "run-2"
    assert "no worker on this queue executes workflow 'ghost'" in message


async def test_an_unexecutable_job_ends_failed_and_is_never_retried() -> None:
    from spanflow.queue._app import build_app

    async def handler(payload: dict[str, Any]) -> str:
        raise UnexecutableJobError("no")

    app = build_app("postgresql://nowhere/db", queue="q", max_size=2, handler=handler)
    task = app.tasks[TASK_NAME]
    retry = task.get_retry_exception(exception=UnexecutableJobError("no"), job=_job(task))
    assert retry is None
    store_failure = task.get_retry_exception(exception=StorageError("down"), job=_job(task))
    assert store_failure is not None


def _job(task: Any) -> Any:
    return task.configure().make_new_job(**RunJob("start", "wf", "r").to_dict())


# -- recovery -------------------------------------------------------------------------------


class _StalledStore(MemoryStorage):
    """A store whose stalled runs are given, and whose look-up can be made to fail."""

    def __init__(self, stalled: list[StoredRun], *, broken: bool = False) -> None:
        super().__init__()
        self._stalled, self._broken = stalled, broken
        self.asked_for: list[list[str] | None] = []

    async def stalled_runs(self, *, workflow_ids: Any = None, limit: int = 100) -> list[StoredRun]:
        self.asked_for.append(None if workflow_ids is None else sorted(workflow_ids))
        if self._broken:
            raise StorageError("the database is down")
        return list(self._stalled)


async def test_recovery_requeues_each_stalled_run_and_goes_on_after_a_failure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    requeued: list[str] = []

    async def requeue_stalled(workflow: Any, stored: StoredRun) -> bool:
        if stored.run_id == "bad":
            raise StorageError("lost the connection")
        requeued.append(stored.run_id)
        return True

    monkeypatch.setattr("spanflow.queue._worker.requeue_stalled", requeue_stalled)
    runs = [StoredRun(run_id, "orders", "running", {}) for run_id in ("a", "bad", "b")]
    store = _StalledStore(runs)

    count = await recover_once(_Registry("orders", "billing"), store)

    assert (count, requeued) == (2, ["a", "b"])
    assert store.asked_for == [["billing", "orders"]]


async def test_recovery_survives_a_store_that_cannot_list_stalled_runs() -> None:
    store = _StalledStore([], broken=True)

    assert await recover_once(_Registry("orders"), store) == 0


# -- migrations -----------------------------------------------------------------------------


async def test_migrate_creates_both_schemas_once_and_then_changes_nothing(
    empty_database: str,
) -> None:
    first = await migrate(empty_database)
    second = await migrate(empty_database)

    assert first.spanflow_before == 0
    assert first.spanflow_after >= 4
    assert first.procrastinate_applied
    assert first.changed
    assert not second.changed
    assert second.lines() == [
        f"spanflow tables: up to date (schema version {first.spanflow_after})",
        "procrastinate schema: present, left as it is",
    ]
    tables = {row[0] for row in _rows(empty_database, "SELECT tablename FROM pg_tables")}
    assert {"spanflow_runs", "spanflow_events", "procrastinate_jobs"} <= tables


async def test_workers_starting_together_apply_procrastinates_schema_once(
    empty_database: str,
) -> None:
    reports = await asyncio.gather(*(migrate(empty_database) for _ in range(3)))

    assert sorted(report.procrastinate_applied for report in reports) == [False, False, True]


async def test_migrate_names_the_database_it_cannot_reach() -> None:
    with pytest.raises(StorageError, match=r"127\.0\.0\.1:1/nothing"):
        await migrate("postgresql://127.0.0.1:1/nothing?connect_timeout=2")


# -- deferring ------------------------------------------------------------------------------


async def test_submit_defers_one_job_whose_kwargs_are_the_run_job(empty_database: str) -> None:
    await migrate(empty_database)
    executor = QueueExecutor(empty_database, queue="orders-queue")
    carrier = {"traceparent": f"00-{'a' * 32}-{'b' * 16}-01"}
    try:
        await executor.submit(RunJob("resume", "orders", "run-7", carrier))
    finally:
        await executor.close()
        await executor.close()  # closing twice is fine

    [(queue, task, args, status)] = _rows(
        empty_database, "SELECT queue_name, task_name, args, status FROM procrastinate_jobs"
    )
    assert (queue, task, status) == ("orders-queue", "spanflow.execute_run", "todo")
    assert RunJob.from_dict(args) == RunJob("resume", "orders", "run-7", carrier)


async def test_submit_to_a_database_without_the_queue_schema_says_to_migrate(
    empty_database: str,
) -> None:
    executor = QueueExecutor(empty_database)
    try:
        with pytest.raises(StorageError, match="spanflow db migrate"):
            await executor.submit(RunJob("start", "orders", "run-8"))
    finally:
        await executor.close()


async def test_a_worker_refuses_a_store_only_its_own_process_can_read() -> None:
    registry = Spanflow(storage=MemoryStorage(), executor=QueueExecutor("dbname=x"))

    with pytest.raises(InvalidInputError, match="PostgresStorage"):
        await registry.run_worker(concurrency=2)


@pytest.mark.parametrize(
    ("option", "value"), [("recover_every", 0), ("shutdown_grace", -1), ("queue", "")]
)
def test_the_executors_settings_are_checked(option: str, value: Any) -> None:
    with pytest.raises(InvalidInputError, match=option):
        QueueExecutor("dbname=x", **{option: value})


# -- the command line -----------------------------------------------------------------------


@pytest.fixture
def no_storage_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SPANFLOW_STORAGE_URL", raising=False)


def test_worker_parses_its_registry_and_concurrency() -> None:
    options = build_parser().parse_args(
        ["worker", "examples.order_fulfilment:app", "--concurrency", "7"]
    )

    assert (options.command_name, options.concurrency) == ("worker", 7)
    assert (options.app.module, options.app.attribute) == ("examples.order_fulfilment", "app")
    assert options.shutdown_grace is None


def test_worker_refuses_a_concurrency_below_one(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["worker", "examples.order_fulfilment:app", "--concurrency", "0"]) == 2
    assert "expected a number above 0" in capsys.readouterr().err


def test_worker_says_how_to_configure_a_registry_without_a_queue(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["worker", "examples.order_fulfilment:app"]) == 1

    error = capsys.readouterr().err
    assert "takes no jobs from a queue" in error
    assert "executor=QueueExecutor(URL)" in error


def test_db_migrate_prints_what_it_did_each_time(
    empty_database: str, capsys: pytest.CaptureFixture[str], no_storage_env: None
) -> None:
    assert main(["db", "migrate", "--storage", empty_database]) == 0
    first = capsys.readouterr().out
    assert main(["db", "migrate", "--storage", empty_database]) == 0
    second = capsys.readouterr().out

    assert "spanflow tables: created" in first
    assert "procrastinate schema: applied" in first
    assert "spanflow tables: up to date" in second
    assert "procrastinate schema: present" in second


def test_db_without_an_action_says_which_to_give(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db"]) == 2
    assert "spanflow db migrate --storage URL" in capsys.readouterr().err


# -- a worker inside the caller's own process -----------------------------------------------


async def test_a_worker_in_this_process_executes_runs_and_stops_when_its_task_is_canceled(
    empty_database: str,
) -> None:
    from spanflow import create_step, create_workflow
    from spanflow.storage import PostgresStorage

    async def double(ctx: Any) -> dict[str, int]:
        return {"n": ctx.input_data["n"] * 2}

    workflow = create_workflow(id="double").then(create_step(id="double", execute=double))
    await migrate(empty_database)  # deployed first: the caller defers before the worker starts
    registry = Spanflow(
        workflows=[workflow.commit()],
        storage=PostgresStorage(empty_database),
        executor=QueueExecutor(empty_database, handle_signals=False, shutdown_grace=5),
    )
    worker = asyncio.create_task(registry.run_worker(concurrency=2))
    try:
        run = await registry.get_workflow("double").create_run()
        async with asyncio.timeout(30):
            result = await run.start({"n": 21})
        assert (result.status, result.result) == ("success", {"n": 42})
    finally:
        worker.cancel()
        with pytest.raises(asyncio.CancelledError):
            await worker
        await registry.close()

    workers = _rows(empty_database, "SELECT count(*) FROM procrastinate_workers")
    assert workers == [(0,)]  # it unregistered: a graceful stop, not an abandoned worker
