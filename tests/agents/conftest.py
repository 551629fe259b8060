"""Fixtures for the agent tests: a started fake OpenAI-compatible server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from .sse_server import FakeOpenAIServer

__all__ = ["fake_openai"]


@pytest.fixture
async def fake_openai() -> AsyncIterator[FakeOpenAIServer]:
    """A fake chat-completions server on a free loopback port, closed after the test."""
    async with FakeOpenAIServer() as server:
        yield server
