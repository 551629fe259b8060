"""`ReplayBuffer`: items a producer task pushes, replayed to every consumer from the start.

The design behind spanflow's streams (``WorkflowStream``, ``AgentStream``): the producer runs
in its own task whether or not anyone iterates; every item is kept, so a consumer that starts
late (even after the producer finished) still gets all of them, several consumers may iterate
independently, and nothing ever waits for a consumer, so awaiting an outcome without iterating
cannot deadlock.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Generic, TypeVar

__all__ = ["ReplayBuffer"]

T = TypeVar("T")


class ReplayBuffer(Generic[T]):
    """An append-only list of items with async iteration that waits for more until closed."""

    __slots__ = ("_closed", "_error", "_items", "_waiter")

    def __init__(self) -> None:
        self._items: list[T] = []
        self._closed = False
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None

    @property
    def items(self) -> list[T]:
        """Every item pushed so far (a copy)."""
        return list(self._items)

    @property
    def closed(self) -> bool:
        """Whether the producer is done."""
        return self._closed

    def push(self, item: T) -> None:
        """Append an item and wake waiting consumers. Ignored once closed."""
        if self._closed:
            return
        self._items.append(item)
        self._wake()

    def close(self, error: BaseException | None = None) -> None:
        """End iteration; with `error`, iteration raises it after the last item."""
        if self._closed:
            return
        self._closed = True
        self._error = error
        self._wake()

    async def iterate(self) -> AsyncIterator[T]:
        """Every item from the first, then each new one as it comes, until closed."""
        index = 0
        while True:
            if index < len(self._items):
                item = self._items[index]
                index += 1
                yield item
                continue
            if self._closed:
                if self._error is not None:
                    raise self._error
                return
            if self._waiter is None:
                self._waiter = asyncio.get_running_loop().create_future()
            # Shielded: a consumer that is cancelled must not cancel the future the others
            # (and the producer's next push) share.
            await asyncio.shield(self._waiter)

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)
