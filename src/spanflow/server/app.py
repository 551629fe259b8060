"""`create_app`: the ASGI app serving a `Spanflow` registry in Mastra's wire format.

The app is layered, outermost first, each layer a few lines with one job:

1. the OpenTelemetry ASGI instrumentation (`spanflow.tracing.http.instrument_asgi`): one
   SERVER span per request, in the trace of the incoming ``traceparent``;
2. CORS (Starlette's `CORSMiddleware`), only when origins are configured;
3. bearer-token authentication (`spanflow.server.auth.BearerAuth`);
4. the Starlette app: its routes (one `RouteSpec` table, which also makes the OpenAPI
   document) and one exception handler that turns errors into ``{"error"}`` responses
   (`spanflow.server.errors`).

In front of them all, unless ``ui=False``, the run browser's files (`spanflow.server.ui`):
``GET /`` and ``GET /ui/...`` are its page and assets, public and untraced; the page calls the
API like any client, with the token.

The app keeps no state of its own beyond the runs it is executing (for ``cancel``): stored
runs live in the registry's store, so several server processes can share one store, and a run
one of them started can be observed, resumed or listed through another.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Match, Route

from spanflow.errors import SpanflowError
from spanflow.registry import Spanflow
from spanflow.server import bodies
from spanflow.server.agents import AgentRoutes
from spanflow.server.auth import AuthCheck, BearerAuth
from spanflow.server.errors import ApiError, handle_exception, handle_http_exception
from spanflow.server.openapi import QueryParam, RouteSpec, openapi_document
from spanflow.server.streaming import StreamSlots
from spanflow.server.ui import with_ui
from spanflow.server.workflows import WorkflowRoutes
from spanflow.tracing.http import instrument_asgi

__all__ = ["DEFAULT_MAX_BODY_BYTES", "DEFAULT_PREFIX", "create_app"]

DEFAULT_PREFIX: Final = "/api"
"""Mastra's prefix."""
DEFAULT_MAX_BODY_BYTES: Final = 1024 * 1024
"""1 MiB: larger request bodies are refused with 413."""

_RUN_ID = QueryParam("runId", "The run's id", required=True)


DEFAULT_IDLE_STREAM_TIMEOUT = 900.0
"""Fifteen minutes without an event ends a stream (``create_app(idle_stream_timeout=)``)."""


def create_app(
    app: Spanflow,
    *,
    prefix: str = DEFAULT_PREFIX,
    auth_token: str | None = None,
    auth: AuthCheck | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    max_streams: int | None = 1000,
    idle_stream_timeout: float | None = DEFAULT_IDLE_STREAM_TIMEOUT,
    cors_origins: Sequence[str] | None = None,
    title: str = "spanflow",
    ui: bool = True,
    jaeger_ui: str | None = None,
) -> Any:
    """An ASGI app serving the workflows and agents of `app` (see the module docstring).

    Args:
        app: The registry: its workflows, agents, store and tracing configuration.
        prefix: Where every route lives (``/api`` as in Mastra; ``""`` for the root).
        auth_token: Require ``Authorization: Bearer <auth_token>`` on every request.
        auth: Or (also) a function of the request saying whether it may pass.
        max_body_bytes: The largest request body accepted (413 beyond).
        max_streams: How many streams may be open at once (503 beyond); ``None``: no bound.
        idle_stream_timeout: Seconds a stream may go without an event before the server ends
            it (the run goes on; the client observes it again); ``None``: never.
        cors_origins: Origins browsers may call from (``["*"]`` for any); ``None``: CORS off.
        title: The OpenAPI document's title.
        ui: Serve the run browser at ``/`` (its assets under ``/ui/``).
        jaeger_ui: The Jaeger UI's URL (``http://localhost:16686``) the run browser links each
            run's trace to; ``None``: no link (it still shows the trace id and traceparent).

    Returns:
        The ASGI app; serve it with uvicorn (``spanflow serve`` does) or mount it in yours.
    """
    prefix = _check_prefix(prefix)
    if not isinstance(max_body_bytes, int) or max_body_bytes < 1:
        raise ValueError(f"max_body_bytes must be a positive int, got {max_body_bytes!r}")
    if idle_stream_timeout is not None and not idle_stream_timeout > 0:
        raise ValueError(f"idle_stream_timeout must be positive, got {idle_stream_timeout!r}")
    slots = StreamSlots(max_streams, idle_stream_timeout)
    workflows = WorkflowRoutes(app, max_body_bytes, slots)
    agents = AgentRoutes(app, max_body_bytes, slots)
    table = _route_table(workflows, agents)
    document = openapi_document(
        table,
        prefix=prefix,
        title=title,
        version=_version(),
        secured=auth_token is not None or auth is not None,
    )

    async def openapi(request: Request) -> Response:
        return JSONResponse(document)

    routes = [Route(prefix + r.path, r.endpoint, methods=[r.method]) for r in table]
    routes.append(Route(prefix + "/openapi.json", openapi, methods=["GET"]))
    starlette = Starlette(
        routes=routes,
        exception_handlers={
            # Ours and the engine's errors are answered where they are raised (Starlette's
            # exception middleware); `Exception` is its last resort, the 500 of a bug.
            HTTPException: handle_http_exception,
            ApiError: handle_exception,
            SpanflowError: handle_exception,
            Exception: handle_exception,
        },
    )
    asgi: Any = BearerAuth(starlette, token=auth_token, check=auth)
    if cors_origins is not None:
        asgi = CORSMiddleware(
            asgi,
            allow_origins=list(cors_origins),
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["authorization", "content-type", "traceparent", "tracestate", "baggage"],
            expose_headers=["traceparent"],
        )

    def route_template(scope: Mapping[str, Any]) -> str | None:
        for route in routes:
            match, _ = route.matches(dict(scope))
            if match is Match.FULL:
                return route.path
        return None

    traced = instrument_asgi(asgi, config=app.tracing, route_template=route_template)
    return with_ui(traced, prefix=prefix, jaeger_ui=jaeger_ui) if ui else traced


def _route_table(workflows: WorkflowRoutes, agents: AgentRoutes) -> list[RouteSpec]:
    """Every route (``server.md`` §2), in Mastra's order."""
    w, a = workflows, agents
    wid = "/workflows/{workflowId}"
    run = f"{wid}/runs/{{runId}}"
    offset = QueryParam("offset", "Index of the first event to send (default 0)", "integer")
    listing = (
        QueryParam("page", "Page number, from 0 (with perPage)", "integer"),
        QueryParam("perPage", "Runs per page (default 100)", "integer"),
        QueryParam("limit", "Runs per page, if perPage is not given", "integer"),
        QueryParam("offset", "Runs to skip, if page is not given", "integer"),
        QueryParam("status", "Only runs with this status"),
        QueryParam("resourceId", "Only runs of this resource"),
        QueryParam("fromDate", "Only runs created at or after this ISO 8601 date"),
        QueryParam("toDate", "Only runs created at or before this ISO 8601 date"),
    )
    optional_run_id = QueryParam("runId", "The run's id (default: a new one)")
    fields = QueryParam("fields", "Comma-separated fields to include (default: all)")
    return [
        RouteSpec("GET", "/workflows", w.list_workflows, "List workflows"),
        RouteSpec("GET", wid, w.get_workflow, "Describe a workflow"),
        RouteSpec(
            "POST",
            f"{wid}/create-run",
            w.create_run,
            "Create a pending run",
            bodies.CreateRunBody,
            (optional_run_id,),
        ),
        RouteSpec(
            "POST",
            f"{wid}/stream",
            w.stream,
            "Start a run and stream its events",
            bodies.StreamBody,
            (_RUN_ID,),
            "records",
        ),
        RouteSpec(
            "POST",
            f"{wid}/resume-stream",
            w.resume_stream,
            "Resume a suspended run and stream its events",
            bodies.ResumeBody,
            (_RUN_ID,),
            "records",
        ),
        RouteSpec(
            "POST",
            f"{wid}/start",
            w.start,
            "Start a created run (fire and forget)",
            bodies.StreamBody,
            (_RUN_ID,),
        ),
        RouteSpec(
            "POST",
            f"{wid}/start-async",
            w.start_async,
            "Start a run and answer its result",
            bodies.StreamBody,
            (optional_run_id,),
        ),
        RouteSpec(
            "POST",
            f"{wid}/resume",
            w.resume,
            "Resume a suspended run (fire and forget)",
            bodies.ResumeBody,
            (_RUN_ID,),
        ),
        RouteSpec(
            "POST",
            f"{wid}/resume-async",
            w.resume_async,
            "Resume a suspended run and answer its result",
            bodies.ResumeBody,
            (_RUN_ID,),
        ),
        RouteSpec(
            "POST",
            f"{wid}/observe",
            w.observe,
            "A run's stored events from offset, then live ones until it ends or suspends",
            None,
            (_RUN_ID, offset),
            "records",
        ),
        RouteSpec(
            "POST",
            f"{wid}/restart",
            w.restart,
            "Re-drive a run a dead process left running",
            bodies.RestartBody,
            (_RUN_ID,),
        ),
        RouteSpec(
            "POST",
            f"{wid}/restart-async",
            w.restart_async,
            "Re-drive a run a dead process left running, and answer its result",
            bodies.RestartBody,
            (_RUN_ID,),
        ),
        RouteSpec("GET", f"{wid}/runs", w.list_runs, "List runs, newest first", None, listing),
        RouteSpec("GET", run, w.get_run, "A run's state", None, (fields,)),
        RouteSpec("DELETE", run, w.delete_run, "Delete a run"),
        RouteSpec("POST", f"{run}/cancel", w.cancel, "Cancel a run"),
        RouteSpec("GET", "/agents", a.list_agents, "List agents"),
        RouteSpec("GET", "/agents/{agentId}", a.get_agent, "Describe an agent"),
        RouteSpec(
            "POST",
            "/agents/{agentId}/generate",
            a.generate,
            "Call an agent and answer its full output",
            bodies.AgentBody,
        ),
        RouteSpec(
            "POST",
            "/agents/{agentId}/stream",
            a.stream,
            "Call an agent and stream its chunks (Server-Sent Events)",
            bodies.AgentBody,
            (),
            "sse",
        ),
        RouteSpec(
            "POST",
            "/agents/{agentId}/network",
            a.network,
            "Run the agent's network and stream its chunks (Server-Sent Events)",
            bodies.AgentBody,
            (),
            "sse",
        ),
    ]


def _check_prefix(prefix: str) -> str:
    if not isinstance(prefix, str) or (prefix and not prefix.startswith("/")):
        raise ValueError(f"prefix must be '' or start with '/', got {prefix!r}")
    return prefix.rstrip("/")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("spanflow")
    except PackageNotFoundError:  # a source tree that was never installed
        return "0"
