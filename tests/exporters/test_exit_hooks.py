"""Spans still queued are exported at interpreter exit and on SIGTERM, within the timeout."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
import time
from types import FrameType

import pytest
import spanflow_otel as so
import spanflow_otel.shutdown as shutdown_module

from tests.support.otlp_receiver import OtlpReceiver

from .helpers import MakeTelemetry

LONG_DELAY = so.BatchOptions(schedule_delay=60)
"""Nothing is exported before the hooks run."""


def run_child(body: str, *args: str) -> subprocess.CompletedProcess[str]:
    script = "import sys, os, signal, time\nimport spanflow_otel as so\n" + textwrap.dedent(body)
    return subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_queued_spans_are_exported_at_exit_through_the_global_provider(
    receiver: OtlpReceiver,
) -> None:
    child = run_child(
        """
        from opentelemetry import trace
        telemetry = so.configure(
            "child", export=so.ExportOptions(endpoint=sys.argv[1]),
            batch=so.BatchOptions(schedule_delay=60),
        )
        assert telemetry.is_global and trace.get_tracer_provider() is telemetry.provider
        trace.get_tracer("child").start_span("at exit").end()
        """,
        receiver.http_endpoint,
    )
    assert child.returncode == 0, child.stderr
    [span] = receiver.wait_for_spans(1)
    assert (span.name, span.resource["service.name"]) == ("at exit", "child")


def test_sigterm_exports_then_terminates_the_process_as_sigterm_does(
    receiver: OtlpReceiver,
) -> None:
    child = run_child(
        """
        telemetry = so.configure(
            export=so.ExportOptions(endpoint=sys.argv[1]), batch=so.BatchOptions(schedule_delay=60)
        )
        telemetry.tracer("child").start_span("before sigterm").end()
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(10)
        print("not reached")
        """,
        receiver.http_endpoint,
    )
    assert child.returncode == -signal.SIGTERM
    assert "not reached" not in child.stdout
    assert [span.name for span in receiver.wait_for_spans(1)] == ["before sigterm"]


def test_exit_with_the_collector_down_takes_at_most_the_flush_timeout() -> None:
    child = run_child(
        """
        telemetry = so.configure(
            export=so.ExportOptions(endpoint="http://127.0.0.1:9/v1/traces", timeout=30),
            batch=so.BatchOptions(schedule_delay=60),
            shutdown=so.ShutdownOptions(flush_timeout=1.0),
        )
        telemetry.tracer("child").start_span("lost").end()
        print(time.time())
        """
    )
    exited = time.time()
    assert child.returncode == 0, child.stderr
    assert exited - float(child.stdout.strip()) < 1.0 + 1.0


def test_sigterm_flushes_then_chains_to_the_previous_python_handler(
    receiver: OtlpReceiver, make_telemetry: MakeTelemetry
) -> None:
    calls: list[int] = []

    def previous(signum: int, frame: FrameType | None) -> None:
        calls.append(signum)

    original = signal.signal(signal.SIGTERM, previous)
    try:
        telemetry = make_telemetry(
            export=so.ExportOptions(endpoint=receiver.http_endpoint),
            batch=LONG_DELAY,
            shutdown=so.ShutdownOptions(atexit=False, sigterm=True),
        )
        assert signal.getsignal(signal.SIGTERM) != previous
        telemetry.tracer("t").start_span("flushed on sigterm").end()
        signal.raise_signal(signal.SIGTERM)

        assert calls == [signal.SIGTERM]
        assert [span.name for span in receiver.spans()] == ["flushed on sigterm"]
        # Still usable: the previous handler decides when the process ends.
        telemetry.tracer("t").start_span("after").end()
        telemetry.shutdown()
        assert signal.getsignal(signal.SIGTERM) == previous
        assert [span.name for span in receiver.wait_for_spans(2)][-1] == "after"
    finally:
        signal.signal(signal.SIGTERM, original)


def test_sigterm_handling_can_be_turned_off(make_telemetry: MakeTelemetry) -> None:
    before = signal.getsignal(signal.SIGTERM)
    make_telemetry(export=None, shutdown=so.ShutdownOptions(atexit=False, sigterm=False))
    assert signal.getsignal(signal.SIGTERM) == before


def test_an_ignored_sigterm_stays_ignored(make_telemetry: MakeTelemetry) -> None:
    original = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        make_telemetry(export=None, shutdown=so.ShutdownOptions(atexit=False, sigterm=True))
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGTERM, original)


def test_configure_off_the_main_thread_installs_no_signal_handler(
    make_telemetry: MakeTelemetry,
) -> None:
    before = signal.getsignal(signal.SIGTERM)
    made: list[so.Telemetry] = []
    thread = threading.Thread(
        target=lambda: made.append(
            make_telemetry(export=None, shutdown=so.ShutdownOptions(atexit=False, sigterm=True))
        )
    )
    thread.start()
    thread.join()
    assert len(made) == 1
    assert signal.getsignal(signal.SIGTERM) == before


class RecordingAtexit:
    """Stands in for the atexit module inside spanflow_otel.shutdown."""

    def __init__(self) -> None:
        self.registered: list[object] = []

    def register(self, function: object) -> None:
        self.registered.append(function)

    def unregister(self, function: object) -> None:
        self.registered.remove(function)


@pytest.mark.parametrize("use_atexit", [True, False])
def test_the_atexit_hook_is_opt_out_and_removed_by_shutdown(
    make_telemetry: MakeTelemetry, monkeypatch: pytest.MonkeyPatch, use_atexit: bool
) -> None:
    fake = RecordingAtexit()
    monkeypatch.setattr(shutdown_module, "atexit", fake)
    telemetry = make_telemetry(
        export=None, shutdown=so.ShutdownOptions(atexit=use_atexit, sigterm=False)
    )
    assert len(fake.registered) == (1 if use_atexit else 0)
    telemetry.shutdown()
    assert fake.registered == []
