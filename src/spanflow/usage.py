"""`Usage`: token counts of model calls, summed per agent step and per workflow run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Usage"]


@dataclass(slots=True)
class Usage:
    """Token usage. All zeros when no model ran (Mastra reports the same)."""

    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    reasoning_tokens: int = 0
    cached_input_tokens: int = 0
    cache_creation_input_tokens: int = 0

    def add(self, other: Usage) -> None:
        """Add `other` into this usage, in place."""
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.total_tokens += other.total_tokens
        self.reasoning_tokens += other.reasoning_tokens
        self.cached_input_tokens += other.cached_input_tokens
        self.cache_creation_input_tokens += other.cache_creation_input_tokens

    def __add__(self, other: Usage) -> Usage:
        total = Usage()
        total.add(self)
        total.add(other)
        return total

    def to_dict(self) -> dict[str, int]:
        """Mastra's wire shape (camelCase keys)."""
        return {
            "inputTokens": self.input_tokens,
            "outputTokens": self.output_tokens,
            "totalTokens": self.total_tokens,
            "cachedInputTokens": self.cached_input_tokens,
            "cacheCreationInputTokens": self.cache_creation_input_tokens,
            "reasoningTokens": self.reasoning_tokens,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Usage:
        """Read Mastra's wire shape back (unknown keys ignored, missing ones zero)."""
        return cls(
            input_tokens=int(data.get("inputTokens", 0) or 0),
            output_tokens=int(data.get("outputTokens", 0) or 0),
            total_tokens=int(data.get("totalTokens", 0) or 0),
            reasoning_tokens=int(data.get("reasoningTokens", 0) or 0),
            cached_input_tokens=int(data.get("cachedInputTokens", 0) or 0),
            cache_creation_input_tokens=int(data.get("cacheCreationInputTokens", 0) or 0),
        )
