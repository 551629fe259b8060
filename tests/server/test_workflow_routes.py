"""The workflow routes over HTTP: Mastra's bodies, statuses and shapes, on memory and SQLite."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from spanflow import Spanflow
from spanflow.storage.base import RunStatus
from tests.server.apps import Gates

ORDER = {"order": "o-1", "amount": 1200}


def records(body: bytes) -> list[dict[str, Any]]:
    """The events of a workflow stream body, checking its framing on the way: every record
    ends in the record separator and nothing follows the last one."""
    assert body.endswith(b"\x1e")
    parts = body.split(b"\x1e")
    assert parts[-1] == b""
    assert all(b"\n" not in part for part in parts)
    return [json.loads(part) for part in parts[:-1]]


async def create_run(client: httpx.AsyncClient, workflow: str, **body: Any) -> str:
    response = await client.post(f"/api/workflows/{workflow}/create-run", json=body)
    assert response.status_code == 200
    run_id: str = response.json()["runId"]
    return run_id


async def suspended_run(client: httpx.AsyncClient) -> str:
    run_id = await create_run(client, "approval")
    response = await client.post(
        f"/api/workflows/approval/stream?runId={run_id}", json={"inputData": ORDER}
    )
    assert records(response.content)[-1]["payload"]["workflowStatus"] == "suspended"
    return run_id


async def test_create_run_stores_a_pending_run(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/workflows/approval/create-run?runId=r-1", content=b"")
    assert response.json() == {"runId": "r-1"}
    state = (await client.get("/api/workflows/approval/runs/r-1")).json()
    assert state["status"] == "pending"
    assert state["runId"] == "r-1"
    assert state["workflowName"] == "approval"
    assert state["createdAt"].endswith("Z")
    assert "T" in state["createdAt"]
    assert state["steps"] == {}


async def test_stream_frames_each_event_as_json_and_a_record_separator(
    client: httpx.AsyncClient,
) -> None:
    run_id = await create_run(client, "approval")
    response = await client.post(
        f"/api/workflows/approval/stream?runId={run_id}", json={"inputData": ORDER}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    events = records(response.content)
    assert [e["type"] for e in events] == [
        "workflow-start",
        "workflow-step-start",
        "workflow-step-result",
        "workflow-step-start",
        "workflow-step-suspended",
        "workflow-finish",
    ]
    assert events[0] == {
        "type": "workflow-start",
        "runId": run_id,
        "from": "WORKFLOW",
        "payload": {"workflowId": "approval"},
    }
    # Compact JSON, as JSON.stringify writes it.
    assert response.content.startswith(
        b'{"type":"workflow-start","runId":"' + run_id.encode() + b'","from":"WORKFLOW"'
    )


async def test_a_suspended_run_shows_its_state_and_resumes_over_resume_stream(
    client: httpx.AsyncClient,
) -> None:
    run_id = await suspended_run(client)
    state = (await client.get(f"/api/workflows/approval/runs/{run_id}")).json()
    assert state["status"] == "suspended"
    assert state["payload"] == ORDER
    assert state["steps"]["approve"]["status"] == "suspended"
    assert state["steps"]["approve"]["suspendPayload"] == {
        "reason": "needs a manager",
        "amount": 1200,
    }
    assert state["suspendedPaths"] == {"approve": [1]}
    assert "result" not in state

    response = await client.post(
        f"/api/workflows/approval/resume-stream?runId={run_id}",
        json={"step": "approve", "resumeData": {"approver": "Grace"}},
    )
    events = records(response.content)
    assert events[0]["type"] == "workflow-start"
    assert events[-1]["payload"]["workflowStatus"] == "success"
    assert events[-1]["payload"]["finalWorkflowResult"] == {
        "order": "o-1",
        "approver": "Grace",
        "recorded": True,
    }
    state = (await client.get(f"/api/workflows/approval/runs/{run_id}?fields=status,result")).json()
    assert state == {
        "runId": run_id,
        "workflowName": "approval",
        "createdAt": state["createdAt"],
        "updatedAt": state["updatedAt"],
        "status": "success",
        "result": {"order": "o-1", "approver": "Grace", "recorded": True},
    }


async def test_resume_takes_the_step_as_a_path_list(client: httpx.AsyncClient) -> None:
    run_id = await suspended_run(client)
    response = await client.post(
        f"/api/workflows/approval/resume-async?runId={run_id}",
        json={"step": ["approve"], "resumeData": {"approver": "Ada"}},
    )
    assert response.status_code == 200
    assert response.json()["status"] == "success"


async def test_streaming_a_suspended_run_again_is_a_409_pointing_to_resume_stream(
    client: httpx.AsyncClient,
) -> None:
    run_id = await suspended_run(client)
    response = await client.post(
        f"/api/workflows/approval/stream?runId={run_id}", json={"inputData": ORDER}
    )
    assert response.status_code == 409
    message = response.json()["error"]
    assert "suspended" in message
    assert "resume-stream" in message
    assert "observe" in message


async def test_streaming_an_ended_run_again_is_a_409_pointing_to_observe(
    client: httpx.AsyncClient,
) -> None:
    run_id = await create_run(client, "approval")
    await client.post(
        f"/api/workflows/approval/start-async?runId={run_id}", json={"inputData": ORDER}
    )
    await client.post(
        f"/api/workflows/approval/resume-async?runId={run_id}",
        json={"resumeData": {"approver": "Ada"}},
    )
    response = await client.post(
        f"/api/workflows/approval/stream?runId={run_id}", json={"inputData": ORDER}
    )
    assert response.status_code == 409
    assert "has ended (success)" in response.json()["error"]
    assert "observe" in response.json()["error"]


async def test_start_async_and_resume_async_answer_the_workflow_result(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/api/workflows/approval/start-async?runId=r-a", json={"inputData": ORDER}
    )
    assert response.status_code == 200
    first = response.json()
    assert first["status"] == "suspended"
    assert first["runId"] == "r-a"
    assert first["suspended"] == [["approve"]]
    assert first["suspendPayload"] == {"approve": {"reason": "needs a manager", "amount": 1200}}
    assert first["steps"]["check"]["output"] == ORDER
    assert first["input"] == ORDER

    response = await client.post(
        "/api/workflows/approval/resume-async?runId=r-a", json={"resumeData": {"approver": "Ada"}}
    )
    second = response.json()
    assert second["status"] == "success"
    assert second["result"] == {"order": "o-1", "approver": "Ada", "recorded": True}
    assert second["stepExecutionPath"] == ["check", "approve", "record"]


async def test_start_async_without_a_run_id_makes_a_new_run(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/workflows/approval/start-async", json={"inputData": ORDER})
    run_id = response.json()["runId"]
    assert (await client.get(f"/api/workflows/approval/runs/{run_id}")).status_code == 200


async def test_start_and_resume_answer_a_message_without_waiting(
    client: httpx.AsyncClient,
) -> None:
    run_id = await create_run(client, "approval")
    started = await client.post(
        f"/api/workflows/approval/start?runId={run_id}", json={"inputData": ORDER}
    )
    assert started.json() == {"message": "Workflow run started"}
    resumed = await client.post(
        f"/api/workflows/approval/resume?runId={run_id}", json={"resumeData": {"approver": "Al"}}
    )
    assert resumed.json() == {"message": "Workflow run resumed"}
    # A resume-async now waits for nothing and finds the run ended.
    again = await client.post(
        f"/api/workflows/approval/resume-async?runId={run_id}", json={"resumeData": {}}
    )
    assert again.status_code == 409


async def test_start_needs_a_created_run(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/workflows/approval/start?runId=nope", json={})
    assert response.status_code == 404
    assert response.json() == {"error": "workflow 'approval' has no run 'nope'"}


async def test_cancel_stops_a_run_executing_here(client: httpx.AsyncClient, gates: Gates) -> None:
    run_id = await create_run(client, "gated")
    await client.post(
        f"/api/workflows/gated/start?runId={run_id}", json={"inputData": {"gate": run_id}}
    )
    await gates.arrived(run_id).wait()
    assert (await client.get(f"/api/workflows/gated/runs/{run_id}")).json()["status"] == "running"

    response = await client.post(f"/api/workflows/gated/runs/{run_id}/cancel")
    assert response.json() == {"message": "Workflow run canceled"}
    state = (await client.get(f"/api/workflows/gated/runs/{run_id}")).json()
    assert state["status"] == "canceled"


async def test_cancel_of_a_run_that_ended_is_a_409_and_changes_nothing(
    client: httpx.AsyncClient,
) -> None:
    run_id = await create_run(client, "approval")
    await client.post(
        f"/api/workflows/approval/start-async?runId={run_id}", json={"inputData": ORDER}
    )
    await client.post(
        f"/api/workflows/approval/resume-async?runId={run_id}",
        json={"resumeData": {"approver": "Ada"}},
    )

    response = await client.post(f"/api/workflows/approval/runs/{run_id}/cancel")

    assert response.status_code == 409
    assert response.json() == {"error": f"run {run_id!r} is success: nothing to cancel"}
    state = (await client.get(f"/api/workflows/approval/runs/{run_id}")).json()
    assert state["status"] == "success"
    assert "resourceId" not in state  # left out, not null, for a run without one


async def test_cancel_marks_a_suspended_run_canceled(client: httpx.AsyncClient) -> None:
    run_id = await suspended_run(client)
    await client.post(f"/api/workflows/approval/runs/{run_id}/cancel")
    state = (await client.get(f"/api/workflows/approval/runs/{run_id}")).json()
    assert state["status"] == "canceled"


async def test_restart_re_drives_a_run_left_running_by_a_dead_process(
    client: httpx.AsyncClient, registry: Spanflow
) -> None:
    run_id = await create_run(client, "approval")
    await client.post(
        f"/api/workflows/approval/start-async?runId={run_id}", json={"inputData": ORDER}
    )
    # What a process that died right after claiming the run to resume it leaves behind.
    suspended: tuple[RunStatus, ...] = ("suspended",)
    await registry.storage.claim_run(run_id, from_status=suspended, to_status="running")
    response = await client.post(f"/api/workflows/approval/restart?runId={run_id}", json={})
    assert response.json() == {"message": "Workflow run restarted"}
    # The restarted execution runs the approval again, which suspends again; a resume waits
    # for the restarted execution to get there.
    resumed = await client.post(
        f"/api/workflows/approval/resume-async?runId={run_id}",
        json={"resumeData": {"approver": "Ada"}},
    )
    assert resumed.status_code == 200
    assert resumed.json()["result"] == {"order": "o-1", "approver": "Ada", "recorded": True}


async def test_restart_async_answers_the_result_of_the_restarted_execution(
    client: httpx.AsyncClient, registry: Spanflow
) -> None:
    run_id = await create_run(client, "approval")
    await client.post(
        f"/api/workflows/approval/start-async?runId={run_id}", json={"inputData": ORDER}
    )
    suspended: tuple[RunStatus, ...] = ("suspended",)
    await registry.storage.claim_run(run_id, from_status=suspended, to_status="running")
    response = await client.post(f"/api/workflows/approval/restart-async?runId={run_id}", json={})
    assert response.status_code == 200
    result = response.json()
    assert result["status"] == "suspended"
    assert result["suspended"] == [["approve"]]


async def test_restart_of_a_run_another_live_process_executes_is_a_409(
    client: httpx.AsyncClient, registry: Spanflow
) -> None:
    run_id = await create_run(client, "approval")
    await client.post(
        f"/api/workflows/approval/start-async?runId={run_id}", json={"inputData": ORDER}
    )
    # Another server claimed it to resume it and is executing it (it renews its lease).
    suspended: tuple[RunStatus, ...] = ("suspended",)
    await registry.storage.claim_run(
        run_id, from_status=suspended, to_status="running", owner="elsewhere:1:a", lease=60
    )

    for route in ("restart", "restart-async"):
        response = await client.post(f"/api/workflows/approval/{route}?runId={run_id}", json={})
        assert response.status_code == 409
        assert "elsewhere:1:a holds its lease" in response.json()["error"]
    stored = await registry.storage.get_run(run_id)
    assert stored is not None
    assert (stored.status, stored.owner) == ("running", "elsewhere:1:a")


async def test_restart_refuses_a_run_nobody_was_executing(client: httpx.AsyncClient) -> None:
    run_id = await suspended_run(client)
    response = await client.post(f"/api/workflows/approval/restart?runId={run_id}", json={})
    assert response.status_code == 409
    assert "resume-stream" in response.json()["error"]


async def test_delete_removes_a_run_and_refuses_one_that_is_executing(
    client: httpx.AsyncClient, gates: Gates
) -> None:
    run_id = await suspended_run(client)
    response = await client.delete(f"/api/workflows/approval/runs/{run_id}")
    assert response.json() == {"message": "Workflow run deleted"}
    assert (await client.get(f"/api/workflows/approval/runs/{run_id}")).status_code == 404
    assert (await client.delete(f"/api/workflows/approval/runs/{run_id}")).status_code == 404

    held = await create_run(client, "gated")
    await client.post(
        f"/api/workflows/gated/start?runId={held}", json={"inputData": {"gate": held}}
    )
    await gates.arrived(held).wait()
    refused = await client.delete(f"/api/workflows/gated/runs/{held}")
    assert refused.status_code == 409
    assert "cancel it" in refused.json()["error"]
    gates.open(held)


async def test_a_bad_input_is_a_400_naming_the_field_and_leaves_no_run(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/api/workflows/approval/stream?runId=bad",
        json={"inputData": {"order": "o", "amount": "x"}},
    )
    assert response.status_code == 400
    assert "amount" in response.json()["error"]
    assert (await client.get("/api/workflows/approval/runs/bad")).status_code == 404


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b"[1, 2]", 400, "expected a JSON object, got an array"),
        (b'{"inputData": 1, "requestContext": []}', 400, "field 'requestContext'"),
        (b'{"closeOnSuspend": "yes"}', 400, "field 'closeOnSuspend'"),
        (b'{"tracingOptions": {"traceID": "abc"}}', 400, "field 'tracingOptions.traceID': unknown"),
        (b'{"tracingOptions": {"traceId": "xyz"}}', 400, "field 'tracingOptions.traceId'"),
        (b'{"tracingOptions": {"tags": "vip"}}', 400, "field 'tracingOptions.tags'"),
        (
            b'{"tracingOptions": {"requestContextKeys": ["apiKey"]}}',
            400,
            "field 'tracingOptions.requestContextKeys[0]'",
        ),
    ],
)
async def test_malformed_bodies_are_400s_naming_the_problem(
    client: httpx.AsyncClient, body: bytes, status: int, fragment: str
) -> None:
    response = await client.post("/api/workflows/approval/stream?runId=r", content=body)
    assert response.status_code == status
    assert fragment in response.json()["error"]


async def test_resume_with_a_step_that_is_not_suspended_is_a_400(
    client: httpx.AsyncClient,
) -> None:
    run_id = await suspended_run(client)
    response = await client.post(
        f"/api/workflows/approval/resume-stream?runId={run_id}",
        json={"step": "record", "resumeData": {"approver": "A"}},
    )
    assert response.status_code == 400
    assert "field 'step'" in response.json()["error"]
    assert (await client.get(f"/api/workflows/approval/runs/{run_id}")).json()[
        "status"
    ] == "suspended"


async def test_unknown_workflows_runs_and_routes_are_404s(client: httpx.AsyncClient) -> None:
    unknown = await client.get("/api/workflows/nope")
    assert unknown.status_code == 404
    assert "no workflow 'nope'" in unknown.json()["error"]
    assert (await client.get("/api/workflows/approval/runs/nope")).status_code == 404
    missing = await client.get("/api/nothing-here")
    assert missing.status_code == 404
    assert missing.json() == {"error": "no route GET /api/nothing-here"}


async def test_a_missing_run_id_is_a_400(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/workflows/approval/stream", json={"inputData": ORDER})
    assert response.status_code == 400
    assert response.json() == {"error": "query parameter 'runId' is required"}


async def test_workflows_are_described_with_their_schemas(client: httpx.AsyncClient) -> None:
    listing = (await client.get("/api/workflows")).json()
    assert set(listing) == {"approval", "gated"}
    info = (await client.get("/api/workflows/approval")).json()
    assert info["name"] == "approval"
    assert info["description"] == "Orders wait for a manager."
    assert list(info["steps"]) == ["check", "approve", "record"]
    assert json.loads(info["inputSchema"])["properties"]["amount"] == {
        "title": "Amount",
        "type": "integer",
    }
    assert json.loads(info["steps"]["approve"]["resumeSchema"])["required"] == ["approver"]
    assert [entry["type"] for entry in info["stepGraph"]] == ["step", "step", "step"]
