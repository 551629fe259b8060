"""The real ``@mastra/client-js`` drives a spanflow server: what a Mastra client sees, works.

Each test starts the server of `tests.server.client_app` (uvicorn, in a thread of this
process, on a free loopback port, a fresh in-memory store) and runs one scenario of
``js/drive.mjs`` with the pinned client on Node 22, both installed by ``make setup`` from
``js/package-lock.json``. The script prints what the client got back as one JSON document; the
tests assert on those values: statuses, event sequences, ids, and for tracing the spans this
process captured. A missing Node or client is a failure, not a skip: CI installs both.

The server runs in this process so that `span_capture` sees its spans; for ``observe`` from
another server process, a second one is started with ``spanflow serve`` on the same SQLite
file. Nothing waits on a clock: runs that must be held mid-step wait at a gate the client itself
opens (see `tests.server.client_app`). The client is built with ``retries: 0`` (by default it
re-sends a request that got a 5xx, which would hide a server bug behind a second run).
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from opentelemetry.trace import SpanKind
from spanflow_otel.testing import SpanCapture

from spanflow.server import create_app
from spanflow.storage import STORAGE_URL_ENV, SqliteStorage, Storage
from tests.server.client_app import CELSIUS, build_registry

REPO = Path(__file__).parents[2]
JS_DIR = Path(__file__).parent / "js"
NODE = JS_DIR / "node_modules" / ".bin" / "node"
DRIVER = JS_DIR / "drive.mjs"
CLIENT_PACKAGE = JS_DIR / "node_modules" / "@mastra" / "client-js" / "package.json"

SCENARIO_TIMEOUT = 30.0
"""Seconds a scenario may take before the test fails (a hung stream, not a slow one)."""

ORDER = {"order": "A-1", "amount": 1200}

Json = dict[str, Any]


class ServedApp:
    """A spanflow server on a free loopback port, in a background thread."""

    def __init__(self, storage: Storage | None = None) -> None:
        self.registry = build_registry(storage)
        # Bound here, handed to uvicorn: the port is ours before the server starts, no race.
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        port = self._socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(
            create_app(self.registry),
            log_level="warning",
            timeout_graceful_shutdown=5,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    def start(self) -> None:
        """Start serving; return once uvicorn accepts connections."""
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                pytest.fail("the spanflow server did not start (see the captured log)")
            time.sleep(0.01)

    def stop(self) -> None:
        """Shut down gracefully (every response, and so every request span, is finished), then
        close the store. Safe to call twice."""
        if self._socket.fileno() == -1:
            return
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._socket.close()
        asyncio.run(self.registry.close())  # the SQLite store closes from any loop


@pytest.fixture
def server() -> Iterator[ServedApp]:
    """A started server of `build_registry`, stopped after the test."""
    served = ServedApp()
    served.start()
    try:
        yield served
    finally:
        served.stop()


class ServerProcess:
    """``spanflow serve tests.server.client_app:app`` in a process of its own, on `store_url`
    (a URL or a SQLite file path)."""

    def __init__(self, store_url: str) -> None:
        with socket.socket() as probe:  # a free port, handed over: a tiny race, run once
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        spanflow = Path(sys.executable).with_name("spanflow")
        command = [str(spanflow), "serve", "tests.server.client_app:app", "--port", str(port)]
        environment = {**os.environ, STORAGE_URL_ENV: store_url}
        environment.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
        self._process = subprocess.Popen(command, cwd=REPO, env=environment)

    def start(self) -> None:
        """Return once the server answers (it imports spanflow first: about a second)."""
        deadline = time.monotonic() + 30
        direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # no *_proxy
        while True:
            if self._process.poll() is not None:
                pytest.fail(f"spanflow serve exited {self._process.returncode}")
            try:
                with direct.open(f"{self.url}/api/workflows", timeout=5) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("spanflow serve did not answer within 30 s")
                time.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM, as a deployment stops it; killed if it does not exit."""
        self._process.terminate()
        try:
            self._process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


@functools.cache
def _node_version() -> str:
    """The installed Node's version; fails the test when Node or the client is missing."""
    if not NODE.exists() or not CLIENT_PACKAGE.exists():
        pytest.fail(
            f"Node 22 and @mastra/client-js are not installed in {JS_DIR}: run `make setup` "
            "(it runs `npm ci` there)"
        )
    return subprocess.run(
        [str(NODE), "--version"], capture_output=True, text=True, check=True, timeout=30
    ).stdout.strip()


def drive(server: ServedApp, scenario: str, *args: str) -> Json:
    """Run a ``drive.mjs`` scenario against `server`; its JSON document."""
    version = _node_version()
    assert version.startswith("v22."), f"the client test runs on Node 22, got {version}"
    done = subprocess.run(
        [str(NODE), str(DRIVER), server.url, scenario, *args],
        cwd=JS_DIR,
        capture_output=True,
        text=True,
        timeout=SCENARIO_TIMEOUT,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(
            f"drive.mjs {scenario} exited {done.returncode}\n"
            f"stdout: {done.stdout}\nstderr: {done.stderr}"
        )
    result: Json = json.loads(done.stdout)
    assert result["clientErrors"] == [], "the client could not parse what the server sent"
    return result


def kinds(events: list[Json]) -> list[tuple[str, str | None]]:
    """Each event's type and step id (None for run-level events)."""
    return [(event["type"], event["payload"].get("id")) for event in events]


def step_statuses(details: Json) -> dict[str, str]:
    """``{step id: status}`` of a ``runById`` answer."""
    return {step: value["status"] for step, value in details["steps"].items() if step != "input"}


def is_iso_date(value: Any) -> bool:
    """Whether `value` is an ISO 8601 date string, as the client's types expect."""
    if not isinstance(value, str):
        return False
    datetime.fromisoformat(value.replace("Z", "+00:00"))
    return True


APPROVAL_TO_SUSPENSION = [
    ("workflow-start", None),
    ("workflow-step-start", "check"),
    ("workflow-step-result", "check"),
    ("workflow-step-start", "approve"),
    ("workflow-step-suspended", "approve"),
    ("workflow-finish", None),
]
APPROVAL_RESUMED = [
    ("workflow-start", None),
    ("workflow-step-start", "approve"),
    ("workflow-step-result", "approve"),
    ("workflow-step-start", "record"),
    ("workflow-step-result", "record"),
    ("workflow-finish", None),
]
APPROVED = {"order": "A-1", "approver": "grace", "recorded": True}


# -- workflows ------------------------------------------------------------------------------


def test_create_run_stores_a_pending_run_under_the_id_given_or_a_new_one(
    server: ServedApp,
) -> None:
    result = drive(server, "create-run")

    assert result["chosenRunId"] == "run-chosen-by-client"
    pending = result["pending"]
    assert pending["runId"] == result["runId"] != "run-chosen-by-client"
    assert pending["workflowName"] == "approval"
    assert pending["status"] == "pending"
    assert pending["resourceId"] == "user-7"
    assert is_iso_date(pending["createdAt"])
    assert is_iso_date(pending["updatedAt"])
    assert [call["status"] for call in result["calls"]] == [200, 200, 200]


def test_stream_sends_every_event_as_a_record_and_stops_at_the_suspension(
    server: ServedApp,
) -> None:
    result = drive(server, "stream-suspends")

    events = result["events"]
    assert kinds(events) == APPROVAL_TO_SUSPENSION
    assert {event["runId"] for event in events} == {result["runId"]}
    assert events[0]["payload"]["workflowId"] == "approval"
    assert events[-1]["payload"]["workflowStatus"] == "suspended"
    suspended = result["suspended"]
    assert suspended["status"] == "suspended"
    assert suspended["payload"] == ORDER
    assert step_statuses(suspended) == {"check": "success", "approve": "suspended"}
    stream_call = result["calls"][1]
    assert stream_call["path"] == f"/api/workflows/approval/stream?runId={result['runId']}"
    assert stream_call["contentType"].startswith("text/plain")


def test_a_stream_opened_with_close_on_suspend_false_carries_the_resumed_run_to_its_end(
    server: ServedApp,
) -> None:
    result = drive(server, "stream-stays-open")

    assert kinds(result["first"]) == APPROVAL_TO_SUSPENSION[:-1]  # no finish: still open
    assert set(result["resumed"]) == {"message"}
    assert kinds(result["rest"]) == APPROVAL_RESUMED
    assert result["rest"][-1]["payload"]["workflowStatus"] == "success"
    assert result["rest"][-1]["payload"]["finalWorkflowResult"] == APPROVED


def test_run_by_id_with_fields_keeps_the_metadata_and_the_status(server: ServedApp) -> None:
    details = drive(server, "run-fields")["details"]

    # What the client documents: the listed fields, plus metadata and status, always.
    assert details["status"] == "suspended"
    assert step_statuses(details) == {"check": "success", "approve": "suspended"}
    assert {"runId", "workflowName", "createdAt", "updatedAt"} <= set(details)
    assert "payload" not in details
    assert "result" not in details


def test_resume_stream_finishes_a_suspended_run(server: ServedApp) -> None:
    result = drive(server, "resume-stream")

    assert kinds(result["first"]) == APPROVAL_TO_SUSPENSION
    assert kinds(result["resumed"]) == APPROVAL_RESUMED
    finish = result["resumed"][-1]["payload"]
    assert finish["workflowStatus"] == "success"
    assert finish["finalWorkflowResult"] == APPROVED
    success = result["success"]
    assert success["status"] == "success"
    assert success["result"] == APPROVED
    assert step_statuses(success) == {"check": "success", "approve": "success", "record": "success"}


def test_start_async_and_resume_async_return_the_workflow_result(server: ServedApp) -> None:
    result = drive(server, "start-async")

    started, resumed = result["started"], result["resumed"]
    assert started["status"] == "suspended"
    assert started["runId"] == result["runId"]
    assert started["suspendPayload"] == {
        "approve": {"reason": "needs a manager", "amount": ORDER["amount"]}
    }
    assert started["suspended"] == [["approve"]]
    assert resumed["status"] == "success"
    assert resumed["result"] == APPROVED
    assert resumed["steps"]["approve"]["resumePayload"] == {"approver": "grace"}


def test_start_and_resume_fire_and_forget_and_observe_shows_each_half(
    server: ServedApp,
) -> None:
    result = drive(server, "start-and-resume")

    assert set(result["started"]) == {"message"}
    assert set(result["resumed"]) == {"message"}
    assert kinds(result["firstHalf"]) == APPROVAL_TO_SUSPENSION
    assert kinds(result["secondHalf"]) == APPROVAL_RESUMED
    assert result["details"]["status"] == "success"
    assert result["details"]["result"] == APPROVED


def test_streaming_a_suspended_or_ended_run_again_is_a_409(server: ServedApp) -> None:
    result = drive(server, "restream-ended")

    for refused in (result["suspended"], result["ended"]):
        assert refused["status"] == 409
        assert isinstance(refused["body"]["error"], str)
    assert "resume" in result["suspended"]["body"]["error"]
    assert "observe" in result["ended"]["body"]["error"]
    # Refused means untouched: the run still holds its one result.
    assert result["details"]["status"] == "success"
    assert result["details"]["result"] == APPROVED


def test_runs_pages_and_filters_by_status_resource_and_date(server: ServedApp) -> None:
    result = drive(server, "runs")

    ids = result["ids"]
    mine = set(ids["suspended"] + ids["success"] + ids["pending"])
    page0, page1 = result["page0"], result["page1"]
    assert page0["total"] == page1["total"] == 4
    assert len(page0["runs"]) == 3
    assert len(page1["runs"]) == 1
    assert {run["runId"] for run in page0["runs"] + page1["runs"]} == mine
    for run in page0["runs"]:
        assert run["workflowName"] == "approval"
        assert run["resourceId"] == "runs-scenario"
        assert is_iso_date(run["createdAt"])
        assert is_iso_date(run["updatedAt"])
        assert isinstance(run["snapshot"], dict | str)
    assert {run["runId"] for run in result["suspended"]["runs"]} == set(ids["suspended"])
    assert result["suspended"]["total"] == 2
    assert [run["runId"] for run in result["success"]["runs"]] == ids["success"]
    assert result["fromFuture"] == {"runs": [], "total": 0}
    assert {run["runId"] for run in result["toFuture"]["runs"]} == mine
    assert result["all"]["total"] == 5  # and the other resource's run


def test_observe_from_an_offset_after_a_disconnect_gets_the_rest_of_the_run(
    server: ServedApp,
) -> None:
    result = drive(server, "observe-after-disconnect")

    assert kinds(result["seen"]) == [
        ("workflow-start", None),
        ("workflow-step-start", "begin"),
        ("workflow-step-result", "begin"),
        ("workflow-step-start", "wait-for-gate"),
    ]
    # Disconnecting did not cancel the run: it still waits at its gate.
    assert result["whileDisconnected"]["status"] == "running"
    assert result["opened"]["status"] == "success"
    assert kinds(result["rest"]) == [
        ("workflow-step-result", "wait-for-gate"),
        ("workflow-step-start", "end"),
        ("workflow-step-result", "end"),
        ("workflow-finish", None),
    ]
    assert result["rest"][-1]["payload"]["workflowStatus"] == "success"
    assert result["replay"] == result["seen"] + result["rest"]
    assert result["details"]["status"] == "success"
    assert result["details"]["result"] == {"gate": result["runId"], "passed": True}


def test_another_server_process_sharing_the_store_observes_the_run_live(
    tmp_path: Path,
) -> None:
    database = tmp_path / "runs.db"
    here = ServedApp(SqliteStorage(str(database)))
    elsewhere = ServerProcess(str(database))
    here.start()
    try:
        elsewhere.start()
        result = drive(here, "observe-elsewhere", elsewhere.url)
    finally:
        elsewhere.stop()
        here.stop()

    assert result["sameRunId"] == result["runId"]
    assert result["whileWaiting"]["status"] == "running"
    # Opened after the observer connected: these events reached it live, through the store.
    assert kinds(result["rest"]) == [
        ("workflow-step-result", "wait-for-gate"),
        ("workflow-step-start", "end"),
        ("workflow-step-result", "end"),
        ("workflow-finish", None),
    ]
    assert result["details"]["status"] == "success"
    assert result["details"]["result"] == {"gate": result["runId"], "passed": True}


def test_cancel_stops_a_running_run_and_its_stream_says_so(server: ServedApp) -> None:
    result = drive(server, "cancel")

    assert kinds(result["before"])[-1] == ("workflow-step-start", "wait-for-gate")
    assert isinstance(result["canceled"]["message"], str)
    # The same stream, still open, tells the end: the interrupted step, then the run.
    assert kinds(result["after"]) == [
        ("workflow-step-result", "wait-for-gate"),
        ("workflow-canceled", None),
        ("workflow-finish", None),
    ]
    assert result["after"][0]["payload"]["status"] == "canceled"
    assert result["after"][-1]["payload"]["workflowStatus"] == "canceled"
    assert result["details"]["status"] == "canceled"
    assert step_statuses(result["details"]) == {"begin": "success", "wait-for-gate": "canceled"}
    cancel_call = next(call for call in result["calls"] if call["path"].endswith("/cancel"))
    assert cancel_call["path"] == f"/api/workflows/gated/runs/{result['runId']}/cancel"


def test_delete_removes_the_run(server: ServedApp) -> None:
    result = drive(server, "delete")

    assert isinstance(result["deleted"]["message"], str)
    assert result["afterwards"]["status"] == 404
    assert isinstance(result["afterwards"]["body"]["error"], str)


# -- agents ---------------------------------------------------------------------------------


def test_agent_stream_sends_the_tool_call_its_result_and_the_text(server: ServedApp) -> None:
    result = drive(server, "agent-stream")

    chunks = result["chunks"]
    types = [chunk["type"] for chunk in chunks]
    assert types[0] == "start"
    assert types[-1] == "finish"
    assert types.index("tool-call") < types.index("tool-result") < types.index("text-delta")
    call = next(chunk for chunk in chunks if chunk["type"] == "tool-call")["payload"]
    tool_result = next(chunk for chunk in chunks if chunk["type"] == "tool-result")["payload"]
    assert call["toolName"] == "get_weather"
    assert call["args"] == {"city": "Paris"}
    assert tool_result["toolCallId"] == call["toolCallId"]
    assert tool_result["result"] == {"city": "Paris", "celsius": CELSIUS}
    text = "".join(chunk["payload"]["text"] for chunk in chunks if chunk["type"] == "text-delta")
    assert text == f"It is {CELSIUS} degrees in Paris."
    assert chunks[-1]["payload"]["stepResult"]["reason"] == "stop"
    assert len({chunk["runId"] for chunk in chunks}) == 1
    assert result["calls"][0]["contentType"].startswith("text/event-stream")


def test_agent_generate_returns_mastras_full_output(
    span_capture: SpanCapture, server: ServedApp
) -> None:
    output = drive(server, "agent-generate")["output"]

    assert output["text"] == f"It is {CELSIUS} degrees in Paris."
    assert output["finishReason"] == "stop"
    [call] = output["toolCalls"]
    [tool_result] = output["toolResults"]
    assert call["payload"]["toolName"] == "get_weather"
    assert call["payload"]["args"] == {"city": "Paris"}
    assert tool_result["payload"]["toolCallId"] == call["payload"]["toolCallId"]
    assert tool_result["payload"]["result"] == {"city": "Paris", "celsius": CELSIUS}
    assert output["usage"]["totalTokens"] > 0
    assert len(output["steps"]) == 2
    assert isinstance(output["runId"], str)
    agent_span = next(span for span in span_capture.spans if span.name == "invoke_agent Weather")
    assert output["traceId"] == f"{agent_span.context.trace_id:032x}"
    assert output["spanId"] == f"{agent_span.context.span_id:016x}"


# -- tracing --------------------------------------------------------------------------------

CALLER_TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN_ID = "00f067aa0ba902b7"


def test_a_traceparent_in_the_clients_headers_makes_the_run_join_the_callers_trace(
    span_capture: SpanCapture, server: ServedApp
) -> None:
    traceparent = f"00-{CALLER_TRACE_ID}-{CALLER_SPAN_ID}-01"

    result = drive(server, "traceparent", traceparent)
    server.stop()  # every request span ends before its server does

    assert result["started"]["status"] == "suspended"
    assert result["started"]["traceId"] == CALLER_TRACE_ID
    assert kinds(result["resumed"]) == APPROVAL_RESUMED
    run_calls = [call for call in result["calls"] if "create-run" not in call["path"]]
    assert [call["traceparent"].split("-")[1] for call in run_calls] == [CALLER_TRACE_ID] * 2
    trace_id, caller_span_id = int(CALLER_TRACE_ID, 16), int(CALLER_SPAN_ID, 16)
    spans = span_capture.spans
    assert spans, "no span was captured"
    assert {span.context.trace_id for span in spans} == {trace_id}
    by_id = {span.context.span_id: span for span in spans}
    requests = [span for span in spans if span.kind is SpanKind.SERVER]
    assert {span.name for span in requests} == {
        "POST /api/workflows/{workflowId}/create-run",
        "POST /api/workflows/{workflowId}/start-async",
        "POST /api/workflows/{workflowId}/resume-stream",
    }
    for request in requests:
        assert request.parent is not None
        assert request.parent.span_id == caller_span_id
    # The run started by start-async is a child of that request's span; its resumed half is
    # in the same trace, under the resume-stream request or the original run span (tracing.md
    # §5: a resume continues the run's trace).
    first, resumed = sorted(
        (span for span in spans if span.name == "invoke_workflow approval"),
        key=lambda span: bool((span.attributes or {}).get("spanflow.run.resumed")),
    )
    assert first.parent is not None
    assert by_id[first.parent.span_id].name == "POST /api/workflows/{workflowId}/start-async"
    assert (resumed.attributes or {}).get("spanflow.run.resumed") is True
    assert resumed.parent is not None
    assert resumed.parent.span_id in {
        first.context.span_id,
        next(span.context.span_id for span in requests if span.name.endswith("/resume-stream")),
    }
    for run_span in (first, resumed):
        assert (run_span.attributes or {}).get("spanflow.run.id") == result["runId"]
    assert result["started"]["spanId"] == f"{first.context.span_id:016x}"


def test_tracing_options_in_the_body_win_over_the_header_and_link_the_request(
    span_capture: SpanCapture, server: ServedApp
) -> None:
    result = drive(server, "tracing-options", f"00-{CALLER_TRACE_ID}-{CALLER_SPAN_ID}-01")
    server.stop()

    # Short ids are left-padded to OTLP's lengths (tracing.md §3).
    assert result["started"]["traceId"] == "abc123".rjust(32, "0")
    [run_span] = [span for span in span_capture.spans if span.name == "invoke_workflow approval"]
    [request] = [
        span
        for span in span_capture.spans
        if span.name == "POST /api/workflows/{workflowId}/start-async"
    ]
    assert run_span.context.trace_id == 0xABC123
    assert run_span.parent is not None
    assert run_span.parent.span_id == 0xDEF456
    assert request.context.trace_id == int(CALLER_TRACE_ID, 16)
    # server.md §4: the run span then links to the request span, so the two traces meet.
    assert [(link.context.trace_id, link.context.span_id) for link in run_span.links] == [
        (request.context.trace_id, request.context.span_id)
    ]
    attributes = dict(run_span.attributes or {})
    assert attributes["spanflow.tag.vip"] is True
    assert attributes["spanflow.metadata.user.id"] == "u-42"
