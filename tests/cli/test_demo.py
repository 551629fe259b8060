"""``spanflow demo``: runs the example on SQLite, shows every step, the approval and the result."""

from __future__ import annotations

import asyncio
import errno
import io
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from spanflow.cli.demo import run_demo
from spanflow.cli.main import main
from spanflow.storage import RunPage, SqliteStorage
from tests.support.otlp_receiver import otlp_receiver

FAST = ["--speed", "1000"]
"""Every simulated delay a thousand times shorter: the demo takes milliseconds."""

STEPS = [
    "validate-order",
    "reserve-inventory",
    "check-fraud",
    "express-shipping",
    "plan-packing",
    "pack-item",
    "build-invoice",
    "manager-approval",
    "charge-payment",
    "send-confirmation",
]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "demo.db"


def run_cli(db: Path, capsys: pytest.CaptureFixture[str]) -> str:
    code = main(["demo", "--db", str(db), *FAST])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.err == ""
    return captured.out


def stored_runs(db: Path, **filters: Any) -> RunPage:
    """The runs in the demo's database (read with a store of our own)."""

    async def read() -> RunPage:
        async with SqliteStorage(db) as storage:
            return await storage.list_runs(workflow_id="order-fulfilment", **filters)

    return asyncio.run(read())


def test_the_demo_shows_every_step_the_approval_and_the_outcome(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = run_cli(db, capsys)

    for step_id in STEPS:
        assert f"▸ {step_id}" in out
        assert f"✓ {step_id}" in out
    assert "‖ manager-approval needs input" in out
    assert "reason     orders over $1,000.00 need a manager's approval" in out
    assert "order-fulfilment suspended after" in out
    assert 'approved by Grace Hopper: "Regular customer, ship it today."' in out
    assert "↻ order-fulfilment resumed" in out
    assert "order-fulfilment succeeded in" in out
    assert "order-fulfilment: success" in out
    assert "transaction_id  txn_ace511867e82" in out


def test_the_demo_shows_foreach_progress_line_by_line(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = run_cli(db, capsys)

    assert "  ▸ pack-item           foreach over 7 items, 3 at a time\n" in out
    for done in range(1, 8):
        assert f"✓ {done}/7  item " in out


def test_the_demo_writes_plain_text_when_stdout_is_not_a_terminal(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = run_cli(db, capsys)

    assert "\x1b" not in out


def test_the_run_is_stored_in_sqlite_as_a_success(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_cli(db, capsys)

    page = stored_runs(db)
    assert page.total == 1
    [stored] = page.runs
    assert stored.status == "success"
    assert stored.snapshot["result"]["order_id"] == "ORD-20417"
    assert stored.snapshot["result"]["approved_by"] == "Grace Hopper"


def test_each_demo_adds_one_run_to_the_same_database(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_cli(db, capsys)
    run_cli(db, capsys)

    assert stored_runs(db, status="success").total == 2


async def test_on_a_terminal_the_demo_draws_a_live_progress_bar(db: Path) -> None:
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=100)

    result = await run_demo(console, db=db, speed=1000)

    assert result.status == "success"
    assert "\x1b[" in screen.getvalue()  # colour
    assert "pack-item" in screen.getvalue()


class FailingOutput(io.StringIO):
    """A stdout that fails after a few lines (a full disk, a closed terminal, ...)."""

    def __init__(self, lines: int) -> None:
        super().__init__()
        self.lines = lines

    def write(self, text: str) -> int:
        self.lines -= text.count("\n")
        if self.lines < 0:
            raise OSError(errno.EIO, "Input/output error")
        return super().write(text)


async def test_when_output_fails_mid_run_the_run_is_canceled_not_left_running(
    db: Path,
) -> None:
    console = Console(file=FailingOutput(lines=12), width=100)

    with pytest.raises(OSError, match="Input/output error"):
        await run_demo(console, db=db, speed=1000)

    async with SqliteStorage(db) as storage:
        page = await storage.list_runs(workflow_id="order-fulfilment")
    assert [run.status for run in page.runs] == ["canceled"]


def test_the_demo_prints_the_span_tree_of_both_halves_of_its_trace(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = run_cli(db, capsys)

    tree = out.split("span tree (the run, then its resumed half, in one trace)\n", 1)[1]
    headers = [line for line in tree.splitlines() if line.startswith("── trace ")]
    assert len(headers) == 2
    first, second = (header.split()[2] for header in headers)
    assert first == second
    assert f"trace id  {first}" in out
    assert headers[1].startswith(f"── trace {second} (parent span ")
    roots = [line for line in tree.splitlines() if line.startswith("invoke_workflow ")]
    assert len(roots) == 2
    assert "run.status=suspended" in roots[0]
    assert "run.resumed=true" in roots[1]
    assert "run.status=success" in roots[1]
    for root in roots:
        assert "metadata.user.id=u-42" in root
        assert "tag.vip=true" in root
    for line in (
        "├─ parallel 2 branches",
        "│  ├─ workflow_step reserve-inventory",
        "├─ loop foreach",
        "│  └─ workflow_step pack-item",
        "└─ workflow_step manager-approval",
        "└─ workflow_step send-confirmation",
    ):
        assert any(row.startswith(line) for row in tree.splitlines()), line


def test_with_otlp_the_demo_exports_both_halves_and_prints_the_jaeger_link(
    db: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    with otlp_receiver() as receiver:
        code = main(["demo", "--db", str(db), *FAST, "--otlp", receiver.http_base])
        captured = capsys.readouterr()
        spans = receiver.wait_for_spans(24)  # 20 + 4 in the two trees

    assert code == 0, captured.err
    runs = [s for s in spans if s.name == "invoke_workflow order-fulfilment"]
    assert len(runs) == 2
    first, resumed = sorted(runs, key=lambda s: s.start_time_unix_nano)
    assert resumed.trace_id == first.trace_id
    assert resumed.parent_span_id == first.span_id
    trace_id = first.trace_id.hex()
    assert f"http://localhost:16686/trace/{trace_id}" in " ".join(captured.out.split())
    assert {s.trace_id for s in spans} == {first.trace_id}
    assert {s.resource["service.name"] for s in spans} == {"spanflow-demo"}
    for span in spans:
        assert span.attributes["spanflow.metadata.user.id"] == "u-42"
        assert span.attributes["spanflow.tag.vip"] is True


def test_the_otlp_variable_turns_the_demos_export_on(
    db: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with otlp_receiver() as receiver:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.http_base)
        code = main(["demo", "--db", str(db), *FAST, "--jaeger-ui", "http://jaeger:16686"])
        out = " ".join(capsys.readouterr().out.split())
        spans = receiver.wait_for_spans(24)

    assert code == 0
    trace_id = spans[0].trace_id.hex()
    assert f"exporting to {receiver.http_endpoint}" in out
    assert f"http://jaeger:16686/trace/{trace_id}" in out
