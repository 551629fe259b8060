"""`ReplayBuffer`: items a producer task pushes, replayed to every consumer from the start.

The design behind spanflow's streams (``WorkflowStream``, ``AgentStream``): the producer runs
in its own task whether or not anyone iterates; every item is kept, so a consumer that starts
late (even after the producer finished) still gets all of them, several consumers may iterate
independently, and nothing ever waits for a consumer, so awaiting an outcome without iterating
cannot deadlock.

A push is on the producer's hot path (a workflow run pushes two events per step): it appends,
and touches the waiting consumers only when one is waiting. A consumer that has caught up
waits on a future of its own, so a consumer that is cancelled cancels nothing the others (or
the next push) share, and a push wakes it in one hop of the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Generic, TypeVar

__all__ = ["ReplayBuffer"]

T = TypeVar("T")


class ReplayBuffer(Generic[T]):
    """An append-only list of items with async iteration that waits for more until closed."""

    __slots__ = ("_closed", "_error", "_error_traceback", "_items", "_waiters")

    def __init__(self) -> None:
        self._items: list[T] = []
        self._closed = False
        self._error: BaseException | None = None
        self._error_traceback: TracebackType | None = None
        self._waiters: list[asyncio.Future[None]] = []
        """One future per consumer waiting for the next item (or the close)."""

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
        if self._waiters:
            self._wake()

    def close(self, error: BaseException | None = None) -> None:
        """End iteration; with `error`, iteration raises it after the last item."""
        if self._closed:
            return
        self._closed = True
        self._error = error
        # Every consumer raises this one object: each from the traceback it had here, or
        # its traceback would grow by the frames of every consumer before.
        self._error_traceback = None if error is None else error.__traceback__
        self._wake()

    async def iterate(self) -> AsyncIterator[T]:
        """Every item from the first, then each new one as it comes, until closed."""
        items = self._items  # appended to, never replaced
        index = 0
        while True:
            while index < len(items):
                yield items[index]
                index += 1
            if self._closed:
                if self._error is not None:
                    raise self._error.with_traceback(self._error_traceback)
                return
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:  # this consumer stops: the others wait on
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
                raise

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
