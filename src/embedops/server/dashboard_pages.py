"""The dashboard's page and assets at ``/ui``: static files shipped in the package
(``server/ui/``) and the charting library, plotly.js, served from the ``plotly`` package's
own bundled copy. Nothing is fetched from elsewhere, so the dashboard works offline.

They are answered before API keys are checked: the page holds no data (it reads
``/ui/api/...`` with the key the operator signs in with) and carries the sign-in form.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from starlette.responses import FileResponse, PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

UI_DIR = Path(str(resources.files("embedops.server") / "ui"))
STATIC_PREFIX = "/ui/static/"
# The page may run only scripts and styles served from here: no CDN, no inline script.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self' 'unsafe-eval'; "
                               "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}


def plotly_js() -> Path | None:
    """plotly.min.js as the ``plotly`` package ships it, or None when not installed."""
    try:
        path = Path(str(resources.files("plotly") / "package_data" / "plotly.min.js"))
    except ModuleNotFoundError:
        return None
    return path if path.is_file() else None


def _asset(name: str) -> Path | None:
    """A file of ``ui/static`` by name (no sub-folders, nothing outside it)."""
    if name == "plotly.min.js":
        return plotly_js()
    folder = (UI_DIR / "static").resolve()
    candidate = (folder / name).resolve()
    return candidate if candidate.parent == folder and candidate.is_file() else None


def page_response(path: str) -> Response | None:
    """The answer to a GET of ``path`` when it is a dashboard page or asset."""
    if path == "/ui":
        return RedirectResponse("/ui/", status_code=307)
    if path == "/ui/":
        return FileResponse(UI_DIR / "index.html", media_type="text/html",
                            headers=SECURITY_HEADERS)
    if path.startswith(STATIC_PREFIX):
        found = _asset(path[len(STATIC_PREFIX):])
        if found is None:
            return PlainTextResponse("not found", status_code=404)
        return FileResponse(found, headers=SECURITY_HEADERS)
    return None


class DashboardPages:
    """ASGI middleware answering GET and HEAD of ``/ui``, ``/ui/`` and ``/ui/static/*``;
    everything else (``/ui/api/...`` included) goes on to the app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
            response = page_response(scope["path"])
            if response is not None:
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
