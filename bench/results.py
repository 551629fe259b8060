"""Writing a run's outcome: the table, the machine, peers and targets, as Markdown and JSON.

``bench/results/latest.md`` (committed) holds what a full run printed; ``latest.json`` the raw
measurements. A ``--quick`` run writes ``quick.md`` / ``quick.json`` instead (not committed).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from bench.measure import Measurement
from bench.peers.runner import PeerOutcome
from bench.report import Row

__all__ = ["summarise", "write_results"]

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
README = BENCH / "README.md"
START, END = "<!-- results:start -->", "<!-- results:end -->"


def summarise(
    rows: Sequence[Row],
    peers: Sequence[PeerOutcome],
    failures: dict[str, str],
    duration: float,
) -> str:
    """Peers that ran (or why not), targets met and missed, failed jobs, total time."""
    lines = []
    for peer in peers:
        if peer.unavailable is None:
            lines.append(f"Peer {peer.name} {peer.version or ''} ran ({peer.runtime or '?'}).")
        else:
            lines.append(f"Peer {peer.name}: not available: {peer.unavailable}")
    judged = [row for row in rows if row.verdict in ("met", "missed", "n/a")]
    met = [row for row in judged if row.verdict == "met"]
    lines.append(f"Targets: {len(met)} of {len(judged)} met.")
    for row in judged:
        if row.verdict != "met":
            lines.append(f"  {row.verdict}: scenario {row.scenario}, {row.variant}: {row.ratio}")
    if any(row.median.endswith(" *") for row in rows):
        lines.append(
            "* too few calm repetitions (the machine was disturbed throughout): all samples used."
        )
    for name, reason in failures.items():
        lines.append(f"Job {name} failed: {reason}")
    lines.append(f"Total time: {duration / 60:.1f} min.")
    return "\n".join(lines)


def write_results(
    table: str,
    rows: Sequence[Row],
    machine: dict[str, str],
    measurements: Sequence[Measurement],
    peers: Sequence[PeerOutcome],
    failures: dict[str, str],
    duration: float,
    *,
    quick: bool,
) -> str:
    """Write the Markdown and JSON files; return the summary printed under the table."""
    summary = summarise(rows, peers, failures, duration)
    name = "quick" if quick else "latest"
    RESULTS.mkdir(exist_ok=True)
    facts = "\n".join(f"- {label}: {value}" for label, value in machine.items())
    command = "python -m bench --quick" if quick else "make bench (python -m bench)"
    markdown = (
        f"# Benchmark results ({name})\n\n"
        f"`{command}`, {duration / 60:.1f} minutes. Medians of the repetitions; ratios from "
        f"this one run. How to read it: `bench/README.md`.\n\n"
        f"{facts}\n\n```text\n{table}\n```\n\n```text\n{summary}\n```\n"
    )
    (RESULTS / f"{name}.md").write_text(markdown)
    if not quick:
        _quote_in_readme(facts, table, summary, duration)
    raw = {
        "machine": machine,
        "duration_s": duration,
        "measurements": [m.to_dict() for m in measurements],
        "peers": [
            {
                "name": p.name,
                "version": p.version,
                "runtime": p.runtime,
                "unavailable": p.unavailable,
                "notes": p.notes,
            }
            for p in peers
        ],
        "failures": failures,
    }
    (RESULTS / f"{name}.json").write_text(json.dumps(raw, indent=1) + "\n")
    return summary


def _quote_in_readme(facts: str, table: str, summary: str, duration: float) -> None:
    """Replace the results section of bench/README.md (between its markers) with this run."""
    try:
        text = README.read_text()
    except OSError:
        return
    if START not in text or END not in text:
        return
    quoted = (
        f"{START}\n`make bench`, {duration / 60:.1f} minutes, on:\n\n{facts}\n\n"
        f"```text\n{table}\n```\n\n```text\n{summary}\n```\n{END}"
    )
    head, rest = text.split(START, 1)
    README.write_text(head + quoted + rest.split(END, 1)[1])
