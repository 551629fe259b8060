"""``spanflow run module:workflow``: streams a run, stores it, and fails in one clear line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import Cli

HELLO = "tests.cli.sample_workflows:hello"
APPROVAL = "tests.cli.sample_workflows:approval"
BROKEN = "tests.cli.sample_workflows:broken"
ADA = '{"name": "Ada"}'


def test_a_run_streams_its_events_and_ends_with_a_summary(cli: Cli, db: Path) -> None:
    done = cli("run", HELLO, "--input", ADA, "--db", str(db))

    assert done.code == 0, done.err
    assert done.err == ""
    assert "▶ hello started (run " in done.out
    assert "  ▸ greet" in done.out
    assert "    │ greeting Ada" in done.out
    assert "  ✓ greet" in done.out
    assert "✓ hello succeeded in" in done.out
    assert "hello: success" in done.out
    assert "greeting  Hello, Ada!" in done.out
    assert f"storage   SQLite, {db}" in done.out


def test_the_summary_names_the_trace_and_the_run_is_stored_with_it(cli: Cli, db: Path) -> None:
    done = cli("run", HELLO, "--input", ADA, "--db", str(db))
    trace_id = _summary_value(done.out, "trace id")
    run_id = _summary_value(done.out, "run id")

    shown = cli("runs", "show", run_id, "--db", str(db))

    assert len(trace_id) == 32
    assert f"trace id  {trace_id}" in shown.out


def test_input_can_come_from_a_file(cli: Cli, db: Path, tmp_path: Path) -> None:
    (tmp_path / "input.json").write_text(json.dumps({"name": "Grace"}))

    done = cli("run", HELLO, "--input", f"@{tmp_path / 'input.json'}", "--db", str(db))

    assert "Hello, Grace!" in done.out


def test_the_request_context_reaches_the_steps(cli: Cli, db: Path) -> None:
    done = cli("run", HELLO, "--input", ADA, "--request-context", '{"lang": "fr"}', "--db", str(db))

    assert "Bonjour, Ada!" in done.out


def test_a_failed_run_exits_1_with_one_error_line(cli: Cli, db: Path) -> None:
    done = cli("run", BROKEN, "--input", ADA, "--db", str(db))

    assert done.code == 1
    assert "✗ explode" in done.out
    assert done.error_line.startswith("spanflow: error: run ")
    assert done.error_line.endswith(" failed: ValueError: no greeting for Ada")


def test_a_suspended_run_exits_0_and_says_how_to_resume_it(cli: Cli, db: Path) -> None:
    done = cli("run", APPROVAL, "--input", ADA, "--db", str(db))
    run_id = _summary_value(done.out, "run id")

    assert done.code == 0, done.err
    assert "‖ ask needs input" in done.out
    assert "question  send 'Hello, Ada!'?" in done.out
    assert (
        f"waiting for ask; continue with: spanflow runs resume {run_id} --workflow {APPROVAL} "
        f"--db {db} --data JSON"
    ) in done.out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--input", "{name: Ada}"],
            "argument --input: not valid JSON: Expecting property name enclosed in double "
            "quotes at line 1 column 2 (got '{name: Ada}')",
        ),
        (
            ["--input", "@/no/such/file.json"],
            "argument --input: cannot read '/no/such/file.json': No such file or directory",
        ),
        (
            ["--request-context", "[1, 2]"],
            "argument --request-context: expected a JSON object ({...}), got an array",
        ),
        (["--meta", "user.id"], "argument --meta: expected key=value, got 'user.id'"),
        (
            ["--meta", "user..id=1"],
            "argument --meta: 'user..id' is not a metadata key: use names separated by single "
            "dots, like user.id",
        ),
        (
            ["--meta", "user=u-42", "--meta", "user.id=u-42"],
            "argument --meta: 'user.id' conflicts with another --meta: 'user' cannot be both a "
            "value and a group of keys",
        ),
        (["--trace-id", "not-hex"], "argument --trace-id: 'not-hex' is not hex"),
        (["--db", "a.db", "--storage", "memory://"], "argument --storage: not allowed with"),
    ],
    ids=[
        "bad-json",
        "missing-file",
        "context-not-object",
        "meta-without-value",
        "meta-bad-key",
        "meta-conflict",
        "bad-trace-id",
        "two-stores",
    ],
)
def test_a_wrong_command_line_is_one_line_and_exit_2(
    cli: Cli, db: Path, argv: list[str], message: str
) -> None:
    done = cli("run", HELLO, "--input", ADA, *argv)

    assert done.code == 2
    assert done.out == ""
    assert done.error_line.startswith(f"spanflow: error: {message}")
    assert done.error_line.endswith("(see 'spanflow run --help')")


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        (
            "no_such_module:flow",
            "cannot import 'no_such_module': no module named 'no_such_module' (searched the "
            "working directory and the installed packages)",
        ),
        ("tests.cli.sample_workflows:nope", "'tests.cli.sample_workflows' has no attribute 'nope'"),
        (
            "tests.cli.sample_workflows:hello.nope",
            "'tests.cli.sample_workflows:hello' has no attribute 'nope'",
        ),
        (
            "tests.cli.sample_workflows:not_a_workflow",
            "tests.cli.sample_workflows:not_a_workflow is a int, not a spanflow Workflow",
        ),
        (
            "tests.cli.sample_workflows:unfinished",
            "tests.cli.sample_workflows:unfinished is a workflow that was never committed: "
            "call .commit() on it",
        ),
    ],
    ids=["unknown-module", "unknown-attribute", "unknown-nested", "not-a-workflow", "uncommitted"],
)
def test_a_workflow_that_cannot_be_loaded_is_one_line_and_exit_1(
    cli: Cli, db: Path, ref: str, message: str
) -> None:
    done = cli("run", ref, "--input", ADA, "--db", str(db))

    assert done.code == 1
    assert done.out == ""
    assert done.error_line == f"spanflow: error: run: {message}"


def test_a_module_that_fails_to_import_is_one_line(
    cli: Cli, db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "shaky_module.py").write_text("raise RuntimeError('database\\nunreachable')\n")
    monkeypatch.syspath_prepend(str(tmp_path))

    done = cli("run", "shaky_module:flow", "--db", str(db))

    assert done.code == 1
    assert done.error_line == (
        "spanflow: error: run: importing 'shaky_module' failed: RuntimeError: database unreachable"
    )


def test_a_malformed_workflow_reference_is_a_usage_error(cli: Cli) -> None:
    done = cli("run", "examples.order_fulfilment", "--input", ADA)

    assert done.code == 2
    assert done.error_line.startswith(
        "spanflow: error: argument MODULE:WORKFLOW: expected module:attribute, such as "
        "examples.order_fulfilment:order_workflow, got 'examples.order_fulfilment'"
    )


def test_input_the_workflow_rejects_is_one_line(cli: Cli, db: Path) -> None:
    done = cli("run", HELLO, "--input", '{"nom": "Ada"}', "--db", str(db))

    assert done.code == 1
    assert done.error_line.startswith("spanflow: error: run: ")
    assert "name" in done.error_line


def test_the_default_store_is_spanflow_db_in_the_working_directory(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    done = cli("run", HELLO, "--input", ADA)

    assert f"storage   SQLite, {tmp_path / 'spanflow.db'}" in done.out
    assert (tmp_path / "spanflow.db").is_file()


def test_spanflow_storage_url_picks_the_store(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SPANFLOW_STORAGE_URL", "sqlite:///from-env.db")

    cli("run", HELLO, "--input", ADA)
    listed = cli("runs", "list")

    assert (tmp_path / "from-env.db").is_file()
    assert not (tmp_path / "spanflow.db").exists()
    assert f"1 run, newest first, in SQLite, {tmp_path / 'from-env.db'}" in listed.out


def test_storage_url_with_an_unknown_scheme_is_one_line(cli: Cli) -> None:
    done = cli("run", HELLO, "--input", ADA, "--storage", "redis://localhost")

    assert done.code == 1
    assert done.error_line.startswith(
        "spanflow: error: run: --storage: unsupported storage URL 'redis://localhost'"
    )


def test_the_help_documents_storage_and_metadata(cli: Cli) -> None:
    done = cli("run", "--help")

    assert done.code == 0
    text = " ".join(done.out.split())
    assert "SPANFLOW_STORAGE_URL" in text
    assert "spanflow.db in the working directory" in text
    assert 'dotted keys nest: --meta user.id=u-42 gives {"user": {"id": "u-42"}}' in text
    assert "values are always strings" in text


def _summary_value(out: str, label: str) -> str:
    """The value of a ``label  value`` line of the summary panel."""
    for line in out.splitlines():
        cells = line.strip("│ ").split()
        if line.strip("│ ").startswith(label + " ") and cells:
            return cells[-1]
    raise AssertionError(f"no {label!r} line in:\n{out}")


@pytest.mark.parametrize("url", ["memory://", "sqlite://"])
def test_a_run_suspended_in_memory_says_it_cannot_be_resumed(cli: Cli, url: str) -> None:
    done = cli("run", APPROVAL, "--input", ADA, "--storage", url)

    assert done.code == 0, done.err
    assert "runs resume" not in done.out
    assert done.out.splitlines()[-1] == (
        "waiting for ask; it cannot be resumed: it was stored in memory, which is gone when this "
        "command exits; run it with --db PATH or --storage URL to resume it later"
    )


def test_input_the_workflow_refuses_fails_in_one_line_and_stores_no_run(cli: Cli, db: Path) -> None:
    refused = cli("run", HELLO, "--input", '{"name": 7}', "--db", str(db))
    listed = cli("runs", "list", "--db", str(db))

    assert refused.code == 1
    assert "invalid input of workflow 'hello'" in refused.error_line
    assert "no runs" in listed.out
