"""The README's ``@mastra/client-js`` example runs as written against ``spanflow serve
examples.order_fulfilment:app``, and prints what its comments say.

The block is read from README.md; only the ``order`` it streams (the demo's sample order) and
the port are filled in. It runs on the Node 22 that ``make setup`` installs in
``tests/server/js``, next to the real client.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from spanflow.cli.demo import load_order_example
from spanflow.storage import STORAGE_URL_ENV
from tests.support.otlp_receiver import otlp_receiver

REPO = Path(__file__).resolve().parents[2]
JS_DIR = REPO / "tests" / "server" / "js"
NODE = JS_DIR / "node_modules" / ".bin" / "node"
HEADING = "### From `@mastra/client-js`"
CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def readme_client_example() -> str:
    """The ``ts`` block under the README's client-js heading."""
    text = (REPO / "README.md").read_text()
    section = text[text.index(HEADING) :]
    start = section.index("```ts\n") + len("```ts\n")
    return section[start : section.index("```", start)]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_until_serving(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    while True:
        assert process.poll() is None, f"spanflow serve exited {process.returncode}"
        try:
            with direct.open(f"{url}/api/workflows", timeout=5) as answer:
                if answer.status == 200:
                    return
        except OSError:
            assert time.monotonic() < deadline, "spanflow serve did not answer within 30 s"
            time.sleep(0.05)


def test_the_readme_client_example_runs_against_the_served_example(tmp_path: Path) -> None:
    if not NODE.exists():
        pytest.fail(f"Node 22 is not installed in {JS_DIR}: run `make setup`")
    load_order_example()
    from examples.order_fulfilment import sample_order

    port = free_port()
    script = readme_client_example().replace("127.0.0.1:4111", f"127.0.0.1:{port}")
    (tmp_path / "node_modules").symlink_to(JS_DIR / "node_modules")
    (tmp_path / "example.mjs").write_text(f"const order = {json.dumps(sample_order())};\n{script}")
    spanflow = Path(sys.executable).with_name("spanflow")
    environment = {**os.environ, STORAGE_URL_ENV: str(tmp_path / "runs.db")}
    with otlp_receiver() as collector:  # the server traces, so the run has the caller's trace
        server = subprocess.Popen(
            [str(spanflow), "serve", "examples.order_fulfilment:app", "--port", str(port),
             "--otlp", collector.http_base],
            cwd=REPO,
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            wait_until_serving(f"http://127.0.0.1:{port}", server)
            done = subprocess.run(
                [str(NODE), str(tmp_path / "example.mjs")],
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
        finally:
            server.terminate()  # flushes its spans on the way out
            server.wait(timeout=30)
        runs = [
            span for span in collector.spans() if span.name == "invoke_workflow order-fulfilment"
        ]

    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "workflow-start"
    assert "workflow-step-suspended" in lines
    finish = lines.index("workflow-finish")
    assert lines[finish + 1] == f"success {CALLER_TRACE}"  # "success", the caller's trace
    confirmation = "\n".join(lines[finish + 2 :])  # what the writer agent answered
    assert confirmation.startswith("Hi Ada, thank you for your order ORD-1!")
    assert runs  # the stream's run span and the resume's, both in the caller's trace
    assert {span.trace_id.hex() for span in runs} == {CALLER_TRACE}
