"""The one table: every scenario's medians, per-unit times, ratios and targets.

Rows are built per scenario from the collected measurements (`Results`); a row whose
measurement is missing (a peer that could not run, a scenario that failed) shows ``n/a``.
Targets are the issue's, each checked on ratios from this one run and marked met or missed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import astuple, dataclass

from bench.measure import Measurement
from bench.peers.runner import PeerOutcome

__all__ = ["Results", "Row", "build_rows", "format_table", "format_time"]

OFF = "tracing off (no SDK)"
DISABLED = "TracingConfig(enabled=False)"
MEMORY = "tracing → in-memory"
OTLP = "tracing → OTLP, all delivered"
OTLP_THREAD = "tracing → OTLP, exporter in a thread"


class Results:
    """Measurements by key, plus the peers' outcomes."""

    def __init__(self, measurements: Iterable[Measurement], peers: Iterable[PeerOutcome]) -> None:
        self.by_key = {m.key: m for m in measurements}
        self.peers = {p.name: p for p in peers}

    def get(self, key: str) -> Measurement | None:
        m = self.by_key.get(key)
        return m if m is not None and m.samples else None

    def per_unit(self, key: str) -> float | None:
        m = self.get(key)
        return None if m is None else m.per_unit_s

    def median(self, key: str) -> float | None:
        m = self.get(key)
        return None if m is None else m.median_s


@dataclass(frozen=True, slots=True)
class Row:
    scenario: str
    variant: str
    median: str = ""
    per_unit: str = ""
    ratio: str = ""
    target: str = ""
    verdict: str = ""
    """``met``, ``missed``, ``n/a`` (a target this run could not measure) or empty."""


def format_time(seconds: float | None) -> str:
    if seconds is None or math.isnan(seconds):
        return "n/a"
    if abs(seconds) >= 1:
        return f"{seconds:.2f} s"
    if abs(seconds) >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e6:.1f} µs"


def ratio_of(value: float | None, reference: float | None) -> float | None:
    if value is None or reference is None or reference == 0:
        return None
    return value / reference


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("met" if ok else "missed")


class _Table:
    """Collects rows; `timed` makes the common row from a measurement key."""

    def __init__(self, results: Results) -> None:
        self.r = results
        self.rows: list[Row] = []

    def timed(
        self,
        scenario: str,
        variant: str,
        key: str,
        reference: tuple[str, str] | None = None,
        at_most: float | None = None,
        text: str | None = None,
    ) -> None:
        """A row for `key`; `reference` is (key, label) for the ratio of per-unit times."""
        m = self.r.get(key)
        ratio = None
        ratio_text = text or ""
        if reference is not None:
            ratio = ratio_of(self.r.per_unit(key), self.r.per_unit(reference[0]))
            ratio_text = "n/a" if ratio is None else f"{ratio:.2f}× {reference[1]}"
        noisy = m is not None and m.extra.get("calm") is False
        self.rows.append(
            Row(
                scenario,
                variant,
                format_time(None if m is None else m.median_s) + (" *" if noisy else ""),
                "n/a" if m is None else f"{format_time(m.per_unit_s)}/{m.unit}",
                ratio_text,
                "" if at_most is None else f"≤ {at_most:g}×",
                "" if at_most is None else verdict(None if ratio is None else ratio <= at_most),
            )
        )

    def add(self, row: Row) -> None:
        self.rows.append(row)


def _scenario_1(t: _Table) -> None:
    t.timed("1", f"spanflow start(), {OFF}", "s1.start.nosdk", ("lg.s1.invoke", "LangGraph"), 0.1)
    t.timed("1", f"spanflow start(), {DISABLED}", "s1.start.disabled", ("s1.start.nosdk", "off"))
    t.timed("1", f"spanflow start(), {MEMORY}", "s1.start.memory", ("s1.start.nosdk", "off"))
    mastra = ("mastra.s1.start.otel", "Mastra")
    t.timed("1", f"spanflow start(), {OTLP}", "s1.start.otlp", mastra, 0.3)
    t.timed("1", f"spanflow start(), {OTLP_THREAD}", "s1.start.otlp-thread", mastra)
    for sink, label, target in (
        ("otlp", "OTLP", 1.5),
        ("otlp-thread", "OTLP, exporter in a thread", None),
        ("memory", "in-memory", 1.5),
    ):
        _added_cost(t, sink, label, target)
    _peers(t, "s1")


def _added_cost(t: _Table, sink: str, label: str, at_most: float | None) -> None:
    """Tracing's added cost in scenario 1 (on − off), against the raw SDK making those spans."""
    on, off, raw = (t.r.get(k) for k in (f"s1.start.{sink}", "s1.start.nosdk", f"s8.{sink}"))
    added = None if on is None or off is None else on.median_s - off.median_s
    ratio = ratio_of(added, None if raw is None else raw.median_s)
    t.add(
        Row(
            "1",
            f"added cost of tracing → {label} (on − off)",
            format_time(added),
            "n/a" if added is None or on is None else f"{format_time(added / on.units)}/step",
            "n/a" if ratio is None else f"{ratio:.2f}× raw SDK (scn 8)",
            "" if at_most is None else f"≤ {at_most:g}×",
            "" if at_most is None else verdict(None if ratio is None else ratio <= at_most),
        )
    )


def _peers(t: _Table, s: str) -> None:
    """LangGraph and Mastra rows for scenario 1 (``s1``) or 3 (``s3``)."""
    scenario = s[1:]
    off = (f"{s}.start.nosdk", "spanflow off")
    t.timed(scenario, "LangGraph ainvoke(), no checkpointer", f"lg.{s}.invoke", off)
    t.timed(scenario, "LangGraph ainvoke(), InMemorySaver", f"lg.{s}.invoke+saver", off)
    t.timed(scenario, "Mastra start(), no observability", f"mastra.{s}.start.off", off)
    otlp = (f"{s}.start.otlp", "spanflow OTLP")
    t.timed(scenario, "Mastra start(), OTel exporter", f"mastra.{s}.start.otel", otlp)
    for name, peer in t.r.peers.items():
        if peer.unavailable is not None:
            t.add(Row(scenario, name, ratio=f"not available: {peer.unavailable}"))


def _stream_rows(t: _Table, scenario: str, s: str, tracings: Iterable[tuple[str, str]]) -> None:
    for tracing, label in tracings:
        start = (f"{s}.start.{tracing}", "start()")
        t.timed(scenario, f"spanflow stream(), {label}", f"{s}.stream.{tracing}", start, 1.2)
    t.timed(scenario, "LangGraph astream()", f"lg.{s}.stream", (f"lg.{s}.invoke", "ainvoke()"))
    for tracing, label in (("off", "no observability"), ("otel", "OTel exporter")):
        start = (f"mastra.{s}.start.{tracing}", "start()")
        t.timed(scenario, f"Mastra stream(), {label}", f"mastra.{s}.stream.{tracing}", start)


def _scenario_2(t: _Table) -> None:
    tracings = (("nosdk", OFF), ("disabled", DISABLED), ("memory", MEMORY), ("otlp", OTLP))
    _stream_rows(t, "2", "s1", tracings)


def _scenario_3(t: _Table) -> None:
    off = ("s3.start.nosdk", "off")
    t.timed("3", f"spanflow start(), {OFF}", "s3.start.nosdk")
    t.timed("3", f"spanflow start(), {MEMORY}", "s3.start.memory", off)
    mastra = ("mastra.s3.start.otel", "Mastra")
    t.timed("3", f"spanflow start(), {OTLP}", "s3.start.otlp", mastra, 0.5)
    t.timed("3", f"spanflow start(), {OTLP_THREAD}", "s3.start.otlp-thread", mastra)
    _peers(t, "s3")
    _stream_rows(t, "3", "s3", (("nosdk", OFF), ("memory", MEMORY), ("otlp", OTLP)))


def _scenario_4(t: _Table) -> None:
    for variant, label in (("defaults", "default queue (2048)"), ("sized", "queue sized")):
        m = t.r.get(f"s4.{variant}")
        if m is None:
            t.add(Row("4", f"spanflow OTLP, {label}", ratio="n/a", verdict="n/a"))
            continue
        e = m.extra
        created, delivered, dropped = e["created_spans"], e["delivered_spans"], e["dropped_spans"]
        t.add(
            Row(
                "4",
                f"spanflow OTLP, {e['runs']:,} runs, {label}",
                format_time(m.median_s) + "/1k runs",
                f"{format_time(m.per_unit_s)}/run",
                f"{delivered:,}/{created:,} delivered ({100 * delivered / created:.1f}%), "
                f"{dropped:,} dropped, counted",
                "100% or drops counted",
                verdict(delivered == created or delivered + dropped == created),
            )
        )
    mastra = t.r.peers.get("Mastra")
    if mastra is not None and mastra.unavailable is None and mastra.notes:
        expected, delivered = mastra.notes["expected_spans"], mastra.notes["delivered_spans"]
        t.add(
            Row(
                "4",
                "Mastra OTel exporter, its scenario 1-3 runs",
                ratio=f"{delivered:,}/{expected:,} delivered ({100 * delivered / expected:.1f}%), "
                "drops not counted",
            )
        )


def _scenario_5(t: _Table) -> None:
    for tracing, store, label in (
        ("nosdk", "keep", "off, store keeps runs (default)"),
        ("nosdk", "delete", "off, each run deleted"),
        ("discard", "keep", "traced, store keeps runs (default)"),
        ("discard", "delete", "traced, each run deleted"),
    ):
        m = t.r.get(f"s5.{tracing}.{store}")
        if m is None:
            t.add(Row("5", label, ratio="n/a", verdict="n/a"))
            continue
        e = m.extra
        ratio = e["last_vs_first"]
        t.add(
            Row(
                "5",
                f"{label}: last vs first 1k runs",
                f"{format_time(e['last_us'] / 1e6)}/run",
                f"first {format_time(e['first_us'] / 1e6)}",
                f"{ratio:.2f}× (plain first/last 1k: {e['last_vs_first_plain']:.2f}×)",
                "≤ 1.1×",
                verdict(ratio <= 1.1),
            )
        )
        growth = e["rss_growth_mb"]
        t.add(
            Row(
                "5",
                f"{label}: RSS over {e['runs']:,} runs",
                f"{growth:+.1f} MB",
                f"{growth * 1024 * 1024 / e['runs']:,.0f} B/run",
                f"{e['rss_start_mb']:.0f} → {e['rss_end_mb']:.0f} MB",
                "< 20 MB",
                verdict(growth < 20),
            )
        )


def _scenario_6(t: _Table) -> None:
    for tracing, label in (("nosdk", OFF), ("otlp", OTLP)):
        m = t.r.get(f"s6.{tracing}")
        text = "n/a"
        if m is not None:
            e = m.extra
            text = (
                f"{e['items_per_s']:,.0f} items/s; peak RSS {e['peak_rss_mb']:.0f} MB, "
                f"+{e['peak_growth_mb']:.1f} MB over idle"
            )
        t.timed("6", f"foreach, concurrency 16, stream(), {label}", f"s6.{tracing}", text=text)


def _scenario_7(t: _Table) -> None:
    for tracing, label in (("nosdk", OFF), ("otlp", OTLP)):
        m = t.r.get(f"s7.{tracing}")
        judged = tracing == "nosdk"
        t.add(
            Row(
                "7",
                f"{m.units if m else 1000:,} concurrent runs, 10 ms nap, {label}",
                format_time(None if m is None else m.median_s),
                "n/a" if m is None else f"{format_time(m.per_unit_s)}/run",
                "n/a" if m is None else f"{m.median_s / 0.010:.1f}× the 10 ms nap",
                "< 0.5 s" if judged else "",
                verdict(None if m is None else m.median_s < 0.5) if judged else "",
            )
        )


def _scenario_8(t: _Table) -> None:
    t.timed("8", "raw OTel SDK, scenario 1's spans → in-memory", "s8.memory")
    memory = ("s8.memory", "in-memory")
    t.timed("8", "raw OTel SDK, scenario 1's spans → OTLP", "s8.otlp", memory)
    t.timed("8", "raw OTel SDK, the same → OTLP, exporter in a thread", "s8.otlp-thread", memory)


SERVERS = (("spanflow", "spanflow server (uvicorn)"), ("mastra", "Mastra server (@mastra/hono)"))
SERVER_TRACINGS = (("off", "untraced"), ("traced", "traced → OTLP"))


def _server_load(m: Measurement) -> str:
    """Runs/s, stream latency and (traced) delivery of one server measurement."""
    e = m.extra
    text = (
        f"{e['runs_per_s']:,.0f} runs/s; stream p50 {e['p50_ms']:.1f} ms, p99 {e['p99_ms']:.1f} ms"
    )
    if "expected_spans" in e:
        text += f"; {e['delivered_spans']:,}/{e['expected_spans']:,} spans delivered"
    return text


def _scenario_10(t: _Table) -> None:
    for tracing, tracing_label in SERVER_TRACINGS:
        for concurrency in (1, 32):
            clients = f"{concurrency} client{'s' if concurrency > 1 else ''}"
            for server, label in SERVERS:
                key = f"s10.{server}.{tracing}.c{concurrency}"
                m = t.r.get(key)
                missing = t.r.by_key.get(key)
                if m is None and missing is not None and "unavailable" in missing.extra:
                    text = f"not available: {missing.extra['unavailable']}"
                else:
                    text = "n/a" if m is None else _server_load(m)
                t.timed("10", f"{label}, {tracing_label}, {clients}", key, text=text)
            if tracing == "traced":
                _server_target(t, concurrency, clients)


def _server_target(t: _Table, concurrency: int, clients: str) -> None:
    """spanflow's runs/s traced against Mastra's, with every span delivered."""
    ours, theirs = (t.r.get(f"s10.{s}.traced.c{concurrency}") for s in ("spanflow", "mastra"))
    ratio = (
        None
        if ours is None or theirs is None
        else (ours.extra["runs_per_s"] / theirs.extra["runs_per_s"])
    )
    delivered = ours is not None and ours.extra["delivered_spans"] == ours.extra["expected_spans"]
    text = "n/a"
    if ratio is not None and ours is not None:
        spans = f"{ours.extra['delivered_spans']:,}/{ours.extra['expected_spans']:,}"
        text = f"{ratio:.2f}× Mastra's runs/s; {spans} spans delivered"
    t.add(
        Row(
            "10",
            f"spanflow traced vs Mastra traced, {clients}: runs/s",
            ratio=text,
            target="≥ 1×, all delivered",
            verdict=verdict(None if ratio is None else ratio >= 1 and delivered),
        )
    )


def _scenario_11(t: _Table) -> None:
    for store, label in (("sqlite", "SqliteStorage"), ("postgres", "PostgresStorage")):
        on, off = f"s11.{store}.on", f"s11.{store}.off"
        missing = t.r.by_key.get(on)
        if t.r.get(on) is None and missing is not None and "unavailable" in missing.extra:
            t.add(Row("11", label, ratio=f"not available: {missing.extra['unavailable']}"))
            continue
        t.timed("11", f"{label}, 100-step run, start(), event log on", on, (off, "log off"))
        t.timed("11", f"{label}, 100-step run, start(), event_log=False", off)
        on_step, off_step = t.r.per_unit(on), t.r.per_unit(off)
        added = None if on_step is None or off_step is None else on_step - off_step
        ratio = ratio_of(on_step, off_step)
        t.add(
            Row(
                "11",
                f"{label}: added cost of the event log (on − off)",
                per_unit="n/a" if added is None else f"{format_time(added)}/step",
                ratio="n/a" if ratio is None else f"{ratio:.2f}× log off",
            )
        )


QUEUE_FAMILIES = (
    ("local", "in process (LocalExecutor)"),
    ("w1", "queue, 1 worker"),
    ("w2", "queue, 2 workers"),
    ("w4", "queue, 4 workers"),
)


def _queue_load(m: Measurement, local: Measurement | None) -> str:
    """Runs/s (and the ratio to in-process), stream latency, CPU per run, spans delivered."""
    e = m.extra
    text = f"{e['runs_per_s']:,.0f} runs/s"
    if local is not None and local is not m:
        text += f" ({e['runs_per_s'] / local.extra['runs_per_s']:.2f}× in process)"
    if "p50_ms" in e:
        text += f"; event → stream p50 {e['p50_ms']:.1f} ms, p99 {e['p99_ms']:.1f} ms"
    cpu = e.get("cpu_ms_per_run")
    if cpu:
        text += (
            f"; CPU/run: caller {cpu['caller']:.1f}, workers {cpu['workers']:.1f}, "
            f"PostgreSQL {cpu['postgres']:.1f} ms"
        )
    if "expected_spans" in e:
        text += f"; {e['delivered_spans']:,}/{e['expected_spans']:,} spans delivered"
    return text


def _scenario_12(t: _Table) -> None:
    for mode, call in (("start", "start()"), ("stream", "stream()")):
        for tracing, tracing_label in (("off", "untraced"), ("traced", "traced → OTLP")):
            local = t.r.get(f"s12.local.{tracing}.{mode}")
            for family, label in QUEUE_FAMILIES:
                key = f"s12.{family}.{tracing}.{mode}"
                m = t.r.get(key)
                text = "n/a" if m is None else _queue_load(m, local)
                t.timed("12", f"3-step runs, {call}, {label}, {tracing_label}", key, text=text)
    local = t.r.get("s12.local.off.stream1")
    for family, label in QUEUE_FAMILIES[:2]:
        key = f"s12.{family}.off.stream1"
        m = t.r.get(key)
        text = "n/a" if m is None else _queue_load(m, local)
        t.timed("12", f"3-step runs, stream(), 1 at a time, {label}, untraced", key, text=text)


def _measured(row: Row) -> bool:
    return any(cell not in ("", "n/a") for cell in (row.median, row.per_unit, row.ratio))


def build_rows(results: Results) -> list[Row]:
    """Every row of the table, scenario by scenario (peers within scenarios 1-3 and 10).

    A scenario none of whose rows has a figure (its job was not run: ``--only``, or it failed,
    which the summary says) is left out, so a partial run prints only what it measured.
    """
    table = _Table(results)
    for scenario in (
        _scenario_1,
        _scenario_2,
        _scenario_3,
        _scenario_4,
        _scenario_5,
        _scenario_6,
        _scenario_7,
        _scenario_8,
        _scenario_10,
        _scenario_11,
        _scenario_12,
    ):
        rows = len(table.rows)
        scenario(table)
        if not any(_measured(row) for row in table.rows[rows:]):
            del table.rows[rows:]
    return table.rows


HEADER = Row("Scn", "Variant", "Median", "Per unit", "Ratio", "Target", "Result")


def format_table(rows: list[Row]) -> str:
    """Aligned plain text; a rule under the header and between scenarios."""
    cells = [astuple(row) for row in (HEADER, *rows)]
    widths = [max(len(str(cell[i])) for cell in cells) for i in range(len(HEADER.__slots__))]
    rule = "  ".join("-" * w for w in widths)
    lines = []
    for i, cell in enumerate(cells):
        if i == 1 or (i > 1 and cell[0] != cells[i - 1][0]):
            lines.append(rule)
        lines.append("  ".join(str(c).ljust(w) for c, w in zip(cell, widths, strict=True)).rstrip())
    return "\n".join(lines)
