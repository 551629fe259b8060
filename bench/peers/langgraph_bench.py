# mypy: disable-error-code="import-not-found"
"""LangGraph running the benchmark's scenarios 1-3 (a peer, in its own virtual environment).

Run by the bench runner as ``bench/.peers/langgraph/bin/python bench/peers/langgraph_bench.py
'{"steps": 1000, "runs": 2000, "reps": 5}'``; prints one JSON document on stdout in the shape
of `bench.measure.Measurement`. It imports nothing from spanflow or bench: that venv has only
LangGraph (and its pydantic). Graphs are async and use a pydantic state ``{v: int}``, like the
spanflow workflows; nodes return ``{"v": v + 1}``. The default graph has no checkpointer
(LangGraph's fastest configuration, the reference for the targets); the ``+saver`` variant adds
`InMemorySaver`, which, like spanflow's run store, keeps a checkpoint after every step.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from importlib.metadata import version
from typing import Any

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from pydantic import BaseModel


class Value(BaseModel):
    v: int


async def increment(state: Value) -> dict[str, int]:
    return {"v": state.v + 1}


def chain(length: int, saver: bool) -> Any:
    graph = StateGraph(Value)
    previous = START
    for i in range(length):
        graph.add_node(f"s{i}", increment)
        graph.add_edge(previous, f"s{i}")
        previous = f"s{i}"
    graph.add_edge(previous, END)
    return graph.compile(checkpointer=InMemorySaver() if saver else None)


async def once(graph: Any, mode: str, length: int, run: int) -> None:
    config: dict[str, Any] = {
        "recursion_limit": length + 10,
        "configurable": {"thread_id": f"t{run}"},
    }
    if mode == "invoke":
        result = await graph.ainvoke({"v": 0}, config)
        final = result["v"]
    else:
        final = 0
        async for update in graph.astream({"v": 0}, config, stream_mode="updates"):
            for value in update.values():
                final = value["v"]
    if final != length:
        raise RuntimeError(f"expected v={length}, got {final}")


CALM = 1.15
_best = [float("inf")]


def reading() -> float:
    """Time a fixed loop: how fast the machine is now (the same loop as bench/measure.py)."""
    start = time.perf_counter()
    table: dict[int, int] = {}
    total = 0
    for i in range(20_000):
        table[i & 255] = i
        total += table.get(i & 127, 0) + len(str(i))
    elapsed = time.perf_counter() - start
    _best[0] = min(_best[0], elapsed)
    return elapsed


async def measure(body: Callable[[], Awaitable[None]], reps: int) -> dict[str, Any]:
    """`reps` calm repetitions after a warm-up; disturbed ones (a reading before or after more
    than 15% slower than the best) are repeated, for at most 2 * reps rounds (as in
    bench.measure.interleaved)."""
    await body()
    runs: list[tuple[float, float, float]] = []

    def calm() -> list[float]:
        return [s for b, s, a in runs if max(b, a) <= CALM * _best[0]]

    for _ in range(2 * reps):
        if len(calm()) >= reps:
            break
        before = reading()
        start = time.perf_counter()
        await body()
        elapsed = time.perf_counter() - start
        runs.append((before, elapsed, reading()))
    kept = calm()
    ok = len(kept) >= reps
    return {
        "samples": kept if ok else [s for _, s, _ in runs],
        "extra": {"disturbed_reps": len(runs) - len(kept), "calm": ok},
    }


async def main(config: dict[str, Any]) -> None:
    steps, runs, reps = config["steps"], config["runs"], config["reps"]
    results: list[dict[str, Any]] = []

    def record(key: str, timing: dict[str, Any], units: int, unit: str) -> None:
        median = statistics.median(timing["samples"])
        results.append({"key": key, "median_s": median, "units": units, "unit": unit, **timing})

    counter = iter(range(10**9))
    for saver in (False, True):
        suffix = "+saver" if saver else ""
        long, short = chain(steps, saver), chain(3, saver)
        for mode in ("invoke",) if saver else ("invoke", "stream"):

            async def one(graph: Any = long, mode: str = mode) -> None:
                await once(graph, mode, steps, next(counter))

            async def many(graph: Any = short, mode: str = mode) -> None:
                for _ in range(runs):
                    await once(graph, mode, 3, next(counter))

            record(f"lg.s1.{mode}{suffix}", await measure(one, reps), steps, "step")
            record(f"lg.s3.{mode}{suffix}", await measure(many, reps), runs, "run")
    print(json.dumps({"peer": "langgraph", "version": version("langgraph"), "results": results}))


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
