"""``spanflow demo``: runs the example on SQLite, shows every step, the approval and the result."""

from __future__ import annotations

import asyncio
import errno
import io
import json
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from examples.order_fulfilment import WRITER_INSTRUCTIONS
from spanflow.cli.demo import run_demo
from spanflow.cli.main import main
from spanflow.storage import RunPage, SqliteStorage
from tests.agents.sse_server import FakeOpenAIServer, StreamReply, completion_chunks
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
    "confirmation-brief",
    "write-confirmation",
    "send-confirmation",
]

CONFIRMATION = (
    "Hi Katherine, thank you for your order ORD-20417! We have charged $1,194.20 to your card, "
    "and your 12 items in 7 parcels are on their way with UPS Next Day Air, arriving tomorrow "
    "by 10:30 am. Enjoy them!\n\nThe Spanflow Shop"
)
"""What the scripted writer writes for the sample order."""
DEMO_SPANS = 30
"""Both halves of the trace: 20 spans up to the suspension, then the resumed run, 5 steps
(``write-confirmation`` with its agent, 2 chat and 1 tool span)."""


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "demo.db"


def run_cli(db: Path, capsys: pytest.CaptureFixture[str]) -> str:
    code = main(["demo", "--db", str(db), *FAST])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.err == ""
    return captured.out


def step_lines(out: str, step_id: str) -> list[str]:
    """The lines printed between a step's start and end lines."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"  ▸ {step_id}"))
    end = next(i for i, line in enumerate(lines) if line.startswith(f"  ✓ {step_id}"))
    return lines[start + 1 : end]


def agent_text(lines: list[str]) -> str:
    """An agent's text as the display prints it, word-wrapped under bars, put back together."""
    paragraphs: list[list[str]] = [[]]
    for line in lines:
        if line == "    │":
            paragraphs.append([])
        elif line.startswith("    │ "):
            paragraphs[-1].append(line.removeprefix("    │ "))
    return "\n\n".join(" ".join(paragraph) for paragraph in paragraphs)


def span_names(tree: str) -> list[str]:
    """The tree's lines without durations and attributes: the shape and the span names."""
    return [re.sub(r"  [\d.]+(ns|µs|ms|s)\b.*$", "", line) for line in tree.splitlines()]


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


def test_the_writer_agent_shows_its_tool_call_and_result_then_the_confirmation(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = run_cli(db, capsys)

    lines = step_lines(out, "write-confirmation")
    assert lines[:2] == [
        '    → lookup_delivery_window(carrier="UPS Next Day Air", region="VA, US")',
        "      ← carrier=UPS Next Day Air, region=VA, US, arrives=tomorrow by 10:30 am",
    ]
    assert agent_text(lines[2:-1]) == CONFIRMATION
    assert all(len(line) <= 80 for line in lines)  # wrapped to the console's width
    assert re.fullmatch(
        r"    Σ confirmation-writer used [1-9][\d,]* tokens \(\d+ in, \d+ out\)", lines[-1]
    )


def test_the_summary_and_the_finish_line_count_the_writers_tokens(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = run_cli(db, capsys)

    [used] = re.findall(r"confirmation-writer used (\d+) tokens", out)
    assert int(used) > 0
    assert re.search(rf"order-fulfilment succeeded in [\d.]+ m?s, {used} tokens \(", out)
    assert re.search(rf"│ tokens +{used} tokens \(\d+ in, \d+ out\)", out)


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
    assert stored.snapshot["result"]["message"] == CONFIRMATION


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
    resumed = span_names(tree.split(headers[1], 1)[1])
    assert resumed[1:] == [
        "invoke_workflow order-fulfilment",
        "├─ workflow_step manager-approval",
        "├─ workflow_step charge-payment",
        "├─ workflow_step confirmation-brief",
        "├─ workflow_step write-confirmation",
        "│  └─ invoke_agent Confirmation writer",
        "│     ├─ chat scripted",
        "│     ├─ execute_tool lookup_delivery_window",
        "│     └─ chat scripted",
        "└─ workflow_step send-confirmation",
    ]
    [agent] = [line for line in tree.splitlines() if "invoke_agent " in line]
    assert "agent.status=success" in agent
    assert re.search(r"usage\.total_tokens=[1-9]", agent)


def test_with_otlp_the_demo_exports_both_halves_and_prints_the_jaeger_link(
    db: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    with otlp_receiver() as receiver:
        code = main(["demo", "--db", str(db), *FAST, "--otlp", receiver.http_base])
        captured = capsys.readouterr()
        spans = receiver.wait_for_spans(DEMO_SPANS)

    assert code == 0, captured.err
    assert len(spans) == DEMO_SPANS
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
        spans = receiver.wait_for_spans(DEMO_SPANS)

    assert code == 0
    trace_id = spans[0].trace_id.hex()
    assert f"exporting to {receiver.http_endpoint}" in out
    assert f"http://jaeger:16686/trace/{trace_id}" in out


REAL_CONFIRMATION = "Dear Katherine, order ORD-20417 is paid and arrives tomorrow by 10:30 am."


@pytest.mark.parametrize(
    ("variables", "authorization"),
    [
        ({"SPANFLOW_DEMO_API_KEY": "sk-demo"}, "Bearer sk-demo"),
        ({"OPENAI_API_KEY": "sk-meant-for-openai"}, "Bearer not-needed"),
    ],
    ids=["its-key", "openai-key-not-sent-elsewhere"],
)
async def test_with_a_base_url_the_writer_calls_that_openai_compatible_endpoint(
    db: Path,
    monkeypatch: pytest.MonkeyPatch,
    variables: dict[str, str],
    authorization: str,
) -> None:
    screen = io.StringIO()
    console = Console(file=screen, width=120)
    lookup = {"carrier": "UPS Next Day Air", "region": "VA, US"}
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    async with FakeOpenAIServer() as server:
        server.add(
            StreamReply(
                completion_chunks(
                    tool_calls=[("call_w1", "lookup_delivery_window", json.dumps(lookup))],
                    usage=(120, 18),
                )
            ),
            StreamReply(completion_chunks(text=REAL_CONFIRMATION, usage=(150, 16))),
        )
        base_url = server.base_url
        monkeypatch.setenv("SPANFLOW_DEMO_BASE_URL", base_url)
        monkeypatch.setenv("SPANFLOW_DEMO_MODEL", "gpt-demo")
        for name, value in variables.items():
            monkeypatch.setenv(name, value)

        result = await run_demo(console, db=db, speed=1000)

    out = screen.getvalue()
    assert result.status == "success"
    assert result.result.message == REAL_CONFIRMATION
    assert (result.usage.input_tokens, result.usage.output_tokens) == (270, 34)
    first, second = server.requests
    assert first["model"] == second["model"] == "gpt-demo"
    assert [tool["function"]["name"] for tool in first["tools"]] == ["lookup_delivery_window"]
    assert first["messages"][0] == {"role": "system", "content": WRITER_INSTRUCTIONS}
    assert "order: ORD-20417\n" in first["messages"][1]["content"]
    answer = second["messages"][-1]
    assert (answer["role"], answer["tool_call_id"]) == ("tool", "call_w1")
    assert json.loads(answer["content"])["arrives"] == "tomorrow by 10:30 am"
    assert {headers["authorization"] for headers in server.headers} == {authorization}
    assert f"writer model  gpt-demo at {base_url}" in out
    lines = step_lines(out, "write-confirmation")
    assert lines[0] == '    → lookup_delivery_window(carrier="UPS Next Day Air", region="VA, US")'
    assert agent_text(lines) == REAL_CONFIRMATION
    assert "│ tokens    304 tokens (270 in, 34 out)" in out
    assert "│     ├─ chat gpt-demo" in span_names(out)


def test_openais_api_without_any_key_is_a_one_line_error(
    db: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPANFLOW_DEMO_BASE_URL", "https://api.openai.com/v1")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)

    code = main(["demo", "--db", str(db), *FAST])

    captured = capsys.readouterr()
    assert code == 1
    assert captured.out == ""
    assert captured.err == (
        "spanflow: error: demo: SPANFLOW_DEMO_BASE_URL names OpenAI's API, which needs a key: "
        "set SPANFLOW_DEMO_API_KEY or OPENAI_API_KEY\n"
    )


def test_the_summary_prints_the_command_that_lists_the_demos_runs(
    db: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # the temporary path stays on one line
    out = run_cli(db, capsys)

    assert f"│ runs      spanflow runs list --db {db}" in out
    assert main(["runs", "list", "--db", str(db)]) == 0
    assert f"1 run, newest first, in SQLite, {db}" in capsys.readouterr().out


def test_the_demo_says_its_database_is_in_the_temp_directory_by_default(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["demo", "--help"]) == 0

    out = "".join(capsys.readouterr().out.split())  # argparse wraps lines, even at a hyphen
    assert f"(default:{Path(tempfile.gettempdir()) / 'spanflow-demo.db'})" in out
