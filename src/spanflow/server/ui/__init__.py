"""The run browser: a small static front end served beside the API (``create_app(ui=True)``).

The page is plain HTML, one CSS file and a few JavaScript ES modules under ``static/`` (no
build step, no third-party code): it calls the API's own routes with ``fetch`` and reads their
streams, so it needs nothing from the server beyond its files and ``/ui/config.js`` (where the
API lives and which Jaeger UI to link to).

`with_ui` puts the files in front of the API app: ``GET /`` (``index.html``) and ``GET
/ui/...`` are answered here, everything else goes to the API (authentication, tracing, CORS and
all). The files are public on purpose: they hold no data (every datum comes from the API,
which still wants the token; the page asks for it on a 401) and a browser cannot send a bearer
token with a page load. Static requests are not traced either: a span per stylesheet would bury
the runs' requests.

Only the files shipped in ``static/`` are served (the table is read once, so no path from a
request ever reaches the file system), with explicit content types (``text/javascript`` for the
modules, whatever the host's MIME table says) and headers that keep the page's data inert:
``X-Content-Type-Options: nosniff`` and a Content-Security-Policy allowing only this origin's
scripts, styles and connections, so text from a run can never run as code.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["STATIC_DIR", "UI_PATH", "config_script", "with_ui"]

STATIC_DIR: Final = Path(__file__).parent / "static"
"""Where the page's files are (shipped in the package)."""
UI_PATH: Final = "/ui"
"""The path the assets are served under (the page itself is ``/``)."""

_CONTENT_TYPES: Final = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
_CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_HEADERS: Final = {
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def config_script(api_prefix: str, jaeger_ui: str | None) -> str:
    """``/ui/config.js``: ``window.SPANFLOW_UI = {apiPrefix, jaegerUi};``, values as JSON (with
    ``<`` escaped too, so no value can close a script element)."""
    value = {"apiPrefix": api_prefix, "jaegerUi": jaeger_ui.rstrip("/") if jaeger_ui else None}
    text = json.dumps(value).replace("<", "\\u003c")
    return f"window.SPANFLOW_UI = {text};\n"


def _static_files() -> dict[str, tuple[bytes, str]]:
    """Every shipped file, by its path under `UI_PATH` (``/app.css``), with its content type."""
    files: dict[str, tuple[bytes, str]] = {}
    for path in sorted(STATIC_DIR.rglob("*")):
        kind = _CONTENT_TYPES.get(path.suffix)
        if path.is_file() and kind is not None:
            files["/" + path.relative_to(STATIC_DIR).as_posix()] = (path.read_bytes(), kind)
    return files


@dataclass(slots=True)
class _UiFiles:
    """The ASGI app in front of the API: the page's files, or the API for anything else."""

    api: ASGIApp
    prefix: str
    jaeger_ui: str | None
    files: Mapping[str, tuple[bytes, str]]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
            response = self._response(scope)
            if response is not None:
                await response(scope, receive, send)
                return
        await self.api(scope, receive, send)

    def _response(self, scope: Scope) -> Response | None:
        path: str = scope["path"]
        root = scope.get("root_path", "")
        if root and path.startswith(root):  # mounted under a path in another ASGI app
            path = path[len(root) :] or "/"
        if path == "/":
            return self._file("/index.html", {"Content-Security-Policy": _CSP})
        if path == f"{UI_PATH}/config.js":
            script = config_script(root + self.prefix, self.jaeger_ui)
            return Response(script, media_type=_CONTENT_TYPES[".js"], headers=_HEADERS)
        if path.startswith(f"{UI_PATH}/"):
            return self._file(path[len(UI_PATH) :]) or Response(
                "not found", status_code=404, media_type="text/plain", headers=_HEADERS
            )
        return None

    def _file(self, name: str, extra: Mapping[str, str] | None = None) -> Response | None:
        found = self.files.get(name)
        if found is None:
            return None
        body, kind = found
        return Response(body, media_type=kind, headers={**_HEADERS, **(extra or {})})


def with_ui(api: ASGIApp, *, prefix: str, jaeger_ui: str | None) -> Any:
    """`api` with the run browser in front of it (see the module docstring).

    Args:
        api: The API app, with its authentication and tracing layers.
        prefix: The API's route prefix (``/api``), which the page calls.
        jaeger_ui: The Jaeger UI's base URL (``http://localhost:16686``) the page links each
            run's trace to; ``None``: no link (the page still shows the trace id).

    Raises:
        ValueError: `prefix` is the page's own path, or `jaeger_ui` is not an
            ``http(s)://`` URL.
    """
    if prefix == UI_PATH or prefix.startswith(f"{UI_PATH}/"):
        raise ValueError(
            f"the run browser is served at / and {UI_PATH}/: serve the API under another "
            f"prefix than {prefix!r} (the default is /api), or pass ui=False"
        )
    if jaeger_ui is not None and not jaeger_ui.startswith(("http://", "https://")):
        raise ValueError(f"jaeger_ui must be an http:// or https:// URL, got {jaeger_ui!r}")
    return _UiFiles(api, prefix, jaeger_ui, _static_files())
