"""The loopback OTLP/HTTP receiver the benchmarks export to, run in its own process.

Why not the tests' `OtlpReceiver` (tests/support/otlp_receiver.py): it reads a request body by
``Content-Length`` only, and Node's OTLP exporter (the Mastra peer) uploads with
``Transfer-Encoding: chunked``, which it answers with a garbled response; it also keeps every
decoded request, which for the delivery scenario's 64,000 spans is memory the benchmark does
not need. This one decodes each request with opentelemetry-proto (so only well-formed spans
count) and keeps a count.

It runs in a child process (``python -m bench.receiver``): decoding protobuf in the benchmarked
process would compete for its GIL and charge the collector's work to the exporter, which a real
collector, a separate process, never does. The child prints its endpoint, then answers one
command per line on stdin: ``count`` (spans received so far) and ``clear``; end of input stops
it.
"""

from __future__ import annotations

import gzip
import subprocess
import sys
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = ["ReceiverProcess"]

ROOT = Path(__file__).resolve().parent.parent


class ReceiverProcess:
    """A child process running the OTLP receiver; use as a context manager."""

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "bench.receiver"],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        ready = self._read_line().split()
        if len(ready) != 2 or ready[0] != "READY":
            raise RuntimeError(f"the OTLP receiver did not start: {ready!r}")
        self.endpoint = ready[1]
        """The full OTLP/HTTP traces URL."""

    def count(self) -> int:
        """Spans received so far."""
        return int(self._ask("count"))

    def clear(self) -> None:
        """Reset the count."""
        self._ask("clear")

    def wait_for(self, expected: int, timeout: float) -> int:
        """Poll until `expected` spans arrived or `timeout` s passed; the count reached."""
        deadline = time.monotonic() + timeout
        while (got := self.count()) < expected and time.monotonic() < deadline:
            time.sleep(0.05)
        return got

    def close(self) -> None:
        """Stop the child."""
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    def __enter__(self) -> ReceiverProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _ask(self, command: str) -> str:
        assert self._process.stdin is not None
        self._process.stdin.write(command + "\n")
        self._process.stdin.flush()
        return self._read_line()

    def _read_line(self) -> str:
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError("the OTLP receiver process exited")
        return line.strip()


# -- the child ----------------------------------------------------------------------------


class _Counter:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.spans = 0


def _handler(counter: _Counter) -> type[BaseHTTPRequestHandler]:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
        ExportTraceServiceResponse,
    )

    reply = ExportTraceServiceResponse().SerializeToString()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self._body()
            encoding = self.headers.get("Content-Encoding", "").lower()
            if encoding == "gzip":
                body = gzip.decompress(body)
            elif encoding == "deflate":
                body = zlib.decompress(body)
            message = ExportTraceServiceRequest.FromString(body)
            spans = sum(
                len(scope_spans.spans)
                for resource_spans in message.resource_spans
                for scope_spans in resource_spans.scope_spans
            )
            with counter.lock:
                counter.spans += spans
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
                return self.rfile.read(int(self.headers.get("Content-Length", "0")))
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0], 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()  # the CRLF after each chunk
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers
                pass
            return b"".join(chunks)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


def _serve() -> None:
    counter = _Counter()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(counter))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    print("READY", f"http://127.0.0.1:{server.server_address[1]}/v1/traces", flush=True)
    try:
        for line in sys.stdin:
            command = line.strip()
            if command == "count":
                with counter.lock:
                    print(counter.spans, flush=True)
            elif command == "clear":
                with counter.lock:
                    counter.spans = 0
                print("ok", flush=True)
            else:
                print(f"unknown command {command!r}", flush=True)
    finally:
        server.shutdown()
        server.server_close()


if __name__ == "__main__":
    _serve()
