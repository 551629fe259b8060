"""The test suite and the benchmarks read nothing outside the repository.

A fresh clone has no sibling folders, so a path climbing out of the repository (``parents[N]``
past its root, or a sibling such as the project's shared folder) would fail there.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("tests", "bench")
CLIMB = re.compile(r"Path\(__file__\)(?:\.resolve\(\))?\.parents\[(\d+)\]")
SIBLING = re.compile(r"""(?:\.\./|/work/)shared\b|["']shared["']\s*/""")


def sources() -> list[Path]:
    return sorted(
        path
        for folder in SCANNED
        for path in (ROOT / folder).rglob("*.py")
        if "node_modules" not in path.parts and path != Path(__file__).resolve()
    )


def test_no_source_climbs_above_the_repository_root() -> None:
    climbing = []
    for path in sources():
        for match in CLIMB.finditer(path.read_text()):
            target = path.parents[int(match.group(1))]
            if not target.is_relative_to(ROOT):
                climbing.append(f"{path.relative_to(ROOT)}: {match.group(0)} is {target}")

    assert climbing == []


def test_no_source_names_a_folder_beside_the_repository() -> None:
    naming = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in sources()
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if SIBLING.search(line)
    ]

    assert naming == []


def test_the_mastra_captures_ship_with_the_tests() -> None:
    from tests.workflows.reference_workflow import REFERENCE_DIR

    assert REFERENCE_DIR.is_relative_to(ROOT)
    assert sorted(path.name for path in REFERENCE_DIR.iterdir()) == [
        "README.md",
        "events-run1-resumeStream.jsonl",
        "events-run1-stream.jsonl",
        "events-run5-throw-stream.jsonl",
        "results-run1.json",
    ]
