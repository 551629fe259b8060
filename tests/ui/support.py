"""What the browser tests and the screenshot script share: the server, its API, the browser.

- `ServerProcess`: ``spanflow serve tests.ui.app:app`` in a process of its own, on a SQLite
  file, with a bearer token and a Jaeger UI URL, exactly as a user starts it.
- `Api`: the server's HTTP API with the token, to put runs in the store before a page looks at
  them (the page is what is tested; the API only sets the scene).
- `launch_chromium`: Debian's Chromium (``/usr/bin/chromium``, installed by ``make``) driven by
  Playwright. Playwright's own browser downloads are never used: they are not reachable from
  these machines. The flags keep Chromium off the network it would otherwise call at start
  (updates, sync, field trials), which the machine's closed network refuses.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Final

import httpx

from spanflow.storage import STORAGE_URL_ENV

__all__ = [
    "CHROMIUM",
    "CHROMIUM_FLAGS",
    "HEIGHT",
    "JAEGER_UI",
    "REPO",
    "TOKEN",
    "WIDTH",
    "Api",
    "BrowserMissing",
    "ServerProcess",
    "launch_chromium",
]

REPO: Final = Path(__file__).parents[2]
CHROMIUM: Final = Path("/usr/bin/chromium")
"""Debian's Chromium; ``make browser`` installs it."""
CHROMIUM_FLAGS: Final = (
    "--no-sandbox",  # the tests run as root in CI
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)
TOKEN: Final = "ui-test-token"
"""The server's ``SPANFLOW_AUTH_TOKEN``: the page asks for it once, in its token form."""
JAEGER_UI: Final = "http://jaeger.test:16686"
"""``--jaeger-ui``: never opened, only the link's address is checked."""
WIDTH: Final = 1400
HEIGHT: Final = 900
"""The tab's size, also the screenshots'."""

Json = dict[str, Any]


class BrowserMissing(Exception):
    """Chromium or Playwright is not installed (``make browser``, ``make setup``)."""


class ServerProcess:
    """``spanflow serve tests.ui.app:app`` on a free loopback port and the SQLite file `db`."""

    def __init__(self, db: Path, *, token: str = TOKEN, jaeger_ui: str = JAEGER_UI) -> None:
        with socket.socket() as probe:  # a free port, handed over: a tiny race, run once
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.token = token
        spanflow = Path(sys.executable).with_name("spanflow")
        command = [
            str(spanflow),
            "serve",
            "tests.ui.app:app",
            "--port",
            str(port),
            "--jaeger-ui",
            jaeger_ui,
        ]
        environment = {
            **os.environ,
            STORAGE_URL_ENV: f"sqlite:///{db}",
            "SPANFLOW_AUTH_TOKEN": token,
        }
        environment.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
        # The access log goes to a file beside the store, shown when the server fails to start.
        self.log = db.with_suffix(".log")
        with self.log.open("wb") as log:
            self._process = subprocess.Popen(
                command, cwd=REPO, env=environment, stdout=log, stderr=subprocess.STDOUT
            )

    def __enter__(self) -> ServerProcess:
        try:
            self.wait_until_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def wait_until_ready(self, timeout: float = 30.0) -> None:
        """Return once the API answers the token (the command imports spanflow first)."""
        deadline = time.monotonic() + timeout
        with Api(self.url, self.token) as api:
            while True:
                if self._process.poll() is not None:
                    raise RuntimeError(
                        f"spanflow serve exited {self._process.returncode}: {self._log_tail()}"
                    )
                try:
                    api.get("/workflows")
                    return
                except httpx.TransportError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(
                            f"spanflow serve did not answer in {timeout} s"
                        ) from None
                    time.sleep(0.05)

    def _log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-2000:]

    def stop(self) -> None:
        """SIGTERM, as a deployment stops it; killed if it does not exit."""
        self._process.terminate()
        try:
            self._process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


class Api:
    """The server's API (under ``/api``), with the bearer token, raising on an error status."""

    def __init__(self, url: str, token: str = TOKEN) -> None:
        self._client = httpx.Client(
            base_url=f"{url}/api",
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
            trust_env=False,  # no proxy between the test and loopback
        )

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._client.close()

    def get(self, path: str) -> Any:
        answer = self._client.get(path)
        answer.raise_for_status()
        return answer.json()

    def post(self, path: str, body: Json | None = None, **headers: str) -> Any:
        answer = self._client.post(path, json=body or {}, headers=headers)
        answer.raise_for_status()
        return answer.json()

    def create_run(self, workflow: str, run_id: str, resource_id: str | None = None) -> None:
        body = {} if resource_id is None else {"resourceId": resource_id}
        self.post(f"/workflows/{workflow}/create-run?runId={run_id}", body)

    def start_async(self, workflow: str, run_id: str, body: Json, **headers: str) -> Json:
        """Create the run and start it; the run's result once it stops (suspended included)."""
        self.create_run(workflow, run_id, body.get("resourceId"))
        result: Json = self.post(
            f"/workflows/{workflow}/start-async?runId={run_id}", body, **headers
        )
        return result

    def start(self, workflow: str, run_id: str, body: Json) -> None:
        """Create the run and start it without waiting for it."""
        self.create_run(workflow, run_id, body.get("resourceId"))
        self.post(f"/workflows/{workflow}/start?runId={run_id}", body)

    def resume_async(self, workflow: str, run_id: str, body: Json) -> Json:
        result: Json = self.post(f"/workflows/{workflow}/resume-async?runId={run_id}", body)
        return result

    def run(self, workflow: str, run_id: str) -> Json:
        run: Json = self.get(f"/workflows/{workflow}/runs/{run_id}")
        return run


def launch_chromium(playwright: Any) -> Any:
    """Debian's Chromium, headless, under Playwright.

    Raises:
        BrowserMissing: ``/usr/bin/chromium`` is not there.
    """
    if not CHROMIUM.exists():
        raise BrowserMissing(f"{CHROMIUM} is missing: run `make browser` (Debian's chromium)")
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=list(CHROMIUM_FLAGS)
    )
