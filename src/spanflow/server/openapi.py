"""The OpenAPI 3.1 document (``{prefix}/openapi.json``), built from the route table.

Every route is one `RouteSpec`; the app's routes and this document are made from the same
list, so the document cannot forget a route. Request bodies are the pydantic models of
`spanflow.server.bodies` (their `model_json_schema`, camelCase as on the wire); query and path
parameters are listed per route; responses say which of the three media types comes back
(JSON, the workflow record stream, Server-Sent Events) and that errors are ``{"error"}``.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

__all__ = ["Endpoint", "QueryParam", "RouteSpec", "openapi_document"]

Endpoint = Callable[[Request], Awaitable[Response]]
ResponseKind = Literal["json", "records", "sse"]


@dataclass(frozen=True, slots=True)
class QueryParam:
    """A query parameter of a route."""

    name: str
    description: str
    type: Literal["string", "integer"] = "string"
    required: bool = False


@dataclass(frozen=True, slots=True)
class RouteSpec:
    """One route: what the app serves and what the document says about it."""

    method: Literal["GET", "POST", "DELETE"]
    path: str
    """Under the prefix, Starlette's syntax: ``/workflows/{workflowId}/stream``."""
    endpoint: Endpoint
    summary: str
    body: type[BaseModel] | None = None
    query: tuple[QueryParam, ...] = ()
    response: ResponseKind = "json"


_ERROR_SCHEMA = {
    "type": "object",
    "properties": {"error": {"type": "string"}},
    "required": ["error"],
}
_RESPONSES: dict[ResponseKind, dict[str, Any]] = {
    "json": {"description": "JSON", "content": {"application/json": {"schema": {}}}},
    "records": {
        "description": 'The run\'s events, each `JSON + "\\x1e"` (ASCII record separator); '
        "the body ends after `workflow-finish`.",
        "content": {"text/plain": {"schema": {"type": "string"}}},
    },
    "sse": {
        "description": "Server-Sent Events: `data: <chunk JSON>` per chunk, `data: [DONE]` last.",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    },
}
_ERRORS = {
    "400": "Bad request: the message names the field",
    "401": "Missing or wrong bearer token",
    "404": "Unknown workflow, agent or run",
    "409": "The run is in the wrong state for this",
    "413": "Body too large",
}


def openapi_document(
    routes: Sequence[RouteSpec], *, prefix: str, title: str, version: str, secured: bool
) -> dict[str, Any]:
    """The OpenAPI document of `routes` served under `prefix`."""
    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = {"Error": _ERROR_SCHEMA}
    for route in routes:
        operation = _operation(route, schemas)
        paths.setdefault(prefix + route.path, {})[route.method.lower()] = operation
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {"schemas": schemas},
    }
    if secured:
        document["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        document["security"] = [{"bearer": []}]
    return document


def _operation(route: RouteSpec, schemas: dict[str, Any]) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in re.findall(r"{(\w+)}", route.path)
    ]
    parameters += [
        {
            "name": q.name,
            "in": "query",
            "required": q.required,
            "description": q.description,
            "schema": {"type": q.type},
        }
        for q in route.query
    ]
    operation: dict[str, Any] = {
        "summary": route.summary,
        "operationId": _operation_id(route),
        "parameters": parameters,
        "responses": {
            "200": _RESPONSES[route.response],
            **{
                status: {
                    "description": text,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                    },
                }
                for status, text in _ERRORS.items()
            },
        },
    }
    if route.body is not None:
        name = route.body.__name__
        if name not in schemas:
            schema = route.body.model_json_schema(
                by_alias=True, ref_template="#/components/schemas/{model}"
            )
            schemas.update(schema.pop("$defs", {}))
            schemas[name] = schema
        operation["requestBody"] = {
            "required": False,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}},
        }
    return operation


def _operation_id(route: RouteSpec) -> str:
    words = re.findall(r"[A-Za-z]+", route.path.replace("{", " by ").replace("}", " "))
    return route.method.lower() + "".join(word[:1].upper() + word[1:] for word in words)
