"""The web console: one HTML page at / and its ES modules and stylesheet under /console, all inside the package.

The page calls only the public API, with the key in the X-API-Key header. Its Content-Security-Policy allows
scripts, styles and connections from this origin only, no inline script or style, and images from this origin or
from blob: URLs (the photos a user drops are shown from memory, never uploaded to show them).
"""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.types import Scope

ASSETS = Path(__file__).resolve().parents[1] / "console"

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' blob:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Revalidate on every load (cheap with the ETag) so an upgraded server never runs yesterday's modules.
    "Cache-Control": "no-cache",
}


class ConsoleAssets(StaticFiles):
    """Static files that carry the console's security headers."""

    def file_response(
        self, full_path: str | os.PathLike[str], stat_result: os.stat_result, scope: Scope, status_code: int = 200
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers.update(SECURITY_HEADERS)
        return response


def install(app: FastAPI) -> None:
    """Serve the console at / and its assets under /console."""
    app.mount("/console", ConsoleAssets(directory=ASSETS), name="console")

    @app.get("/", include_in_schema=False)
    def console() -> FileResponse:
        return FileResponse(ASSETS / "index.html", media_type="text/html", headers=SECURITY_HEADERS)
