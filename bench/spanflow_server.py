"""spanflow's HTTP server for scenario 10: a child process serving it on uvicorn.

The server scenario's load client (`bench.scenarios.server`) drives this process and Mastra's
own server (``bench/mastra/server.mjs``) alike. It serves scenario 3's 3-step workflow, id
``short`` (`bench.workloads.chain`), registered in a `spanflow.Spanflow` with an in-memory run
store, through `spanflow.server.create_app` (Mastra's routes under ``/api``) on uvicorn: one
worker process, bound to loopback, access log off (Mastra's server logs nothing either here),
uvicorn's default loop and HTTP implementation for what is installed.

Usage: ``python -m bench.spanflow_server '{"endpoint": URL | null}'``. It prints
``READY http://127.0.0.1:PORT`` once it accepts connections and serves until its stdin closes.

With an endpoint, tracing is the plugin's `spanflow_otel.configure()` exporting OTLP/HTTP to the
bench's receiver, installed as the global provider (this process has no other) and given to the
registry, so the request's SERVER span and the run's spans go to the same exporter. The export
queue is sized for the load (`QUEUE`), as in scenario 3, so the check "every span delivered"
measures the export, not the drop rate of a full default queue (scenario 4 measures that).

One route of our own, outside the app: ``POST /bench/flush`` flushes the exporter (the client
calls it inside its timing) and answers ``{"ended": N}``, N the spans this process ended so
far (a counting span processor), so the client can compare N with what the receiver got.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import uvicorn
from spanflow_otel import BatchOptions, ExportOptions, ShutdownOptions, Telemetry, configure

from bench.workloads import SpanCounter, chain
from spanflow import Spanflow, TracingConfig
from spanflow.server import create_app
from spanflow.storage.memory import MemoryStorage

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

WORKFLOW_ID = "short"
QUEUE = BatchOptions(max_queue_size=65_536)
KEEP_ALIVE = 600
"""Seconds an idle connection stays open (uvicorn's default: 5). The client's connections idle
while the other servers are measured; closed, they would be reopened inside some timings, and
a request racing the close fails. Mastra's server is given the same (``server.mjs``)."""


def build(endpoint: str | None) -> tuple[ASGIApp, Telemetry | None, SpanCounter]:
    """The app to serve (spanflow's, behind the flush route), its telemetry and span counter."""
    counter = SpanCounter()
    telemetry = None
    tracing = None
    if endpoint is not None:
        telemetry = configure(
            "spanflow-bench-server",
            export=ExportOptions(endpoint=endpoint, protocol="http/protobuf", timeout=30),
            batch=QUEUE,
            shutdown=ShutdownOptions(flush_timeout=60, atexit=False, sigterm=False),
            span_processors=[counter],
            set_global=True,
        )
        tracing = TracingConfig(tracer_provider=telemetry.provider)
    registry = Spanflow(workflows=[chain(3, WORKFLOW_ID)], storage=MemoryStorage(), tracing=tracing)
    return with_flush_route(create_app(registry), telemetry, counter), telemetry, counter


def with_flush_route(app: ASGIApp, telemetry: Telemetry | None, counter: SpanCounter) -> ASGIApp:
    """`app`, with ``POST /bench/flush`` answered here (untraced, unknown to the app)."""

    async def bench_app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != "/bench/flush":
            await app(scope, receive, send)
            return
        # Blocking the loop is fine here: the client calls this with no request in flight.
        if telemetry is not None and not telemetry.force_flush(timeout=60):
            raise RuntimeError("flushing spans took more than 60 s")
        body = json.dumps({"ended": counter.ended}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return bench_app


async def serve(endpoint: str | None) -> None:
    """Serve on a free loopback port until stdin closes; then flush and stop."""
    app, telemetry, _counter = build(endpoint)
    # uvicorn binds the port itself (port 0: a free one), as `spanflow serve` has it do. A
    # socket made here and handed over with ``sockets=`` would have protocol 0, and asyncio
    # sets TCP_NODELAY only on sockets whose protocol is IPPROTO_TCP: every response written
    # in two parts (headers, then body) would then wait out the client's 40 ms delayed ACK.
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        log_level="warning",
        access_log=False,
        workers=1,
        timeout_keep_alive=KEEP_ALIVE,
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            serving.result()  # raises why it did not start
            raise RuntimeError("uvicorn stopped before it started")
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    print("READY", f"http://127.0.0.1:{port}", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    server.should_exit = True
    await serving
    if telemetry is not None:
        telemetry.shutdown(timeout=60)


def main() -> None:
    config = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    asyncio.run(serve(config.get("endpoint")))


if __name__ == "__main__":
    main()
