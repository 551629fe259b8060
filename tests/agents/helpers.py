"""Small helpers shared by the agent tests."""

from __future__ import annotations

from typing import Any

from spanflow.agents import AgentChunk, AgentStream

__all__ = ["FakeClock", "chunk_types", "collect"]


async def collect(out: AgentStream) -> list[AgentChunk]:
    """Every chunk of a stream, iterating it to the end."""
    return [chunk async for chunk in out]


def chunk_types(chunks: list[AgentChunk] | list[dict[str, Any]]) -> list[str]:
    """The chunk types, in order."""
    return [c["type"] if isinstance(c, dict) else c.type for c in chunks]


class FakeClock:
    """Monotonic seconds that advance 0.25 s per reading (for the time to first chunk)."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        self.now += 0.25
        return self.now
