"""What every store shares for run event logs: argument checks, the text form of an event in
the SQL stores, and in-process wake-ups for `Storage.wait_for_events`.

`Waiters` wakes the tasks of this process waiting on a run's log the moment the store writes
to it. The SQL stores use it for their own writes and add what reaches them from other
processes: PostgreSQL a ``NOTIFY`` in the writing transaction, SQLite a short poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from spanflow.errors import StorageError
from spanflow.storage.base import EventEntry, LoggedEvent, wire_of

__all__ = [
    "POLL_INTERVAL",
    "Waiters",
    "check_event_range",
    "decode_event",
    "encode_events",
]

POLL_INTERVAL = 0.05
"""Seconds between two looks at another process's writes where no notification exists."""

_ENCODER = json.JSONEncoder(allow_nan=False, separators=(",", ":"))
_DECODER = json.JSONDecoder()


def check_event_range(offset: Any, limit: Any) -> None:
    """Check the arguments of `read_events` (and `offset` of `wait_for_events`)."""
    if isinstance(offset, bool) or not isinstance(offset, int):
        raise TypeError(f"offset must be an int; got {offset!r}")
    if offset < 0:
        raise ValueError(f"offset must be 0 or more; got {offset}")
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int):
            raise TypeError(f"limit must be an int or None; got {limit!r}")
        if limit < 1:
            raise ValueError(f"limit must be 1 or more; got {limit}")


def encode_events(run_id: str, events: Sequence[EventEntry]) -> list[str]:
    """The JSON text of each event (compact, ASCII-only, as snapshots are), or `StorageError`
    naming the run if one is not plain JSON data."""
    try:
        return [_ENCODER.encode(wire_of(event)) for event in events]
    except (TypeError, ValueError, RecursionError) as err:
        raise StorageError(
            f"cannot log an event of run {run_id!r}: it is not JSON data ({err})"
        ) from err


def decode_event(run_id: str, seq: int, text: str, *, where: str) -> LoggedEvent:
    """A stored event, or `StorageError` naming the run, the event and the store."""
    try:
        value = _DECODER.decode(text)
    except (TypeError, ValueError) as err:
        raise StorageError(
            f"event {seq} of run {run_id!r} in {where} is not valid JSON ({err}); "
            "the database is damaged"
        ) from err
    if not isinstance(value, dict):
        raise StorageError(
            f"event {seq} of run {run_id!r} in {where} is a JSON {type(value).__name__}, "
            "not an object; the database is damaged"
        )
    return LoggedEvent(seq, value)


class Waiters:
    """Tasks of this process waiting for a run's log to grow, woken by `wake`.

    Safe across threads and event loops: a waiter is woken on its own loop.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: dict[str, set[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = {}

    def wake(self, run_id: str) -> None:
        """Wake every task waiting on `run_id`'s log."""
        with self._lock:
            waiting = list(self._waiting.get(run_id, ()))
        for loop, event in waiting:
            if loop.is_closed():
                continue
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is loop:
                event.set()
            else:
                with contextlib.suppress(RuntimeError):  # its loop closed meanwhile
                    loop.call_soon_threadsafe(event.set)

    def wake_all(self) -> None:
        """Wake every waiter (their store's notifications were interrupted)."""
        with self._lock:
            run_ids = list(self._waiting)
        for run_id in run_ids:
            self.wake(run_id)

    async def wait(
        self,
        run_id: str,
        max_wait: float,
        ready: Callable[[], Awaitable[bool]],
        *,
        poll: float | None = None,
    ) -> bool:
        """Wait until `ready()` is true, at most `max_wait` seconds; whether it is.

        `ready` is asked once the waiter is registered (so a write between the caller's last
        read and this call is not missed), after every wake-up and, with `poll`, every `poll`
        seconds (for writes this process is not told about).
        """
        loop = asyncio.get_running_loop()
        event = asyncio.Event()
        entry = (loop, event)
        with self._lock:
            self._waiting.setdefault(run_id, set()).add(entry)
        try:
            deadline = loop.time() + max(max_wait, 0.0)
            while True:
                event.clear()
                if await ready():
                    return True
                left = deadline - loop.time()
                if left <= 0:
                    return False
                step = left if poll is None else min(left, poll)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), step)
        finally:
            with self._lock:
                entries = self._waiting.get(run_id)
                if entries is not None:
                    entries.discard(entry)
                    if not entries:
                        del self._waiting[run_id]
