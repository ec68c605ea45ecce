"""/docs (Swagger UI) and /redoc from assets inside the package: the API reference works with no internet.

The JavaScript and CSS are vendored from their npm packages (service/apidocs/SOURCES.json names each file's
package, version and sha256, and the one-line change made to ReDoc so that it loads no logo from a CDN). Each page
carries a Content-Security-Policy that lets it reach this server only, so nothing is fetched from elsewhere even if
an asset tried.
"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = Path(__file__).resolve().parents[1] / "apidocs"
ASSETS_URL = "/apidocs"
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def with_policy(page: HTMLResponse) -> HTMLResponse:
    """The page with a CSP allowing this origin only; its inline start-up script is allowed by its own hash."""
    html = bytes(page.body).decode("utf-8")
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(js.encode("utf-8")).digest()).decode() + "'"
        for js in _INLINE_SCRIPT.findall(html)
    )
    page.headers["Content-Security-Policy"] = "; ".join(
        (
            "default-src 'self'",
            f"script-src 'self' {hashes}".strip(),
            # Swagger UI and ReDoc style their React components inline; images include CSS data: icons.
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data:",
            "worker-src blob:",  # ReDoc's search index runs in a worker made from a blob
            "connect-src 'self'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        )
    )
    return page


def install(app: FastAPI, openapi_url: str) -> None:
    """Serve /docs, /redoc and their assets under /apidocs."""
    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS), name="apidocs")
    title = f"{app.title} API"

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        page = get_swagger_ui_html(
            openapi_url=openapi_url,
            title=title,
            swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_URL}/favicon.png",
            oauth2_redirect_url=None,
            # validatorUrl null: Swagger UI would otherwise send the schema to an online validator.
            swagger_ui_parameters={"validatorUrl": None, "persistAuthorization": False},
        )
        return with_policy(page)

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        page = get_redoc_html(
            openapi_url=openapi_url,
            title=title,
            redoc_js_url=f"{ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{ASSETS_URL}/favicon.png",
            with_google_fonts=False,
        )
        return with_policy(page)
