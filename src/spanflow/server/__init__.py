"""The HTTP server: a `Spanflow` registry's workflows and agents in Mastra's wire format.

``create_app(spanflow)`` builds an ASGI app (mount it in yours, or run ``spanflow serve
module:app``) whose routes, bodies, statuses and stream formats are those of Mastra's server,
so ``@mastra/client-js`` and curl scripts written for Mastra drive spanflow unchanged
(``server.md``). Where we differ on purpose: each request is a SERVER span in the trace of its
``traceparent`` header and the run span is its child (Mastra ignores the header); every
response of a run carries a ``traceparent`` header; streaming a run that was started already
is a 409 (Mastra runs a suspended run again); and ``observe`` reads the run's stored event log,
so it works after a disconnect and from another server process sharing the store.

Built on Starlette (served by uvicorn): it is light (no dependency beyond anyio), it is what
FastAPI is built on, and it leaves the two things we need in our hands: byte-exact streaming
(the record-separated workflow stream and Server-Sent Events, each event written as it
happens) and our own error shape (``{"error": ...}``, a 400 naming the field) instead of a
framework's validation errors. The bodies are still pydantic models, which also make the
OpenAPI document at ``{prefix}/openapi.json``.

Not served: ``POST /agents/:agentId/network``. Agent networks do not exist in spanflow yet
(issue 17); the route is left out rather than answered by a stub.
"""

from spanflow.server.app import DEFAULT_MAX_BODY_BYTES, DEFAULT_PREFIX, create_app
from spanflow.server.auth import AuthCheck
from spanflow.server.errors import ApiError

__all__ = [  # noqa: RUF022 - grouped by purpose, not sorted
    # Building
    "create_app",
    "AuthCheck",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_PREFIX",
    # Errors
    "ApiError",
]
