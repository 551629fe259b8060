"""``python -m bench`` (``make bench``): every scenario and peer, one table.

Each scenario group runs in a fresh subprocess (``python -m bench.scenarios.<group>``) that
prints its measurements as JSON, so memory figures are its own and no group inherits another's
heap, threads or tracer providers; the peers run as subprocesses too (`bench.peers.runner`).
The collected table is printed and written to ``bench/results/latest.md`` (``quick.md`` with
``--quick``), with the raw measurements beside it as JSON.

Options: ``--quick`` (small sizes, 3 repetitions: for development), ``--no-peers``,
``--only NAME[,NAME...]`` (job names as listed by ``--list``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from bench.machine import describe_machine
from bench.measure import Measurement, Sizes
from bench.peers.runner import (
    PeerOutcome,
    ensure_langgraph,
    ensure_mastra,
    run_langgraph,
    run_mastra,
)
from bench.report import Results, build_rows, format_table
from bench.results import write_results

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
LOGS = BENCH / ".logs"


@dataclass(frozen=True)
class Job:
    name: str
    title: str
    module: str = ""
    args: tuple[str, ...] = ()
    peer: Callable[[Sizes], PeerOutcome] | None = field(default=None, compare=False)
    uses_mastra: bool = False
    """A scenario that runs Mastra too (installed up front; skipped with ``--no-peers``)."""


def _scenario(name: str, title: str, module: str, *args: str) -> Job:
    return Job(name, title, f"bench.scenarios.{module}", args)


JOBS = (
    _scenario("sequential", "scenarios 1, 2, 8: sequential steps; raw SDK", "sequential"),
    Job("langgraph", "peer: LangGraph", peer=run_langgraph),
    Job("mastra", "peer: Mastra", peer=run_mastra),
    _scenario("many_runs", "scenario 3: runs of 3 steps", "many_runs"),
    _scenario("delivery", "scenario 4: delivery, default queue", "delivery", "defaults"),
    _scenario("delivery-sized", "scenario 4: delivery, sized queue", "delivery", "sized"),
    _scenario("flatness", "scenario 5: flatness, off, keep", "flatness", "nosdk", "keep"),
    _scenario("flatness-delete", "scenario 5: off, delete", "flatness", "nosdk", "delete"),
    _scenario("flatness-traced", "scenario 5: traced, keep", "flatness", "discard", "keep"),
    _scenario(
        "flatness-traced-delete", "scenario 5: traced, delete", "flatness", "discard", "delete"
    ),
    _scenario("foreach", "scenario 6: foreach, off", "foreach", "nosdk"),
    _scenario("foreach-otlp", "scenario 6: foreach, OTLP", "foreach", "otlp"),
    _scenario("concurrent", "scenario 7: concurrent runs", "concurrent"),
    Job(
        "server",
        "scenario 10: HTTP server, spanflow and Mastra",
        "bench.scenarios.server",
        uses_mastra=True,
    ),
    _scenario("event_log", "scenario 11: event log cost, SQLite and PostgreSQL", "event_log"),
    _scenario("queue", "scenario 12: runs through the queue, 1/2/4 workers", "queue"),
)


def run_scenario(job: Job, sizes: Sizes, *, no_peers: bool = False) -> list[Measurement]:
    """Run one scenario module in a fresh interpreter; its stderr goes to bench/.logs/."""
    LOGS.mkdir(exist_ok=True)
    log = LOGS / f"{job.name}.log"
    flags = [*(["--quick"] if sizes.quick else []), *(["--no-peers"] if no_peers else [])]
    command = [sys.executable, "-m", job.module, *job.args, *flags]
    with log.open("w") as stderr:
        done = subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=stderr, text=True)
    if done.returncode != 0:
        tail = log.read_text().strip().splitlines()[-5:]
        raise RuntimeError(f"exited {done.returncode}: " + " | ".join(tail))
    data = json.loads(done.stdout.strip().splitlines()[-1])
    return [Measurement.from_dict(item) for item in data["results"]]


def install_peers(installs: list[Callable[[], object]]) -> None:
    """Install the peers up front (in parallel), so no install runs beside a measurement."""

    def quietly(install: Callable[[], object]) -> None:
        try:
            install()
        except Exception as exc:  # reported again, with the reason, when the peer runs
            print(f"bench: peer install failed: {exc}", file=sys.stderr)

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(quietly, installs))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, 3 repetitions")
    parser.add_argument("--no-peers", action="store_true", help="skip LangGraph and Mastra")
    parser.add_argument("--only", default="", help="comma-separated job names (see --list)")
    parser.add_argument("--list", action="store_true", help="list the jobs and exit")
    args = parser.parse_args(argv)
    if args.list:
        for job in JOBS:
            print(f"{job.name:22} {job.title}")
        return 0
    sizes = Sizes.from_argv(["--quick"] if args.quick else [])
    only = {name for name in args.only.split(",") if name}
    unknown = only - {job.name for job in JOBS}
    if unknown:
        parser.error(f"unknown job(s): {', '.join(sorted(unknown))} (see --list)")
    jobs = [
        job
        for job in JOBS
        if (not only or job.name in only) and not (args.no_peers and job.peer is not None)
    ]

    started = time.monotonic()
    installs: list[Callable[[], object]] = []
    if any(job.peer is not None for job in jobs):
        installs = [ensure_langgraph, ensure_mastra]
    elif any(job.uses_mastra for job in jobs) and not args.no_peers:
        installs = [ensure_mastra]
    if installs:
        install_peers(installs)
    measurements: list[Measurement] = []
    peers: list[PeerOutcome] = []
    failures: dict[str, str] = {}
    for i, job in enumerate(jobs, 1):
        print(f"bench: [{i}/{len(jobs)}] {job.title} ...", file=sys.stderr, flush=True)
        job_start = time.monotonic()
        if job.peer is not None:
            outcome = job.peer(sizes)
            peers.append(outcome)
            measurements.extend(outcome.results)
            status = outcome.unavailable and f"not available: {outcome.unavailable}"
        else:
            try:
                measurements.extend(run_scenario(job, sizes, no_peers=args.no_peers))
                status = None
            except (RuntimeError, ValueError, KeyError) as exc:
                failures[job.name] = str(exc)
                status = f"FAILED: {exc}"
        elapsed = time.monotonic() - job_start
        print(f"bench:       {status or 'done'} ({elapsed:.0f} s)", file=sys.stderr, flush=True)
    duration = time.monotonic() - started

    rows = build_rows(Results(measurements, peers))
    table = format_table(rows)
    machine = describe_machine()
    print()
    print(table)
    print()
    summary = write_results(
        table, rows, machine, measurements, peers, failures, duration, quick=sizes.quick
    )
    print(summary)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
