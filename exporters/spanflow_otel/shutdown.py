"""Flush and shut down at interpreter exit and on SIGTERM, never for longer than a timeout.

`run_bounded` runs blocking SDK calls (whose own timeouts are not all honoured: the 1.45
``BatchSpanProcessor.force_flush`` ignores its timeout) on daemon threads and stops waiting at
the deadline, so a dead or slow collector cannot hold the process. `ExitHooks` registers the
atexit hook and, from the main thread only, a SIGTERM handler that chains to the previous one:
with the default disposition it shuts down, then lets the signal kill the process as it would
have; with a Python handler (a server's graceful shutdown) it flushes and calls that handler,
leaving the final shutdown to atexit; an ignored SIGTERM is left ignored.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any

__all__ = ["ExitHooks", "run_bounded"]

logger = logging.getLogger("spanflow.tracing")

_SignalHandler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None


def run_bounded(calls: Sequence[Callable[[], object]], timeout: float) -> bool:
    """Run `calls` concurrently on daemon threads; True if all returned within `timeout` s."""
    deadline = time.monotonic() + max(timeout, 0.0)
    threads = []
    for call in calls:
        thread = threading.Thread(target=_quietly, args=(call,), daemon=True, name="spanflow-flush")
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join(max(deadline - time.monotonic(), 0.0))
    return not any(thread.is_alive() for thread in threads)


def _quietly(call: Callable[[], object]) -> None:
    try:
        call()
    except Exception:
        logger.exception("Flushing spans failed")


class ExitHooks:
    """The atexit and SIGTERM hooks of one `Telemetry`; `uninstall()` removes them."""

    def __init__(
        self,
        shutdown: Callable[[], object],
        flush: Callable[[], object],
        *,
        use_atexit: bool,
        use_sigterm: bool,
    ) -> None:
        self._shutdown = shutdown
        self._flush = flush
        self._atexit = False
        self._previous: _SignalHandler = None
        self._sigterm = False
        if use_atexit:
            atexit.register(self._shutdown)
            self._atexit = True
        if use_sigterm:
            self._sigterm = self._install_sigterm()

    @property
    def sigterm_installed(self) -> bool:
        """Whether this object's SIGTERM handler was installed."""
        return self._sigterm

    def uninstall(self) -> None:
        """Unregister the atexit hook and restore the previous SIGTERM handler if still ours."""
        if self._atexit:
            atexit.unregister(self._shutdown)
            self._atexit = False
        if self._sigterm and threading.current_thread() is threading.main_thread():
            if signal.getsignal(signal.SIGTERM) == self._on_sigterm:
                previous = self._previous if self._previous is not None else signal.SIG_DFL
                signal.signal(signal.SIGTERM, previous)
            self._sigterm = False

    def _install_sigterm(self) -> bool:
        if not hasattr(signal, "SIGTERM"):
            return False
        if threading.current_thread() is not threading.main_thread():
            logger.debug("Not installing a SIGTERM handler: configure() ran off the main thread.")
            return False
        previous = signal.getsignal(signal.SIGTERM)
        if previous == signal.SIG_IGN:
            return False
        self._previous = previous
        signal.signal(signal.SIGTERM, self._on_sigterm)
        return True

    def _on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        previous = self._previous
        if callable(previous):
            self._flush()
            previous(signum, frame)
            return
        # Default disposition (or a handler installed outside Python): finish our work, then
        # die of the signal as the process would have without us, so the exit status is kept.
        self._shutdown()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
