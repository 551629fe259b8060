"""``spanflow runs list | show | resume``: the stored runs, read and continued from the CLI."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest

from spanflow.cli.stored import format_time
from spanflow.storage import SqliteStorage, StoredRun

from .conftest import Cli

HELLO = "tests.cli.sample_workflows:hello"
APPROVAL = "tests.cli.sample_workflows:approval"
BROKEN = "tests.cli.sample_workflows:broken"


def started(cli: Cli, db: Path, ref: str, name: str, *more: str) -> str:
    """Run `ref` with input ``{"name": name}`` and return the run id."""
    done = cli("run", ref, "--input", f'{{"name": "{name}"}}', "--db", str(db), *more)
    found = re.search(r"\(run ([0-9a-f-]{36})\)", done.out)
    assert found, done.out + done.err
    return found.group(1)


def stored(db: Path, run_id: str) -> StoredRun:
    async def read() -> StoredRun | None:
        async with SqliteStorage(db) as storage:
            return await storage.get_run(run_id)

    run = asyncio.run(read())
    assert run is not None
    return run


def rewrite_snapshot(db: Path, run_id: str, snapshot: dict[str, Any]) -> StoredRun:
    """Store `snapshot` as the run's snapshot, as another spanflow (or a bad disk) would."""
    run = stored(db, run_id)
    run.snapshot = snapshot

    async def write() -> None:
        async with SqliteStorage(db) as storage:
            await storage.save_run(run)

    asyncio.run(write())
    return stored(db, run_id)


# -- list ------------------------------------------------------------------------------------


def test_list_shows_an_aligned_table_newest_first(cli: Cli, db: Path) -> None:
    first = started(cli, db, HELLO, "Ada")
    second = started(cli, db, APPROVAL, "Grace", "--resource", "tenant-7")

    done = cli("runs", "list", "--db", str(db))

    assert done.code == 0, done.err
    header, row_second, row_first, footer = done.out.splitlines()
    assert header.split() == ["RUN", "ID", "WORKFLOW", "STATUS", "RESOURCE", "CREATED", "UPDATED"]
    assert row_second.split()[:4] == [second, "approval", "suspended", "tenant-7"]
    assert row_first.split()[:4] == [first, "hello", "success", "-"]
    for column in ("WORKFLOW", "STATUS", "RESOURCE", "CREATED", "UPDATED"):
        at = header.index(column)
        assert row_first[at - 2 : at] == "  "
        assert row_first[at] != " "
    assert footer == f"2 runs, newest first, in SQLite, {db}"


def test_list_filters_by_workflow_status_and_resource(cli: Cli, db: Path) -> None:
    ok = started(cli, db, HELLO, "Ada", "--resource", "tenant-1")
    failed = started(cli, db, BROKEN, "Bob", "--resource", "tenant-1")
    waiting = started(cli, db, APPROVAL, "Cy", "--resource", "tenant-2")

    def ids(*filters: str) -> list[str]:
        out = cli("runs", "list", "--db", str(db), *filters).out
        return [line.split()[0] for line in out.splitlines()[1:-1]]

    assert ids("--workflow", "hello") == [ok]
    assert ids("--status", "failed") == [failed]
    assert ids("--resource", "tenant-1") == [failed, ok]
    assert ids("--resource", "tenant-1", "--status", "success") == [ok]
    assert ids("--status", "suspended", "--workflow", "approval") == [waiting]


def test_list_pages_with_limit_and_offset(cli: Cli, db: Path) -> None:
    runs = [started(cli, db, HELLO, name) for name in ("A", "B", "C")]

    page = cli("runs", "list", "--db", str(db), "--limit", "1", "--offset", "1").out.splitlines()

    assert page[1].split()[0] == runs[1]
    assert page[-1] == f"runs 2-2 of 3, newest first, in SQLite, {db}; --offset 2 for more"


def empty_database(db: Path) -> None:
    """Create a spanflow database with no runs in it."""

    async def create() -> None:
        async with SqliteStorage(db):
            pass

    asyncio.run(create())


def test_list_says_when_there_is_nothing_to_show(cli: Cli, db: Path) -> None:
    empty_database(db)
    empty = cli("runs", "list", "--db", str(db))
    started(cli, db, HELLO, "Ada")
    none_match = cli("runs", "list", "--db", str(db), "--status", "failed")

    assert empty.out == f"no runs in SQLite, {db}\n"
    assert none_match.out == f"no runs match in SQLite, {db}\n"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--limit", "0"], "argument --limit: expected a number >= 1, got 0"),
        (["--offset", "x"], "argument --offset: expected a whole number, got 'x'"),
        (["--status", "done"], "argument --status: invalid choice: 'done'"),
    ],
)
def test_list_rejects_bad_options_in_one_line(cli: Cli, argv: list[str], message: str) -> None:
    done = cli("runs", "list", *argv)

    assert done.code == 2
    assert done.error_line.startswith(f"spanflow: error: {message}")


def test_runs_without_a_subcommand_is_one_line(cli: Cli) -> None:
    done = cli("runs")

    assert done.code == 2
    assert done.error_line.startswith("spanflow: error: the following arguments are required")


# -- show ------------------------------------------------------------------------------------


def test_show_prints_status_steps_result_and_trace_id(cli: Cli, db: Path) -> None:
    run_id = started(cli, db, HELLO, "Ada")
    trace_id = stored(db, run_id).snapshot["trace"]["traceId"]

    done = cli("runs", "show", run_id, "--db", str(db))

    assert done.code == 0, done.err
    lines = [line.rstrip() for line in done.out.splitlines()]
    assert f"run id    {run_id}" in lines
    assert "workflow  hello" in lines
    assert "status    success" in lines
    assert f"trace id  {trace_id}" in lines
    assert "steps" in lines
    assert any(re.fullmatch(r"  ✓ greet  success   \d+ ms", line) for line in lines), lines
    assert "result" in lines
    assert "greeting  Hello, Ada!" in lines


def test_show_prints_the_error_of_a_failed_run(cli: Cli, db: Path) -> None:
    run_id = started(cli, db, BROKEN, "Ada")

    out = cli("runs", "show", run_id, "--db", str(db)).out

    assert "status    failed" in out
    assert "✗ explode  failed" in out
    assert "error\nValueError: no greeting for Ada" in out


def test_show_prints_what_a_suspended_run_waits_for(cli: Cli, db: Path) -> None:
    run_id = started(cli, db, APPROVAL, "Ada")

    out = cli("runs", "show", run_id, "--db", str(db)).out

    assert "status    suspended" in out
    assert "‖ ask    suspended" in out
    assert "waiting for ask\nquestion  send 'Hello, Ada!'?" in out


def test_show_of_an_unknown_run_is_one_line(cli: Cli, db: Path) -> None:
    empty_database(db)
    done = cli("runs", "show", "no-such-run", "--db", str(db))

    assert done.code == 1
    assert done.error_line == f"spanflow: error: runs show: no run 'no-such-run' in SQLite, {db}"


def test_show_of_a_run_stored_by_a_newer_spanflow_prints_its_row_and_why_not_the_rest(
    cli: Cli, db: Path
) -> None:
    run_id = started(cli, db, HELLO, "Ada")
    first = stored(db, run_id).snapshot
    trace = first["trace"]
    run = rewrite_snapshot(db, run_id, {**first, "version": 999, "frame": {"new": "layout"}})

    done = cli("runs", "show", run_id, "--db", str(db))

    assert done.code == 0, done.err
    assert done.err == ""
    *rows, why = [line.rstrip() for line in done.out.splitlines()]
    assert rows == [
        f"run id    {run_id}",
        "workflow  hello",
        "status    success",
        "resource  -",
        f"created   {format_time(run.created_at)}",
        f"updated   {format_time(run.updated_at)}",
        f"trace id  {trace['traceId']}",
        f"run span  {trace['spanId']}",
        f"storage   SQLite, {db}",
        "",
    ]
    assert re.fullmatch(
        rf"snapshot not shown: run {re.escape(repr(run_id))} was stored by a newer spanflow "
        r"\(snapshot version 999, this one reads up to \d+\): upgrade spanflow to resume it",
        why,
    ), why


def test_show_of_a_damaged_snapshot_prints_its_row_and_why_not_the_rest(cli: Cli, db: Path) -> None:
    run_id = started(cli, db, HELLO, "Ada")
    first = stored(db, run_id).snapshot
    rewrite_snapshot(db, run_id, {**first, "trace": "garbled", "frame": {"steps": 7}})

    done = cli("runs", "show", run_id, "--db", str(db))

    assert done.code == 0, done.err
    lines = [line.rstrip() for line in done.out.splitlines()]
    assert "status    success" in lines
    assert "trace id  -" in lines
    assert "steps" not in lines
    assert re.fullmatch(
        rf"snapshot not shown: run {re.escape(repr(run_id))}: stored snapshot is damaged "
        r"\(\d+ errors?; first: .+\)",
        lines[-1],
    ), lines


# -- resume ----------------------------------------------------------------------------------


def test_resume_streams_the_rest_of_the_run_in_the_same_trace(cli: Cli, db: Path) -> None:
    run_id = started(cli, db, APPROVAL, "Ada")
    first = stored(db, run_id).snapshot["trace"]

    done = cli(
        "runs",
        "resume",
        run_id,
        "--workflow",
        APPROVAL,
        "--data",
        '{"approved": true, "by": "Grace"}',
        "--db",
        str(db),
    )

    assert done.code == 0, done.err
    assert f"↻ approval resumed (run {run_id})" in done.out
    assert "  ▸ ask" in done.out
    assert "✓ approval succeeded in" in done.out
    assert "greeting  Hello, Ada! (approved by Grace)" in done.out
    assert f"trace id  {first['traceId']}" in done.out
    resumed = stored(db, run_id)
    assert resumed.status == "success"
    assert resumed.snapshot["trace"]["traceId"] == first["traceId"]
    assert resumed.snapshot["trace"]["spanId"] != first["spanId"]


def test_resume_span_tree_shows_the_resumed_half_under_the_first_run_span(
    cli: Cli, db: Path
) -> None:
    run_id = started(cli, db, APPROVAL, "Ada")
    first = stored(db, run_id).snapshot["trace"]

    out = cli(
        "runs", "resume", run_id, "--workflow", APPROVAL, "--data", '{"approved": true}',
        "--db", str(db), "--span-tree",
    ).out  # fmt: skip

    assert f"── trace {first['traceId']} (parent span {first['spanId']}) ──" in out
    assert "invoke_workflow approval" in out
    assert "run.resumed=true" in out
    assert "└─ workflow_step ask" in out


def test_resume_with_data_the_step_rejects_is_one_line(cli: Cli, db: Path) -> None:
    run_id = started(cli, db, APPROVAL, "Ada")

    done = cli(
        "runs", "resume", run_id, "--workflow", APPROVAL, "--data", '{"approved": "maybe"}',
        "--db", str(db),
    )  # fmt: skip

    assert done.code == 1
    assert done.error_line.startswith("spanflow: error: runs resume: ")
    assert "approved" in done.error_line
    assert stored(db, run_id).status == "suspended"


def test_resume_of_an_unknown_run_is_one_line(cli: Cli, db: Path) -> None:
    done = cli("runs", "resume", "nope", "--workflow", APPROVAL, "--db", str(db))

    assert done.code == 1
    assert done.out == ""
    assert done.error_line == f"spanflow: error: runs resume: no run 'nope' in SQLite, {db}"


def test_resume_of_a_finished_run_is_one_line(cli: Cli, db: Path) -> None:
    run_id = started(cli, db, HELLO, "Ada")

    done = cli("runs", "resume", run_id, "--workflow", HELLO, "--db", str(db))

    assert done.code == 1
    assert done.error_line == (
        f"spanflow: error: runs resume: run '{run_id}' is success, not suspended: nothing to resume"
    )


def test_resume_with_another_workflow_is_one_line(cli: Cli, db: Path) -> None:
    run_id = started(cli, db, APPROVAL, "Ada")

    done = cli("runs", "resume", run_id, "--workflow", HELLO, "--db", str(db))

    assert done.code == 1
    assert done.error_line == (
        f"spanflow: error: runs resume: run '{run_id}' belongs to workflow 'approval', not 'hello'"
    )


def test_resume_needs_the_workflow(cli: Cli, db: Path) -> None:
    done = cli("runs", "resume", "some-run", "--db", str(db))

    assert done.code == 2
    assert done.error_line.startswith(
        "spanflow: error: the following arguments are required: --workflow"
    )


def test_resume_help_documents_the_workflow_option(cli: Cli) -> None:
    out = " ".join(cli("runs", "resume", "--help").out.split())

    assert "The workflow's code is needed to continue it: name it with --workflow" in out
    assert "SPANFLOW_STORAGE_URL" in out


def test_list_past_the_last_run_says_how_many_there_are(cli: Cli, db: Path) -> None:
    started(cli, db, HELLO, "Ada")

    done = cli("runs", "list", "--db", str(db), "--offset", "5")

    assert done.out == f"no runs past --offset 5: 1 in SQLite, {db}\n"
