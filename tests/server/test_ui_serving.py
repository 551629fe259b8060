"""The run browser's serving: its page and assets beside the API, its config, what it adds to
the runs' wire form, and the ``serve`` options that control it.

The page itself is tested in a real browser in ``tests/ui``; here, what the server answers.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from spanflow_otel.testing import SpanCapture

from spanflow import Spanflow
from spanflow.cli import serve
from spanflow.server import create_app
from spanflow.server.ui import STATIC_DIR, config_script
from tests.server.conftest import asgi_client

TOKEN = "s3cret-token"
ORDER = {"order": "o-1", "amount": 1200}


def config_of(script: str) -> Any:
    """The object ``/ui/config.js`` assigns to ``window.SPANFLOW_UI``."""
    match = re.fullmatch(r"window\.SPANFLOW_UI = (.*);\n", script, re.DOTALL)
    assert match is not None, script
    return json.loads(match.group(1))


async def test_the_page_is_served_at_the_root(client: httpx.AsyncClient) -> None:
    response = await client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert '<script type="module" src="ui/js/app.js"></script>' in response.text
    # Only this origin's scripts, styles and connections: text from a run never runs as code.
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "default-src 'none'" in policy
    assert "unsafe-inline" not in policy
    assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/ui/app.css", "text/css; charset=utf-8"),
        ("/ui/js/app.js", "text/javascript; charset=utf-8"),
        ("/ui/js/api.js", "text/javascript; charset=utf-8"),
        ("/ui/js/forms.js", "text/javascript; charset=utf-8"),
        ("/ui/js/timeline.js", "text/javascript; charset=utf-8"),
        ("/ui/js/views/run.js", "text/javascript; charset=utf-8"),
        ("/ui/config.js", "text/javascript; charset=utf-8"),
    ],
)
async def test_assets_are_served_with_their_content_types(
    client: httpx.AsyncClient, path: str, content_type: str
) -> None:
    response = await client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == content_type
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_every_shipped_module_is_served_as_it_is_on_disk(
    client: httpx.AsyncClient,
) -> None:
    shipped = sorted(STATIC_DIR.rglob("*.js"))
    assert len(shipped) >= 8
    for path in shipped:
        response = await client.get("/ui/" + path.relative_to(STATIC_DIR).as_posix())
        assert response.status_code == 200, path
        assert response.content == path.read_bytes()


async def test_the_page_sets_no_html_from_data(client: httpx.AsyncClient) -> None:
    """Runs' inputs and outputs are untrusted: the page builds elements and sets text only."""
    for path in sorted(STATIC_DIR.rglob("*.js")):
        source = path.read_text()
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert sink not in source, f"{path.name} uses {sink}"


async def test_only_shipped_files_are_served(client: httpx.AsyncClient) -> None:
    for path in (
        "/ui/nothing.js",
        "/ui/../__init__.py",
        "/ui/%2e%2e/__init__.py",
        "/ui/__init__.py",
        "/ui/",
    ):
        response = await client.get(path)
        assert response.status_code == 404, path


async def test_the_config_names_the_api_prefix_and_the_jaeger_ui(registry: Spanflow) -> None:
    app = create_app(registry, prefix="/v1", jaeger_ui="http://jaeger.internal:16686/")
    async with asgi_client(app) as client:
        response = await client.get("/ui/config.js")
    assert config_of(response.text) == {
        "apiPrefix": "/v1",
        "jaegerUi": "http://jaeger.internal:16686",
    }


async def test_without_a_jaeger_ui_the_config_says_null(client: httpx.AsyncClient) -> None:
    response = await client.get("/ui/config.js")
    assert config_of(response.text) == {"apiPrefix": "/api", "jaegerUi": None}


def test_the_config_values_are_json_escaped() -> None:
    script = config_script("/api", 'http://x/"</script><script>alert(1)')
    assert "</script>" not in script
    assert config_of(script)["jaegerUi"] == 'http://x/"</script><script>alert(1)'


async def test_mounted_under_a_path_the_config_names_the_full_api_path(
    registry: Spanflow,
) -> None:
    app = create_app(registry)
    transport = httpx.ASGITransport(app=app, root_path="/spanflow")
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/spanflow/ui/config.js")
    assert config_of(response.text)["apiPrefix"] == "/spanflow/api"


def test_a_jaeger_ui_must_be_an_http_url(registry: Spanflow) -> None:
    with pytest.raises(ValueError, match="jaeger_ui must be an http:// or https:// URL"):
        create_app(registry, jaeger_ui="javascript:alert(1)")


def test_the_api_cannot_take_the_pages_path(registry: Spanflow) -> None:
    with pytest.raises(ValueError, match="serve the API under another prefix"):
        create_app(registry, prefix="/ui")


async def test_ui_false_serves_no_page(registry: Spanflow) -> None:
    async with asgi_client(create_app(registry, ui=False)) as client:
        for path in ("/", "/ui/config.js", "/ui/js/app.js"):
            response = await client.get(path)
            assert response.status_code == 404, path
            assert "error" in response.json()
        assert (await client.get("/api/workflows")).status_code == 200


async def test_the_api_is_unchanged_beside_the_page(client: httpx.AsyncClient) -> None:
    listed = await client.get("/api/workflows")
    assert listed.status_code == 200
    assert "approval" in listed.json()
    document = (await client.get("/api/openapi.json")).json()
    assert not any(path == "/" or path.startswith("/ui") for path in document["paths"])
    missing = await client.get("/api/nothing-here")
    assert missing.json() == {"error": "no route GET /api/nothing-here"}
    # A POST to the page's paths is not the page's: it reaches the API (and its 404/405).
    posted = await client.post("/ui/config.js")
    assert posted.status_code in (404, 405)


async def test_the_files_need_no_token_but_the_api_still_does(registry: Spanflow) -> None:
    app = create_app(registry, auth_token=TOKEN)
    async with asgi_client(app) as anonymous:
        for path in ("/", "/ui/app.css", "/ui/js/app.js", "/ui/config.js"):
            assert (await anonymous.get(path)).status_code == 200, path
        for path in ("/api/workflows", "/api/agents", "/api/workflows/approval/runs"):
            assert (await anonymous.get(path)).status_code == 401, path
        config = await anonymous.get("/ui/config.js")
        assert TOKEN not in config.text
    async with asgi_client(app, authorization=f"Bearer {TOKEN}") as allowed:
        assert (await allowed.get("/api/workflows")).status_code == 200


async def test_the_page_requests_are_not_traced(
    span_capture: SpanCapture, client: httpx.AsyncClient
) -> None:
    await client.get("/")
    await client.get("/ui/js/app.js")
    assert list(span_capture.spans) == []
    await client.get("/api/workflows")
    assert [span.name for span in span_capture.spans] == ["GET /api/workflows"]


# -- what the runs' wire form adds for the page ----------------------------------------------


async def start_traced_run(client: httpx.AsyncClient, run_id: str) -> None:
    response = await client.post(
        f"/api/workflows/approval/stream?runId={run_id}",
        json={
            "inputData": ORDER,
            "resourceId": "cust-1",
            "tracingOptions": {"metadata": {"user": {"id": "u-42"}}, "tags": ["vip", "web"]},
        },
    )
    assert response.status_code == 200


async def test_a_traced_runs_listing_names_its_trace_tags_and_metadata(
    span_capture: SpanCapture, client: httpx.AsyncClient
) -> None:
    await start_traced_run(client, "r-1")
    (run,) = (await client.get("/api/workflows/approval/runs")).json()["runs"]
    (run_span,) = [s for s in span_capture.spans if s.name == "invoke_workflow approval"]
    assert run_span.context is not None
    assert run["traceId"] == f"{run_span.context.trace_id:032x}"
    assert run["spanId"] == f"{run_span.context.span_id:016x}"
    assert run["tags"] == ["vip", "web"]
    assert run["metadata"] == {"user.id": "u-42"}
    # Mastra's keys are all still there, as they were.
    assert {"workflowName", "runId", "snapshot", "createdAt", "updatedAt", "resourceId"} <= set(run)


async def test_a_traced_runs_state_names_its_tags_and_metadata(
    span_capture: SpanCapture, client: httpx.AsyncClient
) -> None:
    await start_traced_run(client, "r-1")
    state = (await client.get("/api/workflows/approval/runs/r-1")).json()
    assert state["status"] == "suspended"
    assert state["tags"] == ["vip", "web"]
    assert state["metadata"] == {"user.id": "u-42"}
    assert re.fullmatch(r"[0-9a-f]{32}", state["traceId"])
    assert re.fullmatch(r"[0-9a-f]{16}", state["spanId"])


async def test_an_untraced_run_keeps_exactly_mastras_keys(client: httpx.AsyncClient) -> None:
    await start_traced_run(client, "r-1")  # no tracer provider: nothing is traced
    (run,) = (await client.get("/api/workflows/approval/runs")).json()["runs"]
    assert set(run) == {"workflowName", "runId", "snapshot", "createdAt", "updatedAt", "resourceId"}
    state = (await client.get("/api/workflows/approval/runs/r-1")).json()
    assert not {"traceId", "spanId", "tags", "metadata"} & set(state)


# -- spanflow serve --jaeger-ui / --no-ui ----------------------------------------------------


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """``spanflow serve`` up to the point it would listen: the `create_app` arguments it used."""
    (tmp_path / "ui_served_app.py").write_text(
        "from spanflow import Spanflow\napp = Spanflow(workflows=[])\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SPANFLOW_AUTH_TOKEN", raising=False)
    calls: list[dict[str, Any]] = []

    def fake_create_app(registry: Spanflow, **options: Any) -> Any:
        calls.append(options)
        return object()

    class NotListening:
        def __init__(self, config: Any) -> None:
            pass

        def run(self) -> None:
            pass

    monkeypatch.setattr("spanflow.server.create_app", fake_create_app)
    monkeypatch.setattr(serve, "_server_class", lambda uvicorn: NotListening)
    return calls


def run_serve(*arguments: str) -> None:
    parser = argparse.ArgumentParser()
    serve.add_command(parser.add_subparsers())
    options = parser.parse_args(["serve", "ui_served_app:app", *arguments])
    assert options.handler(options) == 0


def test_serve_links_traces_to_jaeger_on_localhost_by_default(
    served: list[dict[str, Any]],
) -> None:
    run_serve()
    assert served[0]["ui"] is True
    assert served[0]["jaeger_ui"] == "http://localhost:16686"


def test_serve_jaeger_ui_names_another_jaeger(served: list[dict[str, Any]]) -> None:
    run_serve("--jaeger-ui", "https://jaeger.example.com")
    assert served[0]["jaeger_ui"] == "https://jaeger.example.com"


def test_serve_no_ui_serves_the_api_only(served: list[dict[str, Any]]) -> None:
    run_serve("--no-ui")
    assert served[0]["ui"] is False
    assert served[0]["jaeger_ui"] is None
