"""Authentication, body limits, CORS and the OpenAPI document."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.requests import Request

from spanflow import Spanflow
from spanflow.server import create_app
from tests.server.conftest import asgi_client

TOKEN = "s3cret-token"


async def test_a_token_is_required_when_configured(registry: Spanflow) -> None:
    app = create_app(registry, auth_token=TOKEN)
    async with asgi_client(app) as anonymous:
        refused = await anonymous.get("/api/workflows")
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == "Bearer"
        assert "Authorization: Bearer" in refused.json()["error"]
    async with asgi_client(app, authorization="Bearer wrong") as wrong:
        assert (await wrong.get("/api/workflows")).status_code == 401
    async with asgi_client(app, authorization=f"Basic {TOKEN}") as basic:
        assert (await basic.get("/api/workflows")).status_code == 401
    async with asgi_client(app, authorization=f"Bearer {TOKEN}") as allowed:
        assert (await allowed.get("/api/workflows")).status_code == 200


async def test_an_auth_function_decides_per_request(registry: Spanflow) -> None:
    async def only_admins(request: Request) -> bool:
        return request.headers.get("x-role") == "admin"

    app = create_app(registry, auth=only_admins)
    async with asgi_client(app, **{"x-role": "guest"}) as guest:
        assert (await guest.get("/api/agents")).status_code == 401
    async with asgi_client(app, **{"x-role": "admin"}) as admin:
        assert (await admin.get("/api/agents")).status_code == 200


async def test_a_body_over_the_limit_is_a_413(registry: Spanflow) -> None:
    app = create_app(registry, max_body_bytes=100)
    body = b'{"inputData": {"order": "' + b"x" * 200 + b'", "amount": 1}}'
    async with asgi_client(app) as client:
        declared = await client.post("/api/workflows/approval/stream?runId=big", content=body)
        assert declared.status_code == 413
        assert declared.json() == {"error": "request body too large: the limit is 100 bytes"}

        async def chunks() -> AsyncIterator[bytes]:  # no content-length: counted as it comes
            for start in range(0, len(body), 50):
                yield body[start : start + 50]

        streamed = await client.post("/api/workflows/approval/stream?runId=big", content=chunks())
        assert streamed.status_code == 413
        assert (await client.get("/api/workflows/approval/runs/big")).status_code == 404


async def test_cors_is_off_unless_origins_are_configured(registry: Spanflow) -> None:
    preflight = {"origin": "https://app.example", "access-control-request-method": "POST"}
    async with asgi_client(create_app(registry)) as closed:
        response = await closed.options("/api/workflows/approval/stream", headers=preflight)
        assert "access-control-allow-origin" not in response.headers
    app = create_app(registry, cors_origins=["https://app.example"], auth_token=TOKEN)
    async with asgi_client(app) as open_:
        response = await open_.options("/api/workflows/approval/stream", headers=preflight)
        assert response.status_code == 200  # answered before authentication
        assert response.headers["access-control-allow-origin"] == "https://app.example"


async def test_the_openapi_document_lists_every_route(client: httpx.AsyncClient) -> None:
    document: dict[str, Any] = (await client.get("/api/openapi.json")).json()
    assert document["openapi"] == "3.1.0"
    operations = {
        (method.upper(), path) for path, item in document["paths"].items() for method in item
    }
    w = "/api/workflows/{workflowId}"
    assert operations == {
        ("GET", "/api/workflows"),
        ("GET", w),
        ("POST", f"{w}/create-run"),
        ("POST", f"{w}/stream"),
        ("POST", f"{w}/resume-stream"),
        ("POST", f"{w}/start"),
        ("POST", f"{w}/start-async"),
        ("POST", f"{w}/resume"),
        ("POST", f"{w}/resume-async"),
        ("POST", f"{w}/observe"),
        ("POST", f"{w}/restart"),
        ("POST", f"{w}/restart-async"),
        ("GET", f"{w}/runs"),
        ("GET", f"{w}/runs/{{runId}}"),
        ("DELETE", f"{w}/runs/{{runId}}"),
        ("POST", f"{w}/runs/{{runId}}/cancel"),
        ("GET", "/api/agents"),
        ("GET", "/api/agents/{agentId}"),
        ("POST", "/api/agents/{agentId}/generate"),
        ("POST", "/api/agents/{agentId}/stream"),
        ("POST", "/api/agents/{agentId}/network"),
    }
    stream = document["paths"][f"{w}/stream"]["post"]
    assert stream["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/StreamBody"
    }
    body = document["components"]["schemas"]["StreamBody"]
    assert {"inputData", "initialState", "requestContext", "tracingOptions"} <= set(
        body["properties"]
    )
    assert "traceId" in document["components"]["schemas"]["TracingOptionsBody"]["properties"]
    assert "text/plain" in stream["responses"]["200"]["content"]


@pytest.mark.parametrize("prefix", ["", "/v1/flows"])
async def test_the_prefix_is_configurable(registry: Spanflow, prefix: str) -> None:
    async with asgi_client(create_app(registry, prefix=prefix)) as client:
        assert (await client.get(f"{prefix}/workflows")).status_code == 200
        assert (await client.get("/api/workflows")).status_code == 404


async def test_streams_beyond_the_limit_are_refused_with_503(registry: Spanflow) -> None:
    async with asgi_client(create_app(registry, max_streams=0)) as client:
        response = await client.post(
            "/api/workflows/approval/stream?runId=r",
            json={"inputData": {"order": "o", "amount": 1}},
        )
        assert response.status_code == 503
        assert response.json() == {"error": "too many open streams (the limit is 0)"}
        agent = await client.post("/api/agents/weather/stream", json={"messages": "in Oslo"})
        assert agent.status_code == 503
        assert (await client.get("/api/workflows/approval/runs/r")).status_code == 404
