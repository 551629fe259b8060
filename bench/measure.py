"""What every scenario reports (`Measurement`), and how it times and weighs things.

A measurement is the median of several timed repetitions after a warm-up, with the number of
units (steps, runs, spans, items) the repetition covers so the table can show a per-unit time.
Scenario modules and peers print ``{"results": [measurement, ...]}`` as JSON on stdout; the
runner collects them (`bench.__main__`).
"""

from __future__ import annotations

import gc
import json
import math
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "CALM",
    "Measurement",
    "Sizes",
    "Speedometer",
    "Timing",
    "emit",
    "interleaved",
    "peak_rss_mb",
    "reset_peak_rss",
    "rss_mb",
]


@dataclass(frozen=True, slots=True)
class Sizes:
    """How big and how often: the full run, or ``--quick`` for development."""

    quick: bool = False
    reps: int = 5
    """Timed repetitions per measurement (after one warm-up)."""
    cheap_reps: int = 9
    """Repetitions where one is cheap (scenarios 1, 2, 8): their ratios decide most targets."""
    steps: int = 1000
    """Steps of the long sequential workflow (scenarios 1, 2, 8)."""
    runs: int = 2000
    """Runs of the 3-step workflow per repetition (scenario 3)."""
    delivery_runs: int = 16_000
    """Runs back to back with OTLP export (scenario 4)."""
    flat_runs: int = 20_000
    """Runs in one process (scenario 5), compared in blocks of `flat_block`."""
    flat_block: int = 1000
    foreach_items: int = 10_000
    concurrent_runs: int = 1000
    server_runs: int = 400
    """Runs (create-run + stream over HTTP) per repetition of the server scenario (10)."""
    event_log_runs: int = 5
    """Runs of the 100-step workflow per repetition of the event-log scenario (11)."""

    @classmethod
    def from_argv(cls, argv: Sequence[str]) -> Sizes:
        """``--quick`` gives small sizes and 3 repetitions."""
        if "--quick" not in argv:
            return cls()
        return cls(
            quick=True,
            reps=3,
            cheap_reps=3,
            steps=200,
            runs=300,
            delivery_runs=2000,
            flat_runs=4000,
            flat_block=500,
            foreach_items=2000,
            concurrent_runs=1000,
            server_runs=200,
            event_log_runs=2,
        )


@dataclass(slots=True)
class Measurement:
    """One row of raw results: a key, timed samples and what they cover."""

    key: str
    """Stable id the report refers to, e.g. ``s1.start.off`` or ``lg.s1.invoke``."""
    samples: list[float]
    """Seconds per repetition (or another quantity, see `unit`)."""
    units: int
    """Steps, runs, spans or items one sample covers (per-unit = median / units)."""
    unit: str
    extra: dict[str, Any] = field(default_factory=dict)
    """Counts and sizes that are not times (delivered spans, memory in MB, ...)."""

    @property
    def median_s(self) -> float:
        return statistics.median(self.samples) if self.samples else float("nan")

    @property
    def per_unit_s(self) -> float:
        return self.median_s / self.units

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["median_s"] = self.median_s
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Measurement:
        return cls(
            key=str(data["key"]),
            samples=[float(s) for s in data["samples"]],
            units=int(data["units"]),
            unit=str(data["unit"]),
            extra=dict(data.get("extra") or {}),
        )


def emit(results: Sequence[Measurement]) -> None:
    """Print the results as the one JSON document a scenario process writes on stdout."""
    json.dump({"results": [m.to_dict() for m in results]}, sys.stdout)
    sys.stdout.write("\n")
    sys.stdout.flush()


CALM = 1.15
"""A repetition counts when the machine ran within 15% of its best speed just before and after."""


class Speedometer:
    """Times a fixed pure-Python loop: how fast this machine is right now.

    The machine is shared: for seconds at a time the same code runs up to twice as slow. Timing
    this loop (about 3.5 ms) around a repetition tells whether the repetition ran in such a
    phase. The loop keeps nothing alive, so a growing heap does not slow it.
    """

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self._clock = clock
        self.best = math.inf
        """The fastest reading so far."""

    def reading(self) -> float:
        start = self._clock()
        table: dict[int, int] = {}
        total = 0
        for i in range(20_000):
            table[i & 255] = i
            total += table.get(i & 127, 0) + len(str(i))
        elapsed = self._clock() - start
        self.best = min(self.best, elapsed)
        return elapsed

    def calm(self, *readings: float) -> bool:
        """Whether every reading is within `CALM` of the best one seen."""
        return max(readings) <= CALM * self.best


@dataclass(slots=True)
class Timing:
    """The samples of one variant, and how many repetitions were thrown away as disturbed."""

    samples: list[float]
    disturbed: int
    calm: bool
    """False when too few repetitions were calm and every sample was kept."""

    def extra(self) -> dict[str, Any]:
        return {"disturbed_reps": self.disturbed, "calm": self.calm}


async def _timed(body: Callable[[], Awaitable[float | None]]) -> float:
    start = time.perf_counter()
    reported = await body()
    return time.perf_counter() - start if reported is None else reported


async def interleaved(
    variants: Mapping[str, Callable[[], Awaitable[float | None]]], reps: int
) -> dict[str, Timing]:
    """Time each variant until it has `reps` calm repetitions, after one warm-up each.

    Round-robin (a b c, a b c, ...) spreads the machine's noise over every variant. A
    repetition with a `Speedometer` reading before or after it more than 15% slower than the
    best reading is disturbed: it is repeated, for at most ``2 * reps`` rounds (then every
    sample is kept, and the timing says it was not calm). A body may return its own duration
    (when only part of it is timed); otherwise the whole call is timed. A full collection runs
    before each repetition so one variant's garbage is not collected on another's clock.
    """
    meter = Speedometer()
    runs: dict[str, list[tuple[float, float, float]]] = {name: [] for name in variants}

    def calm_samples(name: str) -> list[float]:
        return [elapsed for before, elapsed, after in runs[name] if meter.calm(before, after)]

    for body in variants.values():
        gc.collect()
        await _timed(body)  # warm-up
    for _ in range(2 * reps):
        todo = [name for name in variants if len(calm_samples(name)) < reps]
        if not todo:
            break
        for name in todo:
            gc.collect()
            before = meter.reading()
            elapsed = await _timed(variants[name])
            runs[name].append((before, elapsed, meter.reading()))
    timings = {}
    for name in variants:
        calm = calm_samples(name)
        kept = calm if len(calm) >= reps else [elapsed for _, elapsed, _ in runs[name]]
        timings[name] = Timing(kept, len(runs[name]) - len(calm), len(calm) >= reps)
    return timings


def _status_kb(field_name: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field_name}")


def rss_mb() -> float:
    """Resident set size of this process now, in MB (VmRSS)."""
    return _status_kb("VmRSS") / 1024


def peak_rss_mb() -> float:
    """Peak resident set size of this process, in MB (VmHWM), since start or the last reset."""
    return _status_kb("VmHWM") / 1024


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux ``clear_refs`` 5); False where not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True
