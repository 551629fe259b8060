"""``spanflow serve module:app``: what it refuses, and a real server process that shuts down on
SIGTERM leaving its running runs in the store."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from spanflow.cli.main import main
from spanflow.cli.serve import is_loopback
from tests.support.otlp_receiver import otlp_receiver

SERVED = textwrap.dedent(
    """
    from spanflow import Spanflow, create_step, create_workflow
    from spanflow.storage import SqliteStorage

    async def hello(ctx):
        return {"hello": ctx.input_data["name"]}

    greet = create_workflow(id="greet").then(create_step(id="hello", execute=hello)).commit()
    napping = create_workflow(id="napping").sleep(3600).commit()
    app = Spanflow(workflows=[greet, napping], storage=SqliteStorage({db!r}))
    not_a_registry = greet
    """
)


@pytest.fixture
def served_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "served_app.py").write_text(
        SERVED.replace("{db!r}", repr(str(tmp_path / "runs.db")))
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SPANFLOW_AUTH_TOKEN", raising=False)
    return tmp_path


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("10.1.2.3", False),
    ],
)
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_serving_beyond_loopback_needs_a_token(
    served_module: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", "served_app:app", "--host", "0.0.0.0"]) == 2
    error = capsys.readouterr().err
    assert "refusing to serve on 0.0.0.0 without authentication" in error
    assert "SPANFLOW_AUTH_TOKEN" in error


def test_the_app_must_be_a_registry(
    served_module: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", "served_app:not_a_registry"]) == 1
    assert "is a Workflow, not a Spanflow registry" in capsys.readouterr().err


def _start_server(module_dir: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    """``spanflow serve served_app:app`` in a child process, once it answers; its API base."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "spanflow.cli.main", "serve", "served_app:app", "--port", str(port)],
        cwd=module_dir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}/api"
    for _ in range(400):  # until it listens (not an assertion on time)
        try:
            httpx.get(f"{base}/openapi.json")
            break
        except httpx.TransportError:
            time.sleep(0.05)
    return process, base


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.slow
def test_a_served_registry_answers_and_sigterm_leaves_running_runs_durable(
    served_module: Path,
) -> None:
    env = {**os.environ, "SPANFLOW_AUTH_TOKEN": "t0ken", "PYTHONPATH": str(served_module)}
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        env.pop(name, None)
    process, base = _start_server(served_module, env)
    auth = {"authorization": "Bearer t0ken"}
    try:
        assert httpx.get(f"{base}/workflows").status_code == 401
        result = httpx.post(
            f"{base}/workflows/greet/start-async?runId=g-1",
            json={"inputData": {"name": "Ada"}},
            headers=auth,
        )
        assert result.json()["result"] == {"hello": "Ada"}
        httpx.post(f"{base}/workflows/napping/create-run?runId=n-1", headers=auth)
        started = httpx.post(f"{base}/workflows/napping/start?runId=n-1", json={}, headers=auth)
        assert started.json() == {"message": "Workflow run started"}
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    # The napping run is left as it was when the server stopped, for a restart elsewhere.
    env.pop("SPANFLOW_AUTH_TOKEN")
    listing = subprocess.run(
        [sys.executable, "-m", "spanflow.cli.main", "runs", "list", "--db", "runs.db"],
        cwd=served_module,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    (napping,) = [line for line in listing.stdout.splitlines() if "n-1" in line]
    assert "waiting" in napping


@pytest.mark.slow
def test_the_served_requests_spans_are_exported_and_flushed_at_shutdown(
    served_module: Path,
) -> None:
    caller = "4bf92f3577b34da6a3ce929d0e0e4736"
    with otlp_receiver() as receiver:
        env = {
            **os.environ,
            "PYTHONPATH": str(served_module),
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.http_base,
            "OTEL_SERVICE_NAME": "orders-api",
        }
        env.pop("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", None)
        process, base = _start_server(served_module, env)
        try:
            response = httpx.post(
                f"{base}/workflows/greet/start-async?runId=g-1",
                json={"inputData": {"name": "Ada"}},
                headers={"traceparent": f"00-{caller}-00f067aa0ba902b7-01"},
            )
            assert response.json()["traceId"] == caller
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=60) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        spans = [s for s in receiver.spans() if s.trace_id.hex() == caller]
    names = sorted(span.name for span in spans)
    assert names == [
        "POST /api/workflows/{workflowId}/start-async",
        "invoke_workflow greet",
        "workflow_step hello",
    ]
    assert {span.resource["service.name"] for span in spans} == {"orders-api"}
