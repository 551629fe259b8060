"""Arize Phoenix as a real trace backend: runs exported over OTLP, then found with its REST API.

Phoenix (installed in ``.venv-phoenix`` and started by the session fixture, see
`tests.support.phoenix`) receives the order-fulfilment run over OTLP/HTTP. The tests then ask
``GET /v1/projects/{project}/spans`` for it: by trace id (the run sits under the caller's span),
by a metadata attribute and by a tag, and for the resumed half in the same trace. The runs of
these tests go to their own Phoenix project through the resource attribute
``openinference.project.name``; the demo's go to Phoenix's ``default`` project.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import spanflow_otel as so

from spanflow import TracingOptions, Workflow
from spanflow.cli.demo import load_order_example
from spanflow.cli.main import main
from spanflow.storage import MemoryStorage
from spanflow.tracing import OtelInstrumentation, TracingConfig
from spanflow.workflows.results import WorkflowResult
from tests.support.phoenix import PhoenixServer, phoenix_server_fixture  # noqa: F401

load_order_example()

from examples.order_fulfilment import (  # noqa: E402 - importable only after the line above
    SIMULATED_LATENCY,
    ManagerDecision,
    build_order_workflow,
    sample_order,
)

pytestmark = [pytest.mark.phoenix, pytest.mark.slow]

PROJECT = "spanflow-tests"
FIRST_HALF_SPANS = 20
RUN_SPAN = "invoke_workflow order-fulfilment"


@pytest.fixture
def telemetry(phoenix: PhoenixServer) -> Iterator[so.Telemetry]:
    configured = so.configure(
        so.ServiceOptions(
            name="spanflow-phoenix-test", attributes={"openinference.project.name": PROJECT}
        ),
        export=so.presets.phoenix(phoenix.otlp_http_endpoint),
        shutdown=so.ShutdownOptions(atexit=False, sigterm=False),
        set_global=False,
    )
    yield configured
    configured.shutdown(timeout=5.0)


@pytest.fixture
def storage() -> MemoryStorage:
    return MemoryStorage()


@pytest.fixture
def caller() -> tuple[str, str]:
    """The caller's trace and span ids, new for every test."""
    return uuid.uuid4().hex, uuid.uuid4().hex[:16]


@pytest.fixture
def user_id() -> str:
    """A metadata value no other test uses."""
    return f"u-{uuid.uuid4().hex[:8]}"


def workflow_for(telemetry: so.Telemetry, storage: MemoryStorage) -> Workflow:
    workflow = build_order_workflow()
    workflow.storage = storage
    workflow.instrumentation = OtelInstrumentation(
        TracingConfig(tracer_provider=telemetry.provider)
    )
    return workflow


async def start_run(
    telemetry: so.Telemetry, storage: MemoryStorage, caller: tuple[str, str], user_id: str
) -> WorkflowResult:
    trace_id, parent_span_id = caller
    run = await workflow_for(telemetry, storage).create_run()
    result = await run.start(
        sample_order(),
        request_context={SIMULATED_LATENCY: 0},
        tracing_options=TracingOptions(
            trace_id=trace_id,
            parent_span_id=parent_span_id,
            metadata={"user": {"id": user_id}},
            tags=["vip", f"batch-{user_id}"],
        ),
    )
    assert result.status == "suspended"
    assert telemetry.force_flush()
    return result


def ids(spans: list[dict[str, Any]]) -> set[str]:
    return {span["context"]["span_id"] for span in spans}


async def test_the_runs_spans_are_stored_under_the_requested_trace_and_parent(
    phoenix: PhoenixServer,
    telemetry: so.Telemetry,
    storage: MemoryStorage,
    caller: tuple[str, str],
    user_id: str,
) -> None:
    result = await start_run(telemetry, storage, caller, user_id)
    trace_id, parent_span_id = caller

    spans = phoenix.wait_for_spans(FIRST_HALF_SPANS, PROJECT, [("trace_id", trace_id)])

    assert len(spans) == FIRST_HALF_SPANS
    assert {span["context"]["trace_id"] for span in spans} == {trace_id}
    [run] = [span for span in spans if span["name"] == RUN_SPAN]
    assert run["context"]["span_id"] == result.span_id
    assert run["parent_id"] == parent_span_id
    children = [span for span in spans if span is not run]
    assert all(span["parent_id"] in ids(spans) for span in children)
    roots = phoenix.spans(PROJECT, [("trace_id", trace_id), ("parent_id", parent_span_id)])
    assert [span["name"] for span in roots] == [RUN_SPAN]
    assert run["attributes"]["spanflow.run.status"] == "suspended"


async def test_the_run_is_found_by_a_metadata_attribute_and_by_a_tag(
    phoenix: PhoenixServer,
    telemetry: so.Telemetry,
    storage: MemoryStorage,
    caller: tuple[str, str],
    user_id: str,
) -> None:
    result = await start_run(telemetry, storage, caller, user_id)

    by_metadata = phoenix.wait_for_spans(
        FIRST_HALF_SPANS, PROJECT, [("attribute", f"spanflow.metadata.user.id:{user_id}")]
    )
    by_tag = phoenix.wait_for_spans(
        FIRST_HALF_SPANS, PROJECT, [("attribute", f"spanflow.tag.batch-{user_id}:true")]
    )
    run_by_both = phoenix.spans(
        PROJECT,
        [
            ("attribute", f"spanflow.metadata.user.id:{user_id}"),
            ("attribute", "spanflow.tag.vip:true"),
            ("name", RUN_SPAN),
        ],
    )

    assert {span["context"]["trace_id"] for span in by_metadata} == {caller[0]}
    assert ids(by_metadata) == ids(by_tag)
    assert len(by_metadata) == FIRST_HALF_SPANS
    assert [span["context"]["span_id"] for span in run_by_both] == [result.span_id]
    assert phoenix.spans(PROJECT, [("attribute", "spanflow.metadata.user.id:u-nobody")]) == []


async def test_a_resumed_run_lands_in_the_same_trace_under_the_first_run_span(
    phoenix: PhoenixServer,
    telemetry: so.Telemetry,
    storage: MemoryStorage,
    caller: tuple[str, str],
    user_id: str,
) -> None:
    first = await start_run(telemetry, storage, caller, user_id)
    # A new workflow object on the same store, as a second process would resume it.
    run = await workflow_for(telemetry, storage).create_run(run_id=first.run_id)
    done = await run.resume(ManagerDecision(approved=True, approver="Grace Hopper"))
    assert telemetry.force_flush()

    runs = phoenix.wait_for_spans(2, PROJECT, [("trace_id", caller[0]), ("name", RUN_SPAN)])

    assert done.status == "success"
    assert done.trace_id == caller[0]
    [resumed] = [span for span in runs if span["context"]["span_id"] == done.span_id]
    assert resumed["parent_id"] == first.span_id
    assert resumed["attributes"]["spanflow.run.resumed"] is True
    assert resumed["attributes"]["spanflow.run.status"] == "success"
    found = phoenix.wait_for_spans(
        FIRST_HALF_SPANS + 10, PROJECT, [("attribute", f"spanflow.metadata.user.id:{user_id}")]
    )
    assert {span["context"]["trace_id"] for span in found} == {caller[0]}


def test_spanflow_demo_exports_to_phoenix_as_the_readme_says(
    phoenix: PhoenixServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES", "OTEL_EXPORTER_OTLP_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COLUMNS", "200")

    code = main(["demo", "--speed", "1000", "--db", str(tmp_path / "demo.db"),
                 "--otlp", phoenix.base_url])  # fmt: skip
    out = capsys.readouterr().out

    assert code == 0
    [trace_id] = [line.split()[-2] for line in out.splitlines() if "│ trace id " in line]
    spans = phoenix.wait_for_spans(
        FIRST_HALF_SPANS + 10,
        "default",
        [("trace_id", trace_id), ("attribute", "spanflow.metadata.user.id:u-42")],
    )
    assert len(spans) == FIRST_HALF_SPANS + 10
    vip = phoenix.spans("default", [("trace_id", trace_id), ("attribute", "spanflow.tag.vip:true")])
    assert ids(vip) == ids(spans)
