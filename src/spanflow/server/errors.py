"""HTTP errors: `ApiError`, and how the engine's errors map to statuses.

Every error response is ``{"error": "<message>"}`` (Mastra's shape) with the status that says
what kind of mistake it was: 400 a bad request (the message names the field), 401 no or a
wrong token, 404 an unknown workflow, agent or run, 409 a run in the wrong state, 413 a body
too large, 503 too many open streams or a store that failed. 500 is for bugs only: its message
is generic and the traceback goes to the ``spanflow.server`` log.
"""

from __future__ import annotations

import logging
from typing import Final

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from spanflow.agents.errors import AgentDefinitionError
from spanflow.errors import (
    InvalidInputError,
    RunNotFoundError,
    RunStateError,
    StepNotFoundError,
    StorageError,
)
from spanflow.registry import NotRegisteredError
from spanflow.tracing import TracingOptionsError

__all__ = [
    "LOGGER",
    "ApiError",
    "api_error_of",
    "camel_case",
    "error_response",
    "handle_exception",
    "handle_http_exception",
]

LOGGER: Final = logging.getLogger("spanflow.server")


class ApiError(Exception):
    """An error to answer with `status` and ``{"error": message}``."""

    def __init__(self, status: int, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    """``{"error": message}`` with `status`."""
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def api_error_of(error: BaseException) -> ApiError | None:
    """The HTTP error for an error the engine raises on purpose; ``None`` for anything else.

    `RunClaimError` is a `RunStateError` (someone else runs it): both are 409. A step that is
    not (or not uniquely) suspended is a bad ``step`` in the body: 400. `TracingOptionsError`
    names the option in snake case; the body's key is camelCase, so the message says both.
    """
    if isinstance(error, ApiError):
        return error
    if isinstance(error, NotRegisteredError | RunNotFoundError):
        return ApiError(404, str(error))
    if isinstance(error, RunStateError):
        return ApiError(409, str(error))
    if isinstance(error, TracingOptionsError):
        name = f"tracingOptions.{camel_case(error.field)}"
        return ApiError(400, f"invalid body: field '{name}': {error.value_repr} {error.reason}")
    if isinstance(error, StepNotFoundError):
        return ApiError(400, f"invalid body: field 'step': {error}")
    if isinstance(error, InvalidInputError | AgentDefinitionError):
        return ApiError(400, str(error))
    if isinstance(error, StorageError):
        return ApiError(503, f"the run store failed: {error}")
    return None


def camel_case(name: str) -> str:
    """``trace_id`` -> ``traceId``, ``request_context_keys[0]`` -> ``requestContextKeys[0]``."""
    head, bracket, rest = name.partition("[")
    first, *others = head.split("_")
    return first + "".join(part.capitalize() for part in others) + bracket + rest


async def handle_exception(request: Request, error: Exception) -> Response:
    """Starlette's handler for every exception a route lets through."""
    api_error = api_error_of(error)
    if api_error is not None:
        return error_response(api_error.status, api_error.message, api_error.headers)
    LOGGER.exception("bug while serving %s %s", request.method, request.url.path)
    return error_response(500, "internal server error (the server log has the details)")


async def handle_http_exception(request: Request, error: Exception) -> Response:
    """Starlette's own errors (no such route: 404, wrong method: 405) in our shape."""
    assert isinstance(error, HTTPException)
    if error.status_code == 404:
        message = f"no route {request.method} {request.url.path}"
    else:
        message = str(error.detail)
    return error_response(error.status_code, message, dict(error.headers or {}))
