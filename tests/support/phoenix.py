"""Arize Phoenix as a real trace backend for tests: installed, started, queried, stopped.

`ensure_phoenix` installs ``arize-phoenix`` (pinned in ``phoenix-requirements.txt`` beside this
file) into ``.venv-phoenix/`` at the repository root, its own virtual environment, so its many
dependencies never meet spanflow's; the install is redone only when the requirements change
(about 90 s and 850 MB the first time). `start_phoenix` runs ``phoenix serve`` on free loopback
ports with a throwaway working directory and waits for ``GET /healthz``; `PhoenixServer.stop`
terminates it (then kills it). `PhoenixServer.spans` reads Phoenix's REST API
(``GET /v1/projects/{project}/spans``, filters by trace id, parent id, name and ``attribute``).

The `phoenix_server_fixture` session fixture (requested as ``phoenix``) starts one server for
the whole session. With ``CI=true`` a Phoenix that cannot be installed or started fails the
tests; elsewhere a failed *install* (no network, say) skips them with the reason, and a failed
start still fails.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

__all__ = [
    "PHOENIX_VENV",
    "PhoenixServer",
    "PhoenixUnavailable",
    "ensure_phoenix",
    "phoenix_server_fixture",
    "start_phoenix",
]

ROOT = Path(__file__).resolve().parents[2]
PHOENIX_VENV = ROOT / ".venv-phoenix"
REQUIREMENTS = Path(__file__).with_name("phoenix-requirements.txt")
INSTALL_TIMEOUT = 1200.0
START_TIMEOUT = 120.0
"""Phoenix answers /healthz about 13 s after start on a developer machine; CI may be slower."""


class PhoenixUnavailable(Exception):
    """Phoenix could not be installed or started; the message says why."""

    def __init__(self, message: str, *, install: bool) -> None:
        super().__init__(message)
        self.install = install
        """True when the install failed (as opposed to the server)."""


def ensure_phoenix(venv: Path = PHOENIX_VENV) -> Path:
    """The ``phoenix`` executable, installing Phoenix into `venv` first if needed.

    Raises:
        PhoenixUnavailable: The virtual environment or the install failed.
    """
    executable = venv / "bin" / "phoenix"
    wanted = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    stamp = venv / ".spanflow-requirements"
    venv.mkdir(parents=True, exist_ok=True)  # `python -m venv` accepts an empty directory
    # One install at a time, even with several test sessions starting together.
    with open(venv / ".spanflow-install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if executable.is_file() and stamp.is_file() and stamp.read_text().strip() == wanted:
            return executable
        log = venv / "spanflow-install.log"
        python = venv / "bin" / "python"
        steps: list[Sequence[str]] = []
        if not python.is_file():
            steps.append([sys.executable, "-m", "venv", str(venv)])
        steps.append(
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             "-r", str(REQUIREMENTS)]
        )  # fmt: skip
        with open(log, "w") as output:
            for command in steps:
                try:
                    done = subprocess.run(
                        command,
                        stdout=output,
                        stderr=subprocess.STDOUT,
                        timeout=INSTALL_TIMEOUT,
                        check=False,
                    )
                except (OSError, subprocess.TimeoutExpired) as exc:
                    raise PhoenixUnavailable(
                        f"installing Phoenix failed ({' '.join(command[:4])}...): {exc}",
                        install=True,
                    ) from None
                if done.returncode != 0:
                    raise PhoenixUnavailable(
                        f"installing Phoenix failed (exit {done.returncode}): "
                        f"{_tail(log)} (full log: {log})",
                        install=True,
                    )
        if not executable.is_file():
            raise PhoenixUnavailable(f"the install left no {executable}", install=True)
        stamp.write_text(wanted + "\n")
        return executable


@dataclass
class PhoenixServer:
    """A running ``phoenix serve`` on loopback."""

    base_url: str
    """``http://127.0.0.1:<port>``: UI, REST API and OTLP/HTTP."""
    grpc_port: int
    process: subprocess.Popen[bytes]
    working_dir: Path
    log: Path
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.Client(base_url=self.base_url, timeout=10.0)

    @property
    def otlp_http_endpoint(self) -> str:
        """Where to export spans over OTLP/HTTP."""
        return f"{self.base_url}/v1/traces"

    def spans(
        self, project: str = "default", params: Sequence[tuple[str, str]] = ()
    ) -> list[dict[str, Any]]:
        """``GET /v1/projects/{project}/spans`` with `params` (repeatable), every page."""
        spans: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            query = httpx.QueryParams([*params, ("limit", "1000")])
            if cursor:
                query = query.add("cursor", cursor)
            response = self.client.get(f"/v1/projects/{project}/spans", params=query)
            if response.status_code == 404:
                return spans  # no span reached this project yet
            response.raise_for_status()
            body: Mapping[str, Any] = response.json()
            spans.extend(body["data"])
            cursor = body.get("next_cursor")
            if not cursor:
                return spans

    def wait_for_spans(
        self,
        count: int,
        project: str = "default",
        params: Sequence[tuple[str, str]] = (),
        timeout: float = 20.0,
    ) -> list[dict[str, Any]]:
        """`spans` once at least `count` match (Phoenix stores what it receives a bit later)."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.spans(project, params)
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"Phoenix has {len(found)} spans for {list(params)} in project {project!r} "
                    f"after {timeout}s, expected {count}"
                )
            time.sleep(0.2)

    def stop(self) -> None:
        """Terminate the server (kill it if it will not stop) and remove its working dir."""
        self.client.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)
        shutil.rmtree(self.working_dir, ignore_errors=True)


def start_phoenix(executable: Path, timeout: float = START_TIMEOUT) -> PhoenixServer:
    """``phoenix serve`` on free loopback ports, once healthy.

    Raises:
        PhoenixUnavailable: It exited or did not become healthy within `timeout` seconds.
    """
    working_dir = Path(tempfile.mkdtemp(prefix="spanflow-phoenix-"))
    port, grpc_port = _free_port(), _free_port()
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("OTEL_", "PHOENIX_"))
    }
    env.update(
        PHOENIX_WORKING_DIR=str(working_dir),
        PHOENIX_HOST="127.0.0.1",
        PHOENIX_PORT=str(port),
        PHOENIX_GRPC_PORT=str(grpc_port),
    )
    log = working_dir / "phoenix.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [str(executable), "serve"],
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
        )
    server = PhoenixServer(f"http://127.0.0.1:{port}", grpc_port, process, working_dir, log)
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            message = f"phoenix serve exited with {process.returncode}: {_tail(log)}"
            server.stop()
            raise PhoenixUnavailable(message, install=False)
        try:
            if server.client.get("/healthz", timeout=2.0).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            message = f"phoenix serve was not healthy after {timeout:.0f}s: {_tail(log)}"
            server.stop()
            raise PhoenixUnavailable(message, install=False)
        time.sleep(0.25)


@pytest.fixture(scope="session", name="phoenix")
def phoenix_server_fixture() -> Iterator[PhoenixServer]:
    """One Phoenix for the session (see the module docstring for CI, skip and failure)."""
    in_ci = os.environ.get("CI", "").lower() == "true"
    try:
        server = start_phoenix(ensure_phoenix())
    except PhoenixUnavailable as exc:
        if exc.install and not in_ci:
            pytest.skip(f"Phoenix tests need arize-phoenix installed in .venv-phoenix: {exc}")
        pytest.fail(f"Phoenix is needed for these tests: {exc}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tail(log: Path, lines: int = 5) -> str:
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:]) or "(no output)"
