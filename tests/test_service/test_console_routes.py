"""The console and API-docs pages as the server sends them: local assets only, a strict CSP, safe scripts."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import tomllib
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.config import Settings
from service.main import create_app
from service.routes import apidocs, console
from service.schema import MIGRATIONS_DIR

CONSOLE = console.ASSETS
JS_FILES = sorted((CONSOLE / "js").glob("*.js"))


class _Refs(HTMLParser):
    """Every src/href, inline script and style attribute of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts = 0
        self.style_attrs = 0
        self.handler_attrs: list[str] = []
        self._in_script_without_src = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        self.urls += [v for k, v in attrs if k in ("src", "href") and v]
        self.style_attrs += "style" in values
        self.handler_attrs += [k for k in values if k.startswith("on")]
        self._in_script_without_src = tag == "script" and "src" not in values

    def handle_data(self, data: str) -> None:
        if self._in_script_without_src and data.strip():
            self.inline_scripts += 1

    def handle_endtag(self, tag: str) -> None:
        self._in_script_without_src = False


def refs(html: str) -> _Refs:
    parser = _Refs()
    parser.feed(html)
    return parser


def test_console_page_and_assets_are_local_with_a_strict_policy(client: TestClient) -> None:
    r = client.get("/", headers={"X-API-Key": ""})  # the page itself needs no key: it holds no data
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    policy = r.headers["content-security-policy"]
    assert "script-src 'self';" in policy and "style-src 'self';" in policy and "unsafe" not in policy
    assert r.headers["x-content-type-options"] == "nosniff"
    page = refs(r.text)
    assert page.inline_scripts == 0 and page.style_attrs == 0 and page.handler_attrs == []
    assert page.urls and all(not re.match(r"^[a-z]+:|^//", u) for u in page.urls), page.urls
    for url in page.urls:
        asset = client.get("/" + url)
        assert asset.status_code == 200, url
        assert asset.headers["content-security-policy"] == policy
    module = client.get("/console/js/main.js")
    assert module.headers["content-type"].startswith(("text/javascript", "application/javascript"))
    imported = {m for f in JS_FILES for m in re.findall(r'from "\./([a-z]+\.js)"', f.read_text())}
    assert imported <= {f.name for f in JS_FILES}
    assert client.get("/console/js/nope.js").json()["error"]["code"] == "not_found"


def test_every_testid_the_issue_names_is_on_the_page() -> None:
    html = (CONSOLE / "index.html").read_text()
    ids = set(re.findall(r'data-testid="([^"]+)"', html))
    stable = {
        "login-key", "login-submit", "verify-image-a", "verify-image-b", "verify-identity", "verify-submit",
        "verify-decision", "identify-image", "identify-submit", "identify-result", "enroll-name", "enroll-images",
        "enroll-submit", "enroll-result", "identity-list",
    }  # fmt: skip
    assert stable <= ids, stable - ids


@pytest.mark.parametrize("path", JS_FILES, ids=lambda p: p.name)
def test_scripts_never_parse_strings_as_markup_or_code(path: Path) -> None:
    source = path.read_text()
    for banned in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert banned not in source, f"{path.name} uses {banned}"
    assert not re.search(r"\.style\b|setAttribute\(\s*['\"]style", source), f"{path.name} sets inline styles"
    assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", source), f"{path.name} names an outside URL"


def test_the_package_data_ships_every_console_and_docs_file() -> None:
    config = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["service"]
    root = console.ASSETS.parent
    shipped = {p for pattern in patterns for p in root.glob(pattern) if p.is_file()}
    present = {p for folder in (console.ASSETS, apidocs.ASSETS) for p in folder.rglob("*") if p.is_file()}
    # Alembic's template beside the migrations (the migrations themselves are modules, shipped as code).
    present |= {p for p in MIGRATIONS_DIR.rglob("*") if p.is_file() and p.suffix not in (".py", ".pyc")}
    assert present == shipped, sorted(str(p) for p in present ^ shipped)


def test_the_console_can_be_turned_off(make_settings: Callable[..., Settings]) -> None:
    with TestClient(create_app(make_settings(console=False))) as c:
        assert c.get("/").status_code == 404 and c.get("/console/js/main.js").status_code == 404


def test_docs_pages_reference_only_local_assets(client: TestClient) -> None:
    for path, title in (("/docs", "dprime API"), ("/redoc", "dprime API")):
        r = client.get(path)
        assert r.status_code == 200 and f"<title>{title}</title>" in r.text
        assert "http://" not in r.text and "https://" not in r.text, path
        page = refs(r.text)
        assert page.urls and all(u.startswith(apidocs.ASSETS_URL + "/") for u in page.urls), page.urls
        for url in page.urls:
            assert client.get(url).status_code == 200, url
        assert "/openapi.json" in r.text and client.get("/openapi.json").status_code == 200
        policy = r.headers["content-security-policy"]
        assert "default-src 'self'" in policy and "connect-src 'self'" in policy
        inline = re.findall(r"<script>(.*?)</script>", r.text, re.DOTALL)
        for script in inline:  # the start-up script runs because its hash is allowed, and only it
            digest = hashlib.sha256(script.encode()).digest()
            assert f"'sha256-{base64.b64encode(digest).decode()}'" in policy
        assert "'unsafe-inline'" not in policy.split("script-src")[1].split(";")[0]


def test_vendored_docs_assets_are_what_their_sources_say() -> None:
    sources = json.loads((apidocs.ASSETS / "SOURCES.json").read_text())
    present = {p.name for p in apidocs.ASSETS.iterdir()} - {"SOURCES.json"}
    assert present == set(sources)
    for name, source in sources.items():
        assert hashlib.sha256((apidocs.ASSETS / name).read_bytes()).hexdigest() == source["sha256"], name
    assert "https://cdn" not in (apidocs.ASSETS / "redoc.standalone.js").read_text()


def test_docs_off_means_no_docs_pages(make_settings: Callable[..., Settings]) -> None:
    with TestClient(create_app(make_settings(expose_docs=False))) as c:
        for path in ("/docs", "/redoc", "/openapi.json", "/apidocs/swagger-ui.css"):
            assert c.get(path).status_code == 404, path
