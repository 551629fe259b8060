"""Bearer-token authentication, as a small ASGI middleware in front of every route.

A request passes when its ``Authorization: Bearer <token>`` matches the configured token
(compared with `hmac.compare_digest`, in constant time, on the UTF-8 bytes) or when the
user's own check (``auth=``, a function of the Starlette `Request` returning a bool, or an
awaitable one) says yes; with neither configured, every request passes (the ``serve`` command
refuses to listen beyond loopback that way). A refused request gets 401 and
``{"error": ...}`` with ``WWW-Authenticate: Bearer``. The header and the token are never
logged, and the tracing layer never records them (`spanflow.tracing.http`).

CORS preflight requests (``OPTIONS`` with ``Access-Control-Request-Method``) are answered by
the CORS middleware outside this one, so browsers can ask before they send the token.
"""

from __future__ import annotations

import hmac
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from spanflow.server.errors import error_response

__all__ = ["AuthCheck", "BearerAuth"]

AuthCheck = Callable[[Request], bool | Awaitable[bool]]
"""A user-supplied check: ``True`` lets the request through."""


class BearerAuth:
    """Refuse requests without the bearer token (or that `check` refuses) with 401."""

    def __init__(self, app: ASGIApp, *, token: str | None, check: AuthCheck | None) -> None:
        self.app = app
        self._token = token.encode() if token is not None else None
        self._check = check

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (self._token is None and self._check is None):
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        if await self._allowed(request):
            await self.app(scope, receive, send)
            return
        response = error_response(
            401,
            "missing or invalid credentials: send the header 'Authorization: Bearer <token>'",
            {"WWW-Authenticate": "Bearer"},
        )
        await response(scope, receive, send)

    async def _allowed(self, request: Request) -> bool:
        if self._token is not None and hmac.compare_digest(_bearer(request), self._token):
            return True
        if self._check is not None:
            verdict: Any = self._check(request)
            if inspect.isawaitable(verdict):
                verdict = await verdict
            return verdict is True
        return False


def _bearer(request: Request) -> bytes:
    """The bearer token the request carries (``b""`` when none)."""
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return b""
    return credentials.strip().encode()
